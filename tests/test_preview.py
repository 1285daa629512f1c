"""`preview`: the build files, the summary, --text, --open, --screenshot without Chromium, --serve."""

from __future__ import annotations

import os
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from renderkit import make_issue, make_workspace

from cepletter.review.server import RELOAD_PATH, PreviewServer, preview_state, with_reload_script

SUBSCRIBERS = "email,name,organisation\nnot-an-address,Nobody,X\nmaria@example.org,María José <MJ>,Probation NL\n"


def test_preview_writes_build_files_and_prints_a_summary(tmp_path: Path, run) -> None:
    settings = make_workspace(tmp_path, subscribers=SUBSCRIBERS)
    make_issue(settings)
    result = run("-C", str(tmp_path), "preview")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    build = tmp_path / "issues" / "2025-12" / "build"
    html = (build / "newsletter.html").read_text(encoding="utf-8")
    text = (build / "newsletter.txt").read_text(encoding="utf-8")
    assert "Dear María José &lt;MJ&gt;," in html
    assert "Dear María José <MJ>," in text
    assert "__version" not in html
    assert not list(build.glob(".*.tmp"))
    err = result.stderr
    for expected in (
        "Issue 2025-12: Newsletter December 2025",
        "Subject    CEP Newsletter December 2025",
        "Preheader  Mental health in probation, a new report and the 2026 calendar",
        "Items      4 items, 2 events: Section 1 (2), Section 2 (2)",
        "Shown as   María José <MJ> <maria@example.org>, the first subscriber (subscribers.csv, line 3)",
        "newsletter.html", "newsletter.txt", " KB", "Rendered   in ", "inlining",
        "Checks     no problems found",
    ):
        assert expected in err, expected


def test_preview_without_subscribers_uses_an_example_recipient(tmp_path: Path, run) -> None:
    make_issue(make_workspace(tmp_path))
    result = run("-C", str(tmp_path), "preview", "2025-12")
    assert result.exit_code == 0, result.stderr
    assert "Shown as   Alex Example <alex@example.org>, the example recipient" in result.stderr
    assert "Dear Alex Example," in (tmp_path / "issues/2025-12/build/newsletter.txt").read_text(encoding="utf-8")


def test_preview_shows_warnings(tmp_path: Path, run) -> None:
    make_issue(make_workspace(tmp_path, subscribers="email\nanna@example.org\n"),
               preheader="In this issue: An item taken out since")
    result = run("-C", str(tmp_path), "preview")
    assert result.exit_code == 0
    assert "Checks     0 errors, 1 warning" in result.stderr
    assert "warning: the preheader names “An item taken out since”, which is no longer an item" in result.stderr


def test_images_have_a_pixel_width_attribute_for_outlook(tmp_path: Path, run) -> None:
    # Outlook for Windows sizes an image by its attributes: a pixel width, and a pixel
    # height or none (not width="100%" height="auto", which the inliner used to write).
    from lxml import html as lxml_html

    make_issue(make_workspace(tmp_path, subscribers="email,name\nanna@example.org,Anna Jansen\n"))
    result = run("-C", str(tmp_path), "preview")
    assert result.exit_code == 0, result.stderr
    root = lxml_html.fromstring((tmp_path / "issues/2025-12/build/newsletter.html").read_bytes())
    images = root.xpath("//img")
    assert len(images) == 4
    for image in images:
        assert image.get("width") == "550", image.attrib  # the card's column
        assert image.get("height") is None, image.attrib
        assert "max-width:100%" in image.get("style", "").replace(" ", "")  # fluid where CSS works


def test_preview_text_prints_the_text_version(tmp_path: Path, run) -> None:
    make_issue(make_workspace(tmp_path))
    result = run("-C", str(tmp_path), "preview", "--text")
    assert result.exit_code == 0
    assert result.stdout.startswith("Newsletter December 2025\n========================\n")
    assert "Dear Alex Example," in result.stdout
    assert "Issue 2025-12" in result.stderr and "Issue 2025-12" not in result.stdout


def test_preview_latest_issue_by_default(tmp_path: Path, run) -> None:
    settings = make_workspace(tmp_path)
    make_issue(settings, "2025-10")
    make_issue(settings, "2025-12")
    result = run("-C", str(tmp_path), "preview")
    assert result.exit_code == 0
    assert "Issue 2025-12" in result.stderr
    assert not (tmp_path / "issues/2025-10/build").exists()


def test_preview_open_hands_the_file_to_the_browser(tmp_path: Path, run) -> None:
    make_issue(make_workspace(tmp_path))
    record = tmp_path / "opened.txt"
    opener = tmp_path / "fake-browser"
    opener.write_text(f'#!/bin/sh\necho "$1" > "{record}"\n', encoding="utf-8")
    opener.chmod(opener.stat().st_mode | stat.S_IXUSR)
    import webbrowser

    saved = webbrowser._tryorder  # type: ignore[attr-defined]
    webbrowser._tryorder = None  # type: ignore[attr-defined]  # re-read $BROWSER
    try:
        result = run("-C", str(tmp_path), "preview", "--open", env={"BROWSER": f"{opener} %s"})
    finally:
        webbrowser._tryorder = saved  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.stderr
    opened = record.read_text(encoding="utf-8").strip()
    assert opened == (tmp_path / "issues/2025-12/build/newsletter.html").resolve().as_uri()


def test_screenshot_without_chromium_says_how_to_install(tmp_path: Path, run) -> None:
    make_issue(make_workspace(tmp_path))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run("-C", str(tmp_path), "preview", "--screenshot", env={"PATH": str(empty)})
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Error: no Chromium found on PATH (looked for chromium, chromium-browser, google-chrome)"
    assert "apt-get install chromium" in lines[1]
    assert len(lines) == 2


def test_template_error_in_preview_is_one_line_without_traceback(tmp_path: Path, run) -> None:
    make_issue(make_workspace(tmp_path))
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "_item.html.j2").write_text("<tr><td>\n{{ item.titel }}\n</td></tr>\n",
                                                          encoding="utf-8")
    result = run("-C", str(tmp_path), "preview")
    assert result.exit_code == 1
    assert "_item.html.j2, line 2:" in result.stderr
    assert "titel" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- --serve

def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def _wait_for_version(base: str, old: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, version = _get(base + RELOAD_PATH.lstrip("/"))
        if version != old:
            return version
        time.sleep(0.1)
    raise AssertionError("the preview was not rebuilt")


def _touch_later(path: Path, text: str) -> None:
    # mtime granularity: make sure the new file's stamp differs even on coarse clocks
    before = path.stat().st_mtime if path.exists() else None
    path.write_text(text, encoding="utf-8")
    if before is not None and path.stat().st_mtime == before:
        os.utime(path, (before + 1, before + 1))


def test_serve_rerenders_on_save_and_reloads(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path)
    make_issue(settings)
    state = preview_state(tmp_path, "2025-12")
    state.refresh(force=True)
    server = PreviewServer(state, port=0, interval=0.1).start()
    try:
        base = server.url
        assert base.startswith("http://127.0.0.1:")
        status, page = _get(base)
        assert status == 200
        assert "Newsletter December 2025" in page
        assert RELOAD_PATH in page and "location.reload()" in page
        built = (tmp_path / "issues/2025-12/build/newsletter.html").read_text(encoding="utf-8")
        assert RELOAD_PATH not in built and "<script" not in built
        _, version = _get(base + "__version")

        issue_file = tmp_path / "issues/2025-12/issue.md"
        _touch_later(issue_file, issue_file.read_text(encoding="utf-8").replace(
            "title: Newsletter December 2025", "title: Special Winter Edition"))
        version = _wait_for_version(base, version)
        assert "Special Winter Edition" in _get(base)[1]

        templates = tmp_path / "templates"
        templates.mkdir()
        broken = templates / "_footer.html.j2"
        _touch_later(broken, "<tr><td>{% if %}</td></tr>\n")
        version = _wait_for_version(base, version)
        status, page = _get(base)
        assert status == 200 and "The preview could not be built" in page
        assert "_footer.html.j2, line 1" in page and RELOAD_PATH in page

        broken.unlink()
        version = _wait_for_version(base, version)
        assert "Special Winter Edition" in _get(base)[1]

        _touch_later(tmp_path / "cepletter.toml", (tmp_path / "cepletter.toml").read_text(encoding="utf-8")
                     .replace('name = "CEP Newsletter"', 'name = "Probation News"'))
        _wait_for_version(base, version)
        assert "Probation News" in _get(base)[1]
    finally:
        server.close()


@pytest.mark.parametrize("path", [
    "../cepletter.toml", "%2e%2e/cepletter.toml", "..%2fissue.md", "issue.md", "build/newsletter.html",
    "newsletter.html/../../issue.md", "/etc/passwd", "desktop.png",
])
def test_serve_only_serves_built_files(tmp_path: Path, path: str) -> None:
    make_issue(make_workspace(tmp_path))
    state = preview_state(tmp_path, "2025-12")
    state.refresh(force=True)
    server = PreviewServer(state, port=0).start()
    try:
        status, body = _get(server.url + path.lstrip("/"))
        assert status == 404
        assert "[newsletter]" not in body and "title:" not in body
        assert _get(server.url + "newsletter.txt")[0] == 200
    finally:
        server.close()


def test_reload_script_goes_before_body_end() -> None:
    page = with_reload_script("<html><body><p>x</p></body></html>", 7)
    assert page.index("<script>") > page.index("<p>x</p>")
    assert page.endswith("</script></body></html>")
    assert 'var seen = "7"' in page


def test_preview_serve_command_runs_until_interrupted(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from renderkit import REPO

    make_issue(make_workspace(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "cepletter", "-C", str(tmp_path), "preview", "--serve", "--port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if line.startswith("Serving "):
                break
        serving = lines[-1]
        assert serving.startswith("Serving 2025-12 at http://127.0.0.1:"), "".join(lines)
        url = serving.split(" at ", 1)[1].split(" ", 1)[0]
        status, page = _get(url)
        assert status == 200 and "Newsletter December 2025" in page
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Stopped." in err and "Traceback" not in err
    assert out == ""


def test_preview_serve_on_a_busy_port_is_one_clear_error(tmp_path: Path, run) -> None:
    import socket

    make_issue(make_workspace(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("-C", str(tmp_path), "preview", "--serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"Error: cannot serve on 127.0.0.1 port {port}" in result.stderr
    assert "--port 0" in result.stderr and "Traceback" not in result.stderr
