"""Feed HTML is untrusted: clean it to an allow-list, make URLs absolute, and
derive the plain text, an excerpt, a title and an image from it.

nh3 (the Rust ammonia sanitiser) does the cleaning; everything after it works
on nh3's output, which is normalised (double-quoted, escaped attributes), so
the small regular expressions below are reliable there.
"""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import urljoin, urlsplit

import nh3

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "cite", "code", "dd", "del", "dl", "dt", "em",
    "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
    "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "u", "ul",
})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "width", "height", "title"},
}
# Removed together with everything inside them (not just the tags).
DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "object", "embed", "form", "noscript", "template", "svg",
    "math", "select", "textarea", "button", "frameset", "frame", "applet", "audio", "video",
    "canvas", "head", "title",
})
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})

# Images that are not content: counters, share buttons, author pictures, emoji.
_NOT_CONTENT_IMAGE = re.compile(
    r"gravatar\.com|/avatar|avatars?\d*\.|[/_.-]pixel[/_.?-]|/1x1[./]|/blank\.gif|/spacer\.gif"
    r"|feeds\.feedburner\.com/~|feedsportal\.com|stats\.wordpress\.com|pixel\.wp\.com"
    r"|doubleclick\.net|cpx\.golem\.de|/emoji/|s\.w\.org/images/core/emoji|/smilies/"
    r"|share[-_]?buttons?|/icons?/(?:share|social)|feedburner"
    r"|(?:twitter|facebook|linkedin|reddit|whatsapp|email|mail|rss)[-_]?(?:icon|logo|share|button)",
    re.I,
)
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.I)
_ATTR = re.compile(r"""([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+)""")
_URL_ATTR = re.compile(r'\s(href|src)="([^"]*)"')
_CLEAN_IMG = re.compile(r"<img\b[^>]*>")
# Only run on nh3's output, whose tag names are lower case.
_BLOCK = re.compile(r"</?(?:p|br|li|ul|ol|dl|dt|dd|h[2-6]|blockquote|pre|figure|figcaption|hr)\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_NEWLINES = re.compile(r"\s*\n\s*")

_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(DROPPED_WITH_CONTENT),
    attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(LINK_SCHEMES),
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def attributes(tag: str) -> dict[str, str]:
    """The attributes of one start tag, names lower-cased, values unescaped."""
    out: dict[str, str] = {}
    for name, raw in _ATTR.findall(tag):
        value = raw[1:-1] if raw[:1] in "\"'" else raw
        out.setdefault(name.lower(), htmllib.unescape(value))
    return out


def _tiny(attrs: dict[str, str], limit: int) -> bool:
    for key in ("width", "height"):
        value = attrs.get(key, "").strip().removesuffix("px")
        if value.isdigit() and int(value) < limit:
            return True
    return False


def is_content_image(url: str, attrs: dict[str, str] | None = None, *, min_size: int = 2) -> bool:
    """False for tracking pixels, avatars, emoji and other images that are not the story's."""
    if not url or _NOT_CONTENT_IMAGE.search(url):
        return False
    return not (attrs and _tiny(attrs, min_size))


def _drop_non_content_images(raw: str) -> str:
    if "<img" not in raw and "<IMG" not in raw:
        return raw

    def keep(match: re.Match[str]) -> str:
        attrs = attributes(match.group(0))
        return match.group(0) if is_content_image(attrs.get("src", ""), attrs) else ""

    return _IMG_TAG.sub(keep, raw)


def absolute_url(url: str, base: str | None, schemes: frozenset[str] = LINK_SCHEMES) -> str | None:
    """``url`` made absolute against ``base``; None unless it ends up with one of ``schemes``."""
    url = url.strip()
    if not url:
        return None
    scheme = urlsplit(url).scheme.lower() if ":" in url else ""
    if not scheme:
        if not base or urlsplit(base).scheme.lower() not in ("http", "https"):
            return None
        try:
            url = urljoin(base, url)
        except ValueError:
            return None
        scheme = urlsplit(url).scheme.lower()
    if scheme not in schemes:
        return None
    if scheme in ("http", "https") and not urlsplit(url).netloc:
        return None
    return url


def _absolutize(cleaned: str, base: str | None) -> str:
    def fix_attr(match: re.Match[str]) -> str:
        name, value = match.group(1), htmllib.unescape(match.group(2))
        fixed = absolute_url(value, base, IMAGE_SCHEMES if name == "src" else LINK_SCHEMES)
        return "" if fixed is None else f' {name}="{htmllib.escape(fixed, quote=True)}"'

    out = _URL_ATTR.sub(fix_attr, cleaned) if "href=" in cleaned or "src=" in cleaned else cleaned
    if "<img" not in out:
        return out
    # An image whose address could not be kept is no image at all.
    return _CLEAN_IMG.sub(lambda m: m.group(0) if ' src="' in m.group(0) else "", out)


# The HTML parser under nh3 takes time quadratic in the nesting depth (100,000
# nested <div>s take minutes); real posts nest a few levels. Tags deeper than
# this are dropped before cleaning, their text kept.
MAX_DEPTH = 100
_TAG_TOKEN = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*>")
_NOT_NESTING = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "p", "li", "dt", "dd", "option", "tr", "td", "th",
})


def limit_depth(raw: str, limit: int = MAX_DEPTH) -> str:
    """``raw`` without the tags nested deeper than ``limit`` (an approximation that nh3 then cleans)."""
    if raw.count("<") <= limit:
        return raw
    depth = 0
    out: list[str] = []
    last = 0
    for match in _TAG_TOKEN.finditer(raw):
        closing, name = match.group(1), match.group(2).lower()
        if name in _NOT_NESTING or match.group(0).endswith("/>"):
            continue
        drop = depth >= limit if not closing else depth > limit
        depth = max(depth - 1, 0) if closing else depth + 1
        if drop:
            out.append(raw[last:match.start()])
            last = match.end()
    if not out:
        return raw
    out.append(raw[last:])
    return "".join(out)


def sanitize_html(raw: str | None, base: str | None = None) -> str:
    """Untrusted HTML → allow-listed HTML with absolute http(s)/mailto links."""
    if not raw:
        return ""
    return _absolutize(_clean_stable(_drop_non_content_images(limit_depth(raw))), base).strip()


def _clean_stable(raw: str) -> str:
    """Clean until cleaning changes nothing more.

    The cleaner can write a tree its own parser reads differently (``<a>`` kept
    nested inside ``<a>`` through ``<marquee>``); cleaning that output again gives
    the settled form, so that an issue file re-cleaned at render time stays the same.
    """
    clean = _CLEANER.clean(raw)
    for _ in range(3):
        again = _CLEANER.clean(clean)
        if again == clean:
            break
        clean = again
    return clean


def text_of(clean: str) -> str:
    """Plain text of sanitised HTML: paragraphs separated by blank lines."""
    if "<" not in clean and "&" not in clean:
        return _SPACES.sub(" ", clean).strip()
    text = _BLOCK.sub("\n", clean)
    text = htmllib.unescape(_TAG.sub("", text))
    text = _SPACES.sub(" ", text)
    return _NEWLINES.sub("\n", text).strip()


# Bidi embeddings, overrides and isolates: in a title they can make text read
# backwards ("Invoice \u202efdp.exe") on a terminal, in the issue file and in the email.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def plain_text(raw: str | None, *, html: bool = True) -> str:
    """One line of text from a short untrusted field (a title), without bidi controls.

    ``html``: the field holds HTML, whose tags are removed and entities decoded;
    otherwise it is text already, and ``Vec<T>`` or ``&amp;`` stay as they are.
    """
    if not raw:
        return ""
    if not html:
        pass
    elif "<" in raw:
        raw = _CLEANER.clean(limit_depth(raw))
        raw = htmllib.unescape(_TAG.sub("", raw))
    elif "&" in raw:
        raw = htmllib.unescape(raw)
    return " ".join(_BIDI_CONTROLS.sub("", raw).split())


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if not text[limit - 1].isspace():  # the cut fell inside a word: drop that word
        space = cut.rfind(" ")
        if space > limit // 2:
            cut = cut[:space]
    return cut.rstrip(" ,;:.-–—(") + "…"


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s")


def title_from_text(text: str, limit: int = 80) -> str:
    """A title for an untitled item: its first sentence, shortened."""
    first = text.strip().split("\n", 1)[0]
    first = _SENTENCE_END.split(first, 1)[0]
    return shorten(first, limit)


_TRAILER = re.compile(
    r"^(?:the post .+ appeared first on .+|continue reading.*|read more.*|\[?…\]?|\[\.\.\.\])$",
    re.I,
)
_TAIL_ELLIPSIS = re.compile(r"\s*(?:\[(?:…|\.\.\.)\]|\[&hellip;\])\s*$")
# "… Read More Here →", "Continue reading »" at the end of a feed's excerpt.
_TAIL_MORE = re.compile(
    r"(\s*…)?\s*(?:read more|continue reading|weiterlesen|lire la suite|leer más|läs mer)\b[^.!?]{0,30}$",
    re.I,
)


_MORE_WORDS = ("read more", "continue reading", "weiterlesen", "lire la suite", "leer más", "läs mer")


def _tidy_tail(para: str) -> str:
    # Cheap tests first: the regular expressions are only run where they can match.
    if "]" in para[-12:]:
        para = _TAIL_ELLIPSIS.sub("…", para)
    tail = para[-60:].lower()
    if any(word in tail for word in _MORE_WORDS):
        para = _TAIL_MORE.sub(lambda m: "…" if m.group(1) else "", para)
    return para


def excerpt(clean: str, limit: int = 600) -> str:
    """A newsletter card's summary: the first paragraphs' text, up to ``limit`` characters.

    Returned as simple HTML paragraphs (text is escaped). Feed "read more" and
    "The post ... appeared first on ..." lines are left out.
    """
    return excerpt_of_text(text_of(clean), limit)


def excerpt_of_text(text: str, limit: int = 600) -> str:
    """``excerpt`` for text already taken out of the HTML with ``text_of``."""
    paragraphs = []
    total = 0
    for para in text.split("\n"):
        para = _tidy_tail(para.strip())
        if not para or _TRAILER.match(para):
            continue
        if total and total + len(para) > limit:
            break
        room = limit - total
        if len(para) > room:
            para = shorten(para, room)
        paragraphs.append(para)
        total += len(para)
        if total >= limit:
            break
    return "".join(f"<p>{htmllib.escape(p, quote=False)}</p>" for p in paragraphs)


def first_image(clean: str) -> str | None:
    """The first content image in sanitised HTML (already absolute), if any."""
    if "<img" not in clean:
        return None
    for match in _CLEAN_IMG.finditer(clean):
        attrs = attributes(match.group(0))
        src = attrs.get("src", "")
        if src and is_content_image(src, attrs, min_size=60):
            return src
    return None
