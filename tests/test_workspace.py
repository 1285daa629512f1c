"""`cepletter init`: a working workspace from the packaged sample, never overwriting."""

from __future__ import annotations

from pathlib import Path

from conftest import Invoke

from cepletter.config import load_settings
from cepletter.sources.feeds import parse_document
from cepletter.workspace import SAMPLE_FILES, init_workspace, sample_text

NAMES = ["cepletter.toml", "news.xml", "subscribers.csv", "suppressed.csv", ".gitignore"]


def test_init_creates_every_file(tmp_path: Path) -> None:
    result = init_workspace(tmp_path / "ws")
    assert sorted(p.name for p in result.created) == sorted([*NAMES, "issues"])
    assert result.kept == []
    assert (tmp_path / "ws" / "issues").is_dir()
    for packaged, name in SAMPLE_FILES:
        assert (tmp_path / "ws" / name).read_text(encoding="utf-8") == sample_text(packaged)


def test_init_keeps_existing_files(tmp_path: Path) -> None:
    (tmp_path / "cepletter.toml").write_text("# mine\n", encoding="utf-8")
    result = init_workspace(tmp_path)
    assert [p.name for p in result.kept] == ["cepletter.toml"]
    assert (tmp_path / "cepletter.toml").read_text(encoding="utf-8") == "# mine\n"
    again = init_workspace(tmp_path)
    assert again.created == []


def test_sample_settings_load_as_they_are(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    settings = load_settings(tmp_path)
    assert settings.newsletter.name == "CEP Newsletter"
    assert settings.newsletter.from_ == "CEP <newsletter@example.org>"
    assert settings.newsletter.timezone == "Europe/Amsterdam"
    # A per-address token, not the address: spam filters score links that carry one.
    assert "{token}" in (settings.newsletter.unsubscribe_url or "")
    assert "{email}" not in (settings.newsletter.unsubscribe_url or "")
    assert "Utrecht" in settings.newsletter.postal_address
    assert settings.delivery.transport == "maildir"
    assert [(s.name, s.path) for s in settings.sources] == [("news", "news.xml")]


def test_sample_feed_is_a_wordpress_feed_with_real_items() -> None:
    items = parse_document(sample_text("news.xml").encode(), where="news.xml", base=None, source="news")
    assert 8 <= len(items) <= 12
    assert all(i.link.startswith("https://www.cep-probation.org/") for i in items)
    assert all(i.date is not None for i in items)
    assert sum(1 for i in items if i.image) >= len(items) - 1
    assert {"Mental Health", "CEP Events", "Reading corner"} <= {c for i in items for c in i.categories}
    assert items[0].title.startswith("Newsletter December 2025")


def test_sample_subscribers_are_example_addresses() -> None:
    lines = sample_text("subscribers.csv").splitlines()
    assert lines[0] == "email,name"
    assert all(line.split(",")[0].endswith("@example.org") for line in lines[1:])


def test_init_command_reports_created_and_kept(tmp_path: Path, run: Invoke) -> None:
    result = run("init", str(tmp_path / "news"))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "created  cepletter.toml" in result.stderr
    assert "created  issues/" in result.stderr
    assert "Workspace ready in" in result.stderr
    again = run("init", str(tmp_path / "news"))
    assert again.exit_code == 0
    assert "kept     cepletter.toml (already there, not changed)" in again.stderr
    assert "Nothing to do" in again.stderr


def test_init_on_a_file_is_an_error(tmp_path: Path, run: Invoke) -> None:
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    result = run("init", str(tmp_path / "afile"))
    assert result.exit_code == 2
    assert "is a file" in result.stderr
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "x"


def test_quick_start_offline(tmp_path: Path, run: Invoke) -> None:
    """init, then draft --all: an issue from the bundled sample, with no network."""
    ws = tmp_path / "news"
    assert run("init", str(ws)).exit_code == 0
    result = run("-C", str(ws), "draft", "--all", "--issue", "2025-12")
    assert result.exit_code == 0, result.stderr
    assert "Wrote issues/2025-12/issue.md: 10 items in" in result.stderr
    text = (ws / "issues" / "2025-12" / "issue.md").read_text(encoding="utf-8")
    assert text.startswith("---\ntitle: Newsletter December 2025\n")
    assert "heading: Mental Health" in text


def test_repository_is_a_workspace_with_the_example_issue() -> None:
    from cepletter.issue.file import load

    repo = Path(__file__).resolve().parent.parent
    settings = load_settings(repo)
    assert settings.sources[0].path == "cepletter/sample/news.xml"
    issue = load(repo / "issues" / "2025-12" / "issue.md")
    assert issue.date.isoformat() == "2025-12-18"
    assert "2026" in issue.intro and "calendar" in issue.intro
    assert len(issue.items) >= 5
