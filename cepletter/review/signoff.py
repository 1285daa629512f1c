"""Review sign-off: which exact content was tested or approved, by whom and when.

An SMTP send to the list needs a sign-off for the content it sends: every
header subscribers see or that decides where their replies and unsubscribes
go (From, Reply-To, Subject, List-Id, List-Unsubscribe and -Post, exactly as
the message factory writes them), and the HTML and text of the web version
(no personal data), as one hash (`content_hash`, the only place it is made).
Any edit, to the issue or to those settings, changes the hash, so it needs a
new test send or approval.

The records live in ``issues/<ID>/review.jsonl``: append-only, one JSON object
per line, readable and git-friendly. A line cut short by a crash is ignored.
"""

from __future__ import annotations

import getpass
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cepletter import jsonlines
from cepletter.errors import IssueError, UsageError
from cepletter.fsutil import describe_os_error
from cepletter.issue.folder import ISSUE_FILE, issue_path

if TYPE_CHECKING:
    from cepletter.config import Settings
    from cepletter.message.personal import PersonalIssue

REVIEW_FILE = "review.jsonl"
KINDS = ("test", "approval")
SEND_KIND = "send"  # not a sign-off: the note that a send to the list started


@dataclass(frozen=True)
class SignOff:
    """One review record: a test send ("test") or an approval ("approval")."""

    kind: str
    who: str
    when: datetime  # aware, UTC
    recipients: tuple[str, ...]
    digest: str
    subject: str = ""

    def describe(self) -> str:
        """One line for people, e.g. for the send confirmation."""
        when = self.when.astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
        if self.kind == "approval":
            return f"approved by {self.who} on {when}"
        sent_to = ", ".join(self.recipients) or "?"
        return f"test sent to {sent_to} by {self.who} on {when}"


def content_hash(settings: Settings, rendered: PersonalIssue) -> str:
    """The hash of what subscribers get of ``rendered`` (one edition): the reviewed headers, HTML and text.

    The headers come from the factory that builds the messages, so the hash
    covers exactly what is sent; the bodies are the web version's.
    """
    from cepletter.message.build import MessageFactory

    html, text = rendered.web()
    return hash_parts(MessageFactory(settings, rendered).reviewed_headers(), html.encode("utf-8"),
                      text.encode("utf-8"))


def hash_parts(*parts: bytes) -> str:
    """SHA-256 (hex) over ``parts``, each prefixed by its length.

    The length prefixes keep the parts apart: moving text from the end of the
    HTML to the start of the text gives a different hash.
    """
    digest = hashlib.sha256()
    for data in parts:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class Approval:
    """One edition's content approved by `approve`."""

    rendered: PersonalIssue
    digest: str
    by: str
    earlier: SignOff | None  # the latest earlier sign-off of the same content
    editions: int = 1  # how many language editions the issue has

    @property
    def subject(self) -> str:
        return self.rendered.subject


def approve(settings: Settings, issue_id: str | None, by: str, *, language: str | None = None) -> list[Approval]:
    """Record that ``by`` approved the issue's content as it is now (default: the latest issue).

    Every language edition, or only the one in ``language``. The work of
    `cepletter approve` and of the desk's Approve button.
    """
    from cepletter.issue.file import resolve
    from cepletter.message.personal import render_editions

    issue = resolve(settings.issues_dir, issue_id)
    rendered = render_editions(settings, issue)
    chosen = list(rendered.editions)
    if language is not None:
        from cepletter import i18n

        chosen = [e for e in chosen if e.language == i18n.normalise(language)]
        if not chosen:
            raise UsageError(f"--lang {language}: issue {issue.id} has no such edition "
                             f"(it has: {', '.join(e.language for e in rendered.editions)})")
    return approve_editions(settings, chosen, by, len(rendered.editions))


def approve_editions(settings: Settings, chosen: list[PersonalIssue], by: str, editions: int = 1) -> list[Approval]:
    """Record an approval by ``by`` of each of ``chosen`` (rendered editions of one issue, of ``editions``)."""
    name = " ".join(by.split())
    if not name:
        raise UsageError("--by: give the name of the person who approved the issue", 'e.g. --by "Anna Jansen"')
    # Every hash first: a setting that cannot be sent (say a bad from) records nothing.
    hashed = [(rendered, content_hash(settings, rendered)) for rendered in chosen]
    done: list[Approval] = []
    for rendered, digest in hashed:
        earlier = find_signoff(settings, rendered.issue_id, digest)
        record_approval(settings, rendered.issue_id, digest, name, subject=rendered.subject)
        done.append(Approval(rendered, digest, name, earlier, editions))
    return done


def review_path(settings: Settings, issue_id: str) -> Path:
    return issue_path(settings.issues_dir, issue_id).parent / REVIEW_FILE


def record_test_send(
    settings: Settings, issue_id: str, digest: str, recipients: list[str], *, subject: str = ""
) -> None:
    """Record that this content was sent as a test to ``recipients`` (by the local user)."""
    if not recipients:
        raise UsageError("a test send needs at least one address")
    _append(settings, issue_id, _record("test", digest, _local_user(), recipients, subject))


def record_approval(settings: Settings, issue_id: str, digest: str, by: str, *, subject: str = "") -> None:
    """Record that ``by`` approved this content (``subject`` only makes the file easier to read)."""
    name = " ".join(by.split())
    if not name:
        raise UsageError("--by: give the name of the person who approved the issue", 'e.g. --by "Anna Jansen"')
    _append(settings, issue_id, _record("approval", digest, name, [], subject))


def signoffs(settings: Settings, issue_id: str) -> list[SignOff]:
    """Every readable record of the issue, oldest first."""
    path = review_path(settings, issue_id)
    out: list[SignOff] = []
    try:
        for record in jsonlines.read(path):
            signoff = _parse(record)
            if signoff is not None:
                out.append(signoff)
    except OSError as exc:
        raise IssueError(f"{path}: cannot read: {exc.strerror}") from None
    return out


def record_send_start(settings: Settings, issue_id: str, *, transport: str, recipients: int,
                      subject: str = "") -> None:
    """Note that a send of the issue to the list is starting.

    The note lives beside the sign-offs, in git: if the delivery journal is
    ever lost (``git clean``, a fresh clone without it), the next send knows
    the list was already mailed instead of mailing it again.
    """
    _append(settings, issue_id, {
        "kind": SEND_KIND,
        "by": _local_user(),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "transport": transport,
        "recipients": recipients,
        "subject": subject,
    })


def send_started(settings: Settings, issue_id: str) -> datetime | None:
    """When a send of the issue to the list first started, from its note in review.jsonl; None if never."""
    path = review_path(settings, issue_id)
    try:
        for data in jsonlines.read(path):
            if data.get("kind") != SEND_KIND:
                continue
            try:
                when = datetime.fromisoformat(data["time"])
            except (ValueError, KeyError, TypeError):
                continue
            return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    except OSError as exc:
        raise IssueError(f"{path}: cannot read: {exc.strerror}") from None
    return None


def find_signoff(settings: Settings, issue_id: str, digest: str) -> SignOff | None:
    """The latest test send or approval of exactly this content, if any."""
    matching = [s for s in signoffs(settings, issue_id) if s.digest == digest]
    return matching[-1] if matching else None


# ---------------------------------------------------------------- records

def _record(kind: str, digest: str, who: str, recipients: list[str], subject: str) -> dict[str, Any]:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a content hash: {digest!r}")
    return {
        "kind": kind,
        "digest": digest,
        "by": who,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipients": [" ".join(r.split()) for r in recipients],
        "subject": subject,
    }


def _parse(data: dict[str, Any]) -> SignOff | None:
    """A sign-off, or None for a record of another kind (never an error: the file is a log)."""
    try:
        kind, digest, who = data["kind"], data["digest"], data["by"]
        when = datetime.fromisoformat(data["time"])
        recipients = data.get("recipients") or []
        subject = data.get("subject") or ""
    except (ValueError, KeyError, TypeError):
        return None
    if kind not in KINDS or not isinstance(digest, str) or not isinstance(who, str):
        return None
    if not isinstance(subject, str) or not isinstance(recipients, list) or not all(
            isinstance(r, str) for r in recipients):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return SignOff(kind=kind, who=who, when=when, recipients=tuple(recipients), digest=digest, subject=subject)


def _append(settings: Settings, issue_id: str, record: dict[str, Any]) -> None:
    """Append one line with a single write, then fsync: a crash leaves whole lines or a cut last one."""
    path = review_path(settings, issue_id)
    if not (path.parent / ISSUE_FILE).is_file():
        raise IssueError(f"{path.parent / ISSUE_FILE}: not found", "Check the issue ID, or make it with `cepletter draft`.")
    data = jsonlines.line(record)
    try:
        fd = jsonlines.open_log(path)
    except OSError as exc:
        raise IssueError(f"{path}: cannot write the review record: {describe_os_error(exc)}",
                         "Check that the issue folder is writable.") from None
    try:
        if jsonlines.ends_mid_line(fd):
            # The previous writer was cut off mid-line: keep that fragment on its own line.
            data = b"\n" + data
        jsonlines.write_all(fd, data)
        os.fsync(fd)
    except OSError as exc:
        raise IssueError(f"{path}: cannot write the review record: {describe_os_error(exc)}",
                         "Check free disk space and that the issue folder is writable.") from None
    finally:
        os.close(fd)


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
