"""Break long lines of HTML only where a line break cannot change what the page means.

An email body sent as 8bit must keep every line within 998 octets (RFC 5322).
Inlined CSS and long paragraphs can make a line longer than that, so
``wrap_html`` turns a space or tab into a line break where HTML treats both
alike:

- in text content, except inside ``<pre>``, ``<textarea>``, ``<script>``,
  ``<style>`` (and ``<title>``, ``<xmp>``, ``<listing>``, ``<plaintext>``),
  whose whitespace is kept as written;
- between the attributes of a tag;
- inside a ``style="..."`` value, outside CSS strings and parentheses;
- inside a ``<style>`` element, outside CSS strings, comments and parentheses.

Never inside another attribute value (a URL stays whole), a comment, a
doctype, or a word. The length of the text stays the same: one whitespace
character becomes one line feed.

Lines that already fit are left as they are, so a page whose lines fit comes
back unchanged, and wrapping a page decides each line on its own. That is what
lets the renderer wrap the page once, with placeholders where recipient values
go: a full render with one recipient's values wraps the same way wherever the
lines holding values fit. (Where a filled-in line would still be too long for
SMTP, the message builder sends that part quoted-printable.)

``compact_html`` goes the other way first: a run of whitespace holding a line
break becomes one space where the page cannot tell the two apart (next to a
block-level tag, and inside ``<style>``), so the template's indentation
leaves no short lines behind. ``layout_html`` does both: a 41 KB newsletter
goes out in about fifty lines instead of four hundred, and a receiving server
reads it line by line.

Both take ``opaque``, a pattern for the spans that hold per-recipient values:
those count as no length and are never changed or broken, so where the lines
fall depends on the template and the issue, never on a recipient's name.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator

DEFAULT_LIMIT = 900

# Elements whose content is not ordinary collapsible text: kept untouched.
_KEEP = frozenset({"pre", "textarea", "script", "style", "title", "xmp", "listing", "plaintext"})
_ATTR_NAME = re.compile(r"[^\s/>=][^\s/>=]*")
_UNQUOTED = re.compile(r"[^\s>]*")
_WS = " \t\n\r\f"
_BREAKABLE = " \t"
_SPACE = re.compile(r"[ \t]")
_LF = re.compile(r"\n")
# Character references that stand for a quote inside a style value.
_QUOTE_REFS = {"&quot;": '"', "&#34;": '"', "&#x22;": '"', "&apos;": "'", "&#39;": "'", "&#x27;": "'"}
_QUOTE_REF = re.compile(r"&(?:quot|apos|#34|#39|#x22|#x27);", re.I)


def layout_html(html: str, limit: int = DEFAULT_LIMIT, opaque: re.Pattern[str] | None = None) -> str:
    """``compact_html`` then ``wrap_html``: few lines, none longer than ``limit`` where avoidable."""
    return wrap_html(compact_html(html, opaque), limit, opaque)


def wrap_html(html: str, limit: int = DEFAULT_LIMIT, opaque: re.Pattern[str] | None = None) -> str:
    """``html`` with lines longer than ``limit`` UTF-8 octets broken where it is safe.

    A line stays longer than ``limit`` only where it holds no safe break point
    within the limit (a very long URL, say); it is then broken at the first
    safe point after it, if there is one. Spans matching ``opaque`` count as
    no length and are never broken.
    """
    measure = _Measure(html, opaque)
    if measure.fits_all(limit):
        return html
    points = [p for p in sorted(break_points(html)) if not measure.inside(p)]
    if not points:
        return html
    out = list(html)
    index = 0  # into points
    for start, end in measure.lines():
        if measure.octets(start, end) > limit:
            while index < len(points) and points[index] < start:
                index += 1
            chosen = _wrap_line(measure, start, end, points, index, limit)
            for point in chosen:
                out[point] = "\n"
    return "".join(out)


class _Measure:
    """Octet lengths of stretches of a page, with the opaque spans left out."""

    def __init__(self, html: str, opaque: re.Pattern[str] | None) -> None:
        self.html = html
        self.spans = [m.span() for m in opaque.finditer(html)] if opaque is not None else []

    def octets(self, start: int, end: int) -> int:
        n = _octets(self.html, start, end)
        for s, e in self.spans:
            if s < end and e > start:
                n -= _octets(self.html, max(s, start), min(e, end))
        return n

    def inside(self, index: int) -> bool:
        return any(s <= index < e for s, e in self.spans)

    def lines(self) -> Iterator[tuple[int, int]]:
        """(start, end) of each line; a line feed inside an opaque span ends no line."""
        start = 0
        for match in _LF.finditer(self.html):
            if not self.spans or not self.inside(match.start()):
                yield start, match.start()
                start = match.end()
        yield start, len(self.html)

    def fits_all(self, limit: int) -> bool:
        """Every line within ``limit`` octets (checked cheaply when clearly true)."""
        if not self.spans and max((len(line) for line in self.html.split("\n")), default=0) * 4 <= limit:
            return True
        return all(end - start <= limit // 4 or self.octets(start, end) <= limit for start, end in self.lines())


def _octets(text: str, start: int, end: int) -> int:
    part = text[start:end]
    return len(part) if part.isascii() else len(part.encode("utf-8"))


def _wrap_line(measure: _Measure, start: int, end: int, points: list[int], index: int, limit: int) -> list[int]:
    """Greedy: break at the last point that keeps the line within ``limit``, else the first one."""
    chosen: list[int] = []
    line_start = start
    while measure.octets(line_start, end) > limit:
        best = -1
        while index < len(points) and points[index] < end:
            point = points[index]
            if measure.octets(line_start, point) > limit:
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
    """Every index of a space or tab that may become a line feed (not in order)."""
    in_start_tags: list[int] = []  # filled while the segments are read
    for kind, start, end, _ in _segments(html, in_start_tags):
        if kind == "text":
            for space in _SPACE.finditer(html, start, end):
                yield space.start()
        elif kind == "style":
            yield from _css_points(html, start, end)
    yield from in_start_tags


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
            # "a==' b'": a browser reads the value ='  and a new attribute, Python's
            # parser (and others) a quoted ' b'. Read it the second way: a space that is
            # inside a value for any reader is never a break point.
            while i < n and html[i] == "=":
                i += 1
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
                    yield from _css_points(html, i + 1, close, refs=True)
                i = close + 1
            else:
                value = _UNQUOTED.match(html, i)
                i = value.end() if value else i
    return n, False


def _css_points(
    html: str, start: int, end: int, chars: str = _BREAKABLE, parens: bool = False, refs: bool = False
) -> Iterator[int]:
    """Whitespace (``chars``) in CSS outside strings, comments, escapes and parentheses (unless ``parens``).

    With ``refs`` (a ``style="..."`` value), a character reference such as
    ``&quot;`` counts as the quote it stands for.
    """
    quote = ""
    depth = 0
    i = start
    while i < end:
        ch = html[i]
        if refs and ch == "&":
            ref = _QUOTE_REF.match(html, i, end)
            if ref is not None:
                ch = _QUOTE_REFS[ref.group(0).lower()]
                i = ref.end() - 1
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch == "/" and html.startswith("/*", i):
            close = html.find("*/", i + 2, end)
            i = end if close < 0 else close + 1
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == "\\":
            i += 1
        elif ch in chars and (depth == 0 or parens):
            yield i
        i += 1


def _skip_content(html: str, i: int, name: str) -> int:
    """The index just after the content of a raw or preformatted element (at its end tag)."""
    if name == "plaintext":
        return len(html)
    match = re.compile(rf"</{re.escape(name)}[\s/>]", re.I).search(html, i)
    return len(html) if match is None else match.start()


# ---------------------------------------------------------------- compacting

# Elements whose boxes start or end a line: whitespace next to their tags is
# dropped by layout (or never shown, in <head>), so a line break there is a space.
_BLOCK = frozenset({
    "address", "article", "aside", "base", "blockquote", "body", "br", "caption", "center", "col", "colgroup",
    "dd", "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1",
    "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "hr", "html", "li", "link", "main", "menu",
    "meta", "nav", "ol", "p", "section", "style", "summary", "table", "tbody", "td", "tfoot", "th", "thead",
    "title", "tr", "ul",
})
# A page that keeps whitespace as written somewhere by CSS is left as it is.
_KEEPS_WHITESPACE = re.compile(r"white-space\s*:\s*(?:pre|break-spaces)", re.I)
_RUN = re.compile(r"[ \t\r\f]*\n[ \t\r\n\f]*")
_TAG_START = re.compile(r"</?([A-Za-z][^\s/>]*)")


def compact_html(html: str, opaque: re.Pattern[str] | None = None) -> str:
    """``html`` with each whitespace run that holds a line break made one space where that is the same page.

    In text: runs next to the tag of a block-level element (``<p>``, ``<td>``,
    ``<tr>``, ``<br>``...), outside ``<pre>``, ``<textarea>`` and the other
    elements that keep their whitespace, and only when no CSS on the page
    asks for whitespace to be kept. In a ``<style>`` element: runs outside
    CSS strings and comments. Spans matching ``opaque`` are left alone.
    """
    spans = [m.span() for m in opaque.finditer(html)] if opaque is not None else []
    in_text = _KEEPS_WHITESPACE.search(html) is None
    runs: list[tuple[int, int]] = []
    previous_block = True  # the start of the page is the start of a line
    for kind, start, end, block in _segments(html):
        if kind == "text":
            if in_text:
                for match in _RUN.finditer(html, start, end):
                    s, e = match.span()
                    touches_block = (s == start and previous_block) or (e == end and _block_at(html, end))
                    if touches_block:
                        runs.append((s, e))
        elif kind == "style":
            runs.extend(_css_runs(html, start, end))
        previous_block = block
    if spans:
        runs = [r for r in runs if not any(s < r[1] and e > r[0] for s, e in spans)]
    if not runs:
        return html
    out: list[str] = []
    pos = 0
    for s, e in runs:
        out.append(html[pos:s])
        out.append(" ")
        pos = e
    out.append(html[pos:])
    return "".join(out)


def _block_at(html: str, index: int) -> bool:
    """Whether the markup at ``index`` is the tag of a block-level element."""
    match = _TAG_START.match(html, index)
    return match is not None and match.group(1).lower() in _BLOCK


def _css_runs(html: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Runs of whitespace holding a line break in a style sheet, outside strings and comments."""
    run_start = run_end = -1
    has_break = False
    for i in _css_points(html, start, end, chars=_WS, parens=True):
        if i == run_end:
            run_end = i + 1
        else:
            if has_break:
                yield run_start, run_end
            run_start, run_end, has_break = i, i + 1, False
        has_break = has_break or html[i] == "\n"
    if has_break:
        yield run_start, run_end


def _segments(html: str, tag_points: list[int] | None = None) -> Iterator[tuple[str, int, int, bool]]:
    """(kind, start, end, block) for the text, tags, comments and raw contents of a page, in order.

    ``kind`` is "text", "tag", "other" (a comment, doctype or stray markup),
    "style" (a style sheet's content) or "raw" (other content kept as written);
    ``block`` says whether a tag is a block-level element's. The break points
    inside start tags go into ``tag_points`` when it is given.
    """
    i = 0
    n = len(html)
    while i < n:
        lt = html.find("<", i)
        text_end = n if lt < 0 else lt
        if text_end > i:
            yield "text", i, text_end, False
        if lt < 0:
            return
        i = lt
        rest = html[i + 1: i + 2]
        if html.startswith("<!--", i):
            close = html.find("-->", i + 4)
            end = n if close < 0 else close + 3
            yield "other", i, end, False
            i = end
        elif rest in ("!", "?"):
            close = html.find(">", i)
            end = n if close < 0 else close + 1
            yield "other", i, end, html[i: i + 9].upper() == "<!DOCTYPE"
            i = end
        elif rest == "/" or (rest and rest.isascii() and rest.isalpha()):
            name_match = _TAG_START.match(html, i)
            if name_match is None:  # "</" not followed by a name: markup to skip
                close = html.find(">", i)
                end = n if close < 0 else close + 1
                yield "other", i, end, False
                i = end
                continue
            end, closed = _tag_end(html, name_match.end(), tag_points if rest != "/" else None)
            name = name_match.group(1).lower()
            yield "tag", i, end, name in _BLOCK
            i = end
            if rest != "/" and name in _KEEP and closed:
                content_end = _skip_content(html, i, name)
                if content_end > i:
                    yield ("style" if name == "style" else "raw"), i, content_end, False
                i = content_end
        else:
            yield "text", i, i + 1, False
            i += 1


def _tag_end(html: str, i: int, points: list[int] | None) -> tuple[int, bool]:
    """The end of a tag from just after its name, as ``_tag`` finds it: (end, properly closed).

    The tag's break points go into ``points`` when it is given.
    """
    walker = _tag(html, i)
    while True:
        try:
            point = next(walker)
        except StopIteration as done:
            end, closed = done.value
            return end, closed
        if points is not None:
            points.append(point)
