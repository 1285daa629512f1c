"""A send job, from a rendered issue to a finished run: the steps ``cepletter send`` takes.

1. ``prepare``: the message factory, the transport, the suppression list and
   who already has the issue (from the journal), and one counting pass over
   the subscriber list so the confirmation can say how many will be mailed.
   When ``review.jsonl`` notes that a send to the list started but the journal
   is gone, nothing is sent without ``resend_all``.
2. ``run``: note in ``review.jsonl`` that a send to the list started, then
   stream the list again into the sender, journaling every result. SIGINT,
   SIGTERM and SIGHUP end it gracefully (see ``sender``).
   Addresses the server refused as nonexistent (5.1.1 and kin) are then added
   to the suppression list, so no later run mails them; a run stopped before
   that (a kill, a power cut) has them added by the next ``prepare``, from
   the journal.

The list is read twice rather than held in memory: reading is cheap, memory
at 100,000 subscribers is not.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cepletter.config import Settings
from cepletter.deliver import suppression
from cepletter.deliver.journal import (
    FAILED,
    JOURNAL_NAME,
    SENT,
    Journal,
    SendLock,
    is_busy,
    read_lines,
    sent_keys,
    uncertain_counts,
)
from cepletter.deliver.sender import Options, Progress, Sender, Summary, dry_run, stop_on_signals
from cepletter.deliver.transports import MaildirTransport, SmtpTransport, make_transport
from cepletter.errors import CepletterError, DeliveryError, UsageError
from cepletter.message.build import TEST_PREFIX, MessageFactory
from cepletter.message.editions import EditionFactory, count_editions, make_factory
from cepletter.message.personal import PersonalIssue
from cepletter.message.recipient import Recipient
from cepletter.message.subscribers import Invalid, ListCounts, check_address, read_suppressed, recipients
from cepletter.review.checks import refuse_unwritten_intro


@dataclass
class SignOffInfo:
    """The review that allows a send to the list, as shown in the confirmation and journal."""

    kind: str  # "test" or "approval"
    who: str
    description: str

    def describe(self) -> str:
        return self.description


@dataclass
class Cleaning:
    """What keeping the list clean did: addresses refused as nonexistent and the suppression list.

    ``refused``: refused as nonexistent in this run; ``suppressed``: those of them added to the
    list (from now on never mailed);
    ``recovered``: refused in an earlier run of this issue, added by ``prepare``;
    ``held_back``: refused, but not added, because so many were refused that the
    server, not the addresses, is the likely cause; ``error``: the list could not be written.
    """

    refused: list[str] = field(default_factory=list)  # refused as nonexistent in this run
    suppressed: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)
    error: CepletterError | None = None


@dataclass
class ListSend:
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
    resend_all: bool = False
    # Addresses whose last attempt may have arrived (lower case -> uncertain attempts): those
    # mailed once more, and those not mailed again (retried already, or retry_uncertain = false).
    uncertain_retried: dict[str, int] = field(default_factory=dict)
    uncertain_kept: dict[str, int] = field(default_factory=dict)
    clean: Cleaning = field(default_factory=Cleaning)
    # Recipients still to mail per language edition (one entry for a one-language issue).
    editions: dict[str, int] = field(default_factory=dict)
    # The server offers SMTPUTF8; without it, addresses that need it are left out (see prepare).
    smtputf8: bool = True

    @property
    def journal_path(self) -> Path:
        return self.folder / JOURNAL_NAME

    @property
    def subscribers_path(self) -> Path:
        return self.settings.path(self.settings.delivery.subscribers)

    def recipients(self, counts: ListCounts | None = None, invalid: list[Invalid] | None = None) -> Iterator[Recipient]:
        counts = counts if counts is not None else ListCounts()
        found = recipients(self.subscribers_path, self.suppressed, self.already_sent, counts, invalid)
        return found if self.smtputf8 else _ascii_only(found, counts, invalid, self.transport.description)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


# A server that says "user unknown" to most of a list is refusing to relay, not reporting dead
# addresses: past this many, and more than half of those tried, nothing is added.
HOLD_BACK_AT = 10


def _plausible(gone: int, tried: int) -> bool:
    return gone < HOLD_BACK_AT or gone * 2 <= tried


def _suppress(settings: Settings, issue_id: str, refused: list[tuple[str, str]], tried: int,
              clean: Cleaning) -> list[str]:
    """Add ``refused`` (address, server reply) to the suppression list; the addresses added."""
    path = settings.suppressed_path
    if not refused:
        return []
    if path is None or not _plausible(len(refused), tried):
        clean.held_back.extend(email for email, _ in refused)
        return []
    entries = [suppression.Entry(email, suppression.UNKNOWN_ADDRESS, issue=issue_id, reply=reply)
               for email, reply in refused]
    try:
        return [entry.email for entry in suppression.add(path, entries)]
    except CepletterError as exc:
        clean.error = exc
        return []


def _recover(settings: Settings, issue_id: str, journal_path: Path, clean: Cleaning) -> None:
    """Add what an earlier, interrupted run of this issue found refused but could not add."""
    refused: dict[str, tuple[str, str]] = {}  # key -> (address as journaled, reply)
    done: set[str] = set()  # added then, or sent since: never added again by this
    tried: set[str] = set()
    for entry in read_lines(journal_path):
        if entry.get("event") == "suppressed" and isinstance(entry.get("emails"), list):
            done.update(str(e).lower() for e in entry["emails"])
            continue
        email, status, reply = entry.get("email"), entry.get("status"), entry.get("reply")
        if not isinstance(email, str):
            continue
        key = email.strip().lower()
        tried.add(key)
        if status == SENT:
            done.add(key)
        elif status == FAILED and isinstance(reply, str) and suppression.address_gone(reply):
            refused[key] = (email, reply)
    todo = [found for key, found in refused.items() if key not in done]
    clean.recovered = _suppress(settings, issue_id, todo, len(tried), clean)
    if clean.recovered:
        with contextlib.suppress(CepletterError), Journal(journal_path) as journal:
            _noted(journal, settings, clean.recovered)


def options_for(settings: Settings, rate: float | None, connections: int | None) -> Options:
    d = settings.delivery
    return Options(
        connections=connections or d.connections,
        rate=rate or d.rate,
        retries=d.retries,
        retry_max_seconds=d.retry_max_seconds,
        retry_uncertain=d.retry_uncertain,
    )


def needs_review(transport: MaildirTransport | SmtpTransport) -> bool:
    """Only a real send to the list over SMTP needs a sign-off; a Maildir never leaves the machine."""
    return isinstance(transport, SmtpTransport)


def find_review(settings: Settings, rendered: PersonalIssue) -> SignOffInfo | None:
    """The sign-off of every edition's content; None when one of them has none."""
    from cepletter.review.signoff import content_hash, find_signoff

    found: list[Any] = [find_signoff(settings, e.issue_id, content_hash(settings, e)) for e in rendered.editions]
    if any(f is None for f in found):
        return None
    if len(found) == 1:
        return SignOffInfo(str(found[0].kind), str(found[0].who), str(found[0].describe()))
    described = "; ".join(f"{e.language}: {f.describe()}" for e, f in zip(rendered.editions, found, strict=True))
    return SignOffInfo(str(found[0].kind), str(found[0].who), described)


def unreviewed_editions(settings: Settings, rendered: PersonalIssue) -> list[str]:
    """The languages of the editions whose content nobody test-sent or approved."""
    from cepletter.review.signoff import content_hash, find_signoff

    return [e.language for e in rendered.editions
            if find_signoff(settings, e.issue_id, content_hash(settings, e)) is None]


def prepare(
    settings: Settings,
    rendered: PersonalIssue,
    folder: Path,
    *,
    dry_run: bool = False,
    unreviewed: bool = False,
    rate: float | None = None,
    connections: int | None = None,
    resend_all: bool = False,
) -> ListSend:
    """Check everything and count the recipients; takes the send lock unless ``dry_run``.

    ``resend_all`` mails every subscriber again, whatever the journal says (or
    when the delivery record is missing).
    """
    transport = make_transport(settings)
    if not dry_run:
        for edition in rendered.editions:
            refuse_unwritten_intro(edition)
    options = options_for(settings, rate, connections)
    if isinstance(transport, MaildirTransport):
        options.rate = 0.0  # a local folder needs no pacing
    signoff = None
    if not dry_run and needs_review(transport):
        signoff = find_review(settings, rendered)
        if signoff is None and not unreviewed:
            which = unreviewed_editions(settings, rendered) if rendered.others else []
            raise DeliveryError(
                f"issue {rendered.issue_id}: " + (
                    f"the {', '.join(which)} edition{'s' * (len(which) > 1)} of this content "
                    f"{'have' if len(which) > 1 else 'has'} not been reviewed"
                    if which else "this content has not been reviewed"),
                "Send a test first (`cepletter send --test ADDR`), or record an approval "
                "(`cepletter approve --by NAME`); to send anyway, add --unreviewed.",
            )
    lock = None
    journal_path = folder / JOURNAL_NAME
    if not dry_run:
        lock = SendLock(settings.cache_dir, rendered.issue_id)
        lock.acquire()
    try:
        if not dry_run and is_busy(journal_path):
            # The send lock of a running send was deleted (say by `git clean -fdX`); its journal is held.
            raise DeliveryError(
                f"another `cepletter send` of issue {rendered.issue_id} is running (it is writing {journal_path})",
                "Wait for it to finish; a second run at the same time could mail people twice.",
            )
        already: set[str] = set()
        retried: dict[str, int] = {}
        kept: dict[str, int] = {}
        if not resend_all:
            check_delivery_record(settings, rendered.issue_id, journal_path)
            already = sent_keys(journal_path)
            for key, count in uncertain_counts(journal_path).items():
                if count == 1 and options.retry_uncertain:
                    retried[key] = count
                else:
                    kept[key] = count
            already |= set(kept)
        clean = Cleaning()
        if not dry_run:
            _recover(settings, rendered.issue_id, folder / JOURNAL_NAME, clean)
        suppressed = read_suppressed(settings.suppressed_path)
        factory = make_factory(settings, rendered, crlf=isinstance(transport, SmtpTransport))
        job = ListSend(
            settings=settings, rendered=rendered, folder=folder, factory=factory, transport=transport,
            options=options, suppressed=suppressed, already_sent=already, counts=ListCounts(),
            signoff=signoff, unreviewed=unreviewed and signoff is None, lock=lock, clean=clean,
            resend_all=resend_all, uncertain_retried=retried, uncertain_kept=kept,
        )
        job.editions = count_editions(
            rendered, recipients(job.subscribers_path, suppressed, already, job.counts, job.invalid))
        if not dry_run and not _offers_smtputf8(job):
            job.smtputf8 = False
            job.counts, job.invalid = ListCounts(), []
            job.editions = count_editions(rendered, job.recipients(job.counts, job.invalid))
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return job


NEEDS_SMTPUTF8 = "address needs an internationalised (SMTPUTF8) mail server, and {where} does not offer SMTPUTF8"


def _offers_smtputf8(job: ListSend) -> bool:
    """Whether the server takes what this send needs of SMTPUTF8 (RFC 6531); asked only when the
    list has an address that needs it, or the newsletter's own addresses do (then, without it,
    a ConfigError names the setting and its line)."""
    if not isinstance(job.transport, SmtpTransport) or not (job.counts.not_ascii or job.factory.needs_utf8):
        return True
    if job.transport.offers("smtputf8"):
        return True
    if job.factory.needs_utf8:
        job.factory.build(Recipient(email="probe@example.org"), utf8=False)  # raises the ConfigError
    return False


def _ascii_only(found: Iterator[Recipient], counts: ListCounts, invalid: list[Invalid] | None,
                where: str) -> Iterator[Recipient]:
    """``found`` without the addresses that need SMTPUTF8, counted and listed as invalid rows."""
    for recipient in found:
        if recipient.email.isascii():
            yield recipient
            continue
        counts.to_send -= 1
        counts.not_ascii -= 1
        counts.invalid += 1
        if invalid is not None:
            invalid.append(Invalid(recipient.line or 0, recipient.email, NEEDS_SMTPUTF8.format(where=where)))


def check_delivery_record(settings: Settings, issue_id: str, journal_path: Path) -> None:
    """Refuse to start over when the list was mailed before and the journal that says to whom is gone."""
    from cepletter.review.signoff import REVIEW_FILE, send_started

    if journal_path.exists():
        return
    started = send_started(settings, issue_id)
    if started is None:
        return
    when = started.astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    raise DeliveryError(
        f"issue {issue_id}: the delivery record is missing: {REVIEW_FILE} notes a send to the list "
        f"on {when}, but {journal_path} is gone; nothing sent",
        f"Restore {journal_path.name} (from git, a backup or the colleague who sent it) and run "
        "`cepletter send` again: it then mails only those still waiting. To mail the whole list again "
        "anyway, add --resend-all.",
    )


def run(job: ListSend, progress: Progress | None = None) -> Summary:
    """Send to every recipient still to mail, journaling each result. Releases the lock."""
    from cepletter.review.signoff import record_send_start

    def note_the_send() -> None:
        # Once connected, before the first message: should the journal ever be lost, this note
        # in git says the list was mailed.
        record_send_start(job.settings, job.rendered.issue_id, transport=job.transport.description,
                          recipients=job.counts.to_send, subject=job.factory.subject)

    try:
        with Journal(job.journal_path, job.rendered.issue_id) as journal:
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
            if job.resend_all:
                start["resend_all"] = True
            if isinstance(job.factory, EditionFactory):
                # One journal for every edition: each subscriber gets one of them, once.
                start["editions"] = {language: {"subject": subject, "recipients": job.editions.get(language, 0)}
                                     for language, subject in job.factory.subjects.items()}
            journal.event("start", **start)
            sender = Sender(job.transport, job.factory, job.options, journal=journal, progress=progress,
                            uncertain_before=job.uncertain_retried, before_first=note_the_send)
            try:
                with stop_on_signals(sender):
                    summary = sender.run(job.recipients())
            finally:
                # Also when the run stopped on an error: what was refused is known and journaled.
                _clean_after(job, sender.summary, journal)
            stop: dict[str, Any] = {"sent": summary.sent, "failed": summary.failed, "deferred": summary.deferred,
                                    "uncertain": summary.uncertain, "interrupted": summary.interrupted}
            if summary.stopped_by is not None:
                stop["signal"] = signal.Signals(summary.stopped_by).name
            journal.event("stop", **stop)
        return summary
    finally:
        job.release()


def _clean_after(job: ListSend, summary: Summary, journal: Journal) -> None:
    refused = [(r.email, r.reply) for r in summary.failures
               if r.status == FAILED and suppression.address_gone(r.reply)]
    tried = job.counts.already_sent + summary.done
    job.clean.refused = [email for email, _ in refused]
    job.clean.suppressed = _suppress(job.settings, job.rendered.issue_id, refused, tried, job.clean)
    if job.clean.suppressed:
        with contextlib.suppress(CepletterError):
            _noted(journal, job.settings, job.clean.suppressed)


def _noted(journal: Journal, settings: Settings, emails: list[str]) -> None:
    # So that a later run does not add them again should someone take one out by hand.
    journal.event("suppressed", emails=emails, file=settings.delivery.suppressed)


def build_all(job: ListSend) -> tuple[int, int]:
    """--dry-run: every message built, nothing sent. (messages, bytes)"""
    return dry_run(job.factory, job.recipients())


@dataclass
class SentTest:
    """What a test send did, as `send --test` and the desk report it."""

    summary: Summary
    where: str  # the transport's description, e.g. "SMTP smtp.example.org:587 (starttls)"
    sent: list[str]  # the addresses that got it


def test_addresses(values: tuple[str, ...]) -> list[Recipient]:
    """The --test addresses, checked."""
    out: list[Recipient] = []
    for value in values:
        address, reason = check_address(value)
        if address is None:
            raise UsageError(f"--test {value!r}: not a valid email address: {reason}")
        out.append(Recipient(email=address))
    return out


def send_test(settings: Settings, rendered: PersonalIssue, addresses: list[Recipient],
              languages: list[str] | None = None) -> SentTest:
    """Send the issue to ``addresses`` only, subject prefixed [TEST]; never journaled.

    Each address gets every language edition (or those in ``languages``), one
    message each, and each edition's content counts as reviewed.
    """
    transport = make_transport(settings)
    chosen = [e for e in rendered.editions if languages is None or e.language in languages]
    for edition in chosen:
        refuse_unwritten_intro(edition)
    factory = make_factory(
        settings, rendered, subject_prefix=TEST_PREFIX, crlf=isinstance(transport, SmtpTransport)
    )
    targets = [Recipient(email=a.email, name=a.name, fields={**a.fields, "language": e.language})
               if rendered.others else a for e in chosen for a in addresses]
    options = options_for(settings, None, 1)
    options.retries = min(options.retries, 2)
    options.retry_max_seconds = min(options.retry_max_seconds, 30.0)
    sender = Sender(transport, factory, options)
    with stop_on_signals(sender):
        summary = sender.run(targets)
    if summary.sent:
        for edition in chosen:
            _record_test(settings, edition, [r.email for r in addresses if r.email not in _failed(summary)])
    return SentTest(summary, transport.description, [r.email for r in addresses if r.email not in _failed(summary)])


def _failed(summary: Summary) -> set[str]:
    return {r.email for r in summary.failures}


def _record_test(settings: Settings, rendered: PersonalIssue, sent_to: list[str]) -> None:
    from cepletter.review.signoff import content_hash, record_test_send

    record_test_send(settings, rendered.issue_id, content_hash(settings, rendered), sent_to, subject=rendered.subject)
