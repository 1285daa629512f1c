"""The CSS inliner gives exactly what premailer itself gives, byte for byte."""

from __future__ import annotations

import warnings

import pytest

from cepletter.render import inliner
from cepletter.render.renderer import packaged_templates_dir

THEME_BODY = """
<body class="body">
<div class="preheader">Preheader</div>
<table class="bg"><tr><td class="topbar sans"><a href="https://example.org/">View online</a></td></tr>
<tr><td class="masthead"><p class="kicker">CEP</p><h1 class="title">News</h1>
<p class="masthead-date">18 December 2025</p></td></tr>
<tr><td class="accent-bar">&nbsp;</td></tr>
<tr><td class="intro"><p class="greeting">Dear colleagues,</p><p>Intro</p></td></tr>
<tr><td class="section-head"><h2 class="section-title">Mental health</h2></td></tr>
<tr><td class="item-row"><table class="card"><tr><td class="card-image">
<a class="image-link" href="https://example.org/a"><img src="https://example.org/a.jpg" alt="A"></a></td></tr>
<tr><td class="card-body"><p class="meta"><span class="category">Partners</span> · 10 December</p>
<h3 class="item-title"><a href="https://example.org/a">Title</a></h3>
<div class="summary"><p>Summary <a href="https://example.org/r">report</a></p><ul><li>one</li></ul>
<blockquote>quote</blockquote></div><p class="more"><a href="https://example.org/a">Read more</a></p>
</td></tr></table></td></tr>
<tr><td><table class="events"><tr><td class="event"><table><tr><td class="event-date">
<div class="event-day">20</div><div class="event-month">JAN</div></td><td class="event-body">
<p class="event-title"><a href="https://example.org/e">Event</a></p><p class="event-when">Tuesday</p>
</td></tr></table></td></tr><tr><td class="event event-last">Last</td></tr></table></td></tr>
<tr><td class="footer"><p class="footer-name">CEP</p><p><a href="https://example.org/u">Unsubscribe</a></p></td></tr>
</table>
</body>
"""


def page(*stylesheets: str, body: str = THEME_BODY) -> str:
    styles = "".join(f"<style>\n{css}\n</style>\n" for css in stylesheets)
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n{styles}</head>\n{body}</html>\n'


def theme_css(name: str) -> str:
    return (packaged_templates_dir() / name).read_text(encoding="utf-8")


def premailer_reference(html: str) -> str:
    """What premailer's own class makes of ``html`` with the inliner's options."""
    from premailer import Premailer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: str = Premailer(inliner.drop_imports(html), **inliner.PREMAILER_OPTIONS).transform(pretty_print=False)
    return out


def fresh(fn: object, html: str) -> str:
    """``fn(html)`` with premailer's parse cache emptied, so no run sees another's parsed sheets."""
    from premailer.cache import cache

    cache.clear()
    assert callable(fn)
    out: str = fn(html)
    return out


def test_theme_is_inlined_exactly_as_premailer_does() -> None:
    html = page(theme_css("style.css"), theme_css("dark.css"))
    ours = fresh(inliner.inline_css, html)
    assert ours == fresh(premailer_reference, html)
    # The page really went through the inliner: styles moved in, @media rules kept and marked.
    assert 'class="title" style="margin:0; font-size:32px' in ours
    assert "@media screen and (max-width: 599px)" in ours
    assert "font-size: 26px !important" in ours
    assert ".event-date" in ours and "background-color: #0b1f3a !important" in ours


def test_a_second_inlining_in_the_same_process_gives_the_same_page() -> None:
    html = page(theme_css("style.css"), theme_css("dark.css"))
    first = fresh(inliner.inline_css, html)
    # premailer keeps parsed sheets and marks their @media rules in place; the cached sheet is reused here.
    assert inliner.inline_css(html) == first
    assert premailer_reference(html) == first


MEDIA_CASES = {
    "not yet important": "@media (max-width: 600px) { .title { color: red; font-size: 20px } }",
    "mixed priorities": "@media (max-width: 600px) { .title { color: red !important; margin: 0 4px } }",
    "spaced priority": "@media (max-width: 600px) { .title { color: red ! important } }",
    "capital priority": "@media (max-width: 600px) { .title { color: red !IMPORTANT } }",
    "comment in priority": "@media (max-width: 600px) { .title { color: red ! /* why */ important } }",
    "comment in value": "@media (max-width: 600px) { .title { color: red /* why */ !important } }",
    "capital name": "@media (max-width: 600px) { .title { COLOR: red !important; Margin: 0 !important } }",
    "repeated name": (
        "@media (max-width: 600px) { .title { width: 100px !important; width: calc(100% - 2px) !important;"
        " color: red !important; color: blue } }"
    ),
    "fallback values": (
        "@media (max-width: 600px) { .title { background: red !important;"
        " background: rgba(255, 0, 0, 0.5) !important } }"
    ),
    "strings and urls": (
        "@media print { .title { font-family: 'Segoe UI', \"Helvetica Neue\", sans-serif !important;"
        " background-image: url( 'https://example.org/a b.png' ) !important; content: \"a;b\" !important } }"
    ),
    "odd numbers": "@media (max-width: 600px) { .title { margin: .5em +1px -0.0px 00010px !important } }",
    "escapes": (
        "@media (max-width: 600px) { .title { font-family: \"\\201C quote\" !important; color: red !important;"
        " c\\olor: blue !important } }"
    ),
    "colours": "@media (max-width: 600px) { .title { color: #FFF !important; border-color: RED !important } }",
    "unset and empty rule": "@media (max-width: 600px) { .title { color: unset !important } .kicker { } }",
    "pseudo-classes and media": (
        "a:hover { color: red } .title { color: blue }\n"
        "@media (max-width: 600px) { a:hover { color: green !important } .title { padding: 0 !important } }"
    ),
    "comments between rules": (
        "@media (max-width: 600px) { /* phones */ .title { padding: 0 !important } @unknown foo; "
        ".kicker { margin: 0 !important } }"
    ),
    "two media blocks": (
        "@media (max-width: 600px) { .title { padding: 0 !important } }\n"
        "@media (prefers-color-scheme: dark) { .title, .kicker { color: #fff !important } }"
    ),
    "dropped @import": "@import url(https://example.org/x.css);\n@media all { .title { color: red !important } }",
}


@pytest.mark.parametrize("css", list(MEDIA_CASES.values()), ids=list(MEDIA_CASES))
def test_leftover_rules_match_premailer(css: str) -> None:
    html = page(".title { margin: 0 } .kicker { color: #333 }", css)
    ours = fresh(inliner.inline_css, html)
    reference = fresh(premailer_reference, html)
    assert ours == reference
    assert inliner.inline_css(html) == premailer_reference(html) == ours
    # What cannot be inlined stays in the <style> block: every media query, and hover rules.
    assert ours.count("@media") == css.count("@media")
    assert ("a:hover" in ours) == ("a:hover" in css)


def test_already_important_only_for_plain_important_declarations() -> None:
    import cssutils

    sheet = cssutils.parseString(
        ".a { color: red !important; margin: 0; c\\olor: blue !important;"
        " padding: 0 ! /* c */ important; width: 1px !IMPORTANT; height: 2px ! important;"
        " border: 0 /* c */ !important }",
        validate=False,
    )
    style = next(iter(sheet)).style
    assert not inliner._already_important(style, "margin")  # not important: premailer must mark it
    assert not inliner._already_important(style, "color")  # the last one is escaped: the two lookups differ
    assert not inliner._already_important(style, "padding")  # a comment in the priority
    assert not inliner._already_important(style, "width")  # written in capitals
    assert not inliner._already_important(style, "border")  # a comment in the value
    assert inliner._already_important(style, "height")  # spaces are not kept by cssutils


def cssutils_pairs(bulk: str) -> list[tuple[str, str]]:
    """premailer's own reading of a rule's declarations, parsed by cssutils (never from a cache)."""
    import cssutils
    from premailer.merge_style import format_value

    return [(prop.name.strip(), format_value(prop)) for prop in cssutils.parseStyle(bulk, validate=False)]


def theme_bulks() -> list[str]:
    """Every rule's declarations of the theme, as premailer writes them down for its merge step."""
    from premailer import Premailer

    found: list[str] = []
    reader = Premailer("", disable_validation=True, strip_important=False, cache_css_parsing=False)
    for index, name in enumerate(("style.css", "dark.css")):
        rules, _leftover = reader._parse_style_rules(theme_css(name), index)
        found += [bulk for _specificity, _selector, bulk in rules]
    return found


def test_plain_declarations_read_as_cssutils_parses_them() -> None:
    bulks = theme_bulks()
    read = [bulk for bulk in bulks if inliner.plain_declarations(bulk) is not None]
    assert len(read) >= len(bulks) - 2  # all but the font stack with its quoted names
    for bulk in read:
        assert inliner.plain_declarations(bulk) == cssutils_pairs(bulk), bulk


def premailer_bulk(declarations: str) -> str:
    """``declarations`` as premailer hands them to its merge step: cssutils' serialisation, joined."""
    import cssutils

    style = cssutils.parseStyle(declarations, validate=False)
    return ";".join(f"{p.name}:{p.value}" + (" !important" if p.priority else "") for p in style.getProperties())


PLAIN = [
    "color: red",
    "margin: 0 auto; padding: .5em +1px -0.0px 00010px",
    "width: 100%; max-width: 600px !important",
    "font-family: Arial , sans-serif; color: #FFF",
    "border: 1px solid #dde3ea; border-radius: 8px 8px 0 0; -ms-interpolation-mode: bicubic",
    "letter-spacing: 1.5E2px; z-index: -3; line-height: 1.50",
    "COLOR: RED; text-transform: UPPERCASE; opacity: 0.; margin: -.0em",
    "mso-table-lspace: 0pt; color: red ! important",
]
NOT_PLAIN = [
    'font-family:"Segoe UI", sans-serif',
    "background:url(https://example.org/a.png)",
    "width:calc(100% - 2px)",
    "content:'a;b'",
    "color:red /* c */",
    "font:12px/18px Arial",
    "c\\olor:red",
    "color: red",
    "color:red !IMPORTANT",
    "",
]


@pytest.mark.parametrize("declarations", PLAIN)
def test_plain_declarations_match_cssutils(declarations: str) -> None:
    bulk = premailer_bulk(declarations)
    assert inliner.plain_declarations(bulk) is not None, bulk
    assert inliner.plain_declarations(bulk) == cssutils_pairs(bulk)


@pytest.mark.parametrize("bulk", NOT_PLAIN)
def test_anything_else_is_left_to_cssutils(bulk: str) -> None:
    assert inliner.plain_declarations(bulk) is None


def test_theme_declarations_are_not_parsed_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    import cssutils

    parsed: list[str] = []
    real = cssutils.parseStyle

    def counting(text: str, *args: object, **kwargs: object) -> object:
        parsed.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(cssutils, "parseStyle", counting)
    html = page(theme_css("style.css"), theme_css("dark.css"))
    ours = fresh(inliner.inline_css, html)
    assert len(parsed) <= 1, parsed  # at most the font stack
    monkeypatch.undo()
    assert ours == fresh(premailer_reference, html)


INLINE_CASES = {
    "specificity and order": ".card .title { color: red } .title { color: blue; margin: 0 } h1.title { padding: 2px }",
    "first-child kept": ".card td:first-child { padding: 1px } td { padding: 0 }",
    "star and unset": "* { margin: 0 } .title { color: unset; margin: 1px !important } .title { margin: 2px }",
    "basic attributes": ".event-date { width: 60px; background-color: #abc; text-align: center; vertical-align: top }",
    "important across rules": ".title { color: red !important } h1 { color: blue } .masthead .title { color: green }",
    "quoted and functions": ".title { font-family: 'A B', serif; width: calc(100% - 2px); background: url(x.png) }",
}


@pytest.mark.parametrize("css", list(INLINE_CASES.values()), ids=list(INLINE_CASES))
def test_inlined_rules_match_premailer(css: str) -> None:
    html = page(css, body=THEME_BODY.replace('<h1 class="title">', '<h1 class="title" style="font-weight: bold">'))
    ours = fresh(inliner.inline_css, html)
    assert ours == fresh(premailer_reference, html)
    assert inliner.inline_css(html) == ours
    assert 'class="title" style=' in ours
