"""The archive's index page: every issue, newest first, styled like the newsletter.

Plain HTML and CSS with no script: it has to open from a disk, any web
server, or inside the organisation's site, and stay readable for screen
readers, on phones and in dark mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape
from typing import TYPE_CHECKING, Protocol

from cepletter import dates, i18n

if TYPE_CHECKING:
    from cepletter.config import Settings


# The newsletter's palette (templates/style.css): navy masthead, orange accent.
STYLE = """
:root { color-scheme: light dark; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef1f5; color: #1f2933;
  font: 16px/1.6 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
a { color: #1d4ed8; }
a:focus-visible { outline: 3px solid #e07a1f; outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: #ffffff; padding: 8px 12px; }
.skip:focus { left: 8px; top: 8px; }
.wrap { max-width: 600px; margin: 0 auto; padding: 0 16px; }
.masthead { background: #16325c; color: #ffffff; padding: 32px 0 28px; }
.kicker { margin: 0 0 6px; font-size: 13px; font-weight: bold; letter-spacing: 1.5px;
  text-transform: uppercase; color: #ffd6a5; }
.masthead h1 { margin: 0; font-size: 32px; line-height: 1.2; }
.masthead p.lead { margin: 10px 0 0; color: #dce6f2; }
.masthead a { color: #ffffff; }
.accent { height: 4px; background: #e07a1f; }
main.wrap { padding-top: 28px; padding-bottom: 12px; }
.issues { list-style: none; margin: 0; padding: 0; }
.issue { background: #ffffff; border: 1px solid #dde3ea; border-radius: 8px; margin: 0 0 16px;
  padding: 20px 24px; }
.issue h2 { margin: 0 0 8px; font-size: 20px; line-height: 1.35; }
.issue h2 a { color: #16325c; text-decoration: none; }
.issue h2 a:hover, .issue h2 a:focus { text-decoration: underline; }
.meta { margin: 0 0 6px; font-size: 12px; letter-spacing: 0.8px; text-transform: uppercase; color: #52606d; }
.preheader { margin: 0; }
.count { margin: 8px 0 0; font-size: 14px; color: #52606d; }
.empty { background: #ffffff; border-radius: 8px; padding: 20px 24px; }
footer { padding-bottom: 32px; font-size: 13px; color: #52606d; }
@media (max-width: 480px) {
  .masthead h1 { font-size: 26px; }
  .issue { padding: 16px; }
}
@media (prefers-color-scheme: dark) {
  body { background: #0f1720; color: #e4e9f0; }
  a { color: #93b4ff; }
  .masthead { background: #0b1d38; }
  .issue, .empty { background: #17212c; border-color: #2a3645; }
  .issue h2 a { color: #dce6f2; }
  .meta, .count, footer { color: #aab6c3; }
}
"""


class IndexEntry(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def preheader(self) -> str: ...
    @property
    def date(self) -> date: ...
    @property
    def item_titles(self) -> tuple[str, ...]: ...
    @property
    def page(self) -> str: ...
    @property
    def editions(self) -> tuple[tuple[str, str], ...]: ...


def index_page(settings: Settings, issues: Sequence[IndexEntry]) -> str:
    """The archive's index.html (links relative to the archive folder)."""
    nl = settings.newsletter
    language = i18n.normalise(nl.language)
    tr = i18n.catalogue(language)
    name = escape(nl.name)
    rows = [_row(entry, language) for entry in issues]
    listing = (
        f'<ol class="issues" reversed>\n{"".join(rows)}</ol>'
        if rows else '<p class="empty">' + escape(tr.gettext("No issues yet.")) + "</p>"
    )
    count = escape(tr.ngettext("%(num)d issue, newest first.", "%(num)d issues, newest first.", len(issues))
                   % {"num": len(issues)})
    footer = escape(nl.postal_address) if nl.postal_address else name
    direction = ' dir="rtl"' if i18n.is_rtl(language) else ""
    title = escape(tr.gettext("%(name)s: all issues") % {"name": nl.name})
    skip = escape(tr.gettext("Skip to the issues"))
    kicker = escape(tr.gettext("Archive"))
    follow = escape(tr.gettext("Follow new issues (Atom feed)"))
    return f"""<!DOCTYPE html>
<html lang="{escape(language)}"{direction}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title}</title>
<link rel="alternate" type="application/atom+xml" title="{name}" href="feed.xml">
<style>{STYLE}</style>
</head>
<body>
<a class="skip" href="#issues">{skip}</a>
<header class="masthead">
<div class="wrap">
<p class="kicker">{kicker}</p>
<h1>{name}</h1>
<p class="lead">{count} <a href="feed.xml">{follow}</a></p>
</div>
</header>
<div class="accent"></div>
<main id="issues" class="wrap">
{listing}
</main>
<footer class="wrap">
<p>{footer}</p>
</footer>
</body>
</html>
"""


def _row(entry: IndexEntry, language: str = i18n.SOURCE) -> str:
    tr = i18n.catalogue(language)
    articles = len(entry.item_titles)
    preheader = f'<p class="preheader">{escape(entry.preheader)}</p>\n' if entry.preheader else ""
    others = [(lang, page) for lang, page in entry.editions if lang != language]
    also = ""
    if others:
        links = ", ".join(f'<a href="{escape(page)}" hreflang="{lang}" lang="{lang}">'
                          f"{escape(i18n.display_name(lang))}</a>" for lang, page in others)
        label = escape(tr.gettext("Also in:"))
        also = f'<p class="count">{label} {links}</p>\n'
    count = tr.ngettext("%(num)d article", "%(num)d articles", articles) % {"num": articles}
    return (
        '<li class="issue">\n<article>\n'
        f'<p class="meta"><time datetime="{entry.date.isoformat()}">{dates.long_date(entry.date, language)}'
        "</time></p>\n"
        f'<h2><a href="{escape(entry.page)}">{escape(entry.title)}</a></h2>\n'
        f"{preheader}"
        f'<p class="count">{escape(count)}</p>\n'
        f"{also}"
        "</article>\n</li>\n"
    )
