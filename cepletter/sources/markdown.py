"""A folder of Markdown files as a source: one item per ``.md`` file.

Each file starts with YAML front matter::

    ---
    title: Call for papers: CEP conference 2026
    date: 2026-01-12
    link: https://www.cep-probation.org/call-for-papers-2026/
    category: CEP Events          # or categories: [CEP Events, Research]
    image: https://www.cep-probation.org/wp-content/uploads/2026/01/cfp.jpg
    summary: One or two sentences for the newsletter card (Markdown).
    ---
    The text, in Markdown; used for the card when there is no summary.
"""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cepletter import dates
from cepletter.errors import SourceError
from cepletter.frontmatter import split_front_matter
from cepletter.sources.items import Item
from cepletter.sources.sanitize import (
    absolute_url,
    excerpt,
    first_image,
    plain_text,
    sanitize_html,
    text_of,
    title_from_text,
)

_KEYS = {"id", "title", "date", "link", "category", "categories", "image", "summary", "author"}
_HTTP = frozenset({"http", "https"})


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    html: str = MarkdownIt("commonmark", {"html": True}).render(text)
    return html


def read_markdown(path: Path, *, name: str, where: str, timezone: str = "UTC") -> list[Item]:
    """Items from ``path``: a folder of .md files, or one .md file."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".md", ".markdown") and p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise SourceError(f"{where}: folder not found", "Check the path in cepletter.toml (it is relative to the workspace).")
    tz = ZoneInfo(timezone)
    return [_read_file(f, name, tz) for f in files]


def _fail(where: str, problem: str, hint: str = "Fix the front matter of that file.") -> SourceError:
    return SourceError(f"{where}: {problem}", hint)


def _read_file(path: Path, source: str, tz: ZoneInfo) -> Item:
    import yaml

    where = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(where, "not UTF-8 text", "Save the file as UTF-8.") from None
    except OSError as exc:
        raise _fail(where, f"cannot read: {exc.strerror}", "Check the file.") from None
    parts = split_front_matter(text)
    if parts is None:
        raise _fail(where, "no front matter", "Start the file with '---', then title:, date:, link:, then '---'.")
    front_text, body = parts
    try:
        front = yaml.safe_load(front_text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 2}" if mark is not None else ""
        raise _fail(f"{where}{line}", f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(front, dict):
        raise _fail(where, "the front matter must be key: value lines")
    for key in front:
        if key not in _KEYS:
            raise _fail(where, f"unknown key {key!r}", f"Use only: {', '.join(sorted(_KEYS))}.")
    link_raw = _text(front, "link", where)
    link = absolute_url(link_raw, None, _HTTP) if link_raw else None
    if link is None:
        raise _fail(where, "link: missing or not an http(s) address",
                    "Add link: https://... (the page the newsletter's \"Read more\" opens).")
    body_html = sanitize_html(_markdown(body), link) if body.strip() else ""
    summary_md = _text(front, "summary", where)
    summary_html = sanitize_html(_markdown(summary_md), link) if summary_md else body_html
    title = plain_text(_text(front, "title", where)) or title_from_text(text_of(summary_html)) or path.stem
    image_raw = _text(front, "image", where)
    image = absolute_url(image_raw, link, _HTTP) if image_raw else first_image(body_html)
    if image_raw and image is None:
        raise _fail(where, f"image: {image_raw!r} is not an http(s) address", "Give the full image address.")
    return Item(
        id=_text(front, "id", where) or link,
        title=title,
        link=link,
        date=_date(front.get("date"), where, tz),
        source=source,
        summary=excerpt(summary_html),
        categories=_categories(front, where),
        image=image,
        author=_text(front, "author", where) or None,
    )


def _text(front: dict[str, Any], key: str, where: str) -> str:
    value = front.get(key)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _fail(where, f"{key}: expected text, got {type(value).__name__}")
    return value.strip()


def _categories(front: dict[str, Any], where: str) -> list[str]:
    value = front.get("categories", front.get("category"))
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            raise _fail(where, "categories: expected text or a list of text")
        if str(v).strip() and str(v).strip() not in out:
            out.append(str(v).strip())
    return out


def _date(value: Any, where: str, tz: ZoneInfo) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dates.parse_iso(value)
        except ValueError:
            raise _fail(where, f"date: {value!r} is not a date", "Write it as 2026-01-12 or 2026-01-12 09:30.") from None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=tz)
    raise _fail(where, f"date: {value!r} is not a date", "Write it as 2026-01-12.")
