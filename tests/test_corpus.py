"""Every feed of the real-world corpus through `items` and `draft`.

The corpus (third-party captures, not in this repository) is found by the
`corpus` fixture; MANIFEST.tsv gives in `entries` how many items each holds.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import Invoke, corpus_dir
from htmlsafety import assert_safe

from cepletter.issue.file import load
from cepletter.sources import fastfeed, feeds
from cepletter.sources.feeds import parse_document
from cepletter.workspace import init_workspace


def manifest(folder: Path) -> dict[str, int]:
    with (folder / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        return {row["file"]: int(row["entries"]) for row in csv.DictReader(fh, delimiter="\t")}


def _names() -> list[str]:
    folder = corpus_dir()
    return sorted(manifest(folder)) if folder else ["(corpus not found)"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    init_workspace(root)
    return root


@pytest.mark.parametrize("name", _names())
def test_feed_lists_and_drafts(name: str, corpus: Path, workspace: Path, run: Invoke) -> None:
    expected = manifest(corpus)[name]
    feed = corpus / name
    listed = run("-C", str(workspace), "items", "--feed", str(feed))
    assert listed.exit_code == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert len(rows) == expected
    assert [row[0] for row in rows] == [str(n) for n in range(1, expected + 1)]
    assert all(row[4].strip() for row in rows), "every item has a title"
    assert "Traceback" not in listed.stderr

    drafted = run("-C", str(workspace), "draft", "--issue", "corpus", "--all", "--feed", str(feed))
    assert drafted.exit_code == 0, drafted.stderr
    assert drafted.stderr.startswith(f"Wrote issues/corpus/issue.md: {expected} item")
    issue = load(workspace / "issues" / "corpus" / "issue.md")  # strict: http(s) links, ids unique
    assert len(issue.items) == expected
    for item in issue.items:
        assert item.title.strip()
        assert item.link.startswith(("http://", "https://"))
        assert item.image is None or item.image.startswith(("http://", "https://"))
        assert len(item.summary) < 2000, "a card's summary is an excerpt, not the whole post"
        assert_safe(item.summary)


def test_fast_path_agrees_with_feedparser(corpus: Path) -> None:
    """Where the fast reader takes a feed, it gives exactly what reading it through feedparser gives."""
    compared = []
    for name in sorted(manifest(corpus)):
        data = (corpus / name).read_bytes()
        if data.lstrip()[:1] in (b"{", b"[") or fastfeed.parse(data) is None:
            continue  # JSON Feed, or left to feedparser (Atom, RSS 1.0, not UTF-8, not well-formed, ...)
        compared.append(name)
        fast = feeds.parse_xml_feed(data, where=name, base=None, source="s")
        slow = feeds._parse_with_feedparser(data, where=name, base=None, source="s", max_items=10_000, warn=None)
        assert fast == slow, name
    # The plain UTF-8 RSS 2.0 feeds of the corpus take the fast path.
    assert len(compared) >= 10, compared


def test_untitled_items_get_titles_from_their_text(corpus: Path) -> None:
    items = parse_document((corpus / "rss-scriptingnews-untitled-items.xml").read_bytes(),
                           where="x", base=None, source="s")
    assert items[0].title == "Good morning students and teachers!"
    assert all(0 < len(i.title) <= 80 for i in items), [i.title for i in items if not 0 < len(i.title) <= 80]


def test_gravatar_and_video_are_not_the_image(corpus: Path) -> None:
    paper = parse_document((corpus / "wordpress-com-morningpaper-media-content.rss.xml").read_bytes(),
                           where="x", base=None, source="s")
    assert all(i.image and "gravatar" not in i.image for i in paper)
    natasha = parse_document((corpus / "wordpress-natasha-video-enclosure.rss.xml").read_bytes(),
                             where="x", base=None, source="s")
    assert all(not (i.image or "").endswith(".mp4") for i in natasha)


def test_relative_links_in_content_are_absolute(corpus: Path) -> None:
    items = parse_document((corpus / "atom-hugo-relative-links.atom.xml").read_bytes(),
                           where="x", base=None, source="s")
    assert all(i.link.startswith("https://cowboyprogrammer.org/") for i in items)
    assert all(i.image is None or i.image.startswith("http") for i in items)


def test_undated_feed_keeps_its_order(corpus: Path) -> None:
    items = parse_document((corpus / "rss090-german-heise-no-dates.rdf.xml").read_bytes(),
                           where="x", base=None, source="s")
    assert len(items) == 60 and all(i.date is None for i in items)


def test_long_items_are_excerpts(corpus: Path) -> None:
    items = parse_document((corpus / "wordpress-dcrainmaker-very-long-items.rss.xml").read_bytes(),
                           where="x", base=None, source="s")
    assert all(len(i.summary) <= 700 for i in items)
