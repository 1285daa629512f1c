"""The one error root. Every error a user can cause is a CepletterError.

Each message says what happened and where (file, line, key, address); the
optional ``hint`` says what to do next. ``cli.py`` turns these into exit code 1.
"""

from __future__ import annotations


class CepletterError(Exception):
    """An error the user can fix: shown as one line (plus a hint), exit code 1."""

    exit_code = 1

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


class UsageError(CepletterError):
    """Wrong combination of options: exit code 2."""

    exit_code = 2
