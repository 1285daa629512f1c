"""Client compatibility report from the caniemail table."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import Invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from cepletter.review.compat import (
    IGNORED_HARMLESSLY,
    OUTLOOK_GRACEFUL,
    blocking,
    client_report,
    findings,
    support_table,
)
from cepletter.review.htmlfeatures import scan

REPO = Path(__file__).resolve().parent.parent

MODERN = """<!DOCTYPE html>
<html lang="en"><head><style>
.box > a:hover { color: red; }
</style></head><body>
<div style="display: flex; flex-direction: column; gap: 8px">
  <div style="position: absolute; top: 0">badge</div>
  <svg width="10" height="10"><circle r="4"/></svg>
</div>
</body></html>
"""

TABLES = """<!DOCTYPE html>
<html lang="en"><head>
<meta name="color-scheme" content="light dark">
<meta name="supported-color-schemes" content="light dark">
<style>
@media (max-width: 620px) { .container { width: 100% !important; } }
@media (prefers-color-scheme: dark) { .body { background-color: #111111 !important; } }
</style></head>
<body style="margin: 0; padding: 0; background-color: #f4f4f4">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" class="container"
  style="width: 600px; max-width: 600px; border-collapse: collapse">
<tr><td align="left" valign="top" style="padding: 16px; font-family: Arial, sans-serif; font-size: 16px;
  line-height: 1.5; color: #222222; background-color: #ffffff; border-radius: 6px">
<h1 style="margin: 0 0 8px; font-size: 24px; font-weight: bold">Newsletter</h1>
<p style="margin: 0">Hello <a href="https://example.org/" style="color: #0b5394; text-decoration: underline">world</a>
and <a href="mailto:info@example.org">mail us</a>.</p>
<img src="https://example.org/pic.jpg" width="568" height="300" alt="A picture"
  style="display: block; width: 100%; height: auto; border: 0">
</td></tr></table>
</body></html>
"""


def slugs(html: str) -> set[str]:
    return set(scan(html, support_table()["features"]).used)


def test_table_names_its_source_version_and_licence() -> None:
    table = support_table()
    assert table["package"] == "caniemail"
    assert table["licence"] == "MIT"
    assert table["version"].count(".") == 2
    assert "caniemail" in table["source"]
    assert set(table["clients"]) >= {"gmail-web", "outlook-windows", "outlook-web", "apple-ios", "samsung"}
    assert len(table["features"]) > 250
    assert table["features"]["css-display-flex"]["title"] == "display:flex"


def test_every_allow_listed_feature_exists_in_the_table() -> None:
    features = support_table()["features"]
    assert set(IGNORED_HARMLESSLY) <= set(features)
    assert set(OUTLOOK_GRACEFUL) <= set(features)


def test_flexbox_position_and_svg_are_flagged_for_the_right_clients() -> None:
    report, clean = client_report(MODERN)
    assert not clean
    found = {f.slug: f for f in findings(MODERN)[0]}
    assert {"css-display-flex", "css-flex-direction", "css-position", "css-left-right-top-bottom",
            "html-svg", "css-gap", "css-selector-child", "css-pseudo-class-hover"} <= set(found)
    # Gmail drops position; Outlook.com drops inline SVG; Outlook for Windows has no flexbox.
    assert "gmail-web" in blocking(found["css-position"])
    assert {"gmail-web", "outlook-web"} <= set(blocking(found["html-svg"]))
    assert blocking(found["css-display-flex"]) == ["outlook-windows"]
    assert "Not clean:" in report
    assert "position (1×, e.g. position in <div style>) is not supported in Gmail (web)" in report
    assert "Embedded <svg> image (1×, e.g. <svg>) is not supported in Gmail (web)" in report
    assert "display:flex (1×, e.g. display in <div style>) is not supported in Outlook Windows." in report
    # A hover effect is only an enhancement: shown, but harmless.
    assert blocking(found["css-pseudo-class-hover"]) == []


def test_table_layout_with_media_queries_and_dark_mode_is_clean() -> None:
    report, clean = client_report(TABLES)
    assert clean, report
    assert "Clean: nothing unsupported in Gmail, Apple Mail or Outlook on the web;" in report
    used = slugs(TABLES)
    assert {"css-at-media", "css-at-media-prefers-color-scheme", "html-meta-color-scheme",
            "css-border-radius", "html-table", "html-role", "css-important", "html-mailto-links",
            "image-jpg", "html-h1-h6", "css-max-width", "html-style"} <= used
    # The grid marks allowed gaps "(ok)" and shows the reason below.
    row = next(line for line in report.splitlines() if line.startswith("border-radius"))
    assert "(ok)" in row and "NO" not in row
    assert "border-radius (Outlook Windows): corners are square instead of rounded" in report
    assert "Not in caniemail's data: color, font-family" in report


def test_report_is_a_readable_grid() -> None:
    report, _ = client_report(MODERN)
    lines = report.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("feature"))
    assert all(name in lines[header] for name in ("Gmail", "Outlook", "Apple Mail", "Yahoo", "Samsung"))
    assert lines[header + 1].split() == ["web", "iOS", "Andr", "Win", "web", "mac", "iOS", "web", "Andr"]
    flex = next(line for line in lines if line.startswith("display:flex"))
    assert flex.split()[-9:][3] == "NO"  # the Outlook Windows column
    assert max(len(line) for line in lines[header:header + 20]) <= 100


def test_css_scanner_handles_at_rules_functions_units_and_selectors() -> None:
    html = """<html><head><style>
    /* theme */
    @import url("x.css");
    @font-face { font-family: X; src: url(data:font/woff2;base64,AAAA); }
    @supports (display: grid) { .g { display: grid; } }
    @media screen and (orientation: landscape) { h2 + p ~ span, #main * { color: rgb(1, 2, 3); } }
    a[href] { --accent: red; color: var(--accent); width: calc(100% - 2rem); margin-top: 1em; }
    p::before { content: ""; }
    </style></head><body>
    <p style="background-image: linear-gradient(red, blue); border-top-left-radius: 4px; font-size: 2vw">x</p>
    <input type="checkbox"><img src="data:image/png;base64,AAAA" alt=""><ul><li>x</li></ul>
    <a href="#top" target="_blank" aria-label="top">up</a></body></html>"""
    used = slugs(html)
    expected = {
        "css-comments", "css-at-import", "css-at-font-face", "css-at-supports", "css-display-grid",
        "css-at-media", "css-at-media-orientation", "css-selector-adjacent-sibling",
        "css-selector-general-sibling", "css-selector-grouping", "css-selector-id", "css-selector-universal",
        "css-rgb", "css-selector-attribute", "css-variables", "css-unit-calc", "css-unit-rem", "css-unit-em",
        "css-margin", "css-pseudo-element-before", "css-linear-gradient", "css-background-image",
        "css-border-radius", "css-unit-vw", "html-input-checkbox", "image-base64", "html-lists",
        "html-anchor-links", "html-target", "html-aria-label", "css-selector-type", "css-selector-chaining",
    }
    assert expected <= used, expected - used


def test_script_regenerates_the_table_from_an_npm_tarball(tmp_path: Path) -> None:
    package = {"name": "caniemail", "version": "9.8.7", "license": "MIT"}
    data = {
        "last_update_date": "2030-01-02 03:04:05 +0000",
        "data": [{
            "slug": "css-display-flex", "title": "display:flex",
            "stats": {
                "gmail": {"desktop-webmail": {"2019-02": "n", "2024-01": "y #2"}},
                "outlook": {"windows": {"2016": "n"}},
                "aol": {"desktop-webmail": {"2019-02": "n"}},
            },
            "notes_by_num": {"1": "old", "2": "Fine now."},
        }],
    }
    tarball = tmp_path / "caniemail-9.8.7.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, content in (("package/package.json", package), ("package/data/caniemail.json", data)):
            raw = json.dumps(content).encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    out = tmp_path / "table.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "caniemail_table.py"), str(tarball), "-o", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "1 features, caniemail 9.8.7" in result.stderr
    table = json.loads(out.read_text(encoding="utf-8"))
    assert (table["version"], table["licence"], table["data_updated"]) == (
        "9.8.7", "MIT", "2030-01-02 03:04:05 +0000")
    flex = table["features"]["css-display-flex"]
    # The latest result per client; only the notes it refers to; other clients left out.
    assert flex == {"title": "display:flex", "support": {"gmail-web": "y 2", "outlook-windows": "n"},
                    "notes": {"2": "Fine now."}}
    # One line per feature, so a regeneration diffs cleanly.
    assert sum(1 for line in out.read_text(encoding="utf-8").splitlines() if '"title"' in line) == 1


def test_shipped_table_matches_the_script_output_format() -> None:
    text = (REPO / "cepletter" / "review" / "data" / "caniemail.json").read_text(encoding="utf-8")
    table = json.loads(text)
    assert sum(1 for line in text.splitlines() if line.startswith(' "') and '"title"' in line) == len(
        table["features"])


def test_fallbacks_and_text_only_elements_are_judged_in_context() -> None:
    wrap_only = '<td style="overflow-wrap: anywhere">x</td>'
    assert not client_report(wrap_only)[1]  # Gmail has no overflow-wrap
    assert client_report('<td style="word-break: break-word; overflow-wrap: anywhere">x</td>')[1]
    assert client_report("<p><time datetime='2025-12-18'>18 December</time></p>")[1]
    report, clean = client_report("<nav><a href='https://example.org/'>x</a></nav>")
    assert not clean
    assert "HTML5 semantics (1×, e.g. <nav>) is not supported in Outlook Windows." in report


@pytest.mark.parametrize("html", ["", "<p>plain</p>", "<style>@media {", "<div style='color:'>", "<![0"])
def test_odd_html_does_not_break_the_report(html: str) -> None:
    report, clean = client_report(html)
    assert report.endswith("\n")
    assert clean


def test_default_theme_example_issue_is_clean_with_and_without_events() -> None:
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from cepletter.config import load_settings
    from cepletter.issue.file import resolve
    from cepletter.message.personal import render_personal
    from cepletter.sources.items import Event

    settings = load_settings(REPO)
    issue = resolve(settings.issues_dir, "2025-12")
    report, clean = client_report(render_personal(settings, issue).web()[0])
    assert clean, report
    zone = ZoneInfo("Europe/Amsterdam")
    issue.events = [
        Event(title="Annual conference", start=date(2026, 2, 3), end=date(2026, 2, 4), all_day=True,
              location="Lisbon", link="https://www.cep-probation.org/conference/"),
        Event(title="Webinar", start=datetime(2026, 1, 15, 15, 0, tzinfo=zone),
              end=datetime(2026, 1, 15, 16, 30, tzinfo=zone), location="Online"),
    ]
    html = render_personal(settings, issue).web()[0]
    assert "Annual conference" in html
    report, clean = client_report(html)
    assert clean, report


def test_cli_check_clients_prints_the_report(tmp_path: Path, run: Invoke) -> None:
    result = run("-C", str(_example_workspace(tmp_path)), "check", "2025-12", "--clients")
    assert result.exit_code == 0, result.stderr
    assert "Client support:" in result.stdout
    assert "Outlook" in result.stdout and "Apple Mail" in result.stdout
    assert "Clean: nothing unsupported in Gmail, Apple Mail or Outlook on the web;" in result.stdout
    assert "ready to send" in result.stderr


def _example_workspace(tmp_path: Path) -> Path:
    import shutil

    shutil.copy(REPO / "cepletter.toml", tmp_path / "cepletter.toml")
    shutil.copytree(REPO / "issues" / "2025-12", tmp_path / "issues" / "2025-12",
                    ignore=shutil.ignore_patterns("build", "*.jsonl"))
    # The lists the settings name, where they name them.
    for name in ("subscribers.csv", "suppressed.csv"):
        (tmp_path / "cepletter" / "sample").mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "cepletter" / "sample" / name, tmp_path / "cepletter" / "sample" / name)
    return tmp_path


def _report_lines(stdout: str) -> list[str]:
    """The client report: what `check` prints after its own findings (error:/warning: and their hints)."""
    lines = stdout.splitlines()
    while lines and lines[0].startswith(("error: ", "warning: ", "    ")):
        lines.pop(0)
    return lines


def _grid_rows(report: str) -> list[str]:
    """The grid's feature rows: between the dashed rule and the legend."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("-----")) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("  yes supported"))
    return [line for line in lines[start:end] if line]


def test_cli_check_clients_gives_the_verdict_first_then_only_the_rows_that_are_not_yes_everywhere(
        tmp_path: Path, run: Invoke) -> None:
    ws = _example_workspace(tmp_path)
    result = run("-C", str(ws), "check", "2025-12", "--clients")
    assert result.exit_code == 0, result.stderr
    lines = _report_lines(result.stdout)
    assert lines[:2] == ["Clean: nothing unsupported in Gmail, Apple Mail or Outlook on the web;",
                         "  Outlook for Windows lacks only what degrades gracefully."]
    assert lines.index("Clean: nothing unsupported in Gmail, Apple Mail or Outlook on the web;") < \
        next(i for i, line in enumerate(lines) if line.startswith("feature"))
    rows = _grid_rows(result.stdout)
    assert rows and all(set(row.split()[-9:]) != {"yes"} for row in rows), rows
    assert not any(row.startswith("<div> element") for row in rows)
    assert "Supported everywhere: <div> element" in result.stdout
    assert result.stdout.count("Clean:") == 1

    every = run("-C", str(ws), "check", "2025-12", "--clients", "--all")
    assert every.exit_code == 0, every.stderr
    all_rows = _grid_rows(every.stdout)
    div = next(row for row in all_rows if row.startswith("<div> element"))
    assert div.split()[-9:] == ["yes"] * 9
    assert set(rows) < set(all_rows)
    assert "Supported everywhere:" not in every.stdout
    assert _report_lines(every.stdout)[0].startswith("Clean: ")
    # --all is enough on its own.
    assert run("-C", str(ws), "check", "2025-12", "--all").stdout == every.stdout


def test_cli_check_clients_says_first_what_breaks_where(tmp_path: Path, run: Invoke) -> None:
    ws = _example_workspace(tmp_path)
    (ws / "templates").mkdir()
    theme = (REPO / "templates" / "style.css").read_text(encoding="utf-8")
    (ws / "templates" / "style.css").write_text(theme + "\n.card-body { display: flex; }\n", encoding="utf-8")
    result = run("-C", str(ws), "check", "2025-12", "--clients", "--strict")
    assert result.exit_code == 1
    lines = _report_lines(result.stdout)
    assert lines[0] == "Not clean:"
    assert lines[1].startswith("  display:flex (") and lines[1].endswith("is not supported in Outlook Windows.")
    assert lines.index("Not clean:") < next(i for i, line in enumerate(lines) if line.startswith("feature"))
    assert "mail client support problems" in result.stderr


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/=\"' {};:()!@#*.,-~+[]astylemdiv0123456789%\n")), max_size=300))
def test_any_markup_gives_a_report_never_an_exception(html: str) -> None:
    report, clean = client_report(html)
    assert report.endswith("\n") and isinstance(clean, bool)
