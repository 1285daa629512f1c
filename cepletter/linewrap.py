"""Break long lines of HTML only where a line break cannot change what the page means.

An email body sent as 8bit must keep every line within 998 octets (RFC 5322).
Inlined CSS and long paragraphs can make a line longer than that, so
``wrap_html`` turns a space or tab into a line break where HTML treats both
alike:

- in text content, except inside ``<pre>``, ``<textarea>``, ``<script>``,
  ``<style>`` (and ``<title>``, ``<xmp>``, ``<listing>``, ``<plaintext>``),
  whose whitespace is kept as written;
- between the attributes of a tag;
- inside a ``style="..."`` value, outside CSS strings and parentheses.

Never inside another attribute value (a URL stays whole), a comment, a
doctype, or a word. The length of the text stays the same: one whitespace
character becomes one line feed.

Lines that already fit are left as they are, so a page whose lines fit comes
back unchanged, and wrapping a page decides each line on its own. That is what
lets the renderer wrap the page once, with placeholders where recipient values
go: a full render with one recipient's values wraps the same way wherever the
lines holding values fit. (Where a filled-in line would still be too long for
SMTP, the message builder sends that part quoted-printable.)
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator

DEFAULT_LIMIT = 900

# Elements whose content is not ordinary collapsible text: kept untouched.
_KEEP = frozenset({"pre", "textarea", "script", "style", "title", "xmp", "listing", "plaintext"})
_TAG_NAME = re.compile(r"[A-Za-z][^\s/>]*")
_ATTR_NAME = re.compile(r"[^\s/>=][^\s/>=]*")
_UNQUOTED = re.compile(r"[^\s>]*")
_WS = " \t\n\r\f"
_BREAKABLE = " \t"
# Character references that stand for a quote inside a style value.
_QUOTE_REFS = {"&quot;": '"', "&#34;": '"', "&#x22;": '"', "&apos;": "'", "&#39;": "'", "&#x27;": "'"}
_QUOTE_REF = re.compile(r"&(?:quot|apos|#34|#39|#x22|#x27);", re.I)


def wrap_html(html: str, limit: int = DEFAULT_LIMIT) -> str:
    """``html`` with lines longer than ``limit`` UTF-8 octets broken where it is safe.

    A line stays longer than ``limit`` only where it holds no safe break point
    within the limit (a very long URL, say); it is then broken at the first
    safe point after it, if there is one.
    """
    if _fits(html, limit):
        return html
    points = sorted(break_points(html))
    if not points:
        return html
    out = list(html)
    index = 0  # into points
    start = 0  # where the current line starts
    for line in html.split("\n"):
        end = start + len(line)
        if not _fits(line, limit):
            while index < len(points) and points[index] < start:
                index += 1
            chosen = _wrap_line(html, start, end, points, index, limit)
            for point in chosen:
                out[point] = "\n"
        start = end + 1
    return "".join(out)


def _fits(text: str, limit: int) -> bool:
    """Every line of ``text`` within ``limit`` octets (checked cheaply when clearly true)."""
    longest = max((len(line) for line in text.split("\n")), default=0)
    if longest * 4 <= limit:
        return True
    return all(len(line.encode("utf-8")) <= limit for line in text.split("\n") if len(line) > limit // 4)


def _octets(text: str, start: int, end: int) -> int:
    part = text[start:end]
    return len(part) if part.isascii() else len(part.encode("utf-8"))


def _wrap_line(html: str, start: int, end: int, points: list[int], index: int, limit: int) -> list[int]:
    """Greedy: break at the last point that keeps the line within ``limit``, else the first one."""
    chosen: list[int] = []
    line_start = start
    while _octets(html, line_start, end) > limit:
        best = -1
        while index < len(points) and points[index] < end:
            point = points[index]
            if _octets(html, line_start, point) > limit:
                break
            best = point
            index += 1
        if best < 0:
            if index >= len(points) or points[index] >= end:
                break  # nothing left to break at on this line
            best = points[index]  # the line stays too long, but as short as it can be
            index += 1
        chosen.append(best)
        line_start = best + 1
    return chosen


def break_points(html: str) -> Iterator[int]:
    """Every index of a space or tab that may become a line feed."""
    i = 0
    n = len(html)
    while i < n:
        lt = html.find("<", i)
        text_end = n if lt < 0 else lt
        for j in range(i, text_end):
            if html[j] in _BREAKABLE:
                yield j
        if lt < 0:
            return
        i = lt
        rest = html[i + 1: i + 2]
        if html.startswith("<!--", i):
            close = html.find("-->", i + 4)
            i = n if close < 0 else close + 3
        elif rest in ("!", "?", "/"):
            close = html.find(">", i)
            i = n if close < 0 else close + 1
        elif rest and (rest.isascii() and rest.isalpha()):
            name_match = _TAG_NAME.match(html, i + 1)
            assert name_match is not None  # rest is a letter
            i, closed = yield from _tag(html, name_match.end())
            name = name_match.group(0).lower()
            if name in _KEEP and closed:
                i = _skip_content(html, i, name)
        else:
            # A "<" that starts no tag is text ("a < b").
            i += 1


def _tag(html: str, i: int) -> Generator[int, None, tuple[int, bool]]:
    """Break points of one start tag from just after its name; returns (end, properly closed)."""
    n = len(html)
    while i < n:
        ch = html[i]
        if ch in _WS:
            if ch in _BREAKABLE:
                yield i
            i += 1
        elif ch == ">":
            return i + 1, True
        elif ch == "/":
            i += 1
        else:
            name_match = _ATTR_NAME.match(html, i)
            if name_match is None:  # pragma: no cover - the character class takes everything else
                i += 1
                continue
            name = name_match.group(0).lower()
            i = name_match.end()
            j = i
            while j < n and html[j] in _WS:
                j += 1
            if j >= n or html[j] != "=":
                continue  # an attribute without a value; the whitespace is seen next round
            for k in range(i, j):
                if html[k] in _BREAKABLE:
                    yield k
            i = j + 1
            while i < n and html[i] in _WS:
                if html[i] in _BREAKABLE:
                    yield i
                i += 1
            if i < n and html[i] in "\"'":
                quote = html[i]
                close = html.find(quote, i + 1)
                if close < 0:
                    return n, False
                if name == "style":
                    yield from _style_points(html, i + 1, close)
                i = close + 1
            else:
                value = _UNQUOTED.match(html, i)
                i = value.end() if value else i
    return n, False


def _style_points(html: str, start: int, end: int) -> Iterator[int]:
    """Whitespace in a style value outside CSS strings, parentheses and escapes."""
    quote = ""
    depth = 0
    i = start
    while i < end:
        ch = html[i]
        if ch == "&":
            ref = _QUOTE_REF.match(html, i, end)
            if ref is not None:
                ch = _QUOTE_REFS[ref.group(0).lower()]
                i = ref.end() - 1
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch in _BREAKABLE and depth == 0 and html[i - 1] != "\\":
            yield i
        i += 1


def _skip_content(html: str, i: int, name: str) -> int:
    """The index just after the content of a raw or preformatted element (at its end tag)."""
    if name == "plaintext":
        return len(html)
    match = re.compile(rf"</{re.escape(name)}[\s/>]", re.I).search(html, i)
    return len(html) if match is None else match.start()
