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
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from cepletter.errors import WorkspaceError
from cepletter.fsutil import atomic_write_bytes
from cepletter.issue.file import Issue, load
from cepletter.issue.folder import issue_path, list_issue_ids
from cepletter.issue.preheader import of_issue
from cepletter.publish.archive_page import index_page

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
    for issue_id in reversed(list_issue_ids(settings.issues_dir)):
        issue = load(issue_path(settings.issues_dir, issue_id))
        # A page for anyone, not an email someone received: no recipient values at all.
        page_html, _text = render_full(settings, issue, {"unsubscribe_url": generic_unsubscribe_url(settings)},
                                       web_page=True)
        entry = _entry(issue)
        files[entry.page] = issue_page(settings, page_html).encode("utf-8")
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


def _entry(issue: Issue) -> ArchivedIssue:
    return ArchivedIssue(
        id=issue.id,
        title=issue.title,
        subject=issue.subject,
        preheader=of_issue(issue),  # set in the file, or made from the items as the email has it
        date=issue.date,
        item_titles=tuple(item.title for item in issue.items),
        item_links=tuple(item.link for item in issue.items),
        page=f"{issue.id}/index.html",
    )


def issue_page(settings: Settings, page_html: str) -> str:
    """The issue's web page as the archive shows it, with a way back to the index."""
    back = ('<div style="margin:0;padding:10px 16px;font-family:Arial,Helvetica,sans-serif;font-size:14px;'
            'line-height:20px;background-color:#16325c;text-align:center">'
            '<a href="../index.html" style="color:#ffffff;text-decoration:underline">'
            f"&larr; All issues of {html.escape(settings.newsletter.name)}</a></div>")
    start = page_html.find("<body")
    end = page_html.find(">", start) if start != -1 else -1
    if end == -1:
        return page_html
    return page_html[: end + 1] + "\n" + back + page_html[end + 1:]


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

    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": nl.language})
    sub(feed, "title", nl.name)
    sub(feed, "subtitle", f"Every issue of {nl.name}")
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
