"""One desk: the issue being edited, kept in step with ``issues/<ID>/issue.md``, and its preview.

The file is the truth. Every accepted edit is written at once (atomically, in
the issue file's stable format) and the preview is built from the saved file
by the same code as ``cepletter preview``. A watcher reads the file when it
changes on disk: an outside edit is loaded, a file that does not load is
shown as its error until it is fixed, and an edit from the page that was made
on an older version than the one on disk is a conflict: it is shown and
never written over the other edit.
"""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cepletter.config import Settings, load_settings
from cepletter.desk.document import Document, following_preheader
from cepletter.desk.summary import markdown_of
from cepletter.errors import CepletterError, IssueError, UsageError
from cepletter.fsutil import atomic_write_text
from cepletter.issue import draft
from cepletter.issue.file import Issue, IssueItem, loads
from cepletter.issue.folder import ID_PATTERN, ISSUE_FILE, issue_path, list_issue_ids, new_issue_path
from cepletter.message.recipient import Recipient
from cepletter.render.filters import markdown_html
from cepletter.review.checks import Finding
from cepletter.review.preview import Preview, build_preview
from cepletter.sources.items import Item
from cepletter.sources.sanitize import shorten, text_of

RECIPIENT_CHOICES = 50
_ADDRESS_SPLIT = re.compile(r"[\s,;]+")


def _message(exc: CepletterError) -> dict[str, str]:
    return {"message": exc.message, "hint": exc.hint or ""}


def _when_text(value: date | datetime | None) -> str:
    return value.isoformat() if value is not None else ""


@dataclass
class PreviewView:
    """What the right-hand side shows: the email as one subscriber gets it, its checks, the review."""

    html: str = ""
    text: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)
    inbox: dict[str, str] = field(default_factory=dict)
    recipient: str = ""
    recipient_source: str = ""
    size: str = ""
    review: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None


class Desk:
    """The state behind the page; every method is safe to call from the server's threads."""

    def __init__(self, root: Path, issue_id: str | None = None,
                 *, on_event: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.settings = load_settings(root)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.on_event = on_event or (lambda message: None)
        self.rev = 0  # the document's version: every saved edit and every reload
        self.pv = 0  # the version of everything else on show (preview, review, messages)
        self.issue_id: str | None = None
        self.doc: Document | None = None
        self.base_text: str | None = None  # the file's text the document stands for
        self._stat: tuple[int, int] | None = None
        self.error: dict[str, str] | None = None  # the file as it is on disk does not load
        self.conflict: dict[str, Any] | None = None
        self.notice: str = ""
        self.preview = PreviewView()
        self.recipient_email: str | None = None
        self.candidates: list[Item] = []
        self.snapshots: dict[str, IssueItem] = {}
        self.candidate_reason = ""
        self.candidate_problem: dict[str, str] | None = None
        self.warnings: list[str] = []
        self.suggested_id = issue_id or draft.default_issue_id(draft.today(self.settings))
        if issue_id is not None and not ID_PATTERN.match(issue_id):
            issue_path(self.settings.issues_dir, issue_id)  # raises the issue ID's error
        if issue_id is not None and issue_path(self.settings.issues_dir, issue_id).is_file():
            self.open(issue_id)
        else:
            self._read_candidates(self.suggested_id)

    # ------------------------------------------------------------ opening and drafting

    @property
    def path(self) -> Path:
        assert self.issue_id is not None
        return issue_path(self.settings.issues_dir, self.issue_id)

    def open(self, issue_id: str) -> None:
        """Edit ``issues/<issue_id>/issue.md``."""
        with self.lock:
            path = issue_path(self.settings.issues_dir, issue_id)
            if not path.is_file():
                raise IssueError(f"issues/{issue_id}/{ISSUE_FILE}: not found", "Draft it first.")
            self.issue_id, self.doc, self.base_text, self._stat = issue_id, None, None, None
            self.error = self.conflict = None
            self.notice = ""
            self._read_candidates(issue_id)
            self._sync()
            if self.doc is None and self.error is None:
                raise IssueError(f"issues/{issue_id}/{ISSUE_FILE}: cannot be read")
            self._bump(document=True)

    def draft(self, issue_id: str, picks: Iterable[str], title: str = "") -> None:
        """Write a new issue from the chosen candidates, as `cepletter draft --pick` does, and open it."""
        with self.lock:
            issue_id = issue_id.strip()
            settings = self._fresh_settings()
            new_issue_path(settings.root, settings.issues_dir, issue_id, force=False)
            if issue_id != self.suggested_id:
                self._read_candidates(issue_id)  # the window depends on the issue
            by_id = {item.id: item for item in self.candidates}
            chosen = [by_id[i] for i in picks if i in by_id]
            issue = draft.build_issue(chosen, issue_id=issue_id, issue_date=draft.today(settings),
                                      settings=settings, title=title.strip() or None)
            for section in issue.sections:
                for item in section.items:  # the Markdown that renders the same, as the desk adds items
                    item.summary = markdown_of(item.summary) or item.summary
            draft.add_events(settings, issue, warn=self.warnings.append)
            draft.save_draft(settings, issue)
            self.on_event(f"drafted issues/{issue_id}/{ISSUE_FILE}")
            self.open(issue_id)

    def _fresh_settings(self) -> Settings:
        self.settings = load_settings(self.root)
        return self.settings

    def _read_candidates(self, issue_id: str) -> None:
        """The candidates `cepletter items` lists for this issue, with its window."""
        self.warnings = []
        self.candidate_problem = None
        try:
            settings = self._fresh_settings()
            sources = draft.select_sources(settings, (), (), settings.root)
            window = draft.window(settings, issue_id)
            from cepletter.sources.reader import read_items

            found = draft.candidates(read_items(sources, settings, warn=self.warnings.append), window)
            self.candidate_reason = window.reason + ("; items of earlier issues left out" if window.used else "")
        except CepletterError as exc:
            self.candidates, self.snapshots = [], {}
            self.candidate_problem = _message(exc)
            return
        self.candidates, self.snapshots = [], {}
        for item in found:
            try:
                snap = draft.snapshot(item, settings)
            except IssueError as exc:
                self.warnings.append(exc.message)
                continue
            # Stored as the Markdown that renders the same, so the file stays readable.
            snap.summary = markdown_of(snap.summary) or snap.summary
            self.candidates.append(item)
            self.snapshots[item.id] = snap

    def refresh_candidates(self) -> None:
        with self.lock:
            self._read_candidates(self.issue_id or self.suggested_id)
            self._bump()

    # ------------------------------------------------------------ the file on disk

    def _read_disk(self) -> str | None:
        try:
            return self.path.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            return "\0not utf-8"

    def _stat_now(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def poll(self) -> bool:
        """Pick up an outside change of the file; True when something changed."""
        with self.lock:
            if self.issue_id is None:
                return False
            stat = self._stat_now()
            if stat is not None and stat == self._stat:
                return False
            changed = self._sync()
            if changed:
                self._bump(document=True)
            return changed

    def _sync(self) -> bool:
        """Load the file if it differs from what the document stands for."""
        self._stat = self._stat_now()
        text = self._read_disk()
        if text is not None and text == self.base_text:
            return False  # what the document stands for, or the same broken text as before
        where = f"issues/{self.issue_id}/{ISSUE_FILE}"
        if text is None:
            self.error = {"message": f"{where}: not found (deleted or moved outside the desk)",
                          "hint": "Put it back, or draft the issue again; the desk waits for it."}
            return True
        if text == "\0not utf-8":
            self.error = {"message": f"{where}: not UTF-8 text", "hint": "Save the file as UTF-8."}
            return True
        assert self.issue_id is not None
        try:
            issue = loads(text, self.issue_id, where)
        except CepletterError as exc:
            self.error = _message(exc)
            self.base_text = text
            self.on_event(f"{where} does not load: {exc.message}")
            return True
        issue.path = self.path
        first = self.doc is None
        self.doc = Document.of(issue, self.doc)
        self.base_text = text
        self.error = None
        if not first:
            self.notice = f"{ISSUE_FILE} changed outside the desk and was loaded again."
            self.on_event(f"reloaded {where} (changed outside the desk)")
        self._build_preview()
        return True

    # ------------------------------------------------------------ edits

    def edit(self, base_rev: int, edits: list[Mapping[str, Any]]) -> dict[str, Any]:
        """Make ``edits`` (made on version ``base_rev``) and save; the new state, with what was refused and why."""
        with self.lock:
            if self.issue_id is None:
                raise UsageError("no issue is open", "Draft or open an issue first.")
            if self._sync():
                self._bump(document=True)
            if self.error is not None:
                return self._conflict(edits, "Not saved: the issue file does not load; fix it first.")
            if base_rev != self.rev:
                return self._conflict(edits, f"{ISSUE_FILE} changed outside the desk while you were editing.")
            assert self.doc is not None
            refused: list[dict[str, Any]] = []
            try:
                doc = self.doc.edited(edits, self.snapshots)
            except IssueError:
                # Keep the edits that are fine (a reorder) and say which are not (a half-typed link).
                doc = self.doc
                for index, one in enumerate(edits):
                    try:
                        doc = doc.edited([one], self.snapshots)
                    except IssueError as exc:
                        refused.append({"index": index, **_message(exc)})
            text = doc.text()
            if text != self.base_text:
                on_disk = self._read_disk()
                if on_disk != self.base_text:  # written outside just now: theirs stays
                    self._sync()
                    self._bump(document=True)
                    return self._conflict(edits, f"{ISSUE_FILE} changed outside the desk while you were editing.")
                atomic_write_text(self.path, text)
                self.base_text = text
                self._stat = None  # read it again on the next poll, in case it changes this instant
                self.doc = doc
                self.notice = ""
                self._build_preview()
                self._bump(document=True)
            elif doc is not self.doc:  # a change the file does not hold (an empty section)
                self.doc = doc
                self._bump(document=True)
            result = self.state()
            result["refused"] = refused
            return result

    def _conflict(self, edits: list[Mapping[str, Any]], why: str) -> dict[str, Any]:
        earlier = self.conflict["yours"] if self.conflict is not None else []
        self.conflict = {"message": why, "yours": earlier + _describe(edits),
                         "hint": "The file's version is shown and was not changed. "
                                 "Make your edit again if you still want it."}
        self._bump()
        result = self.state()
        result["conflicted"] = True
        return result

    def dismiss(self) -> None:
        with self.lock:
            self.conflict = None
            self.notice = ""
            self._bump()

    # ------------------------------------------------------------ preview

    def choose_recipient(self, email: str) -> None:
        with self.lock:
            self.recipient_email = email or None
            self._build_preview()
            self._bump()

    def _build_preview(self) -> None:
        if self.issue_id is None:
            return
        view = PreviewView()
        try:
            settings = self._fresh_settings()
            built = build_preview(settings, self.issue_id)
            html, text, recipient, source = built.html, built.text, built.recipient, built.recipient_source
            chosen = next((r for r in recipients(settings) if r.email == self.recipient_email), None)
            if chosen is not None and chosen.email != recipient.email:
                html, text = built.rendered.fill(chosen)
                recipient, source = chosen, "chosen subscriber"
            view.html, view.text = html, text
            view.recipient, view.recipient_source = recipient.email, source
            view.findings = [_finding(f, built) for f in built.findings]
            view.inbox = {"from": settings.newsletter.from_, "subject": built.rendered.subject,
                          "preheader": built.rendered.preheader}  # as the email has them
            view.size = f"{built.html_bytes / 1024:.1f} KB"
            view.review = review_status(settings, built)
        except CepletterError as exc:
            view.error = _message(exc)
        self.preview = view

    def refresh_review(self) -> None:
        with self.lock:
            self._build_preview()
            self._bump()

    # ------------------------------------------------------------ versions and the page's state

    def _bump(self, document: bool = False) -> None:
        if document:
            self.rev += 1
        self.pv += 1
        self.changed.notify_all()

    def wait(self, pv: int, timeout: float) -> dict[str, Any]:
        """The state once its version differs from ``pv``, or after ``timeout`` seconds."""
        with self.changed:
            self.changed.wait_for(lambda: self.pv != pv, timeout=timeout)
            return self.state()

    def state(self) -> dict[str, Any]:
        with self.lock:
            settings = self.settings
            in_issue = {item.id for item in self.doc.items} if self.doc is not None else set()
            zone = draft.zone(settings)
            return {
                "rev": self.rev,
                "pv": self.pv,
                "workspace": str(self.root),
                "issue": self._issue_state() if self.doc is not None else None,
                "issue_id": self.issue_id,
                "error": self.error,
                "conflict": self.conflict,
                "notice": self.notice,
                "start": None if self.issue_id is not None else {
                    "suggested_id": self.suggested_id,
                    "existing": list_issue_ids(settings.issues_dir),
                },
                "candidates": [{
                    "id": item.id,
                    "title": item.title,
                    "source": item.source,
                    "category": item.category or "",
                    "date": item.date.astimezone(zone).date().isoformat() if item.date else "",
                    "excerpt": shorten(text_of(item.summary), 220),
                    "in_issue": item.id in in_issue,
                } for item in self.candidates],
                "candidate_reason": self.candidate_reason,
                "candidate_problem": self.candidate_problem,
                "warnings": self.warnings[-10:],
                "preview": self.preview.__dict__ if self.issue_id is not None else None,
                "recipients": [{"email": r.email, "name": r.name} for r in recipients(settings)],
            }

    @property
    def preheader_follows(self) -> bool:
        """Whether the email's preheader is the one made from the items (also when the file leaves it empty)."""
        assert self.doc is not None
        if self.doc.preheader_follows:
            return True
        made = following_preheader(self.doc.items)
        return self.doc.issue.preheader == "" and bool(made) and self.preview.inbox.get("preheader") == made

    def _issue_state(self) -> dict[str, Any]:
        assert self.doc is not None
        issue: Issue = self.doc.issue
        return {
            "id": issue.id,
            "title": issue.title,
            "subject": issue.subject,
            "preheader": issue.preheader,
            "preheader_follows": self.preheader_follows,
            "intro": issue.intro,
            "intro_html": markdown_html(issue.intro) if issue.intro.strip() else "",
            "date": issue.date.isoformat(),
            "single": self.doc.single,
            "events": len(issue.events),
            "sections": [{
                "key": section.key,
                "heading": section.heading,
                "items": [_item_state(item) for item in section.items],
            } for section in self.doc.sections],
        }

    # ------------------------------------------------------------ test send and approval

    def send_test(self, addresses: str) -> dict[str, Any]:
        """Send the saved issue to ``addresses``: the code of `cepletter send --test`, which records the review."""
        from cepletter.deliver.send import send_test, test_addresses
        from cepletter.issue.file import resolve
        from cepletter.message.personal import render_editions

        values = tuple(a for a in _ADDRESS_SPLIT.split(addresses) if a)
        if not values:
            raise UsageError("type at least one address to send the test to")
        recipients_ = test_addresses(values)
        with self.lock:
            if self.issue_id is None or self.error is not None:
                raise UsageError("there is no issue that loads to send", "Fix or open the issue first.")
            settings = self._fresh_settings()
            # As `send` renders it: every language edition, which the test sends and records.
            rendered = render_editions(settings, resolve(settings.issues_dir, self.issue_id), cache=True, reuse=True)
        tested = send_test(settings, rendered, recipients_)  # outside the lock: the server may be slow
        summary, where, sent = tested.summary, tested.where, tested.sent
        self.on_event(f"test of {rendered.issue_id} sent to {', '.join(sent) or 'nobody'} ({where})")
        self.refresh_review()
        return {
            "sent": sent,
            "failures": [{"email": f.email, "status": f.status, "reply": f.reply} for f in summary.failures],
            "where": where,
        }

    def approve(self, by: str) -> str:
        """Record an approval of the saved content, as `cepletter approve --by` does."""
        from cepletter.review.signoff import approve

        with self.lock:
            if self.issue_id is None or self.error is not None:
                raise UsageError("there is no issue that loads to approve", "Fix or open the issue first.")
            done = approve(self._fresh_settings(), self.issue_id, by)
            self.on_event(f"{self.issue_id} approved by {done[0].by}")
            self._build_preview()
            self._bump()
            return done[0].by


# ---------------------------------------------------------------- helpers


def recipients(settings: Settings) -> list[Recipient]:
    """The first valid subscribers, to choose whose copy the preview shows."""
    from cepletter.message.subscribers import SubscriberFile

    out: list[Recipient] = []
    try:
        for row in SubscriberFile(settings.path(settings.delivery.subscribers), required=False).rows():
            if isinstance(row, Recipient):
                out.append(row)
                if len(out) >= RECIPIENT_CHOICES:
                    break
    except (CepletterError, OSError, UnicodeError):
        pass
    return out


def review_status(settings: Settings, built: Preview) -> dict[str, Any]:
    """Whether this exact content was tested or approved, and the command that sends it to the list."""
    from cepletter.deliver.send import find_review

    try:
        found = find_review(settings, built.rendered)
    except CepletterError:  # say a from that is no address: the preview's checks say so
        found = None
    # What `send` would ask for, without making a transport (which looks up the SMTP password).
    needed = settings.delivery.transport == "smtp"
    root = shlex.quote(str(settings.root))
    return {
        "reviewed": found is not None,
        "status": found.describe() if found is not None else "not reviewed: send a test or approve it",
        "needed": needed,
        "command": f"cepletter -C {root} send {built.issue.id}",
    }


def _item_state(item: IssueItem) -> dict[str, Any]:
    markdown = markdown_of(item.summary)
    return {
        "id": item.id,
        "title": item.title,
        "summary": markdown if markdown is not None else item.summary,
        "summary_is_html": markdown is None,
        "image": item.image or "",
        "category": item.category or "",
        "link": item.link,
        "date": _when_text(item.date),
        "source": item.source or "",
    }


def _finding(finding: Finding, built: Preview) -> dict[str, Any]:
    """A check's finding, with the field or item it concerns when that can be told."""
    target: dict[str, str] | None = None
    if finding.code in ("subject", "preheader"):
        target = {"field": finding.code}
    else:
        for item in built.issue.items:
            probes = [item.title[:50]] if finding.code == "stale" else [item.link[:70], (item.image or "")[:70]]
            if any(probe and probe in finding.message for probe in probes):
                target = {"item": item.id, "title": item.title}
                break
    return {"level": finding.level, "code": finding.code, "message": finding.message,
            "hint": finding.hint, "target": target}


def _describe(edits: Iterable[Mapping[str, Any]]) -> list[str]:
    """The edits in words, so that someone whose edit was not saved can make it again."""
    out = []
    for edit in edits:
        op = edit.get("op")
        value = str(edit.get("value", ""))
        if op == "set":
            out.append(f"{str(edit.get('field', '')).capitalize()}: {value}")
        elif op == "item":
            out.append(f"{str(edit.get('field', '')).capitalize()} of an item: {value}")
        else:
            out.append(str(op).replace("_", " "))
    return out

