"""The issue file: stable round trip, strict validation with clear messages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from conftest import Invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from cepletter.errors import IssueError
from cepletter.issue import file as issue_file
from cepletter.issue import folder
from cepletter.sources.items import Event

GOOD = """\
---
title: Newsletter December 2025
subject: 'CEP Newsletter: December 2025'
preheader: Mental health in prison, a new MoU and the 2026 calendar
date: 2025-12-18
sections:
- heading: Mental Health
  items:
  - id: https://www.cep-probation.org/?p=1
    title: Why some court-ordered psychiatric patients remain in prison in Europe
    link: https://www.cep-probation.org/why-some/
    date: 2025-12-15T09:00:00+00:00
    category: Mental Health
    summary: <p>There is an urgent crisis.</p>
    source: news
events:
- title: Annual conference
  start: 2026-03-10
  end: 2026-03-12
  all_day: true
  location: Utrecht
---

Welcome to the **December** issue.
"""


def test_load_good(tmp_path: Path) -> None:
    path = tmp_path / "2025-12" / "issue.md"
    path.parent.mkdir()
    path.write_text(GOOD, encoding="utf-8")
    issue = issue_file.load(path)
    assert issue.id == "2025-12"
    assert issue.date == date(2025, 12, 18)
    assert [i.title for i in issue.items] == [
        "Why some court-ordered psychiatric patients remain in prison in Europe"
    ]
    assert issue.items[0].date == datetime(2025, 12, 15, 9, tzinfo=UTC)
    assert issue.events[0].all_day and issue.events[0].end == date(2026, 3, 12)
    assert issue.intro == "Welcome to the **December** issue.\n"
    assert issue_file.dumps(issue) == GOOD


def test_save_is_stable(tmp_path: Path) -> None:
    issue = issue_file.loads(GOOD, "2025-12", "issue.md")
    path = tmp_path / "issue.md"
    issue_file.save(issue, path)
    first = path.read_bytes()
    issue_file.save(issue_file.load(path), path)
    assert path.read_bytes() == first


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("date: 2025-12-18\n", "", "date: missing"),
        ("title: Newsletter December 2025\n", "title: Newsletter\nauthor: me\n", "author: unknown key"),
        ("    source: news\n", "    source: news\n    colour: red\n", "sections[1].items[1].colour: unknown key"),
        ("link: https://www.cep-probation.org/why-some/", "link: javascript:alert(1)", "is not an http(s) link"),
        ("link: https://www.cep-probation.org/why-some/", "link: /relative/", "is not an http(s) link"),
        ("date: 2025-12-18", "date: next tuesday", "'next tuesday' is not a date"),
        ("heading: Mental Health", "heading: [1, 2]", "sections[1].heading: expected text"),
        ("  all_day: true", "  all_day: 'yes'", "events[1].all_day: must be true or false"),
        ("subject: 'CEP Newsletter: December 2025'", "subject: [a, b]", "subject: expected text"),
        ("title: Newsletter December 2025", "title: 'unclosed", "invalid YAML"),
    ],
)
def test_bad_issue_files(old: str, new: str, message: str) -> None:
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(IssueError, match=r"issue\.md") as info:
        issue_file.loads(text, "2025-12", "issues/2025-12/issue.md")
    assert message in str(info.value)


def test_empty_section_and_duplicate_ids() -> None:
    empty = GOOD.replace("- heading: Mental Health\n", "- heading: Empty\n  items: []\n- heading: Mental Health\n")
    with pytest.raises(IssueError, match=r"sections\[1\] \(Empty\): has no items"):
        issue_file.loads(empty, "x", "issue.md")
    item = GOOD[GOOD.index("  - id:"): GOOD.index("events:")]
    dup = GOOD.replace(item, item + item)
    with pytest.raises(IssueError, match="duplicate id"):
        issue_file.loads(dup, "x", "issue.md")


def test_sections_must_be_a_list() -> None:
    text = GOOD[: GOOD.index("sections:")] + "sections: 3\n---\n"
    with pytest.raises(IssueError, match="sections: must be a list"):
        issue_file.loads(text, "x", "issue.md")


def test_no_front_matter_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IssueError, match="no YAML front matter"):
        issue_file.loads("# just markdown\n", "x", "issue.md")
    with pytest.raises(IssueError, match="not found"):
        issue_file.load(tmp_path / "nope" / "issue.md")


def test_listing_and_latest(tmp_path: Path) -> None:
    for issue_id in ("2025-10", "2025-12", "2025-08"):
        (tmp_path / issue_id).mkdir()
        (tmp_path / issue_id / "issue.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "notes").mkdir()
    assert folder.list_issue_ids(tmp_path) == ["2025-08", "2025-10", "2025-12"]
    assert folder.earlier_issue_ids(tmp_path, "2025-12") == ["2025-08", "2025-10"]
    assert folder.earlier_issue_ids(tmp_path, "2025-08") == []
    assert issue_file.resolve(tmp_path, None).id == "2025-12"
    with pytest.raises(IssueError, match="not a valid issue ID"):
        folder.issue_path(tmp_path, "../etc")


def test_a_new_issue_refuses_to_replace_one_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "issues" / "2025-12").mkdir(parents=True)
    (tmp_path / "issues" / "2025-12" / "issue.md").write_text(GOOD, encoding="utf-8")
    with pytest.raises(IssueError, match=r"^issues/2025-12/issue.md already exists$"):
        folder.new_issue_path(tmp_path, tmp_path / "issues", "2025-12", force=False)
    forced = folder.new_issue_path(tmp_path, tmp_path / "issues", "2025-12", force=True)
    assert forced == tmp_path / "issues" / "2025-12" / "issue.md"
    assert folder.new_issue_path(tmp_path, tmp_path / "issues", "2026-02", force=False).parent.name == "2026-02"


# ---------------------------------------------------------------- round trip property

text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: s.strip() != ""
)
links = st.from_regex(r"https://[a-z]{1,10}\.org/[a-z0-9/_-]{0,20}", fullmatch=True)
aware = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
offsets = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))])


@st.composite
def issues(draw: st.DrawFn) -> issue_file.Issue:
    sections = []
    used: set[str] = set()
    for _ in range(draw(st.integers(1, 3))):
        items = []
        for _ in range(draw(st.integers(1, 3))):
            item_id = draw(text.filter(lambda s: s not in used))
            used.add(item_id)
            when = draw(st.one_of(st.none(), aware.map(lambda d: d.astimezone(draw(offsets)))))
            items.append(issue_file.IssueItem(
                id=item_id, title=draw(text), link=draw(links), date=when,
                category=draw(st.one_of(st.none(), text)), image=draw(st.one_of(st.none(), links)),
                summary=draw(st.one_of(st.just(""), text)), source=draw(st.one_of(st.none(), text)),
            ))
        sections.append(issue_file.Section(heading=draw(text), items=items))
    events = [Event(title=draw(text), start=draw(st.dates()), all_day=True, location=draw(st.one_of(st.none(), text)))
              for _ in range(draw(st.integers(0, 2)))]
    intro = draw(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=80)).strip("\n")
    return issue_file.Issue(
        id="2025-12", title=draw(text), subject=draw(text), preheader=draw(st.one_of(st.just(""), text)),
        date=draw(st.dates()), sections=sections, events=events, intro=intro + "\n" if intro else "",
    )


@settings(max_examples=150, deadline=None)
@given(issues())
def test_round_trip_is_identity(issue: issue_file.Issue) -> None:
    saved = issue_file.dumps(issue)
    loaded = issue_file.loads(saved, issue.id, "issue.md")
    assert issue_file.dumps(loaded) == saved
    # libyaml (used when present) and the pure-Python parser read the file alike
    front = saved.split("---\n")[1]
    assert issue_file._load_yaml(front) == yaml.load(front, Loader=yaml.SafeLoader)
    assert loaded.title == issue.title and loaded.subject == issue.subject
    assert loaded.preheader == issue.preheader and loaded.date == issue.date
    assert [(i.id, i.title, i.link, i.date, i.category, i.image, i.summary, i.source) for i in loaded.items] == [
        (i.id, i.title, i.link, i.date, i.category, i.image, i.summary, i.source) for i in issue.items
    ]
    assert loaded.intro.strip("\n") == issue.intro.strip("\n")


def test_a_file_libyaml_refuses_is_judged_by_the_pure_parser() -> None:
    # libyaml refuses a lone surrogate escape that PyYAML's own parser reads: the file still loads.
    assert issue_file._load_yaml('a: "\\ud800"\n') == {"a": "\ud800"}
    with pytest.raises(yaml.YAMLError) as caught:
        issue_file._load_yaml("a: [1, 2\n")
    assert caught.value.problem_mark is not None  # type: ignore[attr-defined]


# ---------------------------------------------------------------- clear errors, through the command

def _check_with(tmp_path: Path, run: Invoke, text: str) -> Result:
    from renderkit import make_workspace

    make_workspace(tmp_path)
    path = tmp_path / "issues" / "2025-12" / "issue.md"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return run("-C", str(tmp_path), "check", "2025-12")


WHERE = "issues/2025-12/issue.md"


@pytest.mark.parametrize(("old", "new", "error", "hint"), [
    pytest.param("date: 2025-12-18", "date: 2026-13-01",
                 f"{WHERE}, line 5: date: '2026-13-01' is not a date (month must be in 1..12)",
                 "Write dates as 2025-12-17", id="month-13"),
    pytest.param("date: 2025-12-15T09:00:00+00:00", "date: 2025-12-32",
                 f"{WHERE}, line 12: sections[1].items[1].date: '2025-12-32' is not a date "
                 "(day is out of range for month)", "Write dates as", id="item-day-32"),
    pytest.param("  start: 2026-03-10", "  start: 2026-02-30T10:00:00",
                 f"{WHERE}, line 18: events[1].start: '2026-02-30T10:00:00' is not a date "
                 "(day is out of range for month)", "Write dates as", id="event-february-30"),
    pytest.param("link: https://www.cep-probation.org/why-some/", "link: /why-some/",
                 f"{WHERE}, line 11: sections[1].items[1].link: '/why-some/' is not an http(s) link",
                 "https://", id="relative-link"),
    pytest.param("    title: Why some court-ordered psychiatric patients remain in prison in Europe\n", "",
                 f"{WHERE}, line 9: sections[1].items[1].title: missing", "Add title:", id="missing-title"),
    pytest.param("title: Newsletter December 2025", "title: Probation: what works",
                 f"{WHERE}, line 2: title: a title containing ': ' must be in quotes",
                 'Write it as title: "Probation: what works" there.', id="colon-in-title"),
    pytest.param("  location: Utrecht", "\tlocation: Utrecht",
                 f"{WHERE}, line 21: a tab character; the front matter is indented with spaces only",
                 "Replace the tab with spaces", id="tab"),
    pytest.param("---\n\nWelcome", "\nWelcome",
                 f"{WHERE}: the front matter has no closing '---' line", "End the settings with a line '---'",
                 id="no-closing-dashes"),
    pytest.param("title: Newsletter December 2025", "title: &t [*t]",
                 f"{WHERE}, line 2: the value that starts here contains itself through an *alias",
                 "Remove the alias", id="alias-loop"),
])
def test_a_bad_issue_file_is_one_line_with_file_line_and_key(
        tmp_path: Path, run: Invoke, old: str, new: str, error: str, hint: str) -> None:
    assert old in GOOD
    result = _check_with(tmp_path, run, GOOD.replace(old, new))
    assert result.exit_code == 1
    first, second = result.stderr.splitlines()[:2]
    assert first == f"Error: {tmp_path}/{error}"
    assert hint in second
    assert "bug" not in result.stderr and "Traceback" not in result.stderr


def test_an_alias_bomb_is_refused_with_the_line(tmp_path: Path, run: Invoke) -> None:
    # 200,000 aliases of one event: under a megabyte, and an issue of 200,000 events if expanded.
    bomb = GOOD.replace("  location: Utrecht\n", "  location: Utrecht\n- &e {title: Webinar, start: 2026-01-15}\n"
                        + "- *e\n" * 200_000)
    assert 900_000 < len(bomb) < 1_100_000
    result = _check_with(tmp_path, run, bomb)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: {tmp_path}/{WHERE}, line 22: *aliases repeat the value that starts here into 1,000,000 more values (at most 10,000)")
    assert not (tmp_path / "issues" / "2025-12" / "build").exists()


def test_a_few_aliases_are_fine() -> None:
    text = GOOD.replace("    category: Mental Health\n", "    category: &cat Mental Health\n").replace(
        "  location: Utrecht\n", "  location: Utrecht\n- title: Webinar\n  start: 2026-01-15\n  location: *cat\n")
    issue = issue_file.loads(text, "2025-12", "issue.md")
    assert issue.events[1].location == "Mental Health"


def test_check_aliases_counts_nested_repeats() -> None:
    import yaml as pyyaml

    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 10)}]\n" for n in range(4))
    node = pyyaml.compose(laughs, Loader=pyyaml.SafeLoader)
    with pytest.raises(issue_file.AliasBomb) as caught:
        issue_file.check_aliases(node)
    assert caught.value.repeats is not None and caught.value.repeats > 100_000
    assert caught.value.node.start_mark.line == 3  # d: the last level that is repeated
    issue_file.check_aliases(node, limit=10**6)
