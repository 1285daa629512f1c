"""A fast path for the commonest feed: a plain, well-formed RSS 2.0 document.

feedparser is the reference for what a feed says, but it costs about a
millisecond per item even with its sanitiser off; a WordPress feed of 2,000
items takes seconds. A document that uses only the RSS elements listed here is
read with ElementTree (expat, in C, through defusedxml with DTDs and entities
forbidden) into exactly the entry fields feedparser would give, value for value:
the same text clean-up, the same rules for the link, the guid, the categories
and the media elements, feedparser's own date parser and its own guess of
whether a title is HTML.

Anything else returns None and feedparser reads the document: Atom, RSS 1.0,
another encoding than UTF-8, a DOCTYPE, xml:base, markup where text is
expected, an element given twice, attributes where none are expected, and every
element that feedparser maps onto a field (dc:title, dcterms:issued,
itunes:summary, media:description, ...) that is not handled here. The
feedparser corpus test checks on each of its feeds that the two readers agree.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
XML_NS = "{http://www.w3.org/XML/1998/namespace}"


class Unusual(Exception):
    """The document needs feedparser."""


@dataclass
class RawFeed:
    link: str
    entries: list[dict[str, Any]]


def _feedparser_parts() -> tuple[Callable[[str], Any], Callable[[str], bool], frozenset[str], dict[str, str]] | None:
    """feedparser's date parser, HTML guess, handled element names and namespace table; None if they moved."""
    try:
        from feedparser.api import StrictFeedParser
        from feedparser.datetimes import _parse_date
        from feedparser.mixin import _FeedParserMixin
    except ImportError:
        return None
    names = frozenset(n.split("_", 2)[2].lower() for n in dir(StrictFeedParser) if n.startswith(("_start_", "_end_")))
    spaces = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
    return _parse_date, _FeedParserMixin.looks_like_html, names, spaces


_PARTS = _feedparser_parts()
if _PARTS is not None:
    _parse_date, _looks_like_html, _HANDLED_BY_FEEDPARSER, _NAMESPACES = _PARTS
    # An element in a namespace feedparser does not know takes the document's own
    # prefix there, so any handler name ending in its local name could be meant.
    _HANDLER_TAILS = frozenset(
        tail for name in _HANDLED_BY_FEEDPARSER for tail in (name, *(name.split("_", i)[-1] for i in range(1, name.count("_") + 1)))
    )

# Elements of an item read here; anything else that feedparser has a handler for
# sends the document to feedparser.
_ITEM_FIELDS = frozenset({
    "title", "link", "guid", "pubdate", "description", "content_encoded", "category", "dc_subject",
    "dc_creator", "author", "enclosure", "dc_date", "media_content", "media_thumbnail", "media_group",
})
_ONCE = frozenset({"title", "link", "guid", "pubdate", "description", "content_encoded", "dc_date"})
# Handlers that only fill fields cepletter never reads.
_HARMLESS = frozenset({
    "media_rating", "media_credit", "media_restriction", "media_license", "media_player",
    "itunes_image", "itunes_explicit", "itunes_block", "itunes_subtitle",
})
# feedparser maps the C1 controls (U+0080–U+009F) to the Windows-1252 characters they stand for.
_CP1252 = {i: bytes([i]).decode("cp1252") for i in range(0x80, 0xA0) if i not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_ENTITY_LIKE = re.compile(r"&([A-Za-z0-9_]+);")
_XML_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")


def parse(data: bytes) -> RawFeed | None:
    """The feed's entries, or None when feedparser should read it."""
    if _PARTS is None or not _utf8(data):
        return None
    try:
        root = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException, ValueError, LookupError):
        return None
    try:
        if root.tag == "rss" and not root.attrib.keys() - {"version"}:
            return _rss(root)
    except (Unusual, RecursionError):
        # RecursionError: markup nested thousands deep; feedparser reads it without recursing.
        return None
    return None


def _utf8(data: bytes) -> bool:
    """UTF-8 as declared (or by default), the one encoding read here."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00", b"<\x00")):
        return False
    match = _XML_DECLARATION.match(data)
    return match is None or match.group(1).strip().lower() in (b"utf-8", b"utf8")


# ---------------------------------------------------------------- feedparser's clean-up of a value


def _value(text: str) -> str:
    """What feedparser makes of an element's text: stripped, double-encoded UTF-8 undone, C1 controls as cp1252."""
    text = text.strip()
    if not text.isascii():
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            text = text.encode("iso-8859-1").decode("utf-8")
        text = text.translate(_CP1252)
    return text


def _uri(text: str) -> str:
    """feedparser's resolution of a URI against an empty base."""
    from urllib.parse import urljoin

    text = _URI_FIXER.sub(r"\1\3", text)
    try:
        return urljoin("", text)
    except ValueError:
        return ""


# ---------------------------------------------------------------- element names as feedparser sees them


def _name(tag: str) -> str:
    """feedparser's name for an element ("title", "content_encoded", "media_thumbnail")."""
    if tag[:1] != "{":
        return tag.lower()
    uri, local = tag[1:].split("}", 1)
    local = local.lower()
    lowered = uri.lower()
    if "backend.userland.com/rss" in lowered:
        lowered = "http://backend.userland.com/rss"
    prefix = _NAMESPACES.get(lowered)
    if prefix is None:
        # Not a namespace feedparser knows: harmless unless a handler could match it.
        if local in _HANDLER_TAILS:
            raise Unusual
        return "?" + local
    return f"{prefix}_{local}" if prefix else local


def _check_plain(el: ET.Element, allowed: frozenset[str] = frozenset()) -> None:
    """No attributes but the ``allowed`` ones (and xml:lang), all lower case."""
    for key in el.attrib:
        if key not in allowed and key != f"{XML_NS}lang":
            raise Unusual


def _text(el: ET.Element) -> str:
    """Text of an element that must not contain markup (else feedparser's turn)."""
    if len(el):
        raise Unusual
    return el.text or ""


def _check_subtree(el: ET.Element) -> None:
    """Nothing below ``el`` that feedparser would read into a field."""
    for child in el.iter():
        if child is el:
            continue
        name = _name(child.tag) if isinstance(child.tag, str) else ""
        if name in _HANDLED_BY_FEEDPARSER and name not in _HARMLESS:
            raise Unusual


# ---------------------------------------------------------------- RSS 2.0


def _rss(root: ET.Element) -> RawFeed:
    for el in root.iter():
        if not isinstance(el.tag, str):
            raise Unusual  # comments and processing instructions are not in ElementTree's tree
        if f"{XML_NS}base" in el.attrib or "base" in el.attrib:
            raise Unusual
    channels = [c for c in root if c.tag == "channel"]
    if len(channels) != 1 or channels[0].attrib:
        raise Unusual
    channel = channels[0]
    for other in root:
        if other is not channel:
            _check_subtree_and_self(other)
    home = ""
    links = 0
    entries: list[dict[str, Any]] = []
    for child in channel:
        name = _name(child.tag)
        if name == "item":
            entries.append(_rss_item(child))
        elif name == "link":
            if child.attrib:
                # <atom:link rel="self" href="..."/> and the like name no home page.
                if child.get("href") is None or child.get("rel", "alternate") == "alternate":
                    raise Unusual
                continue
            links += 1
            home = _ENTITY_LIKE.sub(r"&\1", _value(_uri(_text(child).strip())))
        else:
            for below in child.iter():
                if isinstance(below.tag, str) and _name(below.tag) in ("item", "entry", "source"):
                    raise Unusual
    if links > 1:
        raise Unusual
    return RawFeed(link=home, entries=entries)


def _check_subtree_and_self(el: ET.Element) -> None:
    name = _name(el.tag)
    if name in _HANDLED_BY_FEEDPARSER and name not in _HARMLESS:
        raise Unusual
    _check_subtree(el)


_ENCLOSURE_ATTRS = frozenset({"url", "type", "length"})


def _media_attrs(el: ET.Element) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in el.attrib.items():
        if key[:1] == "{" and key != f"{XML_NS}lang":
            raise Unusual
        lowered = key.lower().replace(f"{XML_NS}lang", "xml:lang")
        out[lowered] = value.lower() if lowered in ("type", "rel") else value
    return out


def _media(el: ET.Element, name: str, entry: dict[str, Any]) -> None:
    """media:content, media:thumbnail, and both inside media:group, as feedparser keeps them."""
    if name == "media_content":
        entry.setdefault("media_content", []).append(_media_attrs(el))
        for child in el:
            child_name = _name(child.tag)
            if child_name == "media_thumbnail":
                _media(child, child_name, entry)
            else:
                _check_subtree_and_self(child)
    elif name == "media_thumbnail":
        attrs = _media_attrs(el)
        url = _text(el)
        if url.strip() and "url" not in attrs:
            attrs["url"] = _value(_uri(url.strip()))
        entry.setdefault("media_thumbnail", []).append(attrs)
    else:  # media:group
        _check_plain(el)
        for child in el:
            child_name = _name(child.tag)
            if child_name in ("media_content", "media_thumbnail"):
                _media(child, child_name, entry)
            else:
                _check_subtree_and_self(child)


def _add_tag(tags: list[dict[str, str | None]], term: str | None, scheme: str | None) -> None:
    if not term and not scheme:
        return
    tag = {"term": term, "scheme": scheme, "label": None}
    if tag not in tags:
        tags.append(tag)


def _rss_item(item: ET.Element) -> dict[str, Any]:
    if item.attrib:
        raise Unusual
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    link: str | None = None
    guid = ""
    guid_is_link = False
    tags: list[dict[str, str | None]] = []
    content: list[dict[str, str]] = []
    for child in item:
        name = _name(child.tag)
        if name not in _ITEM_FIELDS:
            _check_subtree_and_self(child)
            continue
        if name in _ONCE:
            if name in seen:
                raise Unusual
            seen.add(name)
        if name == "title":
            _check_plain(child)
            title = _value(_text(child))
            entry["title"] = title
            entry["title_detail"] = {"type": "text/html" if _looks_like_html(title) else "text/plain"}
        elif name == "link":
            _check_plain(child)
            value = _value(_uri(_text(child).strip()))
            link = _ENTITY_LIKE.sub(r"&\1", value.replace("&amp;", "&"))
        elif name == "guid":
            _check_plain(child, frozenset({"isPermaLink", "ispermalink"}))
            guid_is_link = (child.get("isPermaLink", child.get("ispermalink", "true"))) == "true"
            raw = _text(child).strip()
            guid = _value(_uri(raw) if guid_is_link and raw else raw)
            entry["id"] = guid
        elif name in ("pubdate", "dc_date"):
            _check_plain(child)
            key = "published" if name == "pubdate" else "updated"
            entry[key] = _value(_text(child))
            entry[f"{key}_parsed"] = _parse_date(entry[key])
        elif name == "description":
            _check_plain(child)
            entry["summary"] = _value(_text(child))
            entry["summary_detail"] = {"type": "text/html"}
        elif name == "content_encoded":
            _check_plain(child)
            content.append({"type": "text/html", "value": _value(_text(child))})
        elif name in ("category", "dc_subject"):
            _check_plain(child, frozenset({"domain"}))
            _add_tag(tags, None, child.get("domain"))
            value = _value(_text(child))
            if value and tags and not tags[-1]["term"]:
                tags[-1]["term"] = value
            elif value:
                _add_tag(tags, value, None)
        elif name in ("author", "dc_creator"):
            _check_plain(child)
            entry["author"] = _value(_text(child))
        elif name == "enclosure":
            if len(child) or any(k not in _ENCLOSURE_ATTRS for k in child.attrib):
                raise Unusual
            entry.setdefault("enclosures", []).append(
                {"href": child.get("url", ""), "type": child.get("type", "").lower()})
        else:
            _media(child, name, entry)
    if link is not None:
        entry["link"] = link
    elif guid_is_link and guid:
        entry["link"] = guid  # a permalink guid is the item's link, as feedparser reads it
    if content:
        entry["content"] = content
        entry.setdefault("summary", content[0]["value"])  # feedparser copies the content to an empty summary
    if tags:
        entry["tags"] = tags
    return entry
