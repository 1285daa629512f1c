"""The items and draft commands: output, exit codes and messages for every bad input."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import Invoke
from feedserver import feed_server

from cepletter.cli.env import Env
from cepletter.issue.file import Issue, IssueItem, Section, load, save
from cepletter.workspace import init_workspace

SAMPLE_TITLES = [
    "Newsletter December 2025 out now, featuring the 2026 CEP Activity calendar",
    "Bridging Research and Practice in Forensic Social Work: An interview with the editors of "
    "Forensic Social Work – Supporting Desistance",
    "Why some court-ordered psychiatric patients remain in prison in Europe",
]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    init_workspace(root)
    return root


def lines(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


def test_items_piped_is_tab_separated(ws: Path, run: Invoke) -> None:
    result = run("-C", str(ws), "items")
    assert result.exit_code == 0
    rows = lines(result.stdout)
    assert len(rows) == 10
    assert all(len(row) == 5 for row in rows)
    assert rows[0] == ["1", "2025-12-18", "news", "", SAMPLE_TITLES[0]]
    assert rows[1][:4] == ["2", "2025-12-17", "news", "Reading corner"]
    assert [row[0] for row in rows] == [str(n) for n in range(1, 11)]
    assert result.stderr == "10 items (no date limit).\n"


def test_items_on_a_terminal_is_a_table(ws: Path, run: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("-C", str(ws), "items", terminal=Env(stdout_terminal=True))
    assert result.exit_code == 0
    assert "Title" in result.stdout and "Category" in result.stdout
    assert "\t" not in result.stdout
    assert "Mental Health" in result.stdout


def test_items_since_and_days(ws: Path, run: Invoke) -> None:
    result = run("-C", str(ws), "items", "--since", "2025-12-15")
    assert result.exit_code == 0
    assert [row[4] for row in lines(result.stdout)] == SAMPLE_TITLES
    assert result.stderr == "3 items (since 2025-12-15).\n"
    result = run("-C", str(ws), "items", "--days", "100000")
    assert result.exit_code == 0
    assert len(lines(result.stdout)) == 10


def test_items_leaves_out_earlier_issues(ws: Path, run: Invoke) -> None:
    first = run("-C", str(ws), "items").stdout
    used = lines(first)[3]  # 2025-12-11, the MoU
    issue = Issue(id="2025-12", title="t", subject="s", date=date(2025, 12, 11), sections=[Section("News", [
        IssueItem(id="https://www.cep-probation.org/?p=31771", title=used[4],
                  link="https://www.cep-probation.org/memorandum-of-understanding-signed-between-cep-and-rescaled/")])])
    save(issue, ws / "issues" / "2025-12" / "issue.md")
    result = run("-C", str(ws), "items")
    assert result.exit_code == 0
    assert [row[4] for row in lines(result.stdout)] == SAMPLE_TITLES
    assert result.stderr == "3 items (since 2025-12-11 (issue 2025-12); items of earlier issues left out).\n"
    everything = run("-C", str(ws), "items", "--all-items")
    assert len(lines(everything.stdout)) == 10


def test_items_with_feed_outside_a_workspace(tmp_path: Path, ws: Path, run: Invoke) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = run("-C", str(outside), "items", "--feed", str(ws / "news.xml"))
    assert result.exit_code == 0
    assert len(lines(result.stdout)) == 10
    assert lines(result.stdout)[0][2] == "news.xml"


def test_items_fields_are_one_line(ws: Path, run: Invoke) -> None:
    feed = ws / "news.xml"
    feed.write_text(feed.read_text(encoding="utf-8").replace(
        "<title>10 December &#8211; Human Rights Day</title>", "<title>Human\tRights\n  Day</title>"),
        encoding="utf-8")
    result = run("-C", str(ws), "items")
    assert ["5", "2025-12-10", "news", "Human rights and ethics", "Human Rights Day"] in lines(result.stdout)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["items", "--since", "15/12/2025"], 2, "Error: --since 15/12/2025: not a date\n"),
    (["items", "--since", "2025-12-01", "--days", "3"], 2, "Error: --since and --days cannot be used together\n"),
    (["items", "--days", "-2"], 2, "Error: --days -2: must be 0 or more\n"),
    (["items", "--days", "many"], 2, "'many' is not a valid integer"),
    (["items", "--source", "blog"], 2, "Error: --source blog: no source of that name in cepletter.toml\n"),
    (["items", "--feed", "missing.xml"], 1, "Error: source 'missing.xml' ("),
    (["items", "--feed", "ftp://example.org/feed"], 1, "Error: ftp://example.org/feed: only http:// and https://"),
    (["draft"], 2, "Error: choose the items with --pick 3,1,5-7 or --all\n"),
    (["draft", "--pick", "1", "--all"], 2, "Error: --pick and --all cannot be used together\n"),
    (["draft", "--pick", "11"], 2, "Error: --pick 11: there is no item 11\n"),
    (["draft", "--pick", "3,x"], 2, "Error: --pick 3,x: 'x' is not a number or a range like 5-7\n"),
    (["draft", "--pick", "2,2"], 2, "Error: --pick 2,2: item 2 is picked twice\n"),
    (["draft", "--issue", "../evil", "--all"], 1, "Error: '../evil' is not a valid issue ID\n"),
])
def test_bad_input(ws: Path, run: Invoke, args: list[str], code: int, message: str) -> None:
    result = run("-C", str(ws), *args)
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((ws / "issues").iterdir())


def test_missing_feed_file_message(ws: Path, run: Invoke) -> None:
    result = run("-C", str(ws), "items", "--feed", "missing.xml")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: source 'missing.xml' ({ws / 'missing.xml'}): file not found\n")
    assert result.stdout == ""


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty, not a feed"),
    (b"\x00\x01\x02binary\x00" * 10, "a binary file, not a feed"),
    (b"<html><body>Home</body></html>", "a web page, not a feed"),
])
def test_configured_source_that_is_not_a_feed(ws: Path, run: Invoke, content: bytes, message: str) -> None:
    (ws / "news.xml").write_bytes(content)
    result = run("-C", str(ws), "items")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: source 'news' (news.xml): {message}\n")


def test_feed_url_404_and_down(ws: Path, run: Invoke) -> None:
    with feed_server() as srv:
        result = run("-C", str(ws), "items", "--feed", f"{srv.url}/missing")
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: source '127.0.0.1': {srv.url}/missing: HTTP 404 Not Found\n")
        ok = run("-C", str(ws), "items", "--feed", f"{srv.url}/feed.xml")
        assert ok.exit_code == 0
        assert [row[4] for row in lines(ok.stdout)] == ["Second served item", "First served item"]
    down = run("-C", str(ws), "items", "--feed", f"{srv.url}/feed.xml")
    assert down.exit_code == 0
    assert [row[4] for row in lines(down.stdout)] == ["Second served item", "First served item"]
    assert "warning: source '127.0.0.1'" in down.stderr and "connection refused" in down.stderr


def test_no_workspace(tmp_path: Path, run: Invoke) -> None:
    result = run("-C", str(tmp_path), "items")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no cepletter.toml in ")
    assert "cepletter init" in result.stderr


def test_bad_setting_names_file_and_key(ws: Path, run: Invoke) -> None:
    config = ws / "cepletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('path = "news.xml"', 'path = "news.xml"\ncolour = "red"'),
                      encoding="utf-8")
    result = run("-C", str(ws), "items")
    assert result.exit_code == 1
    assert "cepletter.toml, line " in result.stderr and "[sources] colour: unknown key" in result.stderr


def test_no_news_sources(ws: Path, run: Invoke) -> None:
    config = ws / "cepletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('path = "news.xml"', 'path = "events.ics"'),
                      encoding="utf-8")
    result = run("-C", str(ws), "items")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cepletter.toml: no [[sources]] with news items\n")


def test_draft_pick_keeps_the_order(ws: Path, run: Invoke) -> None:
    result = run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "3,1,5-6")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ("Wrote issues/2025-12/issue.md: 4 items in 4 sections.\n"
                             "Next: write the intro in that file, then `cepletter preview`.\n")
    issue = load(ws / "issues" / "2025-12" / "issue.md")
    assert [i.title for i in issue.items] == [
        SAMPLE_TITLES[2], SAMPLE_TITLES[0], "10 December – Human Rights Day",
        "Recap: First face-to-face meeting of the Expert Group Chairs"]
    assert [s.heading for s in issue.sections] == ["Mental Health", "News", "Human rights and ethics", "CEP Events"]
    assert issue.title == "Newsletter December 2025"


def test_draft_refuses_to_overwrite_without_force(ws: Path, run: Invoke) -> None:
    assert run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "1").exit_code == 0
    path = ws / "issues" / "2025-12" / "issue.md"
    before = path.read_text(encoding="utf-8")
    result = run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "2")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: issues/2025-12/issue.md already exists\n  Use --force")
    assert path.read_text(encoding="utf-8") == before
    forced = run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "2", "--force", "--title", "Special")
    assert forced.exit_code == 0
    issue = load(path)
    assert issue.title == "Special"
    assert [i.title for i in issue.items] == [SAMPLE_TITLES[1]]


def test_draft_force_keeps_the_previous_file_as_numbered_backups(ws: Path, run: Invoke) -> None:
    path = ws / "issues" / "2025-12" / "issue.md"
    assert run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "1").exit_code == 0
    edited = path.read_text(encoding="utf-8").replace("_Replace these lines", "Our own words. _Replace these lines")
    path.write_text(edited, encoding="utf-8")
    first = run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "2", "--force")
    assert first.exit_code == 0, first.stderr
    assert "Kept the previous issue.md as issues/2025-12/issue.md.bak.\n" in first.stderr
    assert (path.parent / "issue.md.bak").read_text(encoding="utf-8") == edited
    second_draft = path.read_text(encoding="utf-8")
    second = run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "3", "--force")
    assert second.exit_code == 0, second.stderr
    assert "Kept the previous issue.md as issues/2025-12/issue.md.bak.2.\n" in second.stderr
    assert (path.parent / "issue.md.bak").read_text(encoding="utf-8") == edited  # the first backup stays
    assert (path.parent / "issue.md.bak.2").read_text(encoding="utf-8") == second_draft
    assert [i.title for i in load(path).items] == [SAMPLE_TITLES[2]]
    # A backup is not an issue: the list of issues and the next window are unchanged.
    assert run("-C", str(ws), "preview").exit_code == 0


def test_draft_force_refuses_an_issue_that_was_sent_unless_given_twice(ws: Path, run: Invoke) -> None:
    path = ws / "issues" / "2025-12" / "issue.md"
    assert run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "1").exit_code == 0
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("Welcome to")] + "A short introduction, written.\n", encoding="utf-8")
    sent = run("-C", str(ws), "send", "2025-12", "--yes")  # to the workspace's Maildir
    assert sent.exit_code == 0, sent.stderr
    before = path.read_bytes()
    refused = run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "2", "--force")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error: issues/2025-12/issue.md has already gone out: its send-log.jsonl records it sent to 5 subscribers\n"
        "  Draft a new issue with --issue ID.")
    assert "--force --force" in refused.stderr
    assert path.read_bytes() == before and not (path.parent / "issue.md.bak").exists()
    forced = run("-C", str(ws), "draft", "--issue", "2025-12", "--pick", "2", "--force", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert "Kept the previous issue.md as issues/2025-12/issue.md.bak." in forced.stderr
    assert (path.parent / "issue.md.bak").read_bytes() == before
    assert [i.title for i in load(path).items] == [SAMPLE_TITLES[1]]


def test_draft_with_nothing_new(ws: Path, run: Invoke) -> None:
    result = run("-C", str(ws), "draft", "--issue", "2025-12", "--all", "--since", "2030-01-01")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no items to draft (since 2030-01-01)\n")


def test_draft_asks_on_a_terminal(ws: Path, run: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("-C", str(ws), "draft", "--issue", "2025-12", input="2,1\n", terminal=Env(stdin_terminal=True))
    assert result.exit_code == 0
    assert "Items to include, in order (e.g. 3,1,5-7)" in result.stderr
    assert SAMPLE_TITLES[2] in result.stderr  # the list was shown
    issue = load(ws / "issues" / "2025-12" / "issue.md")
    assert [i.title for i in issue.items] == [SAMPLE_TITLES[1], SAMPLE_TITLES[0]]


def test_draft_numbers_match_items_with_the_same_options(ws: Path, run: Invoke) -> None:
    listed = lines(run("-C", str(ws), "items", "--since", "2025-11-01").stdout)
    result = run("-C", str(ws), "draft", "--issue", "2025-12", "--since", "2025-11-01", "--pick", "7,8")
    assert result.exit_code == 0
    issue = load(ws / "issues" / "2025-12" / "issue.md")
    assert [i.title for i in issue.items] == [listed[6][4], listed[7][4]]


def test_draft_fills_events_from_a_calendar_source(ws: Path, run: Invoke) -> None:
    start = date.today() + timedelta(days=10)
    (ws / "events.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        "BEGIN:VEVENT\r\nUID:conf-1@example.org\r\nDTSTAMP:20251201T000000Z\r\n"
        f"DTSTART;VALUE=DATE:{start:%Y%m%d}\r\nDTEND;VALUE=DATE:{start + timedelta(days=1):%Y%m%d}\r\n"
        "SUMMARY:CEP Conference\r\nLOCATION:Utrecht\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8")
    config = ws / "cepletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + '\n[[sources]]\nname = "events"\npath = "events.ics"\n',
                      encoding="utf-8")
    listed = run("-C", str(ws), "items")
    assert len(lines(listed.stdout)) == 10  # the calendar adds no news items
    result = run("-C", str(ws), "draft", "--pick", "1")
    assert result.exit_code == 0, result.stderr
    assert "1 item in 1 section, 1 event." in result.stderr
    (issue_file,) = (ws / "issues").glob("*/issue.md")
    issue = load(issue_file)
    assert [(e.title, e.location) for e in issue.events] == [("CEP Conference", "Utrecht")]


def test_draft_writes_the_intro_it_is_given(tmp_path: Path, run: Invoke) -> None:
    """The README's one-command quick start: draft --intro, and check finds nothing half-edited."""
    ws = tmp_path / "demo"
    assert run("init", str(ws)).exit_code == 0
    drafted = run("-C", str(ws), "draft", "--all", "--issue", "2025-12", "--intro", "  This month: *probation* news.\n")
    assert drafted.exit_code == 0, drafted.stderr
    assert "write the intro" not in drafted.stderr
    issue = load(ws / "issues" / "2025-12" / "issue.md")
    assert issue.intro == "This month: *probation* news.\n"
    checked = run("-C", str(ws), "check", "2025-12")
    assert checked.exit_code == 0, checked.stderr
    assert "placeholder" not in checked.stderr
    placeholder = run("-C", str(ws), "draft", "--all", "--all-items", "--issue", "2026-01")
    assert "write the intro" in placeholder.stderr
    assert run("-C", str(ws), "check", "2026-01").exit_code == 1
