"""Choosing items and drafting the issue: the window, numbering, --pick, sections."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cepletter.config import load_settings
from cepletter.errors import IssueError, UsageError
from cepletter.issue import draft as compose
from cepletter.issue.file import Issue, IssueItem, Section, load, save
from cepletter.issue.preheader import of_issue
from cepletter.sources.items import Item


def item(n: int, day: int | None, category: str | None = None) -> Item:
    return Item(
        id=f"id-{n}", title=f"Item {n}", link=f"https://www.example.org/{n}/",
        date=datetime(2025, 12, day, 9, 0, tzinfo=UTC) if day else None, source="news",
        categories=[category] if category else [],
    )


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "cepletter.toml").write_text(
        '[newsletter]\nname = "CEP Newsletter"\nfrom = "CEP <n@example.org>"\ntimezone = "Europe/Amsterdam"\n\n'
        '[[sources]]\nname = "news"\npath = "news.xml"\n',
        encoding="utf-8",
    )
    return tmp_path


def earlier_issue(ws: Path, issue_id: str, day: date, used: list[Item]) -> None:
    issue = Issue(id=issue_id, title="t", subject="s", date=day,
                  sections=[Section("News", [IssueItem.from_item(i) for i in used])])
    save(issue, ws / "issues" / issue_id / "issue.md")


@pytest.mark.parametrize(("spec", "count", "expected"), [
    ("3,1,5-7", 10, [3, 1, 5, 6, 7]),
    ("1", 1, [1]),
    (" 2 , 1 ", 2, [2, 1]),
    ("4-4", 5, [4]),
    ("1-3,5", 5, [1, 2, 3, 5]),
])
def test_parse_pick(spec: str, count: int, expected: list[int]) -> None:
    assert compose.parse_pick(spec, count) == expected


@pytest.mark.parametrize(("spec", "count", "message"), [
    ("0", 5, "there is no item 0"),
    ("6", 5, "there is no item 6"),
    ("4-9", 5, "there is no item 6"),
    ("7-5", 9, "the range 7-5 runs backwards"),
    ("1,1", 5, "item 1 is picked twice"),
    ("1-3,2", 5, "item 2 is picked twice"),
    ("a", 5, "'a' is not a number"),
    ("1,,2", 5, "'(empty)' is not a number"),
    ("-1", 5, "'-1' is not a number"),
    ("1.5", 5, "'1.5' is not a number"),
    ("1", 0, "there are no items to pick"),
])
def test_parse_pick_errors(spec: str, count: int, message: str) -> None:
    with pytest.raises(UsageError) as info:
        compose.parse_pick(spec, count)
    assert message in info.value.message
    assert info.value.exit_code == 2


def test_candidates_newest_first_undated_last(tmp_path: Path) -> None:
    items = [item(1, 3), item(2, None), item(3, 10), item(4, 5), item(5, None)]
    win = compose.window(load_settings(workspace(tmp_path)), "2025-12")
    assert win.since is None and win.reason == "no date limit"
    assert [i.id for i in compose.candidates(items, win)] == ["id-3", "id-4", "id-1", "id-2", "id-5"]


def test_default_window_is_since_the_latest_earlier_issue_without_its_items(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    earlier_issue(ws, "2025-10", date(2025, 10, 20), [item(9, 1)])
    earlier_issue(ws, "2025-11", date(2025, 12, 5), [item(4, 5)])
    earlier_issue(ws, "2026-01", date(2026, 1, 20), [item(3, 10)])  # later than the target: ignored
    settings = load_settings(ws)
    win = compose.window(settings, "2025-12")
    assert win.reason == "since 2025-12-05 (issue 2025-11)"
    assert win.since == datetime(2025, 12, 5, tzinfo=compose.zone(settings))
    items = [item(1, 3), item(2, None), item(3, 10), item(4, 5), item(6, 6), item(9, 1)]
    # 1 and 9 are older than the last issue; 4 was in it; undated 2 is kept, last.
    assert [i.id for i in compose.candidates(items, win)] == ["id-3", "id-6", "id-2"]


def test_all_items_keeps_used_ones(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    earlier_issue(ws, "2025-11", date(2025, 12, 1), [item(4, 5)])
    win = compose.window(load_settings(ws), "2025-12", all_items=True)
    assert win.used == frozenset()
    assert [i.id for i in compose.candidates([item(4, 5)], win)] == ["id-4"]


def test_since_and_days(tmp_path: Path) -> None:
    settings = load_settings(workspace(tmp_path))
    since = compose.parse_since("2025-12-06", settings)
    win = compose.window(settings, "2025-12", since=since)
    assert [i.id for i in compose.candidates([item(1, 5), item(2, 6)], win)] == ["id-2"]
    win = compose.window(settings, "2025-12", days=3)
    assert win.since is not None
    assert win.since.date() == compose.today(settings) - timedelta(days=3)
    with pytest.raises(UsageError, match="cannot be used together"):
        compose.window(settings, "2025-12", since=since, days=3)
    with pytest.raises(UsageError, match="not a date"):
        compose.parse_since("06/12/2025", settings)
    with pytest.raises(UsageError, match="must be 0 or more"):
        compose.window(settings, "2025-12", days=-1)


def test_select_sources(tmp_path: Path) -> None:
    settings = load_settings(workspace(tmp_path))
    assert [s.name for s in compose.select_sources(settings, (), (), tmp_path)] == ["news"]
    with pytest.raises(UsageError) as info:
        compose.select_sources(settings, ("nope",), (), tmp_path)
    assert info.value.message == "--source nope: no source of that name in cepletter.toml"
    assert info.value.hint == "Sources: news."
    feeds = compose.select_sources(None, (), ("rel/feed.xml",), tmp_path)
    assert feeds[0].path == str(tmp_path / "rel" / "feed.xml")
    with pytest.raises(UsageError, match="no workspace here, and no --feed"):
        compose.select_sources(None, (), (), tmp_path)


def test_build_issue_groups_sections_by_first_appearance(tmp_path: Path) -> None:
    settings = load_settings(workspace(tmp_path))
    picked = [item(1, 3, "Events"), item(2, 4, "Research"), item(3, 5, "Events"), item(4, 6)]
    issue = compose.build_issue(picked, issue_id="2025-12", issue_date=date(2025, 12, 18), settings=settings)
    assert issue.title == "Newsletter December 2025"
    assert issue.subject == "CEP Newsletter – December 2025"
    # No preheader is written: it is made from the items, in the order the email shows them, when rendered.
    assert issue.preheader == ""
    assert of_issue(issue) == "In this issue: Item 1; Item 3; Item 2; Item 4"
    assert [(s.heading, [i.id for i in s.items]) for s in issue.sections] == [
        ("Events", ["id-1", "id-3"]), ("Research", ["id-2"]), ("News", ["id-4"])]
    # Dates are kept in the newsletter's time zone, as the editors read them.
    assert issue.sections[0].items[0].date is not None
    assert issue.sections[0].items[0].date.isoformat() == "2025-12-03T10:00:00+01:00"
    assert "December 2025" in issue.intro
    custom = compose.build_issue(picked, issue_id="spring", issue_date=date(2026, 3, 2), settings=settings,
                                 title="Spring special")
    assert (custom.title, custom.subject) == ("Spring special", "Spring special")


def test_preheader_stays_short() -> None:
    long_items = [Item(id=str(n), title="A rather long title about probation in Europe " + str(n),
                       link="https://e.example/", date=None, source="s") for n in range(6)]
    text = compose.preheader(long_items)
    assert text.startswith("In this issue: A rather long title")
    assert text.endswith(" and more")
    assert len(text) <= 130


def test_save_draft_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    settings = load_settings(workspace(tmp_path))
    issue = compose.build_issue([item(1, 3)], issue_id="2025-12", issue_date=date(2025, 12, 18), settings=settings)
    path = compose.save_draft(settings, issue)
    assert path == tmp_path / "issues" / "2025-12" / "issue.md"
    assert load(path).items[0].id == "id-1"
    with pytest.raises(IssueError) as info:
        compose.save_draft(settings, issue)
    assert info.value.message == "issues/2025-12/issue.md already exists"
    issue.title = "Changed"
    compose.save_draft(settings, issue, force=True)
    assert load(path).title == "Changed"


def test_draft_is_stable_when_loaded_and_saved_again(tmp_path: Path) -> None:
    settings = load_settings(workspace(tmp_path))
    picked = [item(1, 3, "Events"), item(2, None)]
    issue = compose.build_issue(picked, issue_id="2025-12", issue_date=date(2025, 12, 18), settings=settings)
    path = compose.save_draft(settings, issue)
    text = path.read_text(encoding="utf-8")
    save(load(path), path)
    assert path.read_text(encoding="utf-8") == text


def test_month_name() -> None:
    assert compose.month_name("2026-02", date(2025, 1, 1)) == "February 2026"
    assert compose.month_name("special", date(2025, 1, 1)) == "January 2025"
    assert compose.month_name("2026-13", date(2025, 3, 1)) == "March 2025"


def test_a_link_shared_by_several_items_does_not_mark_them_all_used(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    shared = [Item(id=f"s{n}", title=f"S{n}", link="https://www.example.org/news.html",
                   date=datetime(2025, 12, 10 + n, tzinfo=UTC), source="news") for n in range(3)]
    earlier_issue(ws, "2025-11", date(2025, 12, 1), [shared[0]])
    win = compose.window(load_settings(ws), "2025-12")
    assert [i.id for i in compose.candidates(shared, win)] == ["s2", "s1"]
    # A unique link is enough to recognise an item whose id changed.
    renamed = [Item(id="new-id", title="Item 4", link="https://www.example.org/4/",
                    date=datetime(2025, 12, 20, tzinfo=UTC), source="news")]
    earlier_issue(ws, "2025-11", date(2025, 12, 1), [item(4, 5)])
    win = compose.window(load_settings(ws), "2025-12")
    assert compose.candidates(renamed, win) == []


def test_an_item_without_a_web_link_cannot_go_in(tmp_path: Path) -> None:
    settings = load_settings(workspace(tmp_path))
    local = Item(id="x", title="Local only", link="", date=None, source="notes")
    with pytest.raises(IssueError) as info:
        compose.build_issue([local], issue_id="2025-12", issue_date=date(2025, 12, 18), settings=settings)
    assert info.value.message == "item 'Local only' from notes has no web address"
