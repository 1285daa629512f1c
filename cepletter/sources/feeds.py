"""Feed documents → Items: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON
Feed 1.0/1.1 read directly (feedparser does not know it).

feedparser's own sanitiser and URI resolver are turned off (they are most of
its cost); every HTML field goes through ``sanitize`` exactly once instead.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from cepletter import dates
from cepletter.errors import SourceError
from cepletter.sources.items import Item
from cepletter.sources.sanitize import (
    absolute_url,
    excerpt_of_text,
    first_image,
    is_content_image,
    plain_text,
    sanitize_html,
    text_of,
    title_from_text,
)

Warn = Callable[[str], None]

# Categories that say nothing (WordPress's default).
_EMPTY_CATEGORIES = {"uncategorized", "uncategorised", "allgemein", "non classé", "sin categoría"}
# A feed's summary longer than this (in text) is the whole post, not an excerpt.
_EXCERPT_TEXT = 1200
UNTITLED = "Untitled"
# How an XML feed in UTF-16 or UTF-32 begins: a byte order mark, or "<" in either byte order.
_UNICODE_STARTS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"<\x00", b"\x00<", b"\x00\x00\x00<")


def parse_document(data: bytes, *, where: str, base: str | None, source: str,
                   max_items: int = 10_000, warn: Warn | None = None) -> list[Item]:
    """Parse a downloaded or read feed; ``where`` names it in messages."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise SourceError(f"{where}: empty, not a feed", "Check the address or file.")
    if head[:1] in (b"{", b"["):
        return parse_json_feed(data, where=where, base=base, source=source, max_items=max_items)
    if b"\x00" in head and not head.startswith(_UNICODE_STARTS):
        raise SourceError(f"{where}: a binary file, not a feed", "Check the address or file name.")
    return parse_xml_feed(data, where=where, base=base, source=source, max_items=max_items, warn=warn)


# ---------------------------------------------------------------- XML feeds (feedparser)

def parse_xml_feed(data: bytes, *, where: str, base: str | None, source: str,
                   max_items: int = 10_000, warn: Warn | None = None) -> list[Item]:
    from cepletter.sources import fastfeed

    simple = fastfeed.parse(data)
    if simple is not None:
        home = absolute_url(simple.link, base) or (base if _is_http(base) else None)
        return unique_ids([_from_entry(entry, home, source) for entry in simple.entries[:max_items]])
    return _parse_with_feedparser(data, where=where, base=base, source=source, max_items=max_items, warn=warn)


def _parse_with_feedparser(data: bytes, *, where: str, base: str | None, source: str,
                           max_items: int, warn: Warn | None) -> list[Item]:
    import feedparser

    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    entries = parsed.entries
    if not entries:
        if parsed.get("version"):
            return []  # a real feed, with nothing in it yet
        problem = _bozo_reason(parsed)
        looks_html = b"<html" in data[:2048].lower() or b"<!doctype html" in data[:2048].lower()
        what = "a web page, not a feed" if looks_html else f"not a feed ({problem})" if problem else "not a feed"
        raise SourceError(f"{where}: {what}", "Use the address of the RSS, Atom or JSON feed itself (often …/feed/).")
    if parsed.get("bozo") and warn is not None and not _harmless_bozo(parsed):
        warn(f"{where}: the feed has XML errors ({_bozo_reason(parsed)}); read {len(entries)} items anyway")
    feed = parsed.feed
    home = absolute_url(feed.get("link") or "", base) or (base if _is_http(base) else None)
    return unique_ids([_from_entry(entry, home, source) for entry in entries[:max_items]])


def unique_ids(items: list[Item]) -> list[Item]:
    """Each item with its own id: real feeds reuse a guid for different posts.

    The same entry twice is kept once; a different entry under a used id gets
    the id plus a hash of its content, which is stable from one read to the next.
    """
    seen: dict[str, Item] = {}
    out: list[Item] = []
    for item in items:
        previous = seen.get(item.id)
        if previous is not None:
            if (previous.title, previous.link, previous.summary, previous.date) == (
                    item.title, item.link, item.summary, item.date):
                continue
            stamp = item.date.isoformat() if item.date else ""
            digest = hashlib.sha256(f"{item.title}\n{stamp}\n{item.summary}".encode()).hexdigest()[:12]
            item.id = f"{item.id}#{digest}"
            if item.id in seen:
                continue
        seen[item.id] = item
        out.append(item)
    return out


def _is_http(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(("http://", "https://"))  # type: ignore[union-attr]


def _bozo_reason(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    if exc is None:
        return ""
    text = str(exc.getMessage()) if hasattr(exc, "getMessage") else str(exc)
    text = text.splitlines()[0] if text else type(exc).__name__
    line = exc.getLineNumber() if hasattr(exc, "getLineNumber") else None
    return f"line {line}: {text}" if line else text


def _harmless_bozo(parsed: Any) -> bool:
    # A charset the server got wrong but feedparser recovered from is not worth a warning.
    return type(parsed.get("bozo_exception")).__name__ in ("CharacterEncodingOverride",)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, TypeError):
        return None


def _text_date(value: Any) -> datetime | None:
    """A date feedparser could not read: RFC 822 with a day name in another language, or ISO 8601."""
    if not isinstance(value, str) or not value.strip():
        return None
    from email.utils import parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        try:
            parsed = dates.parse_iso_datetime(value.strip())
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0)  # whole seconds, as feedparser gives them


def entry_date(entry: Any) -> datetime | None:
    """Published, else updated, else created: feedparser's reading, then cepletter's for what it left."""
    for key in ("published", "updated", "created"):
        when = _when(entry.get(f"{key}_parsed"))
        if when is not None:
            return when
    for key in ("published", "updated", "created"):
        when = _text_date(entry.get(key))
        if when is not None:
            return when
    return None


_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def _is_html(detail: Any) -> bool:
    """Whether a feed field holds HTML (feedparser's type), not text."""
    return (detail or {}).get("type", "text/html") in _HTML_TYPES


def _html_field(detail: Any, value: str | None) -> str:
    """Raw HTML of a feed field; text fields are escaped first, so their angle brackets stay characters."""
    if not value:
        return ""
    if not _is_html(detail):
        import html

        return "<p>" + html.escape(value).replace("\n\n", "</p><p>") + "</p>"
    return value


def _categories(tags: Iterable[Any] | None) -> list[str]:
    out: list[str] = []
    for tag in tags or ():
        name = plain_text(tag.get("label") or tag.get("term") or "", html=False)
        if name and name.lower() not in _EMPTY_CATEGORIES and name not in out and len(name) <= 80:
            out.append(name)
    return out


def _media_image(entry: Any, base: str | None) -> str | None:
    """Enclosure image/*, then media:content images, then media:thumbnail."""
    for enc in entry.get("enclosures") or ():
        kind = (enc.get("type") or "").lower()
        url = absolute_url(enc.get("href") or enc.get("url") or "", base, frozenset({"http", "https"}))
        if url and kind.startswith("image/") and is_content_image(url):
            return url
    for group in ("media_content", "media_thumbnail"):
        best: tuple[int, str] | None = None
        for media in entry.get(group) or ():
            kind = (media.get("type") or "").lower()
            medium = (media.get("medium") or "").lower()
            if group == "media_content" and not _is_image_media(medium, kind, media.get("url") or ""):
                continue
            url = absolute_url(media.get("url") or "", base, frozenset({"http", "https"}))
            if url and is_content_image(url, media, min_size=100):
                width = str(media.get("width") or "")
                size = int(width) if width.isdigit() else 0
                # The first image unless a later one is known to be larger (Guardian: 140 then 460).
                if best is None or size > best[0] > 0:
                    best = (size, url)
        if best is not None:
            return best[1]
    return None


_NOT_IMAGE_FILE = re.compile(r"\.(?:mp4|m4v|mov|webm|mp3|m4a|ogg|wav|pdf|swf)(?:$|[?#])", re.I)


def _is_image_media(medium: str, kind: str, url: str) -> bool:
    if medium or kind:
        return medium == "image" or kind.startswith("image/")
    # No medium or type given (as in many news feeds): an image unless the file says otherwise.
    return bool(url) and not _NOT_IMAGE_FILE.search(url)


def _entry_id(raw_id: str, link: str, title: str, summary: str) -> str:
    if raw_id:
        return raw_id
    if link:
        return link
    digest = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()[:16]
    return f"sha256:{digest}"


def _from_entry(entry: Any, home: str | None, source: str) -> Item:
    link = absolute_url(entry.get("link") or "", home, frozenset({"http", "https"})) or ""
    base = link or home
    summary_raw = _html_field(entry.get("summary_detail"), entry.get("summary"))
    contents = entry.get("content") or ()
    content_raw = "".join(_html_field(c, c.get("value")) for c in contents if c.get("value"))
    return build_item(
        raw_id=(entry.get("id") or "").strip(),
        title=plain_text(entry.get("title"), html=_is_html(entry.get("title_detail"))),
        link=link,
        fallback_link=home or "",
        date=entry_date(entry),
        summary_raw=summary_raw,
        content_raw=content_raw,
        base=base,
        image=_media_image(entry, base),
        categories=_categories(entry.get("tags")),
        author=plain_text(entry.get("author"), html=False) or None,
        source=source,
    )


def build_item(*, raw_id: str, title: str, link: str, fallback_link: str, date: datetime | None,
               summary_raw: str, content_raw: str, base: str | None, image: str | None,
               categories: list[str], author: str | None, source: str) -> Item:
    """One Item from a feed entry's raw fields (shared by XML and JSON feeds)."""
    summary_clean = sanitize_html(summary_raw, base) if summary_raw else ""
    summary_text = text_of(summary_clean)
    content_clean = ""
    # The feed's own summary is the best excerpt, unless it is really the whole post.
    if content_raw and (not summary_text or len(summary_text) > _EXCERPT_TEXT or image is None):
        content_clean = sanitize_html(content_raw, base)
    if summary_text and len(summary_text) <= _EXCERPT_TEXT:
        text = summary_text
    else:
        text = text_of(content_clean) or summary_text
    if image is None:
        image = first_image(content_clean) or first_image(summary_clean)
    if not title:
        title = title_from_text(text) if text else UNTITLED
    return Item(
        id=_entry_id(raw_id, link, title, summary_raw or content_raw),
        title=title,
        link=link or fallback_link,
        date=date,
        source=source,
        summary=excerpt_of_text(text),
        categories=categories,
        image=image,
        author=author,
    )


# ---------------------------------------------------------------- JSON Feed

def _json_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return dates.parse_iso_datetime(value)
    except ValueError:
        return None


def _json_author(item: dict[str, Any]) -> str | None:
    authors = item.get("authors")
    if isinstance(authors, list) and authors and isinstance(authors[0], dict):
        return plain_text(str(authors[0].get("name") or ""), html=False) or None
    author = item.get("author")
    if isinstance(author, dict):
        return plain_text(str(author.get("name") or ""), html=False) or None
    return None


def _json_str(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return value if isinstance(value, str) else ""


def parse_json_feed(data: bytes, *, where: str, base: str | None, source: str,
                    max_items: int = 10_000) -> list[Item]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"{where}: not a feed (invalid JSON: {exc})", "Check the address or file.") from None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or "jsonfeed.org/version/1" not in version:
        raise SourceError(f"{where}: JSON, but not a JSON Feed (no jsonfeed.org version)",
                          "Use the address of an RSS, Atom or JSON Feed.")
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise SourceError(f"{where}: JSON Feed without an items list", "Check the feed.")
    home = (absolute_url(_json_str(doc, "home_page_url"), base, frozenset({"http", "https"}))
            or absolute_url(_json_str(doc, "feed_url"), base, frozenset({"http", "https"}))
            or (base if _is_http(base) else None))
    items: list[Item] = []
    for raw in raw_items[:max_items]:
        if not isinstance(raw, dict):
            continue
        https = frozenset({"http", "https"})
        link = (absolute_url(_json_str(raw, "url"), home, https)
                or absolute_url(_json_str(raw, "external_url"), home, https) or "")
        item_base = link or home
        content_raw = _json_str(raw, "content_html")
        if not content_raw and _json_str(raw, "content_text"):
            content_raw = _html_field({"type": "text/plain"}, _json_str(raw, "content_text"))
        summary = _json_str(raw, "summary")
        image = None
        for key in ("image", "banner_image"):
            image = image or absolute_url(_json_str(raw, key), item_base, https)
        if image is None:
            for att in raw.get("attachments") or ():
                if isinstance(att, dict) and str(att.get("mime_type", "")).startswith("image/"):
                    image = absolute_url(str(att.get("url") or ""), item_base, https)
                    if image:
                        break
        raw_tags = raw.get("tags")
        tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
        raw_id = raw.get("id")
        items.append(build_item(
            raw_id=str(raw_id).strip() if isinstance(raw_id, (str, int, float)) else "",
            title=plain_text(_json_str(raw, "title"), html=False),
            link=link,
            fallback_link=home or "",
            date=_json_date(raw.get("date_published")) or _json_date(raw.get("date_modified")),
            summary_raw=_html_field({"type": "text/plain"}, summary) if summary else "",
            content_raw=content_raw,
            base=item_base,
            image=image if image and is_content_image(image) else None,
            categories=_categories({"term": str(t)} for t in tags if isinstance(t, (str, int))),
            author=_json_author(raw),
            source=source,
        ))
    return unique_ids(items)
