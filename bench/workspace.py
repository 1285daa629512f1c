"""The benchmark workspaces under bench/work/, built once per run from the fixtures.

- ``newsletter``: the ~40 KB issue drafted with `cepletter draft` from the
  generated feed, its subscriber list, and the built HTML and text;
- ``memory-<N>``: the same issue with a list of N subscribers;
- ``feeds``: an empty workspace for `cepletter items`;
- ``example``: the repository's example issue, for `preview`.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import fixtures
from bench.measure import BENCH, REPO, BenchError, python_env, run_timed

ISSUE_ID = "2025-12"
TARGET_HTML_BYTES = 40_000


def cepletter(*args: str) -> list[str]:
    return [sys.executable, "-m", "cepletter", *args]


def run_cepletter(*args: str, what: str) -> str:
    return run_timed(cepletter(*args), env=python_env()).check(what).stdout


@dataclass
class Newsletter:
    root: Path
    issue_id: str
    html: str
    text: str
    subject: str
    items: int


def _draft(root: Path, feed: Path, count: int) -> int:
    """Draft the issue from the first ``count`` items of the feed; the HTML size in bytes."""
    run_cepletter(
        "-C", str(root), "draft", "--issue", ISSUE_ID, "--feed", str(feed), "--pick", f"1-{count}",
        "--force", what=f"cepletter draft --pick 1-{count}",
    )
    _write_intro(root / "issues" / ISSUE_ID / "issue.md")
    return build_web(root)


def _write_intro(path: Path) -> None:
    """Replace the placeholder intro `draft` writes: `send` refuses an issue that still has it."""
    text = path.read_text(encoding="utf-8")
    lines = [("_This month: the programme of the spring conference, and news from the members._"
              if line.startswith("_Replace these lines") else line) for line in text.split("\n")]
    path.write_text("\n".join(lines), encoding="utf-8")


def build_web(root: Path) -> int:
    """Render the issue's web version (no personal data) into ``root/web``; its HTML size."""
    run_timed(
        [sys.executable, str(BENCH / "inprocess.py"), "web", str(root), ISSUE_ID, str(root / "web")],
        env=python_env(),
    ).check("rendering the issue")
    return len(html_path(root).read_bytes())


def html_path(root: Path) -> Path:
    return root / "web" / "newsletter.html"


def newsletter(work: Path, recipients: int, items: int | None = None) -> Newsletter:
    """The send workspace: an issue of ``items`` items (default: about 40 KB of HTML) and ``recipients`` subscribers."""
    root = work / "newsletter"
    fixtures.write_workspace(root)
    feed = fixtures.write_feed(work / "feeds" / "news-60.xml", 60)
    marker = root / "issues" / ISSUE_ID / ".bench-items"
    if items is not None:
        count = items
        if not (marker.exists() and marker.read_text(encoding="utf-8") == str(count) and html_path(root).exists()):
            _draft(root, feed, count)
            marker.write_text(str(count), encoding="utf-8")
    elif marker.exists() and html_path(root).exists():
        count = int(marker.read_text(encoding="utf-8"))
        # Re-render: the code may have changed since the issue was drafted.
        build_web(root)
    else:
        # Two drafts give the bytes per item; a third lands near the target size.
        low, high = 4, 12
        size_low = _draft(root, feed, low)
        size_high = _draft(root, feed, high)
        per_item = max((size_high - size_low) / (high - low), 1.0)
        count = round(low + (TARGET_HTML_BYTES - size_low) / per_item)
        count = max(1, min(count, 60))
        _draft(root, feed, count)
        marker.write_text(str(count), encoding="utf-8")
    subscribers = root / "subscribers.csv"
    wanted = recipients + 1  # the header
    if not subscribers.exists() or _lines(subscribers) != wanted:
        fixtures.write_subscribers(subscribers, recipients)
    html = html_path(root).read_text(encoding="utf-8")
    text = html_path(root).with_suffix(".txt").read_text(encoding="utf-8")
    subject = _subject(root)
    return Newsletter(root, ISSUE_ID, html, text, subject, count)


def _subject(root: Path) -> str:
    sys.path.insert(0, str(REPO))
    from cepletter.issue import file as issue_file

    return issue_file.resolve(root / "issues", ISSUE_ID).subject


def _lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def use_sink(root: Path, port: int, connections: int) -> None:
    """Point the workspace at the SMTP sink, with ``connections`` parallel connections."""
    fixtures.write_workspace(root, port=port, transport="smtp", connections=connections)


def clear_journal(root: Path, issue_id: str) -> None:
    """Forget every earlier send of the issue, so that the next `send` mails the whole list again.

    The benchmark's issues are never signed off (it sends with --unreviewed), so review.jsonl holds
    only the notes that a send started, which would otherwise stop a send without its journal.
    """
    folder = root / "issues" / issue_id
    for name in ("send-log.jsonl", ".send.lock", "review.jsonl"):
        (folder / name).unlink(missing_ok=True)


def copy_newsletter(news: Newsletter, root: Path) -> Path:
    """A fresh copy of the newsletter workspace at ``root``: issue, settings, web; no journal, cache or list."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(news.root, root, ignore=shutil.ignore_patterns(
        ".cepletter-cache", "send-log.jsonl", ".send.lock", "review.jsonl", "subscribers*.csv", "outbox"))
    return root


def memory_workspace(work: Path, source: Newsletter, recipients: int) -> Path:
    root = work / f"memory-{recipients}"
    fixtures.write_workspace(root)
    target = root / "issues" / source.issue_id
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source.root / "issues" / source.issue_id / "issue.md", target / "issue.md")
    subscribers = root / "subscribers.csv"
    if not subscribers.exists() or _lines(subscribers) != recipients + 1:
        fixtures.write_subscribers(subscribers, recipients)
    return root


def feeds_workspace(work: Path, items: int) -> tuple[Path, Path]:
    root = work / "feeds-ws"
    fixtures.write_workspace(root)
    feed = work / "feeds" / f"news-{items}.xml"
    if not feed.exists():
        fixtures.write_feed(feed, items)
    return root, feed


def example_workspace(work: Path) -> tuple[Path, str]:
    """A copy of the repository's example issue and settings (preview writes its build/ here)."""
    ids = sorted(p.parent.name for p in (REPO / "issues").glob("*/issue.md"))
    if not ids:
        raise BenchError("the repository has no example issue in issues/")
    source = ids[-1]
    root = work / "example"
    if root.exists():
        shutil.rmtree(root)
    (root / "issues" / source).mkdir(parents=True)
    shutil.copy2(REPO / "cepletter.toml", root / "cepletter.toml")
    shutil.copy2(REPO / "issues" / source / "issue.md", root / "issues" / source / "issue.md")
    if (REPO / "templates").is_dir() and any((REPO / "templates").iterdir()):
        shutil.copytree(REPO / "templates", root / "templates")
    return root, source
