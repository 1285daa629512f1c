"""The static web archive: an index of all issues, each issue's web version, an Atom feed.

Layout of the archive folder (upload it as it is; it also works from disk):

    index.html          every issue, newest first
    feed.xml            Atom feed of the issues
    <ID>/index.html     the issue's web version (no personal data)

Links inside are relative, so the folder works from any place. Running it
again rewrites only files whose bytes changed, never touches a file it did
not make, and removes only the pages it made for issues that are gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import posixpath
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from cepletter import i18n
from cepletter.errors import WorkspaceError
from cepletter.fsutil import atomic_write_bytes
from cepletter.issue.edition import editions
from cepletter.issue.file import Issue, load
from cepletter.issue.folder import issue_path, list_issue_ids
from cepletter.issue.preheader import of_issue
from cepletter.publish.archive_page import index_page
from cepletter.render.context import edition_page

if TYPE_CHECKING:
    from cepletter.config import Settings

MANIFEST = ".cepletter-archive.json"
ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class ArchivedIssue:
    id: str
    title: str
    subject: str
    preheader: str
    date: date
    item_titles: tuple[str, ...]
    item_links: tuple[str, ...]
    page: str  # relative to the archive folder, e.g. "2025-12/index.html"
    # Every language edition's page, the main one first: (language, page), e.g. ("fr", "2025-12/fr/index.html").
    editions: tuple[tuple[str, str], ...] = ()


@dataclass
class ArchiveResult:
    folder: Path
    issues: list[ArchivedIssue] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


def default_folder(settings: Settings) -> Path:
    return settings.root / "archive"


def build_archive(settings: Settings, folder: Path | None = None) -> ArchiveResult:
    """Write (or bring up to date) the web archive in ``folder`` (default: archive/)."""
    from cepletter.message.personal import generic_unsubscribe_url
    from cepletter.render.renderer import render_full

    folder = folder or default_folder(settings)
    if folder.exists() and not folder.is_dir():
        raise WorkspaceError(f"{folder} is a file, not a folder", "Choose another folder with -o DIR.")
    previous = _read_manifest(folder)
    files: dict[str, bytes] = {}
    archived: list[ArchivedIssue] = []
    main_language = i18n.normalise(settings.newsletter.language)
    for issue_id in reversed(list_issue_ids(settings.issues_dir)):
        issue = load(issue_path(settings.issues_dir, issue_id))
        found = editions(issue, main_language)
        pages = {e.language: edition_page(issue.id, e.language, main_language) + "index.html" for e in found}
        for edition in found:
            # A page for anyone, not an email someone received: no recipient values at all.
            page_html, _text = render_full(settings, edition.issue,
                                           {"unsubscribe_url": generic_unsubscribe_url(settings)}, web_page=True)
            files[pages[edition.language]] = issue_page(
                settings, page_html, language=edition.language, page=pages[edition.language],
                pages=pages if len(found) > 1 else None,
            ).encode("utf-8")
        entry = _entry(issue, main_language, tuple(pages.items()))
        archived.append(entry)
    archived.sort(key=lambda e: (e.date, e.id), reverse=True)
    files["index.html"] = index_page(settings, archived).encode("utf-8")
    files["feed.xml"] = atom_feed(settings, archived)

    result = ArchiveResult(folder=folder, issues=archived)
    for relative, data in files.items():
        target = folder / relative
        if target.is_file() and target.read_bytes() == data:
            result.unchanged.append(target)
            continue
        _guard(target, relative, previous)
        _write(target, data)
        result.written.append(target)
    for relative, digest in previous.items():
        if relative not in files:
            _remove_stale(folder, relative, digest, result)
    manifest = {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())}
    if manifest != previous:
        _write(folder / MANIFEST, (json.dumps({"files": manifest}, indent=1) + "\n").encode("utf-8"))
    return result


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot write: {exc.strerror or exc}",
                             "Choose another folder with -o DIR, or free some space.") from None


def _entry(issue: Issue, language: str = i18n.SOURCE, pages: tuple[tuple[str, str], ...] = ()) -> ArchivedIssue:
    return ArchivedIssue(
        id=issue.id,
        title=issue.title,
        subject=issue.subject,
        preheader=of_issue(issue, language),  # set in the file, or made from the items as the email has it
        date=issue.date,
        item_titles=tuple(item.title for item in issue.items),
        item_links=tuple(item.link for item in issue.items),
        page=f"{issue.id}/index.html",
        editions=pages if len(pages) > 1 else (),
    )


def issue_page(settings: Settings, page_html: str, *, language: str | None = None,
               page: str | None = None, pages: dict[str, str] | None = None) -> str:
    """The issue's web page as the archive shows it, with a way back to the index.

    ``page`` is where it goes in the archive (default ``<ID>/index.html``);
    ``pages``, every language edition's page by language: then each page
    links the others, in its head with ``hreflang`` (for search engines) and
    on the page (for readers).
    """
    language = i18n.normalise(language or settings.newsletter.language)
    here = posixpath.dirname(page) if page else "."
    to_index = posixpath.relpath("index.html", here) if page else "../index.html"
    tr = i18n.catalogue(language)
    arrow = "&rarr;" if i18n.is_rtl(language) else "&larr;"
    label = html.escape(tr.gettext("All issues of %(name)s") % {"name": settings.newsletter.name})
    back = ('<div style="margin:0;padding:10px 16px;font-family:Arial,Helvetica,sans-serif;font-size:14px;'
            'line-height:20px;background-color:#16325c;text-align:center">'
            f'<a href="{html.escape(to_index)}" style="color:#ffffff;text-decoration:underline">'
            f"{arrow} {label}</a>{_switch(language, here, pages)}</div>")
    if pages:
        page_html = _in_head(page_html, _alternates(settings, here, pages))
    start = page_html.find("<body")
    end = page_html.find(">", start) if start != -1 else -1
    if end == -1:
        return page_html
    return page_html[: end + 1] + "\n" + back + page_html[end + 1:]


def _switch(language: str, here: str, pages: dict[str, str] | None) -> str:
    """The other editions, each named in its own language: " · Français · Nederlands"."""
    if not pages:
        return ""
    links = []
    for other, target in pages.items():
        if other == language:
            continue
        href = html.escape(posixpath.relpath(target, here))
        name = html.escape(i18n.display_name(other))
        links.append(f' &middot; <a href="{href}" hreflang="{other}" lang="{other}" '
                     f'style="color:#ffffff;text-decoration:underline">{name}</a>')
    return "".join(links)


def _alternates(settings: Settings, here: str, pages: dict[str, str]) -> str:
    """<link rel="alternate" hreflang> for every edition and x-default for the main one.

    Absolute with ``[newsletter] web_url`` (as search engines want them), else
    relative, like every other link of the archive.
    """
    base = _base(settings.newsletter.web_url)
    links = []
    items = [*pages.items(), ("x-default", next(iter(pages.values())))]
    for language, target in items:
        href = base + target.removesuffix("index.html") if base else posixpath.relpath(target, here)
        links.append(f'<link rel="alternate" hreflang="{language}" href="{html.escape(href)}">')
    return "\n".join(links)


def _in_head(page_html: str, markup: str) -> str:
    end = page_html.find("</head>")
    if end == -1:
        return page_html
    return page_html[:end] + markup + "\n" + page_html[end:]


# ---------------------------------------------------------------- Atom

def atom_feed(settings: Settings, issues: list[ArchivedIssue]) -> bytes:
    """An Atom 1.0 feed of the issues; ids stay the same from run to run."""
    nl = settings.newsletter
    zone = ZoneInfo(nl.timezone)
    base = _base(nl.web_url)
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": i18n.normalise(nl.language)})
    sub(feed, "title", nl.name)
    sub(feed, "subtitle", i18n.catalogue(nl.language).gettext("Every issue of %(name)s") % {"name": nl.name})
    sub(feed, "id", f"{base}feed.xml" if base else _urn(nl.name, "feed"))
    sub(feed, "link", rel="self", type="application/atom+xml", href=f"{base}feed.xml")
    sub(feed, "link", rel="alternate", type="text/html", href=f"{base}index.html" if base else "index.html")
    newest = max((e.date for e in issues), default=date(2000, 1, 1))
    sub(feed, "updated", _stamp(newest, zone))
    author = sub(feed, "author")
    sub(author, "name", nl.name)
    sub(feed, "generator", "cepletter")
    for entry in issues:
        page = f"{base}{entry.id}/" if base else entry.page
        item = sub(feed, "entry")
        sub(item, "title", entry.title)
        sub(item, "id", f"{base}{entry.id}/" if base else _urn(nl.name, entry.id))
        sub(item, "link", rel="alternate", type="text/html", href=page)
        sub(item, "published", _stamp(entry.date, zone))
        sub(item, "updated", _stamp(entry.date, zone))
        if entry.preheader:
            sub(item, "summary", entry.preheader)
        listing = "".join(f'<li><a href="{html.escape(link)}">{html.escape(title)}</a></li>'
                          for title, link in zip(entry.item_titles, entry.item_links, strict=True))
        content = f"<p>{html.escape(entry.subject)}</p>" + (f"<ul>{listing}</ul>" if listing else "")
        sub(item, "content", content, type="html")
    tree = ET.ElementTree(feed)
    ET.indent(tree, space="  ")
    data: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _base(web_url: str | None) -> str:
    if not web_url:
        return ""
    return web_url if web_url.endswith("/") else web_url + "/"


def _urn(name: str, part: str) -> str:
    # Without web_url there is no address to use as an id; a name-based UUID stays the same.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"cepletter:{name}:{part}").urn


def _stamp(day: date, zone: ZoneInfo) -> str:
    # An issue has a date, not a time: a fixed morning hour keeps the stamp stable.
    return datetime.combine(day, time(8, 0), zone).isoformat()


# ---------------------------------------------------------------- bookkeeping

def _read_manifest(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def _guard(target: Path, relative: str, previous: dict[str, str]) -> None:
    """Refuse to overwrite anything that is there but was not made by the archive."""
    if target.exists() and not target.is_file():
        raise WorkspaceError(f"{target} is in the way (a folder)", "Move it, or choose another folder with -o DIR.")
    if target.is_file() and relative not in previous:
        raise WorkspaceError(
            f"{target} already exists and was not made by `cepletter archive`",
            "Move it away, or choose an empty folder with -o DIR.",
        )


def _remove_stale(folder: Path, relative: str, digest: str, result: ArchiveResult) -> None:
    """Remove a page made for an issue that no longer exists, unless someone changed it since."""
    target = folder / relative
    try:
        if hashlib.sha256(target.read_bytes()).hexdigest() != digest:
            return
        target.unlink()
    except OSError:
        return
    result.removed.append(target)
    parent = target.parent
    if parent != folder:
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when empty: anything else in it was not ours
