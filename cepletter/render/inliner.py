"""CSS inlining with premailer: once per issue, offline, and quiet.

premailer logs through cssutils and may warn through ``warnings``; none of
that is for the user's terminal. External stylesheets are never fetched.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Iterable
from typing import Any

# cssutils fetches @import-ed stylesheets itself, whatever premailer's
# allow_network says; an email cannot use @import anyway, so they go.
_IMPORT = re.compile(r"@import\s[^;{}]*;?", re.I)
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.I | re.S)


def drop_imports(page: str) -> str:
    """The page without @import rules in its <style> blocks."""
    return _STYLE.sub(lambda m: m.group(1) + _IMPORT.sub("", m.group(2)) + m.group(3), page)


# How premailer is run: offline, silent, keeping classes and !important.
PREMAILER_OPTIONS: dict[str, object] = {
    "allow_network": False,
    "allow_loading_external_files": False,
    "disable_link_rewrites": True,
    "disable_validation": True,
    "strip_important": False,
    "keep_style_tags": False,
    "remove_classes": False,
    # Its check for floated images parses every image style with full CSS
    # validation, the slowest thing it does on first use; the theme floats no
    # images.
    "align_floating_images": False,
    "cssutils_logging_level": logging.CRITICAL,
}


def load() -> None:
    """Import premailer and cssutils, once per process: apart, so a render can time it as set-up."""
    import cssutils  # noqa: F401
    import premailer  # noqa: F401


def inline_css(page: str) -> str:
    """Move the rules of the page's <style> blocks into style attributes.

    Rules that cannot be inlined (``@media``, pseudo-classes) stay in a <style>
    block, marked ``!important`` so they win over the inline styles.
    """
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)
    logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
    inliner = _premailer_class()(drop_imports(page), **PREMAILER_OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: str = inliner.transform(pretty_print=False)
    return out


@functools.cache
def _premailer_class() -> type[Any]:
    # Built on first use, so that premailer is imported only by commands that render.
    from cssutils.css import CSSComment, CSSUnknownRule
    from premailer import Premailer
    from premailer.premailer import FILTER_PSEUDOSELECTORS, _element_selector_regex, make_important

    class QuickPremailer(Premailer):  # type: ignore[misc]
        """premailer, without parsing again what cssutils has already parsed.

        Each rule's declarations reach premailer's merge step as text that
        cssutils parses a second time; for plain declarations that text says
        what the parse would give, so it is read directly (a sixth of a first
        render). And premailer marks each declaration of a leftover @media
        rule ``!important`` by setting it again, one more parse per value,
        paid on every render; a declaration already written ``!important`` (as
        all of the theme's are) comes out of that unchanged, so it is skipped.
        It also serialises each value once where premailer does it twice. The
        methods are premailer's own (3.10) otherwise, and tests hold their
        output to premailer's, byte for byte.
        """

        def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
            # premailer's method, serialising each value once instead of twice.
            leftover: list[Any] = []
            rules: list[Any] = []
            if not css_body:
                return rules, leftover
            sheet = self._parse_css_string(css_body, validate=not self.disable_validation)
            for rule in sheet:
                if rule.type == rule.MEDIA_RULE:
                    leftover.append(rule)
                    continue
                if rule.type != rule.STYLE_RULE:
                    continue
                normal: list[str] = []
                important: list[str] = []
                for prop in rule.style.getProperties():
                    if prop.priority != "important":
                        normal.append(f"{prop.name}:{prop.value}")
                    elif self.strip_important:
                        important.append(f"{prop.name}:{prop.value}")
                    else:
                        important.append(f"{prop.name}:{prop.value} !important")
                bulk_normal = ";".join(normal)
                bulk_important = ";".join(important)
                bulk_all = ";".join(normal + important)
                if self.disable_validation:
                    _remember_declarations((bulk_normal, bulk_important))
                selectors = (
                    x.strip() for x in rule.selectorText.split(",") if x.strip() and not x.strip().startswith("@")
                )
                for selector in selectors:
                    if (
                        ":" in selector
                        and self.exclude_pseudoclasses
                        and ":" + selector.split(":", 1)[1] not in FILTER_PSEUDOSELECTORS
                    ):
                        leftover.append((selector, bulk_all))
                        continue
                    if "*" in selector and not self.include_star_selectors:
                        continue
                    if selector.startswith(":"):
                        continue
                    id_count = selector.count("#")
                    class_count = selector.count(".")
                    element_count = len(_element_selector_regex.findall(selector))
                    for is_important, bulk in ((1, bulk_important), (0, bulk_normal)):
                        if not bulk:
                            continue
                        specificity = (is_important, id_count, class_count, element_count, ruleset_index, len(rules))
                        rules.append((specificity, selector, bulk))
            return rules, leftover

        def _css_rules_to_string(self, rules: list[Any]) -> str:
            lines = []
            for item in rules:
                if isinstance(item, tuple):
                    k, v = item
                    lines.append(f"{k} {{{make_important(v)}}}")
                else:
                    for rule in item.cssRules:
                        if isinstance(rule, (CSSComment, CSSUnknownRule)):
                            continue
                        # keys(), not iteration: a declaration block iterates over Property objects.
                        names: list[str] = rule.style.keys()
                        for key in names:
                            if _already_important(rule.style, key):
                                continue
                            rule.style[key] = (rule.style.getPropertyValue(key, False), "!important")
                    lines.append(item.cssText)
            return "\n".join(lines)

    return QuickPremailer


def _already_important(style: Any, key: str) -> bool:
    """Whether setting ``key`` to its own value with ``!important`` would change nothing.

    premailer looks the value up by the literal name and the property to
    change up by the normalised one; both must find the same declaration, its
    priority must read exactly ``!important`` (no comment, no capitals), its
    value must not be empty (premailer would delete it) and must hold no
    comment (premailer's copy of the value drops comments). What is left is
    cssutils' own serialisation, which reads back to itself.
    """
    prop = style.getProperty(key)
    return bool(
        prop is not None
        and prop is style.getProperty(key, False)
        and prop.literalpriority == "important"
        and prop.value
        and prop.value == prop.propertyValue.cssText
        and all(isinstance(part, str) for part in prop.seqs[2])
    )


# A declaration as premailer writes it from cssutils' own serialisation, in a
# form so plain (ASCII name; value of words, numbers, #colours and commas; no
# quotes, escapes, functions or comments) that parsing it again gives it back.
_PLAIN_DECLARATION = re.compile(r"([a-z-][a-z0-9-]*):([A-Za-z0-9#%.,+_-]+(?: [A-Za-z0-9#%.,+_-]+)*)( !important)?")


def plain_declarations(bulk: str) -> list[tuple[str, str]] | None:
    """What premailer's ``csstext_to_pairs(bulk, validate=False)`` returns, or None if not plain.

    ``bulk`` is one rule's declarations as premailer joins them
    (``name:value;name:value !important``).
    """
    pairs: list[tuple[str, str]] = []
    for declaration in bulk.split(";"):
        match = _PLAIN_DECLARATION.fullmatch(declaration)
        if match is None:
            return None
        name, value, important = match.groups()
        pairs.append((name, value + " !important" if important else value))
    return pairs


def _remember_declarations(bulks: Iterable[str]) -> None:
    """Put the pairs of plain declarations into premailer's own cache, where its merge step looks first.

    The key is made by the cache's own function, so premailer finds exactly
    what its call would have stored; a premailer or cachetools without those
    attributes just parses, as before. Nothing already cached is replaced.
    """
    from premailer.merge_style import csstext_to_pairs

    cache = getattr(csstext_to_pairs, "cache", None)
    cache_key = getattr(csstext_to_pairs, "cache_key", None)
    lock = getattr(csstext_to_pairs, "cache_lock", None)
    if cache is None or cache_key is None or lock is None:
        return
    for bulk in set(bulks):
        pairs = plain_declarations(bulk)
        if pairs is None:
            continue
        key = cache_key(bulk, validate=False)
        with lock:
            try:
                cache.setdefault(key, pairs)
            except ValueError:  # the cache refuses values it thinks too large
                return
