"""Per-recipient values: placeholder tokens at render time, slots after inlining.

The renderer runs Jinja and the CSS inliner once, with a token (plain ASCII
letters and digits, so escaping, inlining and serialising leave it alone)
wherever a template writes a per-recipient value. ``split_html`` then cuts the
inlined page at those tokens; each slot gets the escaping that lxml's HTML
serialiser would have applied to a real value at that spot, so filling a slot
gives byte-for-byte what a full render for that recipient gives.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from cepletter.errors import TemplateError
from cepletter.render.rendered import SlotTemplate

Escaper = Callable[[str], str]

UNSUBSCRIBE_KEY = "unsubscribe_url"
FALLBACK_SEP = "|fallback:"
GREETING_SEP = "|greeting:"  # key: recipient.name|greeting:<length>:<line with {name}>|fallback:<line>


# What to write instead of taking a per-recipient value apart in a template.
COLUMN_HINT = ("Add a column with the part you want to the subscriber list (e.g. first_name) and print it: "
               "{{ recipient.first_name }}; print other values as they are, or with "
               "{{ recipient.name | fallback(\"reader\") }}.")


class SlotMisuse(Exception):
    """A template tested, compared or took apart a per-recipient value (render makes it a TemplateError)."""

    def __init__(self, message: str, hint: str = 'Print the value as it is, or use '
                 '{{ recipient.name | fallback("reader") }}.') -> None:
        super().__init__(message)
        self.hint = hint


class Slot(str):
    """The token standing for one per-recipient value while the template renders.

    A template may print it (escaped or not) but not test it: its value is
    only known per recipient, after rendering.
    """

    key: str
    known_nonempty: bool
    registry: SlotRegistry

    def __new__(cls, token: str, key: str, registry: SlotRegistry, known_nonempty: bool = False) -> Slot:
        obj = super().__new__(cls, token)
        obj.key = key
        obj.registry = registry
        obj.known_nonempty = known_nonempty
        return obj

    @property
    def shown(self) -> str:
        """The value as a template writes it: ``recipient.name | fallback("reader")``."""
        if GREETING_SEP in self.key:
            return "greeting"
        if FALLBACK_SEP not in self.key:
            return self.key
        name, default = self.key.split(FALLBACK_SEP, 1)
        return f'{name} | fallback("{default}")'

    def _misuse(self, what: str, hint: str | None = None) -> NoReturn:
        message = f"{self.shown} is filled in per subscriber after rendering, so a template cannot {what} it"
        raise SlotMisuse(message, hint) if hint else SlotMisuse(message)

    # Taking the value apart would work on the token that stands for it, not on
    # the subscriber's value: `recipient.name[:1]` gave "c" for everyone and
    # `| length` the token's length. Refused, with the template's line.
    def __getitem__(self, index: object) -> NoReturn:  # type: ignore[override]
        shown = "[:...]" if isinstance(index, slice) else f"[{index!r}]"
        self._misuse(f"take part of (`{self.shown}{shown}`)", COLUMN_HINT)

    def __len__(self) -> int:
        self._misuse("measure (`| length`)", "Print the value as it is: its length differs per subscriber.")

    def __iter__(self) -> NoReturn:  # type: ignore[override]
        self._misuse("take apart (`| first`, `| list`, a for loop)", COLUMN_HINT)

    def __contains__(self, other: object) -> bool:
        self._misuse("search (`in`)")

    def __bool__(self) -> bool:
        if self.known_nonempty:
            return True
        self._misuse("test (`if`)")

    def __eq__(self, other: object) -> bool:
        self._misuse("compare")

    def __ne__(self, other: object) -> bool:
        self._misuse("compare")

    def __lt__(self, other: object) -> bool:
        self._misuse("compare")

    __le__ = __gt__ = __ge__ = __lt__
    __hash__ = str.__hash__


def _refuse(name: str) -> Any:
    def method(self: Slot, *args: object, **kwargs: object) -> NoReturn:
        self._misuse(f"apply .{name}() (directly, or through a filter such as | upper) to", COLUMN_HINT)

    method.__name__ = name
    return method


# Every text method (split, upper, strip, replace, startswith, ...) would work on
# the token as well; printing needs none of them (escaping and joining read the
# characters directly).
for _name in [n for n in dir(str) if not n.startswith("_")]:
    setattr(Slot, _name, _refuse(_name))


@dataclass
class SlotRegistry:
    """Hands out one token per value key during a render and remembers them."""

    salt: str = field(default_factory=lambda: secrets.token_hex(5))
    tokens: dict[str, str] = field(default_factory=dict)  # token -> key

    def slot(self, key: str, known_nonempty: bool = False) -> Slot:
        for token, existing in self.tokens.items():
            if existing == key:
                return Slot(token, key, self, known_nonempty)
        token = f"cepslot{self.salt}n{len(self.tokens)}x"
        self.tokens[token] = key
        return Slot(token, key, self, known_nonempty)

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"cepslot{self.salt}n(\d+)x")

    @property
    def loose_pattern(self) -> re.Pattern[str]:
        """Any trace of a token, also one a filter has changed (upper, title, truncate...)."""
        return re.compile(rf"cepslot{self.salt}", re.I)

    def keys(self) -> set[str]:
        return set(self.tokens.values())


class TokenRecipient:
    """``recipient`` in templates while rendering once for everyone."""

    def __init__(self, registry: SlotRegistry) -> None:
        self._registry = registry

    def __getattr__(self, name: str) -> Slot:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._registry.slot(f"recipient.{name}")

    def __getitem__(self, name: str) -> Slot:
        return self._registry.slot(f"recipient.{name}")


class ValueMarks:
    """Marks around each real value in a full render, where the fast path has a token.

    Line layout treats a marked value as it treats a token (no length, never
    broken), so a full render lays out its lines the way the once-per-issue
    render does; the marks are removed afterwards.
    """

    def __init__(self) -> None:
        salt = secrets.token_hex(5)
        self.open = f"cepval{salt}o"
        self.close = f"cepval{salt}c"
        self.pattern = re.compile(rf"{self.open}.*?{self.close}", re.S)

    def mark(self, value: str) -> MarkedValue:
        return MarkedValue(value, self)

    def strip(self, page: str) -> str:
        return page.replace(self.open, "").replace(self.close, "")


class MarkedValue(str):
    """A real value between marks; ``plain`` is the value itself."""

    plain: str
    marks: ValueMarks

    def __new__(cls, plain: str, marks: ValueMarks) -> MarkedValue:
        obj = super().__new__(cls, f"{marks.open}{plain}{marks.close}")
        obj.plain = plain
        obj.marks = marks
        return obj


class ValueRecipient:
    """``recipient`` in templates for a full render with one subscriber's real values."""

    def __init__(self, values: Mapping[str, str], marks: ValueMarks | None = None) -> None:
        self._values = values
        self._marks = marks

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> str:
        value = self._values.get(f"recipient.{name}", "")
        return self._marks.mark(value) if self._marks is not None else value


def fallback(value: Any, default: str = "") -> Any:
    """The `fallback` filter: ``{{ recipient.name | fallback("reader") }}``.

    With tokens it becomes a slot of its own (key ``recipient.name|fallback:reader``)
    whose value is worked out per recipient; with real values it is ``value or default``.
    """
    if isinstance(value, Slot):
        key = f"{value.key}{FALLBACK_SEP}{default}"
        return value.registry.slot(key, known_nonempty=bool(default))
    if isinstance(value, MarkedValue):
        return value.marks.mark(value.plain or default)
    return value if value else default


def greeting(value: Any, line: str, fallback_line: str) -> Any:
    """The greeting for the subscriber whose name is ``value``: ``line`` with {name} filled in,
    or ``fallback_line`` for a subscriber without a name.

    With tokens it is a slot of its own, worked out per recipient (see `resolve_value`).
    """
    if "{name}" not in line:
        return line
    if isinstance(value, Slot):
        # The line's length goes first, so that no text in it can be read as a separator.
        key = f"{value.key}{GREETING_SEP}{len(line)}:{line}{FALLBACK_SEP}{fallback_line}"
        return value.registry.slot(key, known_nonempty=bool(fallback_line))
    if isinstance(value, MarkedValue):
        return value.marks.mark(line.replace("{name}", value.plain) if value.plain else fallback_line)
    return line.replace("{name}", value) if value else fallback_line


def resolve_value(key: str, base: Mapping[str, str]) -> str:
    """The value of ``key`` for a recipient whose plain values are ``base``."""
    if GREETING_SEP in key:
        name, rest = key.split(GREETING_SEP, 1)
        length, _, rest = rest.partition(":")
        line, default = rest[: int(length)], rest[int(length) + len(FALLBACK_SEP):]
        value = base.get(name, "")
        return line.replace("{name}", value) if value else default
    if FALLBACK_SEP in key:
        name, default = key.split(FALLBACK_SEP, 1)
        return base.get(name, "") or default
    return base.get(key, "")


# ---------------------------------------------------------------- escaping like lxml

def _serialise(fragment: str) -> str:
    from lxml import etree

    root = etree.fromstring(f"<html><body>{fragment}</body></html>", etree.HTMLParser())
    body = root.find("body")
    if body is None:  # pragma: no cover - lxml always makes a body here
        return ""
    out = str(etree.tostring(body, method="html", encoding="utf-8").decode("utf-8"))
    return out[len("<body>"): -len("</body>")]


# Values made only of these come out of a parse and serialise unchanged (but
# for & as &amp;) in any attribute, URL attributes included: they are neither
# percent-escaped by libxml2 nor quotes.
_PLAIN = re.compile(r"[A-Za-z0-9\-_.!~*()@/:=?;#%&,+]*\Z")
# In text, besides &, < and >, only control characters (and CR, which the
# parser folds) are treated specially.
_TEXT_FAST = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f]*\Z")


def escape_text(value: str) -> str:
    """``value`` as lxml serialises it in element text after a full render."""
    if _TEXT_FAST.match(value):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _serialise(f"<p>{html_lib.escape(value, quote=False)}</p>")[3:-4]


def raw_escape(value: str) -> str:
    """Inside comments, <style> and <script> the parser keeps Jinja's escaping as is."""
    from markupsafe import escape

    # The parser still folds line ends and replaces NUL there, as everywhere.
    return str(escape(value)).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


@dataclass(frozen=True)
class AttributeEscaper:
    """Serialises a whole attribute value (quotes included) as lxml would.

    lxml picks single quotes when the value holds a double quote and no single
    one, so the slot covers the whole quoted value, static parts included.
    """

    tag: str
    name: str
    prefix: str  # the static text before the value, unescaped
    suffix: str
    fast_prefix: str  # the serialised form when the value is plain
    fast_suffix: str

    def __call__(self, value: str) -> str:
        if _PLAIN.match(value):
            return f"{self.fast_prefix}{value.replace('&', '&amp;')}{self.fast_suffix}"
        full = html_lib.escape(self.prefix + value + self.suffix, quote=True)
        out = _serialise(f'<{self.tag} {self.name}="{full}"></{self.tag}>')
        match = re.match(rf"<{re.escape(self.tag)} {re.escape(self.name)}=", out)
        if not match:  # pragma: no cover - lxml always writes name=value
            raise TemplateError(f"cannot place a recipient value in {self.tag} {self.name}")
        end = out.index(">", len(match.group(0)) + 1) if out[match.end()] not in "\"'" else None
        if end is not None:  # pragma: no cover - unquoted value
            return out[match.end(): end]
        quote = out[match.end()]
        close = out.index(quote, match.end() + 1)
        return out[match.end(): close + 1]


def identity(value: str) -> str:
    return value


# ---------------------------------------------------------------- splitting

_MARKUP = re.compile(r"<!--.*?-->|<(style|script)\b[^>]*>.*?</\1\s*>|<[^>]*>", re.S | re.I)
_ATTR = re.compile(r"""([^\s=/>]+)=("[^"]*"|'[^']*')""")


def _spans(page: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, kind) of every comment, raw-text element and tag."""
    for match in _MARKUP.finditer(page):
        text = match.group(0)
        kind = "raw" if text.startswith("<!--") or match.group(1) else "tag"
        yield match.start(), match.end(), kind


def split_html(page: str, registry: SlotRegistry, where: str) -> SlotTemplate:
    """Cut the inlined page at every token into parts and escaping slots."""
    pattern = registry.pattern
    cuts: list[tuple[int, int, str, Escaper]] = []  # (start, end, key, escaper)
    spans = list(_spans(page))
    span_index = 0
    for match in pattern.finditer(page):
        token = match.group(0)
        key = registry.tokens.get(token)
        if key is None:  # pragma: no cover - the salt makes foreign tokens impossible
            continue
        start = match.start()
        while span_index < len(spans) and spans[span_index][1] <= start:
            span_index += 1
        inside = span_index < len(spans) and spans[span_index][0] <= start
        if not inside:
            cuts.append((match.start(), match.end(), key, escape_text))
            continue
        s_start, s_end, kind = spans[span_index]
        if kind == "raw":
            cuts.append((match.start(), match.end(), key, raw_escape))
            continue
        cut = _attribute_cut(page, s_start, s_end, match, registry, where)
        if cuts and cuts[-1][0] == cut[0]:
            continue  # the same attribute, already cut
        cuts.append(cut)
    parts: list[str] = []
    slots: list[tuple[str, Escaper]] = []
    position = 0
    for start, end, key, escaper in cuts:
        parts.append(page[position:start])
        slots.append((key, escaper))
        position = end
    parts.append(page[position:])
    return SlotTemplate(tuple(parts), tuple(slots))


def _attribute_cut(
    page: str, s_start: int, s_end: int, token_match: re.Match[str], registry: SlotRegistry, where: str
) -> tuple[int, int, str, Escaper]:
    tag_text = page[s_start:s_end]
    tag_name = re.match(r"<\s*([A-Za-z0-9]+)", tag_text)
    offset = token_match.start() - s_start
    for attr in _ATTR.finditer(tag_text):
        v_start, v_end = attr.span(2)
        if not v_start <= offset < v_end:
            continue
        quoted = attr.group(2)
        inner = quoted[1:-1]
        found = registry.pattern.findall(inner)
        if len(found) != 1:
            raise TemplateError(
                f"{where}: the attribute {attr.group(1)}= holds more than one recipient value",
                "Put at most one recipient value (or unsubscribe_url) into one attribute.",
            )
        token = token_match.group(0)
        before, after = inner.split(token, 1)
        escaper = AttributeEscaper(
            tag=tag_name.group(1).lower() if tag_name else "span",
            name=attr.group(1),
            prefix=html_lib.unescape(before),
            suffix=html_lib.unescape(after),
            fast_prefix=quoted[0] + before,
            fast_suffix=after + quoted[-1],
        )
        key = registry.tokens[token]
        return s_start + v_start, s_start + v_end, key, escaper
    raise TemplateError(  # pragma: no cover - a token inside a tag but no attribute
        f"{where}: a recipient value stands inside a tag but not in an attribute value",
        "Use recipient values in text or inside quoted attribute values only.",
    )


def split_text(text: str, registry: SlotRegistry) -> SlotTemplate:
    """The text version: slots without escaping."""
    pattern = registry.pattern
    parts: list[str] = []
    slots: list[tuple[str, Escaper]] = []
    position = 0
    for match in pattern.finditer(text):
        parts.append(text[position: match.start()])
        slots.append((registry.tokens[match.group(0)], identity))
        position = match.end()
    parts.append(text[position:])
    return SlotTemplate(tuple(parts), tuple(slots))


def check_no_stray_tokens(template: SlotTemplate, registry: SlotRegistry, where: str) -> None:
    """A filter that changed a token (``| upper``, ``| truncate``) would leave it unfilled."""
    loose = registry.loose_pattern
    for part in template.parts:
        if loose.search(part):
            raise TemplateError(
                f"{where}: a recipient value was changed by a filter before it was filled in",
                "Print recipient values as they are, e.g. {{ recipient.name }} or "
                "{{ recipient.name | fallback(\"reader\") }}; other filters cannot apply to them.",
            )
