"""A send job, from a rendered issue to a finished run: the steps ``cepletter send`` takes.

1. ``prepare``: the message factory, the transport, the suppression list and
   who already has the issue (from the journal), and one counting pass over
   the subscriber list so the confirmation can say how many will be mailed.
2. ``run``: stream the list again into the sender, journaling every result.

The list is read twice rather than held in memory: reading is cheap, memory
at 100,000 subscribers is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cepletter.config import Settings
from cepletter.deliver.journal import JOURNAL_NAME, Journal, SendLock, sent_keys
from cepletter.deliver.sender import Options, Progress, Sender, Summary, dry_run
from cepletter.deliver.transports import MaildirTransport, SmtpTransport, make_transport
from cepletter.errors import DeliveryError, UsageError
from cepletter.message.build import TEST_PREFIX, MessageFactory
from cepletter.message.personal import PersonalIssue
from cepletter.message.recipient import Recipient
from cepletter.message.subscribers import Invalid, ListCounts, check_address, read_suppressed, recipients


@dataclass
class SignOffInfo:
    """The review that allows a send to the list, as shown in the confirmation and journal."""

    kind: str  # "test" or "approval"
    who: str
    description: str

    def describe(self) -> str:
        return self.description


@dataclass
class Job:
    """Everything known before the first message goes out."""

    settings: Settings
    rendered: PersonalIssue
    folder: Path
    factory: MessageFactory
    transport: MaildirTransport | SmtpTransport
    options: Options
    suppressed: set[str]
    already_sent: set[str]
    counts: ListCounts
    invalid: list[Invalid] = field(default_factory=list)
    signoff: SignOffInfo | None = None
    unreviewed: bool = False
    lock: SendLock | None = None

    @property
    def journal_path(self) -> Path:
        return self.folder / JOURNAL_NAME

    @property
    def subscribers_path(self) -> Path:
        return self.settings.path(self.settings.delivery.subscribers)

    def recipients(self, counts: ListCounts | None = None) -> Iterator[Recipient]:
        return recipients(self.subscribers_path, self.suppressed, self.already_sent, counts or ListCounts())

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def options_for(settings: Settings, rate: float | None, connections: int | None) -> Options:
    d = settings.delivery
    return Options(
        connections=connections or d.connections,
        rate=rate or d.rate,
        retries=d.retries,
        retry_max_seconds=d.retry_max_seconds,
    )


def content_digest(rendered: PersonalIssue) -> str:
    from cepletter.review.signoff import content_hash

    html, text = rendered.web()
    return content_hash(rendered.subject, html, text)


def needs_review(transport: MaildirTransport | SmtpTransport) -> bool:
    """Only a real send to the list over SMTP needs a sign-off; a Maildir never leaves the machine."""
    return isinstance(transport, SmtpTransport)


def find_review(settings: Settings, rendered: PersonalIssue) -> SignOffInfo | None:
    from cepletter.review.signoff import find_signoff

    found: Any = find_signoff(settings, rendered.issue_id, content_digest(rendered))
    if found is None:
        return None
    return SignOffInfo(str(found.kind), str(found.who), str(found.describe()))


def prepare(
    settings: Settings,
    rendered: PersonalIssue,
    folder: Path,
    *,
    dry_run: bool = False,
    unreviewed: bool = False,
    rate: float | None = None,
    connections: int | None = None,
) -> Job:
    """Check everything and count the recipients; takes the send lock unless ``dry_run``."""
    transport = make_transport(settings)
    options = options_for(settings, rate, connections)
    if isinstance(transport, MaildirTransport):
        options.rate = 0.0  # a local folder needs no pacing
    signoff = None
    if not dry_run and needs_review(transport):
        signoff = find_review(settings, rendered)
        if signoff is None and not unreviewed:
            raise DeliveryError(
                f"issue {rendered.issue_id}: this content has not been reviewed",
                "Send a test first (`cepletter send --test ADDR`), or record an approval "
                "(`cepletter approve --by NAME`); to send anyway, add --unreviewed.",
            )
    lock = None
    if not dry_run:
        lock = SendLock(folder, rendered.issue_id)
        lock.acquire()
    try:
        already = sent_keys(folder / JOURNAL_NAME)
        suppressed = read_suppressed(settings.suppressed_path)
        factory = MessageFactory(settings, rendered, crlf=isinstance(transport, SmtpTransport))
        job = Job(
            settings=settings, rendered=rendered, folder=folder, factory=factory, transport=transport,
            options=options, suppressed=suppressed, already_sent=already, counts=ListCounts(),
            signoff=signoff, unreviewed=unreviewed and signoff is None, lock=lock,
        )
        for _ in recipients(job.subscribers_path, suppressed, already, job.counts, job.invalid):
            pass
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return job


def run(job: Job, progress: Progress | None = None) -> Summary:
    """Send to every recipient still to mail, journaling each result. Releases the lock."""
    try:
        with Journal(job.journal_path) as journal:
            start: dict[str, Any] = {
                "issue": job.rendered.issue_id,
                "transport": job.transport.description,
                "subject": job.factory.subject,
                "recipients": job.counts.to_send,
            }
            if job.unreviewed:
                start["unreviewed"] = True
            elif job.signoff is not None:
                start["signoff"] = job.signoff.describe()
            journal.event("start", **start)
            sender = Sender(job.transport, job.factory, job.options, journal=journal, progress=progress)
            summary = sender.run(job.recipients())
            journal.event(
                "stop", sent=summary.sent, failed=summary.failed, deferred=summary.deferred,
                interrupted=summary.interrupted,
            )
        return summary
    finally:
        job.release()


def build_all(job: Job) -> tuple[int, int]:
    """--dry-run: every message built, nothing sent. (messages, bytes)"""
    return dry_run(job.factory, job.recipients())


def test_addresses(values: tuple[str, ...]) -> list[Recipient]:
    """The --test addresses, checked."""
    out: list[Recipient] = []
    for value in values:
        address, reason = check_address(value)
        if address is None:
            raise UsageError(f"--test {value!r}: not a valid email address: {reason}")
        out.append(Recipient(email=address))
    return out


def send_test(settings: Settings, rendered: PersonalIssue, addresses: list[Recipient]) -> Summary:
    """Send the issue to ``addresses`` only, subject prefixed [TEST]; never journaled."""
    transport = make_transport(settings)
    factory = MessageFactory(
        settings, rendered, subject_prefix=TEST_PREFIX, crlf=isinstance(transport, SmtpTransport)
    )
    options = options_for(settings, None, 1)
    options.retries = min(options.retries, 2)
    options.retry_max_seconds = min(options.retry_max_seconds, 30.0)
    summary = Sender(transport, factory, options).run(addresses)
    if summary.sent:
        _record_test(settings, rendered, [r.email for r in addresses if r.email not in _failed(summary)])
    return summary


def _failed(summary: Summary) -> set[str]:
    return {r.email for r in summary.failures}


def _record_test(settings: Settings, rendered: PersonalIssue, sent_to: list[str]) -> None:
    from cepletter.review.signoff import record_test_send

    record_test_send(settings, rendered.issue_id, content_digest(rendered), sent_to, subject=rendered.subject)
