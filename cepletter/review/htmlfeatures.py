"""Which HTML and CSS features an email uses, named by caniemail's feature slugs.

The HTML is read with the standard library's parser; CSS (style attributes
and <style> blocks, with their at-rules) with a small scanner that is enough
for email CSS. The result maps each slug to how often and where it was seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Usage:
    """How often a feature is used, with a few examples of where."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        self.count += 1
        if example not in self.examples and len(self.examples) < 3:
            self.examples.append(example)


@dataclass
class Features:
    used: dict[str, Usage] = field(default_factory=dict)
    unknown_css: set[str] = field(default_factory=set)  # properties caniemail has no data for

    def add(self, slug: str, example: str) -> None:
        self.used.setdefault(slug, Usage()).add(example)


# Elements whose caniemail slug is not simply "html-<tag>".
_ELEMENT_SLUGS = {
    **{f"h{n}": "html-h1-h6" for n in range(1, 7)},
    **{tag: "html-lists" for tag in ("ul", "ol", "dl")},
    **{tag: "html-semantics" for tag in (
        "article", "aside", "details", "figcaption", "figure", "footer", "header",
        "main", "mark", "nav", "section", "summary", "time")},
    "map": "html-image-maps",
}
_ATTRIBUTE_SLUGS = {
    "align": "html-align", "valign": "html-valign", "width": "html-width", "height": "html-height",
    "cellpadding": "html-cellpadding", "cellspacing": "html-cellspacing",
    "background": "html-background", "dir": "html-dir", "lang": "html-lang", "role": "html-role",
    "target": "html-target", "hidden": "html-hidden", "srcset": "html-srcset", "sizes": "html-srcset",
    "loading": "html-loading-attribute", "required": "html-required", "popover": "html-popover",
    "usemap": "html-image-maps", "inert": "css-inert-attribute",
}
_IMAGE_TYPES = {
    "jpg": "image-jpg", "jpeg": "image-jpg", "png": "image-png", "gif": "image-gif",
    "webp": "image-webp", "svg": "image-svg", "avif": "image-avif", "bmp": "image-bmp",
    "tif": "image-tiff", "tiff": "image-tiff", "ico": "image-ico", "heic": "image-heif",
    "heif": "image-heif", "apng": "image-apng",
}
# CSS properties that share one caniemail feature.
_PROPERTY_SLUGS = {
    "position": "css-position", "top": "css-left-right-top-bottom", "left": "css-left-right-top-bottom",
    "right": "css-left-right-top-bottom", "bottom": "css-left-right-top-bottom",
    "gap": "css-gap", "row-gap": "css-gap", "column-gap": "css-gap",
    "inset": "css-inset", "overflow-x": "css-overflow", "overflow-y": "css-overflow",
    "word-wrap": "css-word-wrap", "block-size": "css-block-inline-size",
    "margin-inline": "css-margin-inline-block", "margin-block": "css-margin-inline-block",
    "padding-inline": "css-padding-inline-block", "padding-block": "css-padding-inline-block",
    "border-inline": "css-border-inline-block", "border-block": "css-border-inline-block",
}
_PREFIX_SLUGS = (
    ("margin-inline-", "css-margin-inline-start-end"), ("margin-block-", "css-margin-block-start-end"),
    ("padding-inline-", "css-padding-inline-start-end"), ("padding-block-", "css-padding-block-start-end"),
    ("border-inline-", "css-border-inline-block-individual"),
    ("border-block-", "css-border-inline-block-individual"),
    ("grid-template", "css-grid-template"), ("column-", "css-column-layout-properties"),
    ("inset-", "css-inset"), ("margin-", "css-margin"), ("padding-", "css-padding"), ("border-", "css-border"),
)
_FUNCTION_SLUGS = {
    "rgb": "css-rgb", "rgba": "css-rgba", "linear-gradient": "css-linear-gradient",
    "repeating-linear-gradient": "css-linear-gradient", "radial-gradient": "css-radial-gradient",
    "repeating-radial-gradient": "css-radial-gradient", "conic-gradient": "css-conic-gradient",
    "calc": "css-unit-calc", "var": "css-variables", "min": "css-function-min", "max": "css-function-max",
    "clamp": "css-function-clamp", "light-dark": "css-function-light-dark",
    "lch": "css-modern-color", "oklch": "css-modern-color", "lab": "css-modern-color", "oklab": "css-modern-color",
}
_MEDIA_FEATURES = (
    ("prefers-color-scheme", "css-at-media-prefers-color-scheme"),
    ("prefers-reduced-motion", "css-at-media-prefers-reduced-motion"),
    ("orientation", "css-at-media-orientation"),
    ("hover", "css-at-media-hover"),
    ("device-pixel-ratio", "css-at-media-device-pixel-ratio"),
)
_FUNCTION = re.compile(r"([a-z][a-z-]*)\(", re.I)
_UNIT = re.compile(r"(?<![\w#.-])-?(?:\d+\.?\d*|\.\d+)(px|em|rem|vh|vw|vmin|vmax|pt|pc|cm|mm|in|ch|ex|%)(?![\w-])", re.I)
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_SYSTEM_FONTS = re.compile(r"\b(system-ui|ui-serif|ui-sans-serif|ui-rounded|ui-monospace)\b", re.I)
_INTRINSIC = re.compile(r"\b(fit-content|min-content|max-content)\b", re.I)


def scan(html: str, known: Iterable[str]) -> Features:
    """The features ``html`` uses; ``known`` are the slugs the support table has."""
    scanner = _Scanner(frozenset(known))
    try:
        scanner.feed(html)
        scanner.close()
    except AssertionError:
        # The standard parser gives up on some malformed declarations ("<![0"):
        # report what was seen up to there rather than fail the whole check.
        pass
    return scanner.features


class _Scanner(HTMLParser):
    def __init__(self, known: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.known = known
        self.features = Features()
        self._in_style = False

    def _add(self, slug: str, example: str) -> None:
        if slug in self.known:
            self.features.add(slug, example)

    def handle_decl(self, decl: str) -> None:
        if decl.strip().lower() == "doctype html":
            self._add("html-doctype", "<!DOCTYPE html>")

    def handle_comment(self, data: str) -> None:
        self._add("html-comments", "<!-- -->")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        element = f"<{tag}>"
        if tag == "input":
            self._add(f"html-input-{values.get('type', 'text').lower()}", element)
        elif tag == "button":
            self._add(f"html-button-{values.get('type', 'submit').lower()}", element)
        else:
            self._add(_ELEMENT_SLUGS.get(tag, f"html-{tag}"), element)
        self._in_style = tag == "style"
        for name in values:
            if name in _ATTRIBUTE_SLUGS:
                self._add(_ATTRIBUTE_SLUGS[name], f"{name}= on {element}")
            elif name.startswith("aria-"):
                self._add(f"html-{name}", f"{name}= on {element}")
        href = values.get("href", "").strip().lower()
        if tag == "a" and href.startswith("mailto:"):
            self._add("html-mailto-links", "mailto: link")
        elif tag == "a" and href.startswith("#") and len(href) > 1:
            self._add("html-anchor-links", "link to #anchor")
        if tag == "meta" and values.get("name", "").lower() in ("color-scheme", "supported-color-schemes"):
            self._add("html-meta-color-scheme", f'<meta name="{values["name"]}">')
        if tag == "img":
            self._image(values.get("src", ""))
        if values.get("style"):
            self._declarations(values["style"], f"<{tag} style>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._in_style = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._stylesheet(data)

    def _image(self, src: str) -> None:
        src = src.strip()
        if src.lower().startswith("data:"):
            self._add("image-base64", "data: image")
            return
        path = src.split("?", 1)[0].split("#", 1)[0]
        ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
        if ext in _IMAGE_TYPES:
            self._add(_IMAGE_TYPES[ext], f".{ext} image")

    # ------------------------------------------------------------ CSS

    def _stylesheet(self, css: str) -> None:
        if _COMMENT.search(css):
            self._add("css-comments", "/* */ in <style>")
        self._rules(_COMMENT.sub(" ", css))

    def _rules(self, css: str) -> None:
        pos = 0
        while pos < len(css):
            brace = css.find("{", pos)
            semi = css.find(";", pos)
            if semi != -1 and (brace == -1 or semi < brace):
                self._at_statement(css[pos:semi].strip())
                pos = semi + 1
                continue
            if brace == -1:
                return
            prelude = css[pos:brace].strip()
            end = _matching(css, brace)
            body = css[brace + 1:end]
            pos = end + 1
            if prelude.startswith("@"):
                self._at_block(prelude, body)
            elif prelude:
                self._selectors(prelude)
                self._declarations(body, f"<style> {_short(prelude)}")

    def _at_statement(self, statement: str) -> None:
        if statement.lower().startswith("@import"):
            self._add("css-at-import", "@import")

    def _at_block(self, prelude: str, body: str) -> None:
        name = prelude[1:].split(None, 1)[0].split("(", 1)[0].lower()
        if name == "media":
            self._add("css-at-media", f"{_short(prelude)}")
            lowered = prelude.lower()
            for feature, slug in _MEDIA_FEATURES:
                if feature in lowered:
                    self._add(slug, _short(prelude))
            self._rules(body)
        elif name == "supports":
            self._add("css-at-supports", _short(prelude))
            self._rules(body)
        elif name == "font-face":
            self._add("css-at-font-face", "@font-face")
        elif name.endswith("keyframes"):
            self._add("css-at-keyframes", _short(prelude))

    def _selectors(self, prelude: str) -> None:
        where = f"selector {_short(prelude)}"
        selectors = [s.strip() for s in prelude.split(",") if s.strip()]
        if len(selectors) > 1:
            self._add("css-selector-grouping", where)
        for selector in selectors:
            for match in re.finditer(r"(::?)([a-z-]+)", selector, re.I):
                kind = "element" if match.group(1) == "::" or match.group(2).lower() in (
                    "before", "after", "first-letter", "first-line") else "class"
                self._add(f"css-pseudo-{kind}-{match.group(2).lower()}", where)
            bare = re.sub(r"::?[a-z-]+(\([^)]*\))?", "", selector, flags=re.I)
            if re.search(r"\[[^\]]*\]", bare):
                self._add("css-selector-attribute", where)
                bare = re.sub(r"\[[^\]]*\]", "[]", bare)
            if "." in bare:
                self._add("css-selector-class", where)
            if "#" in bare:
                self._add("css-selector-id", where)
            if "*" in bare:
                self._add("css-selector-universal", where)
            if re.search(r"(^|[\s>+~])[a-z]", bare, re.I):
                self._add("css-selector-type", where)
            if ">" in bare:
                self._add("css-selector-child", where)
            if "+" in bare:
                self._add("css-selector-adjacent-sibling", where)
            if "~" in bare:
                self._add("css-selector-general-sibling", where)
            compounds = re.split(r"\s*[>+~]\s*|\s+", bare.strip())
            if re.search(r"[^\s>+~]\s+[^\s>+~]", bare.strip()):
                self._add("css-selector-descendant", where)
            if any(len(re.findall(r"(^[a-z][\w-]*|[.#][\w-]+|\[\])", c, re.I)) > 1 for c in compounds):
                self._add("css-selector-chaining", where)

    def _declarations(self, block: str, where: str) -> None:
        for declaration in _split_declarations(block):
            name, _, value = declaration.partition(":")
            prop = name.strip().lower()
            value = value.strip()
            if not prop or not value:
                continue
            example = f"{prop} in {where}"
            if "!important" in value.lower().replace(" ", ""):
                self._add("css-important", example)
                value = re.sub(r"!\s*important", "", value, flags=re.I).strip()
            slugs = _property_slugs(prop, value.lower(), self.known)
            for slug in slugs:
                self._add(slug, example)
            if not slugs:
                self.features.unknown_css.add(prop)
            for match in _FUNCTION.finditer(value):
                function_slug = _FUNCTION_SLUGS.get(match.group(1).lower())
                if function_slug:
                    self._add(function_slug, f"{match.group(1).lower()}() in {where}")
            for match in _UNIT.finditer(value):
                unit = match.group(1).lower()
                self._add("css-unit-percent" if unit == "%" else f"css-unit-{unit}", f"{unit} unit")
            if re.search(r"\binitial\b", value, re.I):
                self._add("css-unit-initial", example)
            if _SYSTEM_FONTS.search(value):
                self._add("css-sytem-ui", example)
            if _INTRINSIC.search(value):
                self._add("css-intrinsic-size", example)


def _property_slugs(prop: str, value: str, known: frozenset[str]) -> list[str]:
    if prop.startswith("--"):
        return ["css-variables"]
    if prop == "display":
        first = value.split()[0] if value.split() else ""
        if first in ("flex", "inline-flex"):
            return ["css-display-flex"]
        if first in ("grid", "inline-grid"):
            return ["css-display-grid"]
        return ["css-display-none"] if first == "none" else ["css-display"]
    if prop.endswith("-radius"):
        return ["css-border-radius"] if "-start-" not in prop and "-end-" not in prop else ["css-border-radius-logical"]
    if prop in _PROPERTY_SLUGS:
        return [_PROPERTY_SLUGS[prop]]
    if f"css-{prop}" in known:
        return [f"css-{prop}"]
    for prefix, slug in _PREFIX_SLUGS:
        if prop.startswith(prefix):
            return [slug]
    return []


def _split_declarations(block: str) -> list[str]:
    """Split on ';' outside parentheses and quotes (url(data:...;base64,...) has a ';')."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for index, char in enumerate(block):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == ";" and depth == 0:
            parts.append(block[start:index])
            start = index + 1
    parts.append(block[start:])
    return [p.strip() for p in parts if p.strip()]


def _matching(css: str, open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(css)):
        if css[index] == "{":
            depth += 1
        elif css[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return len(css)


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
