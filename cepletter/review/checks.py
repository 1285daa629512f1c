"""Lint the rendered email before anything is sent (`check`, and shown by `preview`).

Errors stop a send: HTML over Gmail's clipping size, links that cannot work,
no unsubscribe link, template placeholders left in the output. Warnings are
worth a look: images without alt text or width, non-https addresses, no
preheader, a long subject, items older than the previous issue.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cepletter.config import Settings, setting_line
from cepletter.errors import IssueError
from cepletter.issue.file import IssueItem
from cepletter.message.personal import PersonalIssue

GMAIL_CLIP_BYTES = 102 * 1024
SUBJECT_MAX = 70
ERROR = "error"
WARNING = "warning"

_PLACEHOLDER = re.compile(
    r"\{\{[^{}<>]{0,80}?\}\}|\{%[^<>]{0,80}?%\}|\{#[^<>]{0,80}?#\}|\{\{|\{%|\{#"
    r"|cepslot[0-9a-f]+n\d+x|\{(?:email|token)\}",
    re.I,
)


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "warning"
    # size, link, unsubscribe, placeholder, intro, from, subscribers, image-alt, image-width, insecure,
    # preheader, subject, stale
    code: str
    message: str
    hint: str

    @property
    def is_error(self) -> bool:
        return self.level == ERROR

    def __str__(self) -> str:
        return f"{self.level}: {self.message} — {self.hint}"


def _short(value: str, limit: int = 80) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def check_html(html: str, unsubscribe_urls: Collection[str]) -> list[Finding]:
    """Findings about the HTML itself: size, links, images, placeholders, unsubscribe."""
    from lxml import etree
    from lxml import html as lxml_html

    findings: list[Finding] = []
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        findings.append(Finding(
            ERROR, "size",
            f"the HTML is {size / 1024:.1f} KB, over {GMAIL_CLIP_BYTES // 1024} KB: Gmail clips it "
            "and hides the rest, unsubscribe link included",
            "Take out some items or shorten their summaries.",
        ))
    root = lxml_html.document_fromstring(html) if html.strip() else lxml_html.fromstring("<html></html>")
    has_unsubscribe = False
    seen_links: set[str] = set()
    for anchor in root.iter("a"):
        href = anchor.get("href")
        label = _short(anchor.text_content()) or "(no text)"
        if href is None:
            continue
        target = href.strip()
        if target in unsubscribe_urls or "unsubscribe" in label.lower():
            has_unsubscribe = True
        if target in seen_links:
            continue
        seen_links.add(target)
        findings.extend(_link_findings(target, label))
    for image in root.iter("img"):
        src = (image.get("src") or "").strip()
        name = _short(src) or "(no src)"
        if image.get("alt") is None:
            findings.append(Finding(WARNING, "image-alt", f"image {name} has no alt text",
                                    "Give it alt text: many readers see emails with images off."))
        if not image.get("width"):
            findings.append(Finding(WARNING, "image-width", f"image {name} has no width",
                                    "Give it a width attribute, or Outlook shows it at full size."))
        scheme = urlsplit(src).scheme.lower()
        if scheme != "https":
            findings.append(Finding(WARNING, "insecure", f"image {name} is not an https address",
                                    "Use an https:// address, or mail clients may block or warn about it."))
    if not has_unsubscribe:
        findings.append(Finding(
            ERROR, "unsubscribe", "the email has no unsubscribe link",
            "Set unsubscribe_url (or unsubscribe_mailto) in cepletter.toml and keep "
            "{{ unsubscribe_url }} in the template's footer.",
        ))
    for element in root.iter("style", "script"):
        element.text = ""  # CSS braces are not template placeholders
    visible = etree.tostring(root, method="html", encoding="unicode")
    findings.extend(check_placeholders(visible, "the HTML"))
    return findings


def _link_findings(href: str, label: str) -> Iterable[Finding]:
    where = f"link {_short(href) or '(empty)'} (\u201c{label}\u201d)"
    if not href:
        yield Finding(ERROR, "link", f"link \u201c{label}\u201d has an empty address",
                      "Give it a full https:// address or remove it.")
        return
    scheme = urlsplit(href).scheme.lower()
    if not scheme:
        yield Finding(ERROR, "link", f"{where} is relative: it cannot work in an email",
                      "Use a full address starting with https://.")
    elif scheme not in ("http", "https", "mailto"):
        yield Finding(ERROR, "link", f"{where} is a {scheme}: link, not http(s) or mailto",
                      "Use an https:// or mailto: address.")
    elif scheme in ("http", "https") and not urlsplit(href).netloc:
        yield Finding(ERROR, "link", f"{where} has no host name",
                      "Use a full address such as https://example.org/page.")
    elif scheme == "http":
        yield Finding(WARNING, "insecure", f"{where} is not https",
                      "Use the https:// address if the site has one.")


def check_placeholders(text: str, what: str) -> list[Finding]:
    findings = []
    for match in _PLACEHOLDER.finditer(text):
        start = max(0, match.start() - 30)
        excerpt = _short(text[start: match.end() + 30].replace("\n", " "), 70)
        findings.append(Finding(
            ERROR, "placeholder", f"{what} has an unrendered placeholder {match.group(0)!r} near \u201c{excerpt}\u201d",
            "Fix the template or the text it comes from (a template tag that was not rendered).",
        ))
        if len(findings) >= 5:
            break
    return findings


def check_content(
    subject: str,
    preheader: str,
    items: Iterable[IssueItem],
    previous_date: date | None,
) -> list[Finding]:
    """Findings about the issue's content: subject, preheader, stale items."""
    findings: list[Finding] = []
    if not preheader.strip():
        findings.append(Finding(WARNING, "preheader", "the issue has no preheader",
                                "Add preheader: a one-line teaser shown after the subject in the inbox."))
    if len(subject) > SUBJECT_MAX:
        findings.append(Finding(
            WARNING, "subject", f"the subject has {len(subject)} characters, over {SUBJECT_MAX}: "
            "inboxes cut it off", "Shorten subject: in the issue file."))
    if previous_date is not None:
        for item in items:
            if item.date is None:
                continue
            day = item.date.date() if isinstance(item.date, datetime) else item.date
            if day < previous_date:
                findings.append(Finding(
                    WARNING, "stale",
                    f"item \u201c{_short(item.title, 60)}\u201d ({day.isoformat()}) is older than the "
                    f"previous issue ({previous_date.isoformat()})",
                    "Check that it was not already in the previous issue, or remove it.",
                ))
    return findings


def check_intro(text: str) -> list[Finding]:
    """The placeholder intro that `draft` writes, still in the email (``text``): an error."""
    from cepletter.issue.draft import placeholder_intros

    words = " ".join(text.split()).lower()
    found = next((start for start in placeholder_intros() if start.lower() in words), None)
    if found is None:
        return []
    return [Finding(
        ERROR, "intro", f"the intro is still the placeholder that `draft` wrote (\u201c{found}\u2026\u201d)",
        "Write the intro in the issue file, below the closing ---, and take out that placeholder.",
    )]


def refuse_unwritten_intro(rendered: PersonalIssue) -> None:
    """An IssueError when ``rendered`` still has the placeholder intro: `send` and `send --test` stop."""
    found = check_intro("".join(rendered.text.parts))
    if found:
        raise IssueError(f"issue {rendered.issue_id}: {found[0].message}; nothing was sent", found[0].hint)


def check_preheader(preheader: str, items: Iterable[IssueItem], language: str = "en") -> list[Finding]:
    """A set preheader that names an item the issue no longer has ("In this issue: A; B"): a warning."""
    from cepletter.issue.preheader import missing_titles

    return [Finding(
        WARNING, "preheader", f"the preheader names \u201c{_short(title, 60)}\u201d, which is no longer an item of the issue",
        "Update preheader: in the issue file, or empty it (preheader: '') to have it made from the items.",
    ) for title in missing_titles(preheader, [item.title for item in items], language)]


def check_sender(settings: Settings) -> list[Finding]:
    """``[newsletter] from`` that is not an email address: an error, with its line in cepletter.toml."""
    from cepletter.message.build import parse_mailbox
    from cepletter.message.subscribers import check_address

    value = settings.newsletter.from_
    _name, address = parse_mailbox(value)
    reason = "" if "@" in address else "no address in it"
    if not reason:
        checked, reason = check_address(address)
        if checked is not None:
            return []
    line = setting_line(settings, "newsletter", "from")
    where = settings.config_path.name + (f", line {line}" if line else "")
    return [Finding(ERROR, "from", f"{where}: [newsletter] from: {value!r} is not an email address ({reason})",
                    'Write it like from = "CEP <newsletter@example.org>".')]


def previous_issue_date(issues_dir: Path, issue_id: str) -> date | None:
    """The date of the issue before ``issue_id`` (None when there is none or it cannot be read)."""
    from cepletter.errors import CepletterError
    from cepletter.issue.file import load
    from cepletter.issue.folder import earlier_issue_ids, issue_path

    earlier = earlier_issue_ids(issues_dir, issue_id)
    if not earlier:
        return None
    try:
        return load(issue_path(issues_dir, earlier[-1])).date
    except CepletterError:
        return None


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_error]


def warnings(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if not f.is_error]
