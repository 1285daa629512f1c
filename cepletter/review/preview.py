"""Build an issue's preview: render it, fill it for a sample subscriber, write build/, check it.

Shared by `preview`, `preview --serve` and `check`; no click, no rich.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cepletter.config import Settings
from cepletter.fsutil import atomic_write_text
from cepletter.issue.file import Issue
from cepletter.message.personal import PersonalIssue
from cepletter.message.recipient import Recipient
from cepletter.render.renderer import Timings
from cepletter.review.checks import Finding

EXAMPLE_RECIPIENT = Recipient(email="alex@example.org", name="Alex Example")
BUILD_DIR = "build"
HTML_NAME = "newsletter.html"
TEXT_NAME = "newsletter.txt"


@dataclass
class Preview:
    issue: Issue
    rendered: PersonalIssue
    recipient: Recipient
    recipient_source: str  # where the sample recipient came from, for the summary
    html: str
    text: str
    findings: list[Finding]
    timings: Timings
    html_path: Path | None = None
    text_path: Path | None = None

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def text_bytes(self) -> int:
        return len(self.text.encode("utf-8"))


def sample_recipient(settings: Settings) -> tuple[Recipient, str]:
    """The first valid subscriber, so the preview shows a real name; else a made-up one."""
    from cepletter.errors import CepletterError

    path = settings.path(settings.delivery.subscribers)
    try:
        from cepletter.message.subscribers import SubscriberFile

        for row in SubscriberFile(path, required=False).rows():
            if isinstance(row, Recipient):
                where = f"{path.name}, line {row.line}" if row.line else path.name
                return row, f"first subscriber ({where})"
    except (CepletterError, ImportError, OSError, UnicodeError):
        pass
    return EXAMPLE_RECIPIENT, "example recipient (no readable subscriber list)"


def build_dir(issue: Issue) -> Path:
    return issue.folder / BUILD_DIR


def build_preview(
    settings: Settings,
    issue_id: str | None,
    *,
    write: bool = True,
) -> Preview:
    """Render ``issue_id`` (the latest when None), write build/ and check the result."""
    from cepletter.issue.file import resolve
    from cepletter.message.personal import render_personal
    from cepletter.render.context import static_unsubscribe_url
    from cepletter.review import checks

    issue = resolve(settings.issues_dir, issue_id)
    timings = Timings()
    rendered = render_personal(settings, issue, timings, cache=True)
    recipient, source = sample_recipient(settings)
    html, text = rendered.fill(recipient)
    unsubscribe = {
        rendered.values_for(recipient).get("unsubscribe_url", ""),
        rendered.web_values.get("unsubscribe_url", ""),
        static_unsubscribe_url(settings),
    } - {""}
    findings = checks.check_html(html, unsubscribe)
    findings += checks.check_placeholders(text, "the text version")
    findings += checks.check_content(
        issue.subject, issue.preheader, issue.items,
        checks.previous_issue_date(settings.issues_dir, issue.id),
    )
    preview = Preview(issue, rendered, recipient, source, html, text, findings, timings)
    if write:
        folder = build_dir(issue)
        preview.html_path = folder / HTML_NAME
        preview.text_path = folder / TEXT_NAME
        atomic_write_text(preview.html_path, html)
        atomic_write_text(preview.text_path, text)
    return preview
