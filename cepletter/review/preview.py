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
    language: str = ""  # the edition's language
    editions: tuple[str, ...] = ()  # every language the issue has, the main one first

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def text_bytes(self) -> int:
        return len(self.text.encode("utf-8"))


def sample_recipient(settings: Settings) -> tuple[Recipient, str, list[Finding]]:
    """The first valid subscriber, so the preview shows a real name; else a made-up one.

    A list that is missing, cannot be read or has no email column is an error
    finding (`check` fails): a send would stop on it. One with no valid row is
    a warning.
    """
    from cepletter.errors import CepletterError
    from cepletter.message.subscribers import SubscriberFile
    from cepletter.review.checks import ERROR, WARNING

    path = settings.path(settings.delivery.subscribers)
    shown = settings.delivery.subscribers
    problem: Finding
    fallback = "example recipient (no subscriber in the list)"
    try:
        rows = 0
        for row in SubscriberFile(path).rows():
            rows += 1
            if isinstance(row, Recipient):
                where = f"{path.name}, line {row.line}" if row.line else path.name
                return row, f"first subscriber ({where})", []
        if rows:
            problem = Finding(WARNING, "subscribers", f"the subscriber list {shown} has no valid address "
                              f"({rows} row{'s' * (rows != 1)})", "Correct the addresses in the list.")
        elif not path.read_bytes().strip():
            problem = Finding(ERROR, "subscribers", f"the subscriber list {shown} is empty: no header row "
                              "with an email column", "Write a first line `email,name`, then one subscriber a line.")
            fallback = "example recipient (no readable subscriber list)"
        else:
            problem = Finding(WARNING, "subscribers", f"the subscriber list {shown} has no subscribers",
                              "Add one subscriber a line below the header row.")
    except CepletterError as exc:
        problem = Finding(ERROR, "subscribers", exc.message,
                          exc.hint or f"Check [delivery] subscribers = \"{shown}\" in cepletter.toml.")
        fallback = "example recipient (no readable subscriber list)"
    except (OSError, UnicodeError) as exc:
        problem = Finding(ERROR, "subscribers", f"{path}: cannot read the subscriber list: {exc}",
                          f"Check [delivery] subscribers = \"{shown}\" in cepletter.toml.")
        fallback = "example recipient (no readable subscriber list)"
    return EXAMPLE_RECIPIENT, fallback, [problem]


def build_dir(issue: Issue) -> Path:
    return issue.folder / BUILD_DIR


def build_preview(
    settings: Settings,
    issue_id: str | None,
    *,
    write: bool = True,
    language: str | None = None,
) -> Preview:
    """Render ``issue_id`` (the latest when None), write build/ and check the result.

    ``language``: the edition in that language (see `cepletter.issue.edition`);
    None: issue.md's own. A translation's build is newsletter.<lang>.html and .txt.
    """
    from cepletter.issue.edition import editions
    from cepletter.issue.file import resolve
    from cepletter.message.personal import render_personal
    from cepletter.render.context import static_unsubscribe_url
    from cepletter.review import checks, languages

    issue = resolve(settings.issues_dir, issue_id)
    edition = languages.choose(settings, issue, language)
    issue = edition.issue
    timings = Timings()
    rendered = render_personal(settings, issue, timings, cache=True)
    recipient, source, list_findings = sample_recipient(settings)
    html, text = rendered.fill(recipient)
    unsubscribe = {
        rendered.values_for(recipient).get("unsubscribe_url", ""),
        rendered.web_values.get("unsubscribe_url", ""),
        static_unsubscribe_url(settings),
    } - {""}
    findings = checks.check_html(html, unsubscribe)
    findings += checks.check_placeholders(text, "the text version")
    findings += checks.check_intro(text)
    findings += checks.check_sender(settings)
    findings += list_findings
    findings += checks.check_content(
        issue.subject, rendered.preheader, issue.items,
        checks.previous_issue_date(settings.issues_dir, issue.id),
    )
    findings += checks.check_preheader(issue.preheader, issue.items, edition.language)
    findings += languages.edition_findings(edition, rendered.rendered, settings.newsletter.language)
    preview = Preview(issue, rendered, recipient, source, html, text, findings, timings, language=edition.language,
                      editions=tuple(e.language for e in editions(edition.original or issue,
                                                                  settings.newsletter.language)))
    if write:
        folder = build_dir(issue)
        suffix = "" if edition.is_main else f".{edition.language}"
        preview.html_path = folder / HTML_NAME.replace(".html", f"{suffix}.html")
        preview.text_path = folder / TEXT_NAME.replace(".txt", f"{suffix}.txt")
        atomic_write_text(preview.html_path, html)
        atomic_write_text(preview.text_path, text)
    return preview
