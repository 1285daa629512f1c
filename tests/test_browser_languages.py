"""Language editions in headless Chromium: a French edition as readers see it, an Arabic one mirrored.

The mirror test compares screenshots: the English and the Arabic edition of
one issue (same texts; the Arabic edition leaves them untranslated) are shot
with every glyph made transparent, so that only the layout is left (cards,
the date badges, rules, the masthead). The Arabic screenshot flipped left to
right must then be the English one, and unflipped it must not be.

Skipped when no Chromium is on PATH, except in CI (CI=true), where that fails.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from conftest import Invoke, missing
from renderkit import make_issue, make_item, make_workspace

from cepletter.issue.file import Section, load
from cepletter.message.personal import render_editions
from cepletter.message.recipient import Recipient
from cepletter.review.screenshot import Browser, find_browser

pytestmark = pytest.mark.browser

ANNA = Recipient("anna@example.org", "Anna Jansen")
FRENCH = """\
---
title: Lettre d'information de décembre 2025
subject: Lettre d'information du CEP
sections:
  Section 1: Rubrique 1
  Section 2: Rubrique 2
items:
  "https://www.cep-probation.org/?p=1001":
    title: "Élément 1 : la probation en Europe, actualités et recherches du terrain"
  "https://www.cep-probation.org/?p=1002":
    title: "Élément 2 : la probation en Europe, actualités et recherches du terrain"
---

Bienvenue dans le numéro de **décembre**. Consultez [le calendrier](https://www.cep-probation.org/calendar/).
"""
# Only layout is left: every glyph, caret and text decoration takes the colour of nothing.
NO_TEXT = "<style>* { color: transparent !important; text-shadow: none !important; }</style>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if find_browser() is None:
        missing("no Chromium on PATH (install chromium to run the browser tests)")
    with Browser() as chromium:
        yield chromium


def _editions(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A workspace whose issue has an English, a French and an Arabic edition: the filled HTML of each."""
    settings = make_workspace(tmp_path / "ws")
    items = [make_item(n, image=False) for n in range(1, 5)]
    make_issue(settings, sections=[Section("Section 1", items[:2]), Section("Section 2", items[2:])],
               issue_date=date(2025, 12, 18))
    folder = settings.issues_dir / "2025-12"
    (folder / "issue.fr.md").write_text(FRENCH, encoding="utf-8")
    (folder / "issue.ar.md").write_text("---\ntitle: ''\n---\n", encoding="utf-8")
    rendered = render_editions(settings, load(folder / "issue.md"))
    return settings.root, {e.language: e.fill(ANNA)[0] for e in rendered.editions}


def _shot(browser: Browser, tmp_path: Path, name: str, page: str, width: int) -> bytes:
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    browser.open(path, width)
    return browser.screenshot(width)


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _differing(browser: Browser, tmp_path: Path, first: bytes, second: bytes, *, mirror: bool) -> int:
    """How many pixels of ``second`` (flipped left to right with ``mirror``) differ from ``first``.

    Counted by Chromium itself, on two canvases: the screenshots are data URLs
    of one page, so reading their pixels is allowed.
    """
    page = tmp_path / "compare.html"
    a = base64.b64encode(first).decode("ascii")
    b = base64.b64encode(second).decode("ascii")
    page.write_text(f'<!DOCTYPE html><body><img id="a" src="data:image/png;base64,{a}">'
                    f'<img id="b" src="data:image/png;base64,{b}"></body>', encoding="utf-8")
    browser.open(page, 600)
    script = """(() => {
      const a = document.getElementById('a'), b = document.getElementById('b');
      const w = a.naturalWidth, h = a.naturalHeight;
      const pixels = (img, flip) => {
        const c = document.createElement('canvas'); c.width = w; c.height = h;
        const g = c.getContext('2d');
        if (flip) { g.translate(w, 0); g.scale(-1, 1); }
        g.drawImage(img, 0, 0);
        return g.getImageData(0, 0, w, h).data;
      };
      const p = pixels(a, false), q = pixels(b, %s);
      let n = 0;
      for (let i = 0; i < p.length; i += 4) {
        if (p[i] !== q[i] || p[i + 1] !== q[i + 1] || p[i + 2] !== q[i + 2]) n++;
      }
      return JSON.stringify({n: n, w: w, h: h});
    })()""" % ("true" if mirror else "false")
    result = json.loads(browser.evaluate(script))
    assert (result["w"], result["h"]) == _size(first)
    return int(result["n"])


@pytest.mark.parametrize("width", [600, 375])
def test_the_arabic_edition_is_the_english_layout_mirrored(tmp_path: Path, browser: Browser, width: int) -> None:
    _root, pages = _editions(tmp_path)
    arabic = pages["ar"]
    browser.open(_page(tmp_path, "ar-text.html", arabic), width)
    assert browser.evaluate("document.documentElement.dir") == "rtl"
    assert browser.evaluate("getComputedStyle(document.querySelector('td.intro')).direction") == "rtl"
    assert browser.measure()["scrollWidth"] <= width

    english = _shot(browser, tmp_path, "en.html", pages["en"].replace("</head>", NO_TEXT + "</head>"), width)
    mirrored = _shot(browser, tmp_path, "ar.html", arabic.replace("</head>", NO_TEXT + "</head>"), width)
    assert _size(english) == _size(mirrored)
    total = _size(english)[0] * _size(english)[1]
    # Unflipped, the date badges and the event texts' padding are on the other side.
    assert _differing(browser, tmp_path, english, mirrored, mirror=False) > 2000
    # Flipped, the layout is the same, up to the odd anti-aliased pixel on a rounded corner.
    assert _differing(browser, tmp_path, english, mirrored, mirror=True) * 2000 < total


def _page(tmp_path: Path, name: str, html: str) -> Path:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [600, 375])
def test_the_french_edition_reads_french_without_sideways_scrolling(
        tmp_path: Path, browser: Browser, width: int) -> None:
    _root, pages = _editions(tmp_path)
    browser.open(_page(tmp_path, "fr.html", pages["fr"]), width)
    seen = browser.measure()
    assert seen["scrollWidth"] <= width
    assert browser.evaluate("document.documentElement.lang") == "fr"
    text = " ".join(seen["text"].split())
    for expected in ("Lettre d'information de décembre 2025", "Bonjour Anna Jansen,", "Lire la suite",
                     "18 décembre 2025", "RUBRIQUE 1", "ÉVÉNEMENTS À VENIR", "mardi 10 mars 2026",
                     "Élément 1 : la probation en Europe", "Se désabonner"):
        assert expected in text, expected


def test_preview_screenshots_an_edition(tmp_path: Path, browser: Browser, run: Invoke) -> None:
    root, _pages = _editions(tmp_path)
    result = run("-C", str(root), "preview", "--lang", "fr", "--screenshot")
    assert result.exit_code == 0, result.stderr
    build = root / "issues" / "2025-12" / "build"
    desktop, mobile = build / "desktop.fr.png", build / "mobile.fr.png"
    assert f"Screenshot {desktop}" in result.stderr and f"Screenshot {mobile}" in result.stderr
    assert _size(desktop.read_bytes())[0] == 600 and _size(mobile.read_bytes())[0] == 375
    assert not (build / "desktop.png").exists()
    # The screenshot is of the French edition: the same page shot here gives the same pixels.
    assert desktop.read_bytes() == _shot(browser, tmp_path, "again.html",
                                         (build / "newsletter.fr.html").read_text(encoding="utf-8"), 600)
