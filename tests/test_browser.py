"""The rendered email in headless Chromium: content shown, no sideways scrolling, dark mode, screenshots.

Skipped when no Chromium is on PATH, except in CI (CI=true), where that fails.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import missing
from renderkit import EXAMPLE_ISSUE, make_issue, make_item, make_workspace

from cepletter.issue.file import Section, load
from cepletter.message.personal import render_personal
from cepletter.message.recipient import Recipient
from cepletter.review.screenshot import Browser, find_browser

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if find_browser() is None:
        missing("no Chromium on PATH (install chromium to run the browser tests)")
    with Browser() as chromium:
        yield chromium


def _example(tmp_path: Path) -> tuple[str, list[str], str]:
    settings = make_workspace(tmp_path / "ws")
    if EXAMPLE_ISSUE.is_file():
        target = settings.issues_dir / "2025-12" / "issue.md"
        target.parent.mkdir(parents=True)
        shutil.copyfile(EXAMPLE_ISSUE, target)
        issue = load(target)
    else:
        issue = make_issue(settings, items=6)
    html, _ = render_personal(settings, issue).fill(Recipient("anna@example.org", "Anna Jansen"))
    return html, [i.title for i in issue.items], issue.title


def _page(tmp_path: Path, html: str, name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [600, 375])
def test_example_shows_everything_without_sideways_scrolling(tmp_path: Path, browser: Browser, width: int) -> None:
    html, titles, title = _example(tmp_path)
    browser.open(_page(tmp_path, html), width)
    seen = browser.measure()
    assert seen["innerWidth"] == width
    assert seen["scrollWidth"] <= seen["innerWidth"], seen["scrollWidth"]
    text = " ".join(seen["text"].split())
    assert title in text
    for item_title in titles:
        assert " ".join(item_title.split()) in text
    # the card column fills a phone and stays 600 px on a desktop
    container = browser.evaluate("document.querySelector('table.container').getBoundingClientRect().width")
    assert container == width


def test_phone_layout_uses_the_mobile_rules(tmp_path: Path, browser: Browser) -> None:
    html, _, _ = _example(tmp_path)
    browser.open(_page(tmp_path, html), 375)
    size = browser.evaluate("getComputedStyle(document.querySelector('h1.title')).fontSize")
    assert size == "26px"
    browser.open(_page(tmp_path, html), 600)
    assert browser.evaluate("getComputedStyle(document.querySelector('h1.title')).fontSize") == "32px"


def test_dark_mode_turns_the_page_dark(tmp_path: Path, browser: Browser) -> None:
    html, _, _ = _example(tmp_path)
    path = _page(tmp_path, html)
    script = "getComputedStyle(document.querySelector('table.bg')).backgroundColor"
    card = "getComputedStyle(document.querySelector('td.card-body')).color"
    browser.open(path, 600, dark=False)
    assert browser.measure()["dark"] is False
    assert browser.evaluate(script) == "rgb(238, 241, 245)"
    assert browser.evaluate(card) == "rgb(31, 41, 51)"
    browser.open(path, 600, dark=True)
    assert browser.measure()["dark"] is True
    assert browser.evaluate(script) == "rgb(15, 20, 25)"
    assert browser.evaluate(card) == "rgb(229, 233, 239)"


@pytest.mark.parametrize("name", [
    "wordpress-dcrainmaker-very-long-items.rss.xml",
    "rss-scriptingnews-untitled-items.xml",
])
@pytest.mark.parametrize("width", [600, 375])
def test_real_feeds_keep_the_layout(tmp_path: Path, corpus: Path, browser: Browser, name: str, width: int) -> None:
    from test_render_golden import _issue_from_feed

    settings = make_workspace(tmp_path / "ws")
    issue = _issue_from_feed(settings, corpus / name)
    html, _ = render_personal(settings, issue).fill(Recipient("anna@example.org", "Anna"))
    browser.open(_page(tmp_path, html), width)
    seen = browser.measure()
    assert seen["scrollWidth"] <= width
    text = " ".join(seen["text"].split())
    for item in issue.items:
        assert " ".join(item.title.split()) in text


def _png(width: int, height: int) -> bytes:
    """A plain PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xc2\x62\x0f" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width", [600, 375])
def test_images_fill_their_column_and_keep_their_shape(tmp_path: Path, browser: Browser, width: int) -> None:
    """The pixel width attribute (for Outlook) does not make an image too wide for a phone."""
    settings = make_workspace(tmp_path / "ws")
    item = dataclasses.replace(make_item(1), image="photo.png")
    issue = make_issue(settings, sections=[Section(heading="News", items=[item])])
    (tmp_path / "photo.png").write_bytes(_png(1200, 600))
    html, _ = render_personal(settings, issue).fill(Recipient("anna@example.org", "Anna"))
    browser.open(_page(tmp_path, html), width)
    box = json.loads(browser.evaluate(
        "JSON.stringify((() => { const img = document.querySelector('td.card-image img');"
        " const r = img.getBoundingClientRect(); return {width: r.width, height: r.height,"
        " column: img.closest('td').clientWidth, natural: img.naturalWidth}; })())"))
    assert box["natural"] == 1200  # the image loaded
    assert box["width"] == box["column"] == (550 if width == 600 else 349), box
    assert abs(box["height"] - box["width"] / 2) < 1, box
    assert browser.measure()["scrollWidth"] <= width


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_preview_screenshot_writes_desktop_and_mobile(tmp_path: Path, browser: Browser, run) -> None:
    settings = make_workspace(tmp_path / "ws")
    make_issue(settings)
    result = run("-C", str(settings.root), "preview", "--screenshot")
    assert result.exit_code == 0, result.stderr
    build = settings.root / "issues" / "2025-12" / "build"
    desktop, mobile = build / "desktop.png", build / "mobile.png"
    assert f"Screenshot {desktop}" in result.stderr and f"Screenshot {mobile}" in result.stderr
    d_width, d_height = _png_size(desktop)
    m_width, m_height = _png_size(mobile)
    assert (d_width, m_width) == (600, 375)
    assert m_height > d_height > 1000  # the whole page, longer when narrow


@pytest.mark.parametrize("source", ["example", "wordpress-dcrainmaker-very-long-items.rss.xml"])
def test_laying_out_lines_changes_no_pixel(
    tmp_path: Path, corpus: Path, browser: Browser, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """The page as sent (few, long lines) and as the template wrote it look exactly alike."""
    from test_render_golden import _issue_from_feed

    import cepletter.render.renderer as render

    settings = make_workspace(tmp_path / "ws")
    issue = make_issue(settings, items=6) if source == "example" else _issue_from_feed(settings, corpus / source)
    person = Recipient("anna@example.org", "Anna Jansen")
    sent, _ = render_personal(settings, issue).fill(person)
    monkeypatch.setattr(render, "layout_html", lambda html, **_: html)
    written, _ = render_personal(settings, issue).fill(person)
    assert sent.count("\n") * 4 < written.count("\n")
    for width in (600, 375):
        for dark in (False, True):
            shots = []
            for name, page in (("sent.html", sent), ("written.html", written)):
                browser.open(_page(tmp_path, page, name), width, dark=dark)
                shots.append((browser.measure()["text"], browser.screenshot(width)))
            assert shots[0][0] == shots[1][0]
            assert shots[0][1] == shots[1][1], f"{width} px, dark={dark}: the screenshots differ"
