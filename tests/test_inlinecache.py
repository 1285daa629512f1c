"""The inlined-page cache: a later render of unchanged content skips inlining, output identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from cepletter.issue import file as issue_file
from cepletter.message.personal import render_personal
from cepletter.message.recipient import Recipient
from cepletter.render.inlinecache import inline_cached
from cepletter.render.renderer import Timings
from tests.renderkit import make_issue, make_workspace

NAMES = ["Zoë <O'Brien> & \"Co\"", "Иван {{ x }}"]


def test_second_render_comes_from_the_cache_and_is_identical(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path)
    issue = make_issue(settings, "2025-12", items=3)
    first_t, second_t = Timings(), Timings()
    first = render_personal(settings, issue, first_t, cache=True)
    second = render_personal(settings, issue, second_t, cache=True)
    uncached = render_personal(settings, issue)
    assert not first_t.cached and second_t.cached and second_t.inline == 0
    for name in NAMES:
        person = Recipient(email="p@example.org", name=name)
        assert first.fill(person) == second.fill(person) == uncached.fill(person)
    assert second.web() == uncached.web()
    assert len(list((settings.cache_dir / "inlined").glob("*.html"))) == 1


def test_an_edit_is_a_new_entry(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path)
    issue = make_issue(settings, "2025-12", items=2)
    render_personal(settings, issue, cache=True)
    edited = issue_file.load(issue.path) if issue.path else issue
    edited.title = "Another title"
    timings = Timings()
    again = render_personal(settings, edited, timings, cache=True)
    assert not timings.cached
    assert "Another title" in again.web()[0]
    assert len(list((settings.cache_dir / "inlined").glob("*.html"))) == 2


def test_salt_is_restored_and_unwritable_cache_only_costs_time(tmp_path: Path) -> None:
    calls: list[str] = []

    def inline(page: str) -> str:
        calls.append(page)
        return page.upper().replace("CEPSLOTABCN0X", "cepslotabcn0x").replace("CEPSLOTXYZN0X", "cepslotxyzn0x")

    result, cached = inline_cached("<p>cepslotabcn0x</p>", "abc", tmp_path, inline)
    assert (result, cached) == ("<P>cepslotabcn0x</P>", False)
    result, cached = inline_cached("<p>cepslotxyzn0x</p>", "xyz", tmp_path, inline)
    assert (result, cached) == ("<P>cepslotxyzn0x</P>", True)
    assert len(calls) == 1
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    result, cached = inline_cached("<p>x</p>", "abc", blocked, inline)
    assert (result, cached) == ("<P>X</P>", False)


def test_the_key_changes_when_an_installed_inliner_package_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from cepletter.render import inlinecache

    package = tmp_path / "fakeinliner"
    package.mkdir()
    (package / "__init__.py").write_text("VERSION = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = inlinecache.installed("fakeinliner")
    (package / "__init__.py").write_text("VERSION = 22\n", encoding="utf-8")
    after = inlinecache.installed("fakeinliner")
    assert before != after
    assert "fakeinliner" not in sys.modules  # found, never imported
    assert inlinecache.installed("no_such_package_here") == b"no_such_package_here -"
