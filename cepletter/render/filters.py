"""Small formatting helpers the templates use: Markdown, plain text, dates, links."""

from __future__ import annotations

import re
import textwrap
from datetime import date, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from cepletter import dates
from cepletter.sources.items import Event

# ---------------------------------------------------------------- Markdown

def markdown_html(text: str) -> str:
    """The editorial intro as HTML: CommonMark with raw HTML switched off.

    Only http(s) and mailto links survive, so an intro cannot carry a
    javascript: link even by mistake.
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = _safe_link  # type: ignore[method-assign]
    return str(md.render(text))


def _safe_link(url: str) -> bool:
    return bool(re.match(r"^(https?:|mailto:)", url.strip(), re.I))


def markdown_text(text: str) -> str:
    """The intro for the text version: one line per paragraph (see ``wrap``), links spelled out."""
    return html_text(markdown_html(text))


# ---------------------------------------------------------------- HTML to plain text

_BLOCK = {"p", "div", "li", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
          "table", "tr", "figure", "figcaption", "pre", "section", "article"}


def html_text(fragment: str) -> str:
    """Readable text of a (sanitised) HTML fragment: a line per paragraph (see ``wrap``), links after their words."""
    if not fragment.strip():
        return ""
    from lxml import html as lxml_html

    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    except Exception:  # lxml raises several types for odd markup; plain text is the fallback
        return wrap(re.sub(r"<[^>]+>", " ", fragment))
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = re.sub(r"\s+", " ", "".join(current)).strip()
        if text:
            paragraphs.append(text)
        current.clear()

    def walk(element: lxml_html.HtmlElement) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _BLOCK:
            flush()
        if tag == "li":
            current.append("- ")
        if tag == "br":
            flush()
        if tag == "img":
            alt = (element.get("alt") or "").strip()
            if alt:
                current.append(f"[{alt}]")
        if element.text and tag not in ("script", "style"):
            current.append(element.text)
        for child in element:
            walk(child)
        if tag == "a":
            href = (element.get("href") or "").strip()
            label = element.text_content().strip()
            if href.startswith(("http://", "https://")) and href != label:
                current.append(f" <{href}>")
        if tag in _BLOCK:
            flush()
        if element.tail:
            current.append(element.tail)

    walk(root)
    flush()
    return "\n\n".join(wrap(p) for p in paragraphs)


# A paragraph of the text version is one line: mail programs wrap it to the reader's
# screen, where lines hard-wrapped at 72 columns break into ragged halves on a phone.
# Only a paragraph longer than this is broken (at a space), to stay well within the
# 998 octets SMTP allows on a line.
LINE_OCTETS = 900


def wrap(text: str, width: int | None = None) -> str:
    """One paragraph on one line (see LINE_OCTETS), or wrapped at ``width`` characters.

    Whitespace runs become one space; long words and URLs are never broken.
    """
    text = re.sub(r"\s+", " ", text).strip()
    if width is not None:
        return textwrap.fill(text, width=width, break_long_words=False, break_on_hyphens=False)
    if len(text) * 4 <= LINE_OCTETS or len(text.encode("utf-8")) <= LINE_OCTETS:
        return text
    lines: list[str] = []
    current: list[str] = []
    size = 0
    for word in text.split(" "):
        octets = len(word.encode("utf-8"))
        if current and size + 1 + octets > LINE_OCTETS:
            lines.append(" ".join(current))
            current, size = [], 0
        size += octets + (1 if current else 0)
        current.append(word)
    lines.append(" ".join(current))
    return "\n".join(lines)


# ---------------------------------------------------------------- dates

def _local(value: date | datetime, tz: ZoneInfo) -> date | datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(tz)
    return value


def long_date(value: date | datetime | None, tz: ZoneInfo, language: str = "en") -> str:
    """18 December 2025, in ``language``."""
    if value is None:
        return ""
    value = _local(value, tz)
    return dates.long_date(value, language)


def iso_date(value: date | datetime | None, tz: ZoneInfo) -> str:
    if value is None:
        return ""
    value = _local(value, tz)
    day = value.date() if isinstance(value, datetime) else value
    return day.isoformat()


def event_when(event: Event, tz: ZoneInfo, language: str = "en") -> str:
    """When an event takes place, in the newsletter's time zone and ``language``.

    "Tuesday, 20 January 2026, 10:00–12:00", "20–22 January 2026", or
    "30 March – 2 April 2026" for all-day events and multi-day ranges.
    """
    start = _local(event.start, tz)
    end = _local(event.end, tz) if event.end is not None else None
    timed = isinstance(start, datetime) and not event.all_day
    if not timed:
        first = start.date() if isinstance(start, datetime) else start
        last: date | None = None
        if end is not None:
            # Event.end of an all-day event is its last day, inclusive (see Event).
            last = end.date() if isinstance(end, datetime) else end
            if last <= first:
                last = None
        return dates.weekday_date(first, language) if last is None else dates.day_range(first, last, language)
    assert isinstance(start, datetime)
    day = dates.weekday_date(start.date(), language)
    if isinstance(end, datetime):
        if end.date() == start.date():
            return dates.date_and_time(day, dates.time_range(start, end, language), language)
        return dates.between(
            dates.date_and_time(day, dates.short_time(start, language), language),
            dates.date_and_time(dates.long_date(end.date(), language), dates.short_time(end, language), language),
            language,
        )
    return dates.date_and_time(day, dates.short_time(start, language), language)


def event_day(event: Event, tz: ZoneInfo, language: str = "en") -> tuple[str, str]:
    """(day number, short month) for the date badge of an event."""
    start = _local(event.start, tz)
    day = start.date() if isinstance(start, datetime) else start
    return dates.day_number(day, language), dates.short_month(day.month, language)


# ---------------------------------------------------------------- links

def add_utm(url: str, params: dict[str, str]) -> str:
    """``url`` with utm_* parameters added (existing ones are kept, not doubled)."""
    if not params or not url.lower().startswith(("http://", "https://")):
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    query += [(k, v) for k, v in params.items() if k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))
