"""Item summaries as Markdown, for editing.

Drafted summaries are feed excerpts: ``<p>`` paragraphs of escaped text. The
desk shows such a summary as the Markdown that renders the same, so nobody
edits HTML inside YAML; a richer HTML summary (written by hand) is shown as it
is. Nothing here changes the file: a summary is only rewritten when edited.
"""

from __future__ import annotations

import html
import re

from cepletter.render.filters import markdown_html

_EXCERPT = re.compile(r"(?:<p>[^<]*</p>\s*)+")
_PARAGRAPH = re.compile(r"<p>([^<]*)</p>")
_RENDERED = re.compile(r"(?:<p>[^<]*</p>\n)*")
# Punctuation that Markdown may read as markup anywhere in a line.
_INLINE = re.compile(r"([\\`*_\[\]!&~|])")
# A paragraph that would start a list, a heading or a quote.
_LINE_START = re.compile(r"^(\d*)([-+#>.)])")


def markdown_of(summary: str) -> str | None:
    """The summary as Markdown that renders the same; None when it is HTML that Markdown cannot say."""
    if "<" not in summary:
        return summary  # Markdown already (the renderer reads text without tags as Markdown)
    if not _EXCERPT.fullmatch(summary.strip()):
        return None
    paragraphs = [html.unescape(p) for p in _PARAGRAPH.findall(summary)]
    plain = "\n\n".join(paragraphs)
    if _reads_same(plain, paragraphs):
        return plain
    escaped = "\n\n".join(_LINE_START.sub(r"\1\\\2", _INLINE.sub(r"\\\1", p)) for p in paragraphs)
    return escaped if _reads_same(escaped, paragraphs) else None


def _reads_same(text: str, paragraphs: list[str]) -> bool:
    if "<" in text or any(not p.strip() or p != p.strip() for p in paragraphs):
        return False  # with a "<" the renderer would take the text for HTML
    rendered = markdown_html(text)
    if not _RENDERED.fullmatch(rendered):
        return False
    return [html.unescape(p) for p in _PARAGRAPH.findall(rendered)] == paragraphs
