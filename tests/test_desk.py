"""The editorial desk: the file it keeps, the server's defences, and the page in a real browser.

The browser tests drive the system Chromium through Playwright (no browser
download); they find controls by role and accessible name, as a screen reader
would, and wait on conditions, never on fixed sleeps. Without Chromium they
are skipped, except in CI (CI=true or CEPLETTER_REQUIRE_BROWSER=1), where that fails.
"""

from __future__ import annotations

import difflib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from smtpservers import SmtpServer

from cepletter.config import load_settings
from cepletter.desk.document import Document
from cepletter.desk.server import DeskServer
from cepletter.desk.session import Desk
from cepletter.desk.summary import markdown_of
from cepletter.issue import draft
from cepletter.issue.file import dumps, load, loads
from cepletter.review.signoff import signoffs
from cepletter.workspace import init_workspace

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
CONFIG = """\
[newsletter]
name = "CEP Newsletter"
from = "CEP <newsletter@example.org>"
web_url = "https://example.org/newsletter/"
unsubscribe_url = "https://example.org/unsubscribe?email={email}"
postal_address = "CEP, P.O. Box 8219, 3503 RE Utrecht, The Netherlands"
timezone = "Europe/Amsterdam"

[[sources]]
name = "news"
path = "news.xml"

[delivery]
transport = "%(transport)s"
maildir = "outbox"
%(smtp)s
"""


# ---------------------------------------------------------------- workspaces


def workspace(tmp_path: Path, smtp_port: int | None = None) -> Path:
    """A workspace from `cepletter init` (the sample feed of ten items), optionally sending to a local SMTP server."""
    root = tmp_path / "ws"
    init_workspace(root)
    smtp = f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n' if smtp_port else ""
    (root / "cepletter.toml").write_text(
        CONFIG % {"transport": "smtp" if smtp_port else "maildir", "smtp": smtp}, encoding="utf-8")
    return root


def drafted(root: Path, numbers: list[int], issue_id: str = "2025-12") -> Path:
    """Draft ``issue_id`` from candidates ``numbers`` (1-based), as `cepletter draft --pick` does."""
    from cepletter.sources.reader import read_items

    settings = load_settings(root)
    win = draft.window(settings, issue_id)
    found = draft.candidates(read_items(draft.select_sources(settings, (), (), root), settings), win)
    issue = draft.build_issue([found[n - 1] for n in numbers], issue_id=issue_id,
                              issue_date=draft.today(settings), settings=settings)
    return draft.save_draft(settings, issue)


def candidate_titles(root: Path, issue_id: str = "2025-12") -> list[str]:
    return [c["title"] for c in Desk(root, issue_id).state()["candidates"]]


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Wait until ``condition()`` is truthy (re-checked every 20 ms); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def titles_in_file(path: Path) -> list[str]:
    return [item.title for item in load(path).items]


@pytest.fixture
def serve() -> Iterator[Callable[..., DeskServer]]:
    servers: list[DeskServer] = []

    def start(root: Path, issue_id: str | None = None, *, interval: float = 0.05) -> DeskServer:
        server = DeskServer(Desk(root, issue_id), interval=interval).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# ---------------------------------------------------------------- the file stays the truth


def test_opening_and_saving_without_a_change_keeps_every_byte(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    path = drafted(root, [3, 1, 5, 2])
    before = path.read_bytes()
    desk = Desk(root, "2025-12")
    assert desk.doc is not None
    assert desk.doc.text().encode() == before
    state = desk.edit(desk.rev, [])
    assert state["refused"] == []
    assert path.read_bytes() == before
    again = Document.of(loads(desk.doc.text(), "2025-12", "x"))
    assert again.text() == desk.doc.text()


def test_a_reorder_changes_only_the_moved_lines(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    path = drafted(root, [2, 3, 4])
    desk = Desk(root, "2025-12")
    assert desk.doc is not None
    desk.edit(desk.rev, [{"op": "sections", "on": False}])  # one list, so the items can trade places
    before = path.read_text(encoding="utf-8")
    moved = desk.doc.items[2]
    state = desk.edit(desk.rev, [{"op": "move", "id": moved.id, "by": -1}])
    assert state["refused"] == []
    after = path.read_text(encoding="utf-8")
    assert titles_in_file(path)[1] == moved.title
    diff = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    removed = sorted(line[2:] for line in diff if line.startswith("- "))
    added = sorted(line[2:] for line in diff if line.startswith("+ "))
    assert removed and removed == added  # lines moved, none changed
    # ... and they are the lines of one of the two items that traded places
    other = desk.doc.items[2]
    assert removed in (sorted(_item_lines(after, moved.id)), sorted(_item_lines(after, other.id)))


def _item_lines(text: str, item_id: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(f"  - id: {item_id}")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
    return lines[start:end]


def test_edits_are_saved_in_the_format_draft_writes_and_titles_with_colons_survive(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    path = drafted(root, [1])
    desk = Desk(root, "2025-12")
    assert desk.doc is not None
    item = desk.doc.items[0]
    desk.edit(desk.rev, [
        {"op": "item", "id": item.id, "field": "title", "value": "Recap: what we learnt: part 2"},
        {"op": "item", "id": item.id, "field": "summary", "value": "Two *short* lines.\n\nAnd a [link](https://example.org/x)."},
        {"op": "set", "field": "intro", "value": "Dear colleagues,\n\n- one\n- two\n"},
    ])
    text = path.read_text(encoding="utf-8")
    issue = load(path)
    assert issue.items[0].title == "Recap: what we learnt: part 2"
    assert issue.items[0].summary == "Two *short* lines.\n\nAnd a [link](https://example.org/x)."
    assert issue.intro == "Dear colleagues,\n\n- one\n- two\n"
    assert dumps(issue) == text  # stable: a load and a save change nothing
    assert "<strong>" not in text and "<em>" not in text


def test_a_bad_value_is_refused_with_the_reason_and_the_rest_is_saved(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    path = drafted(root, [1, 2])
    desk = Desk(root, "2025-12")
    assert desk.doc is not None
    first = desk.doc.items[0]
    state = desk.edit(desk.rev, [
        {"op": "item", "id": first.id, "field": "link", "value": "htt"},
        {"op": "set", "field": "subject", "value": "A new subject"},
    ])
    assert [r["index"] for r in state["refused"]] == [0]
    assert "is not an http(s) link" in state["refused"][0]["message"]
    issue = load(path)
    assert issue.subject == "A new subject"
    assert issue.items[0].link == first.link


def test_candidates_are_those_of_items_with_its_window(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    drafted(root, [1, 2], issue_id="2025-11")
    from cepletter.sources.reader import read_items

    settings = load_settings(root)
    expected = draft.candidates(read_items(draft.select_sources(settings, (), (), root), settings),
                                draft.window(settings, "2025-12"))
    state = Desk(root, "2025-12").state()
    assert [c["id"] for c in state["candidates"]] == [i.id for i in expected]
    assert state["start"] is not None and state["start"]["existing"] == ["2025-11"]
    assert "issue 2025-11" in state["candidate_reason"]


def test_summaries_show_as_markdown_that_renders_the_same() -> None:
    assert markdown_of("<p>Hello &amp; welcome</p><p>Second</p>") == "Hello & welcome\n\nSecond"
    assert markdown_of("<p>A *star* and 1. x</p>") == "A \\*star\\* and 1. x"
    assert markdown_of("<p>2025. A year</p>") == "2025\\. A year"
    assert markdown_of("<p>see <a href=\"https://example.org/\">this</a></p>") is None  # richer HTML stays HTML
    assert markdown_of("<p>a &lt; b</p>") is None  # "<" would make the renderer read it as HTML
    assert markdown_of("Already *Markdown*") == "Already *Markdown*"


def test_preheader_follows_the_items_until_edited_and_reset_makes_it_follow_again(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    path = drafted(root, [2])
    desk = Desk(root, "2025-12")
    assert desk.doc is not None
    assert desk.state()["issue"]["preheader_follows"]
    item = desk.doc.items[0]
    desk.edit(desk.rev, [{"op": "item", "id": item.id, "field": "title", "value": "A shorter title"}])
    assert desk.preview.inbox["preheader"] == "In this issue: A shorter title"  # what the email's inbox line shows
    assert desk.state()["issue"]["preheader_follows"]
    desk.edit(desk.rev, [{"op": "set", "field": "preheader", "value": "Written by hand"}])
    desk.edit(desk.rev, [{"op": "item", "id": item.id, "field": "title", "value": "Another title"}])
    assert load(path).preheader == "Written by hand"
    assert desk.preview.inbox["preheader"] == "Written by hand"
    assert not desk.state()["issue"]["preheader_follows"]
    desk.edit(desk.rev, [{"op": "reset_preheader"}])
    assert desk.preview.inbox["preheader"] == "In this issue: Another title"
    assert desk.state()["issue"]["preheader_follows"]


def test_sections_can_be_made_renamed_deleted_and_switched_off(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    path = drafted(root, [2, 3, 4])  # three categories: three sections
    desk = Desk(root, "2025-12")
    assert desk.doc is not None and len(desk.doc.sections) == 3
    desk.edit(desk.rev, [{"op": "add_section", "heading": "Highlights"}])
    assert [s.heading for s in load(path).sections] == [s.heading for s in desk.doc.sections[:3]]  # empty: not saved
    new = desk.doc.sections[3].key
    desk.edit(desk.rev, [{"op": "move_to", "id": desk.doc.items[0].id, "section": new, "index": 0},
                         {"op": "rename_section", "section": new, "heading": "Top stories"}])
    assert load(path).sections[-1].heading == "Top stories"
    emptied = desk.doc.sections[0]
    assert emptied.items == []
    desk.edit(desk.rev, [{"op": "delete_section", "section": emptied.key}])
    assert len(desk.doc.sections) == 3 and len(load(path).sections) == 3
    second = desk.doc.sections[1]
    desk.edit(desk.rev, [{"op": "delete_section", "section": second.key}])  # its items join the one before
    assert [s.heading for s in load(path).sections] == [desk.doc.sections[0].heading, "Top stories"]
    assert len(load(path).sections[0].items) == 2
    desk.edit(desk.rev, [{"op": "sections", "on": False}])
    issue = load(path)
    assert [s.heading for s in issue.sections] == [""] and len(issue.items) == 3
    assert desk.preview.error is None
    assert 'class="section-title"' not in desk.preview.html  # one list: no section heading in the email
    desk.edit(desk.rev, [{"op": "sections", "on": True}])
    assert [s.heading for s in load(path).sections] == [i.category for i in issue.items]


def test_an_outside_edit_is_loaded_and_bad_yaml_is_shown_with_its_line_until_fixed(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    path = drafted(root, [1])
    desk = Desk(root, "2025-12")
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("Welcome to", "Hello from a text editor, welcome to"), encoding="utf-8")
    assert desk.poll()
    assert desk.doc is not None and desk.doc.issue.intro.startswith("Hello from a text editor")
    assert "changed outside the desk" in desk.state()["notice"]
    # the classic: a title with ": " typed without quotes
    broken = path.read_text(encoding="utf-8").replace("title: Newsletter", "title: Recap: Newsletter", 1)
    path.write_text(broken, encoding="utf-8")
    assert desk.poll()
    error = desk.state()["error"]
    assert error is not None and "issue.md, line 2: " in error["message"] and "title" in error["message"]
    state = desk.edit(desk.rev, [{"op": "set", "field": "subject", "value": "From the desk"}])
    assert state["conflicted"] and path.read_text(encoding="utf-8") == broken  # never written over
    path.write_text(good, encoding="utf-8")
    assert desk.poll()
    assert desk.state()["error"] is None


def test_an_edit_made_on_an_older_version_is_a_conflict_and_never_overwrites(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    path = drafted(root, [1])
    desk = Desk(root, "2025-12")
    seen = desk.rev
    theirs = path.read_text(encoding="utf-8").replace("Welcome to", "Their words. Welcome to")
    path.write_text(theirs, encoding="utf-8")
    state = desk.edit(seen, [{"op": "set", "field": "intro", "value": "My words."}])
    assert state["conflicted"]
    assert path.read_text(encoding="utf-8") == theirs
    assert state["conflict"]["yours"] == ["Intro: My words."]
    assert state["issue"]["intro"].startswith("Their words.")


# ---------------------------------------------------------------- safe by default


def _request(server: DeskServer, method: str, path: str, *, host: str | None = None,
             headers: dict[str, str] | None = None, body: bytes | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest(method, path, skip_host=True)
    connection.putheader("Host", host if host is not None else f"127.0.0.1:{server.port}")
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body or b"")))
    connection.endheaders(body)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_requests_without_the_token_from_a_foreign_host_or_without_csrf_are_refused(
        tmp_path: Path, serve: Callable[..., DeskServer]) -> None:
    root = workspace(tmp_path)
    path = drafted(root, [1])
    server = serve(root, "2025-12")
    token = f"/{server.token}/"
    before = path.read_bytes()
    edit = json.dumps({"rev": server.desk.rev, "edits": [{"op": "set", "field": "subject", "value": "Pwned"}]}).encode()
    json_type = {"Content-Type": "application/json"}
    good = {"X-CSRF-Token": server.csrf, **json_type}

    assert _request(server, "GET", token).status == 200
    refused = {
        "no token": _request(server, "GET", "/"),
        "no token, API": _request(server, "GET", "/api/state"),
        "wrong token": _request(server, "GET", f"/{server.token[:-1]}{'y' if server.token[-1] == 'x' else 'x'}/api/state"),
        "foreign Host": _request(server, "GET", token, host="evil.example"),
        "foreign Host, right port": _request(server, "GET", token, host=f"evil.example:{server.port}"),
        "other port": _request(server, "GET", token, host=f"127.0.0.1:{server.port + 1}"),
        "POST without CSRF": _request(server, "POST", token + "api/edit", headers=json_type, body=edit),
        "POST with a wrong CSRF": _request(server, "POST", token + "api/edit",
                                           headers={"X-CSRF-Token": server.token, **json_type}, body=edit),
        "POST from another origin": _request(server, "POST", token + "api/edit",
                                             headers={"Origin": "https://evil.example", **good}, body=edit),
        "POST from another site": _request(server, "POST", token + "api/edit",
                                           headers={"Sec-Fetch-Site": "cross-site", **good}, body=edit),
        "POST as a form": _request(server, "POST", token + "api/edit",
                                   headers={"X-CSRF-Token": server.csrf,
                                            "Content-Type": "application/x-www-form-urlencoded"}, body=edit),
        "POST without the token": _request(server, "POST", "/api/edit", headers=good, body=edit),
    }
    assert {what: r.status for what, r in refused.items()} == {
        what: 415 if what == "POST as a form" else 403 for what in refused}
    assert path.read_bytes() == before  # none of them changed the file
    assert _request(server, "POST", token + "api/edit", headers=good, body=edit).status == 200
    assert load(path).subject == "Pwned"  # the same edit with both tokens is accepted


def test_no_cors_headers_no_files_outside_what_it_builds_and_loopback_only(
        tmp_path: Path, serve: Callable[..., DeskServer]) -> None:
    root = workspace(tmp_path)
    drafted(root, [1])
    server = serve(root, "2025-12")
    token = f"/{server.token}/"
    origin = {"Origin": "https://evil.example"}
    answers = [
        _request(server, "GET", token, headers=origin),
        _request(server, "GET", token + "api/state", headers=origin),
        _request(server, "OPTIONS", token + "api/edit",
                 headers={**origin, "Access-Control-Request-Method": "POST"}),
        _request(server, "GET", "/", headers=origin),
    ]
    for answer in answers:
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
    assert answers[2].status == 405
    assert "script-src 'self'" in answers[0].headers["Content-Security-Policy"]
    assert answers[0].headers["Referrer-Policy"] == "no-referrer"
    for outside in ("static/../../cepletter.toml", "static/..%2f..%2fcepletter.toml", "cepletter.toml",
                    "issues/2025-12/issue.md", "static/index.html", "static/", "static/LICENSE-SortableJS",
                    "build/newsletter.html", "api/nothing"):
        assert _request(server, "GET", token + outside).status == 404, outside
    assert _request(server, "GET", token + "static/desk.js").status == 200
    assert server.httpd.server_address[0] == "127.0.0.1"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.2", server.port), timeout=5):
        pass


def test_desk_command_prints_a_tokened_address_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    drafted(root, [1])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "cepletter", "-C", str(root), "desk", "2025-12", "--no-open"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()  # blocks until the desk is listening
        assert address.startswith("http://127.0.0.1:") and address.endswith("/")
        host_port, token = address.removeprefix("http://").rstrip("/").split("/")
        assert len(token) >= 32
        connection = http.client.HTTPConnection(*host_port.split(":"), timeout=10)
        connection.request("GET", f"/{token}/api/state")
        state = json.loads(connection.getresponse().read())
        assert state["issue"]["id"] == "2025-12"
        connection.request("GET", "/api/state")
        assert connection.getresponse().status == 403
        connection.close()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "The desk for issue 2025-12 is open at:" in err
    assert "Stopped." in err


# ---------------------------------------------------------------- the page in a real browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def _missing_browser(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1") or os.environ.get("CEPLETTER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Playwright and one system Chromium for the module; each test gets its own profile."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing_browser("Playwright is not installed (pip install playwright)")
    expect.set_options(timeout=20_000)  # a condition, not a pause: a busy machine may need longer to render
    executable = _chromium()
    if executable is None:
        _missing_browser("no Chromium on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        yield playwright, executable


@pytest.fixture
def open_page(chromium: Any, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    playwright, executable = chromium
    contexts: list[Any] = []

    def open_(server: DeskServer, width: int = 1280, height: int = 900) -> Any:
        profile = tempfile.mkdtemp(prefix="profile-", dir=tmp_path)
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height})
        contexts.append(context)
        # Tests talk to 127.0.0.1 only: the email's images on the web are never fetched.
        context.route(re.compile(r"^(?!http://127\.0\.0\.1:)[a-z]+://"), lambda route: route.abort())
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        page.goto(server.url)
        page.wait_for_selector("body[data-ready]")
        return page

    yield open_
    for context in contexts:
        context.close()


def _frame_titles(page: Any) -> list[str] | None:
    """The item titles in the preview frame; None while the frame is being replaced."""
    from playwright.sync_api import Error

    try:
        texts = page.frame_locator("#frame").locator("h3.item-title").all_inner_texts()
    except Error:
        return None
    return [" ".join(t.split()) for t in texts]


def _wait_frame_titles(page: Any, titles: list[str]) -> None:
    wait_until(lambda: _frame_titles(page) == [" ".join(t.split()) for t in titles], f"the preview shows {titles}")


def _drag(page: Any, handle: Any, target: Any) -> None:
    """Press on ``handle``, move in steps to the top of ``target``, release: as a hand with a mouse does."""
    handle.scroll_into_view_if_needed()
    start, goal = handle.bounding_box(), target.bounding_box()
    assert start is not None and goal is not None
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + 4, steps=20)
    page.mouse.up()


@pytest.mark.browser
def test_tick_reorder_and_edit_in_the_browser(tmp_path: Path, serve: Callable[..., DeskServer],
                                              open_page: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    root = workspace(tmp_path)
    path = drafted(root, [1])
    names = candidate_titles(root)
    first, ticked = names[0], names[1:4]
    page = open_page(serve(root, "2025-12"))
    preview = page.get_by_role("region", name="Preview")
    expect(preview.locator("iframe")).to_have_attribute("sandbox", "allow-same-origin allow-popups allow-popups-to-escape-sandbox")
    _wait_frame_titles(page, [first])

    # tick three candidates: each lands in the file and the preview
    order = [first]
    for title in ticked:
        page.get_by_role("checkbox", name=title, exact=True).check()
        order.append(title)
        wait_until(lambda o=list(order): titles_in_file(path) == o, f"issue.md lists {order}")
        _wait_frame_titles(page, order)

    # reorder with the keyboard buttons
    page.get_by_role("button", name=f"Move up: {ticked[2]}", exact=True).click()
    order = [first, ticked[0], ticked[2], ticked[1]]
    wait_until(lambda: titles_in_file(path) == order, "Move up is saved")
    _wait_frame_titles(page, order)
    down = page.get_by_role("button", name=f"Move down: {first}", exact=True)
    down.focus()
    page.keyboard.press("Enter")
    order = [ticked[0], first, ticked[2], ticked[1]]
    wait_until(lambda: titles_in_file(path) == order, "Move down (pressed with Enter) is saved")
    _wait_frame_titles(page, order)
    expect(page.get_by_role("button", name=f"Move down: {first}", exact=True)).to_be_focused()  # focus stays put

    # reorder by drag and drop: the last item above the one before it
    _drag(page, page.locator(f'li.item[data-id="{load(path).items[3].id}"] .handle'),
          page.locator(f'li.item[data-id="{load(path).items[2].id}"] .item-head'))
    order = [ticked[0], first, ticked[1], ticked[2]]
    wait_until(lambda: titles_in_file(path) == order, "the drag is saved")
    _wait_frame_titles(page, order)

    # edit a title (with ": ", which used to break the file) and the intro
    page.get_by_role("textbox", name=f"Title: {ticked[0]}", exact=True).fill("Recap: a title with a colon")
    order[0] = "Recap: a title with a colon"
    wait_until(lambda: titles_in_file(path) == order, "the new title is saved")
    _wait_frame_titles(page, order)
    expect(page.get_by_role("textbox", name="Title: Recap: a title with a colon", exact=True)).to_be_visible()
    intro = page.get_by_role("textbox", name="Intro", exact=True)
    intro.fill("Dear colleagues,\n\nThis month: ")
    page.get_by_role("button", name="Bold", exact=True).click()
    wait_until(lambda: load(path).intro == "Dear colleagues,\n\nThis month: **bold text**\n", "the intro is saved")
    expect(page.frame_locator("#frame").locator("td.intro strong")).to_have_text("bold text")
    expect(page.frame_locator("#frame").locator("td.intro")).to_contain_text("This month:")
    assert dumps(load(path)) == path.read_text(encoding="utf-8")
    assert page.errors == []


@pytest.mark.browser
def test_outside_edits_reload_and_a_conflict_is_shown_not_overwritten(
        tmp_path: Path, serve: Callable[..., DeskServer], open_page: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    root = workspace(tmp_path)
    path = drafted(root, [1])
    page = open_page(serve(root, "2025-12"))
    intro = page.get_by_role("textbox", name="Intro", exact=True)

    # an outside edit (another editor saving the file) is loaded into the page and the preview
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Welcome to", "Edited in a text editor. Welcome to"), encoding="utf-8")
    wait_until(lambda: intro.input_value().startswith("Edited in a text editor."), "the page shows the outside edit")
    expect(page.frame_locator("#frame").locator("td.intro")).to_contain_text("Edited in a text editor.")

    # bad YAML by hand: a clear message with the line, until it is fixed
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("title: Newsletter", "title: Recap: Newsletter", 1), encoding="utf-8")
    alert = page.get_by_role("alert").filter(has_text="does not load")
    expect(alert).to_contain_text("issue.md, line 2: ")
    expect(alert).to_contain_text("title")
    expect(intro).to_be_disabled()
    path.write_text(good, encoding="utf-8")
    expect(alert).to_have_count(0)
    expect(intro).to_be_enabled()

    # both sides changed: the desk has not seen the outside edit when the page's edit arrives
    server2 = serve(root, "2025-12", interval=3600.0)  # no watcher: the desk learns of it only from the edit
    page2 = open_page(server2)
    theirs = path.read_text(encoding="utf-8").replace("Edited in a text editor.", "Their sentence.")
    path.write_text(theirs, encoding="utf-8")
    page2.get_by_role("textbox", name="Subject", exact=True).fill("My subject from the desk")
    conflict = page2.get_by_role("alert").filter(has_text="Conflict")
    expect(conflict).to_contain_text("changed outside the desk")
    expect(conflict).to_contain_text("Subject: My subject from the desk")
    assert path.read_text(encoding="utf-8") == theirs  # the other edit stands
    expect(page2.get_by_role("textbox", name="Intro", exact=True)).to_have_value(load(path).intro)
    expect(page2.get_by_role("textbox", name="Subject", exact=True)).to_have_value(load(path).subject)
    page2.get_by_role("button", name="Dismiss").first.click()
    expect(conflict).to_have_count(0)
    assert page.errors == [] and page2.errors == []


@pytest.mark.browser
def test_send_a_test_to_a_real_smtp_server_and_approve(
        tmp_path: Path, serve: Callable[..., DeskServer], open_page: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    with SmtpServer() as smtp:
        root = workspace(tmp_path, smtp_port=smtp.port)
        path = drafted(root, [1, 2])
        page = open_page(serve(root, "2025-12"))
        actions = page.get_by_role("region", name="Review and send")
        expect(actions).to_contain_text("Not reviewed yet")
        expect(actions).to_contain_text("send 2025-12")
        page.get_by_role("textbox", name="Intro", exact=True).fill("Dear colleagues, two stories this month.")
        wait_until(lambda: load(path).intro.startswith("Dear colleagues"), "the intro is saved")
        page.get_by_role("textbox", name="Test addresses", exact=True).fill("me@example.org, boss@example.org")
        page.get_by_role("button", name="Send test", exact=True).click()
        expect(page.get_by_role("status").filter(has_text="Test sent to")).to_contain_text(
            "me@example.org, boss@example.org")
        assert sorted(r for m in smtp.messages for r in m.recipients) == ["boss@example.org", "me@example.org"]
        subject = load(path).subject
        assert [message_from_bytes(m.data, policy=default)["Subject"] for m in smtp.messages] == [f"[TEST] {subject}"] * 2
        expect(actions).to_contain_text("Reviewed: test sent to me@example.org, boss@example.org")
        records = signoffs(load_settings(root), "2025-12")
        assert [(r.kind, r.recipients) for r in records] == [("test", ("me@example.org", "boss@example.org"))]

        page.get_by_role("textbox", name="Reviewer", exact=True).fill("Anna Jansen")
        page.get_by_role("button", name="Approve", exact=True).click()
        expect(actions).to_contain_text("approved by Anna Jansen")
        records = signoffs(load_settings(root), "2025-12")
        assert [(r.kind, r.who) for r in records][-1] == ("approval", "Anna Jansen")
        assert records[-1].digest == records[0].digest  # the same content that was tested

        # an edit makes it unreviewed again: the review is of exactly this content
        page.get_by_role("textbox", name="Subject", exact=True).fill("A changed subject")
        expect(actions).to_contain_text("Not reviewed yet")
        assert page.errors == []


@pytest.mark.browser
def test_a_new_user_builds_an_issue_without_a_text_editor(
        tmp_path: Path, serve: Callable[..., DeskServer], open_page: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    root = workspace(tmp_path)
    names = candidate_titles(root)
    page = open_page(serve(root))
    page.get_by_role("textbox", name="Issue ID", exact=True).fill("2026-01")
    for title in names[:5]:
        page.get_by_role("checkbox", name=title, exact=True).check()
    page.get_by_role("button", name="Draft issue", exact=True).click()
    path = root / "issues" / "2026-01" / "issue.md"
    expect(page.get_by_role("textbox", name="Subject", exact=True)).to_be_visible()
    assert titles_in_file(path) == names[:5]
    assert "<p>" not in path.read_text(encoding="utf-8")  # summaries as Markdown, not HTML inside YAML
    sections = [s.heading for s in load(path).sections]
    for heading in sections[3:]:  # five categories, five sections: keep three
        page.get_by_role("button", name=f"Delete section: {heading}", exact=True).click()
        wait_until(lambda h=heading: h not in [s.heading for s in load(path).sections], f"{heading} is deleted")
    page.get_by_role("textbox", name=f"Section heading: {sections[0]}", exact=True).fill("In the news")
    page.get_by_role("textbox", name="Intro", exact=True).fill("Dear colleagues,\n\nFive stories this month.")
    wait_until(lambda: load(path).intro.startswith("Dear colleagues,"), "the intro is saved")
    issue = load(path)
    assert len(issue.items) == 5 and len(issue.sections) == 3 and issue.sections[0].heading == "In the news"
    page.get_by_role("textbox", name="Test addresses", exact=True).fill("me@example.org")
    page.get_by_role("button", name="Send test", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Test sent to")).to_contain_text("me@example.org")
    assert len(list((root / "outbox" / "new").iterdir())) == 1
    assert page.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 820])
def test_the_page_fits_1280_px_and_a_tablet_and_meets_aa_contrast(
        tmp_path: Path, serve: Callable[..., DeskServer], open_page: Callable[..., Any], width: int) -> None:
    root = workspace(tmp_path)
    drafted(root, [1, 2, 3])
    page = open_page(serve(root, "2025-12"), width=width, height=1000)
    _wait_frame_titles(page, titles_in_file(root / "issues" / "2025-12" / "issue.md"))
    sizes = page.evaluate("({scroll: document.documentElement.scrollWidth, inner: innerWidth})")
    assert sizes["scroll"] <= sizes["inner"]
    issue_box = page.get_by_role("region", name="Issue").bounding_box()
    preview_box = page.get_by_role("region", name="Preview").bounding_box()
    assert issue_box is not None and preview_box is not None
    if width >= 1280:
        assert preview_box["x"] >= issue_box["x"] + issue_box["width"] - 1  # side by side
    else:
        assert preview_box["y"] >= issue_box["y"] + issue_box["height"] - 1  # the preview under the issue
    seen = page.evaluate(CONTRAST_SCRIPT)
    assert seen["checked"] > 60  # the texts of the page were looked at
    assert seen["low"] == []


# Every element with its own visible text: the contrast of its colour on the background behind it
# (WCAG 2 relative luminance), at least 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold).
CONTRAST_SCRIPT = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map((x) => parseFloat(x)); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = ({r, g, b}) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const low = [];
  let checked = 0;
  for (const el of document.querySelectorAll('body *')) {
    if (!el.checkVisibility || !el.checkVisibility()) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const field = el.matches('input:not([type=checkbox]):not([type=radio]), textarea, select') && (el.value || el.placeholder);
    if (!own && !field) continue;
    checked += 1;
    const style = getComputedStyle(el);
    const fg = parse(style.color); const bg = background(el);
    const [a, b] = [lum(fg) + 0.05, lum(bg) + 0.05];
    const ratio = Math.max(a, b) / Math.min(a, b);
    const size = parseFloat(style.fontSize); const bold = parseInt(style.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) low.push(`${el.tagName}.${el.className} "${(el.textContent || el.value).trim().slice(0, 40)}" ${ratio.toFixed(2)}`);
  }
  return {checked, low};
}"""


@pytest.mark.browser
def test_no_script_from_the_email_runs_in_the_preview(
        tmp_path: Path, serve: Callable[..., DeskServer], open_page: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    root = workspace(tmp_path)
    drafted(root, [1])
    (root / "templates").mkdir()
    footer = (REPO / "templates" / "_footer.html.j2").read_text(encoding="utf-8")
    hostile = '<script>parent.document.title = "pwned"; document.body.dataset.ran = "yes"</script>'
    (root / "templates" / "_footer.html.j2").write_text(footer + hostile, encoding="utf-8")
    server = serve(root, "2025-12")
    assert hostile in server.desk.preview.html  # the email itself carries the script
    page = open_page(server)
    frame = page.frame_locator("#frame")
    expect(frame.locator("h3.item-title")).to_have_count(1)
    sandbox = page.locator("#frame").get_attribute("sandbox") or ""
    assert "allow-scripts" not in sandbox.split()
    assert frame.locator("script").count() == 0
    assert frame.locator("body").get_attribute("data-ran") is None
    assert page.title() == "cepletter desk"


@pytest.mark.browser
def test_preview_toggles_subscriber_findings_filter_move_to_section_and_remove(
        tmp_path: Path, serve: Callable[..., DeskServer], open_page: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    root = workspace(tmp_path)
    path = drafted(root, [2, 3])  # two categories: two sections
    page = open_page(serve(root, "2025-12"))
    frame_box = page.locator("#frame")
    frame = page.frame_locator("#frame")
    expect(frame.locator("body")).to_contain_text("Dear Anna Jansen")

    # the toggles
    page.get_by_role("radio", name="Phone (375 px)").check()
    expect(frame_box).to_have_attribute("width", "375")
    page.get_by_role("radio", name="Desktop (600 px)").check()
    expect(frame_box).to_have_attribute("width", "600")
    page.get_by_role("checkbox", name="Images off").check()
    expect(frame.locator("img")).not_to_have_count(0)
    expect(frame.locator("img[src]")).to_have_count(0)
    page.get_by_role("checkbox", name="Dark mode").check()
    wait_until(lambda: "min-width: 0px" in (frame_box.get_attribute("srcdoc") or ""), "the dark rules apply")
    page.get_by_role("checkbox", name="Text version").check()
    text = page.get_by_role("region", name="Preview").locator("pre")
    expect(text).to_contain_text(load(path).items[0].title)
    expect(frame_box).to_be_hidden()
    page.get_by_role("checkbox", name="Text version").uncheck()

    # another subscriber's copy
    page.get_by_role("combobox", name="Show as").select_option("pieter.de.vries@example.org")
    expect(frame.locator("body")).to_contain_text("Dear Pieter de Vries")

    # a finding, linked to its field
    long_subject = "A subject that goes on and on, far longer than any inbox can ever show in its list"
    page.get_by_role("textbox", name="Subject", exact=True).fill(long_subject)
    checks = page.get_by_role("region", name="Checks")
    expect(checks).to_contain_text(f"the subject has {len(long_subject)} characters")
    checks.get_by_role("button", name="Go to Subject").click()
    expect(page.get_by_role("textbox", name="Subject", exact=True)).to_be_focused()

    # the candidates' filter
    names = [c["title"] for c in Desk(root, "2025-12").state()["candidates"]]
    page.get_by_role("searchbox", name="Filter candidates").fill("RESCALED")
    expect(page.locator(".candidate-title")).to_have_text([n for n in names if "RESCALED" in n])
    page.get_by_role("searchbox", name="Filter candidates").fill("")
    expect(page.locator(".candidate-title")).to_have_count(len(names))

    # "Move to section…" with the keyboard's select, then Remove puts it back among the candidates
    first, second = load(path).items
    page.get_by_role("combobox", name=f"Move to section: {first.title}").select_option(label=load(path).sections[1].heading)
    wait_until(lambda: [i.title for i in load(path).sections[-1].items] == [second.title, first.title],
               "the item is in the other section")
    page.get_by_role("button", name=f"Remove: {first.title}", exact=True).click()
    wait_until(lambda: titles_in_file(path) == [second.title], "the item is removed")
    expect(page.get_by_role("checkbox", name=first.title, exact=True)).not_to_be_checked()
    expect(page.get_by_role("checkbox", name=second.title, exact=True)).to_be_checked()
    assert page.errors == []
