"""The one error root. Every error a user can cause is a CepletterError.

Each message says what happened and where (file, line, key, address); the
optional ``hint`` says what to do next. The CLI turns these into their
`ExitStatus`.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Every exit code cepletter uses (httpie's style): one place to read them all."""

    SUCCESS = 0
    ERROR = 1  # the job could not be done; the message says why and what to do
    USAGE = 2  # a wrong option or combination of options
    HANGUP = 129  # stopped by SIGHUP (128 + 1): the terminal closed
    INTERRUPTED = 130  # stopped by Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # stopped by SIGTERM (128 + 15)


class CepletterError(Exception):
    """An error the user can fix: shown as one line (plus a hint), exit code 1."""

    exit_code: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(CepletterError):
    """cepletter.toml is missing, unreadable or has a bad key or value."""


class WorkspaceError(CepletterError):
    """No workspace here, or a workspace file is missing."""


class SourceError(CepletterError):
    """A feed or local source could not be read."""


class IssueError(CepletterError):
    """An issue file is missing or malformed."""


class TemplateError(CepletterError):
    """A template has a syntax error, an unknown variable or is missing."""


class SubscriberError(CepletterError):
    """The subscriber or suppression list cannot be read."""


class DeliveryError(CepletterError):
    """Sending could not start or had to stop."""


class MailboxError(CepletterError):
    """The mailbox of returned mail (IMAP, Maildir, mbox) cannot be read or changed."""


class UsageError(CepletterError):
    """Wrong combination of options: exit code 2."""

    exit_code = ExitStatus.USAGE
