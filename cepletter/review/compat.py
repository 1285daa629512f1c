"""Email-client compatibility of a rendered newsletter, from caniemail's support data.

The table ``data/caniemail.json`` is derived from the npm package
``caniemail`` (MIT licence) by ``scripts/caniemail_table.py``; it keeps, for
each caniemail feature, the latest test result in the clients our readers
use. The report lists every feature the HTML uses that some of those clients
lack, and says whether the email is "clean": nothing unsupported in Gmail,
Apple Mail or Outlook on the web, and in Outlook for Windows only features
that degrade gracefully.
"""

from __future__ import annotations

import functools
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cepletter.review.htmlfeatures import Features, scan

DATA_FILE = Path(__file__).parent / "data" / "caniemail.json"

# Columns of the report: (group heading, client key, short column name).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("Gmail", "gmail-web", "web"), ("Gmail", "gmail-ios", "iOS"), ("Gmail", "gmail-android", "Andr"),
    ("Outlook", "outlook-windows", "Win"), ("Outlook", "outlook-web", "web"),
    ("Apple Mail", "apple-macos", "mac"), ("Apple Mail", "apple-ios", "iOS"),
    ("Yahoo", "yahoo-web", "web"), ("Samsung", "samsung", "Andr"),
)
_CELL = 5  # characters per client column

# Where nothing may be missing for the email to count as clean.
STRICT_CLIENTS = ("gmail-web", "gmail-ios", "gmail-android", "apple-macos", "apple-ios", "outlook-web")

# Enhancements a client simply ignores when it lacks them, with nothing lost
# but the enhancement itself: allowed in every client.
IGNORED_HARMLESSLY: dict[str, str] = {
    "css-at-media-prefers-color-scheme": "dark-mode colours; without it the light design is shown",
    "css-color-scheme": "tells the client both colour schemes are designed; a hint only",
    "html-meta-color-scheme": "tells the client both colour schemes are designed; a hint only",
    "css-at-media-prefers-reduced-motion": "only turns motion off; nothing else changes",
    "html-target": "clients open links in a new window anyway",
    "html-doctype": "the HTML5 doctype has no effect there, and costs nothing",
    "css-pseudo-class-hover": "only the hover effect is lost; links work the same",
}
# What Outlook for Windows (Word's renderer) lacks but the layout survives.
OUTLOOK_GRACEFUL: dict[str, str] = {
    "css-at-media": "phone-size rules; Outlook for Windows is a desktop client and shows the 600 px layout",
    "css-border-radius": "corners are square instead of rounded",
    "css-box-shadow": "no shadow; borders and background colours still separate the blocks",
    "css-min-width": "fixed width attributes on tables hold the layout",
    "css-max-height": "images carry a pixel width attribute; a hidden preheader is hidden by mso-hide",
    "css-opacity": "decoration only; text stays readable",
    "css-text-shadow": "decoration only",
    "css-outline": "outlines are decoration; Outlook draws none around images or links",
    "css-overflow": "content is shown in full instead of clipped (a preheader is hidden by mso-hide)",
    "css-overflow-wrap": "long words can stretch a cell a little; the fixed table width limits it",
    "css-word-wrap": "long words can stretch a cell a little; the fixed table width limits it",
    "css-box-sizing": "padding sits in table cells, so widths do not depend on it",
}
# Elements of "HTML5 semantics" whose tag a client may drop while keeping the text.
TEXT_ONLY_SEMANTICS = frozenset({"<time>", "<mark>"})
# A feature missing in a client is harmless when its fallback is used too and works there.
FALLBACKS: dict[str, tuple[str, str]] = {
    "css-overflow-wrap": ("css-word-break", "word-break, also used, breaks long words there"),
    "css-word-wrap": ("css-word-break", "word-break, also used, breaks long words there"),
    "css-max-width": ("html-width", "the width attribute, also used, sets the size there"),
}


@dataclass(frozen=True)
class Finding:
    slug: str
    title: str
    count: int
    support: dict[str, str]  # client key -> "y" | "n" | "a 1 2" | "u" ...
    notes: dict[str, str]
    examples: tuple[str, ...] = ()

    def code(self, client: str) -> str:
        """"y", "n", "a" (partial) or "u" (untested) for one client."""
        return self.support.get(client, "u").split()[0]

    def missing_in(self, client: str) -> bool:
        return self.code(client) == "n"

    @property
    def fully_supported(self) -> bool:
        return all(self.code(key) == "y" for _, key, _ in COLUMNS)


@functools.cache
def support_table() -> dict[str, Any]:
    """The shipped compact caniemail table."""
    table: dict[str, Any] = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return table


def findings(html: str) -> tuple[list[Finding], Features]:
    """Every caniemail feature the HTML uses, with its support in our clients."""
    table = support_table()
    used = scan(html, table["features"])
    out: list[Finding] = []
    for slug, usage in used.used.items():
        entry = table["features"][slug]
        out.append(Finding(slug, entry["title"], usage.count, entry["support"], entry.get("notes", {}),
                           tuple(usage.examples)))
    out.sort(key=lambda f: (f.slug.split("-", 1)[0] != "html", f.title.lower()))
    return out, used


def harmless(finding: Finding, client: str, found: dict[str, Finding] | None = None) -> str | None:
    """Why this feature being missing in ``client`` does no harm, or None when it does."""
    if finding.slug in IGNORED_HARMLESSLY:
        return IGNORED_HARMLESSLY[finding.slug]
    if finding.slug in FALLBACKS and found:
        fallback, reason = FALLBACKS[finding.slug]
        if fallback in found and found[fallback].code(client) in ("y", "a"):
            return reason
    if finding.slug == "html-semantics" and set(finding.examples) <= TEXT_ONLY_SEMANTICS:
        return "the tag is dropped and its text stays"
    if client == "outlook-windows" and finding.slug in OUTLOOK_GRACEFUL:
        return OUTLOOK_GRACEFUL[finding.slug]
    return None


def blocking(finding: Finding, found: dict[str, Finding] | None = None) -> list[str]:
    """Client keys where this feature is missing and that makes the email not clean."""
    return [key for key in (*STRICT_CLIENTS, "outlook-windows")
            if finding.missing_in(key) and harmless(finding, key, found) is None]


def client_report(html: str, *, every_feature: bool = False) -> tuple[str, bool]:
    """A readable compatibility report for the rendered HTML, and whether it is clean.

    The verdict comes first, then the grid: the features that some client does
    not fully support, or with ``every_feature`` all the features used.
    """
    table = support_table()
    found, used = findings(html)
    by_slug = {f.slug: f for f in found}
    names: dict[str, str] = table["clients"]
    gaps = [f for f in found if not f.fully_supported]
    problems = [(f, blocking(f, by_slug)) for f in gaps if blocking(f, by_slug)]
    clean = not problems
    if clean:
        lines = ["Clean: nothing unsupported in Gmail, Apple Mail or Outlook on the web;",
                 "  Outlook for Windows lacks only what degrades gracefully."]
    else:
        lines = ["Not clean:"]
        for finding, clients in problems:
            who = ", ".join(names.get(key, key) for key in clients)
            lines.append(f"  {finding.title} ({finding.count}×, e.g. {finding.examples[0]}) "
                         f"is not supported in {who}.")
            lines.extend(f"    note {n}: {_plain(finding.notes[n])}" for n in _shown_notes(finding, clients)
                         if n in finding.notes)
        lines.append("  Change the template or its CSS so it does not rely on these "
                     "(see https://www.caniemail.com/ for alternatives).")
    rows = found if every_feature else gaps
    lines += [
        "",
        f"Client support: {len(found)} HTML/CSS features used, {len(gaps)} not fully supported everywhere.",
        f"  (caniemail {table['version']}, data of {str(table.get('data_updated', ''))[:10]}, "
        f"{table['licence']} licence; ~N = partial, note N on https://www.caniemail.com/features/)",
        "",
    ]
    if rows:
        lines.extend(_grid(rows, by_slug))
        lines.append("")
        lines.append("  yes supported · NO not supported · ~N partial (caniemail note N) · ? untested"
                     " · (ok) missing but harmless, see below")
        allowed = _allowances(gaps, by_slug, names)
        if allowed:
            lines.append("")
            lines.append("Missing but harmless:")
            lines.extend(allowed)
    everywhere = [f.title for f in found if f.fully_supported]
    if everywhere and not every_feature:
        lines.append("")
        lines.append(_wrap("Supported everywhere: " + ", ".join(everywhere)))
    if used.unknown_css:
        lines.append(_wrap("Not in caniemail's data: " + ", ".join(sorted(used.unknown_css))))
    return "\n".join(lines) + "\n", clean


def _allowances(gaps: list[Finding], found: dict[str, Finding], names: dict[str, str]) -> list[str]:
    out: list[str] = []
    for finding in gaps:
        reasons: dict[str, list[str]] = {}
        for _, key, _ in COLUMNS:
            reason = harmless(finding, key, found) if finding.missing_in(key) else None
            if reason:
                reasons.setdefault(reason, []).append(names.get(key, key))
        for reason, clients in reasons.items():
            where = "" if len(clients) > 2 else f" ({', '.join(clients)})"
            out.append(f"  {finding.title}{where}: {reason}")
    return out


def _shown_notes(finding: Finding, clients: list[str]) -> list[str]:
    """Note numbers referenced for these clients, in order."""
    numbers: list[str] = []
    for key in clients:
        _code, *notes = finding.support.get(key, "u").split()
        numbers.extend(n for n in notes if n not in numbers)
    return sorted(numbers, key=lambda n: int(n) if n.isdigit() else 0)


def _cell(finding: Finding, key: str, found: dict[str, Finding]) -> str:
    code, *notes = finding.support.get(key, "u").split()
    if code == "y":
        return "yes"
    if code == "a":
        text = "~" + ",".join(notes)
        return text if len(text) <= _CELL else text[: _CELL - 1] + "+"
    if code == "n":
        return "(ok)" if harmless(finding, key, found) else "NO"
    return "?"


def _grid(gaps: list[Finding], found: dict[str, Finding]) -> list[str]:
    width = min(34, max(len("feature"), *(len(_label(f)) for f in gaps)))
    cells = [[_cell(f, key, found) for _, key, _ in COLUMNS] for f in gaps]
    col = _CELL + 1
    groups: list[tuple[str, int]] = []
    for group, _, _ in COLUMNS:
        if groups and groups[-1][0] == group:
            groups[-1] = (group, groups[-1][1] + 1)
        else:
            groups.append((group, 1))
    head1 = "feature".ljust(width) + "  " + "".join(g.ljust(n * col) for g, n in groups)
    head2 = " " * width + "  " + "".join(short.ljust(col) for _, _, short in COLUMNS)
    rows = [head1.rstrip(), head2.rstrip(), "-" * (width + 2 + col * len(COLUMNS))]
    for finding, row in zip(gaps, cells, strict=True):
        label = _label(finding)
        label = label if len(label) <= width else label[: width - 1] + "…"
        rows.append((label.ljust(width) + "  " + "".join(c.ljust(col) for c in row)).rstrip())
    return rows


def _label(finding: Finding) -> str:
    return f"{finding.title} ({finding.count}×)"


def _plain(text: str) -> str:
    """caniemail notes are Markdown: keep link text, drop the URL and backticks."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    return text.replace("`", "")


def _wrap(text: str, width: int = 100) -> str:
    return "\n".join(textwrap.wrap(text, width=width, subsequent_indent="  "))
