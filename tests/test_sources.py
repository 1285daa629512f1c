"""Sources → Items: RSS, Atom, JSON Feed and Markdown, written here as small fixtures."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Invoke

from cepletter.config import SourceSettings, load_settings
from cepletter.errors import SourceError
from cepletter.sources import fastfeed, feeds
from cepletter.sources.feeds import parse_document
from cepletter.sources.items import Item
from cepletter.sources.reader import adhoc_source, read_items, read_source, source_kind

WORDPRESS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/">
<channel>
 <title>CEP</title><link>https://www.cep-probation.org/</link><description>d</description>
 <item>
  <title>Memorandum of Understanding &#8211; CEP and RESCALED</title>
  <link>https://www.cep-probation.org/mou/</link>
  <dc:creator><![CDATA[CEP Secretariat]]></dc:creator>
  <pubDate>Thu, 11 Dec 2025 14:20:00 +0000</pubDate>
  <category><![CDATA[Uncategorized]]></category>
  <category><![CDATA[Partners]]></category>
  <guid isPermaLink="false">https://www.cep-probation.org/?p=31771</guid>
  <description><![CDATA[On 10 December 2025 CEP and RESCALED signed a MoU. [&#8230;]]]></description>
  <content:encoded><![CDATA[<p><img src="/wp-content/uploads/mou.jpg" width="1200" alt="MoU"></p><p>Full text.</p>]]></content:encoded>
  <media:content url="https://secure.gravatar.com/avatar/abc?s=96" medium="image" />
  <media:content url="https://www.cep-probation.org/wp-content/uploads/mou-large.jpg" medium="image" width="1200" />
 </item>
 <item>
  <title></title>
  <link>/untitled-post/</link>
  <pubDate>Wed, 10 Dec 2025 08:00:00 +0000</pubDate>
  <description><![CDATA[<p>A post without a title. It has a second sentence.</p>]]></description>
  <enclosure url="https://www.cep-probation.org/video.mp4" type="video/mp4" length="100" />
 </item>
 <item>
  <title>Undated post</title>
  <link>https://www.cep-probation.org/undated/</link>
  <description><![CDATA[<p>No date.</p><script>alert(1)</script>]]></description>
  <content:encoded><![CDATA[<p>No date, longer content <a href="/rel/">link</a>
   <img src="https://pixel.example.org/p.gif" width="1" height="1"></p>]]></content:encoded>
 </item>
 <item>
  <title>Only text</title>
  <description>Plain &amp; simple.</description>
 </item>
</channel></rss>
"""


def parse(text: str | bytes, base: str | None = None) -> list[Item]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_document(data, where="test feed", base=base, source="news")


def test_wordpress_rss_item() -> None:
    first = parse(WORDPRESS)[0]
    assert first.id == "https://www.cep-probation.org/?p=31771"
    assert first.title == "Memorandum of Understanding – CEP and RESCALED"
    assert first.link == "https://www.cep-probation.org/mou/"
    assert first.date == datetime(2025, 12, 11, 14, 20, tzinfo=UTC)
    assert first.categories == ["Partners"]  # WordPress's "Uncategorized" says nothing
    assert first.image == "https://www.cep-probation.org/wp-content/uploads/mou-large.jpg"  # not the gravatar
    assert first.summary == "<p>On 10 December 2025 CEP and RESCALED signed a MoU.…</p>"
    assert first.author == "CEP Secretariat"
    assert first.source == "news"


def test_untitled_item_gets_a_title_and_a_relative_link_is_made_absolute() -> None:
    second = parse(WORDPRESS)[1]
    assert second.title == "A post without a title."
    assert second.link == "https://www.cep-probation.org/untitled-post/"
    assert second.id == "https://www.cep-probation.org/untitled-post/"  # no guid: the link
    assert second.image is None  # a video enclosure is not an image


def test_undated_item_is_kept_and_unsafe_html_is_gone() -> None:
    third = parse(WORDPRESS)[2]
    assert third.date is None
    assert "<script" not in third.summary and "alert" not in third.summary
    assert third.image is None  # the tracking pixel is not the item's image


def test_item_without_guid_or_link_gets_a_content_hash_id_and_the_feed_link() -> None:
    fourth = parse(WORDPRESS)[3]
    assert fourth.id.startswith("sha256:")
    assert fourth.link == "https://www.cep-probation.org/"
    assert fourth.summary == "<p>Plain &amp; simple.</p>"


def test_fast_path_and_feedparser_agree_on_the_fixture() -> None:
    data = WORDPRESS.encode()
    assert fastfeed.parse(data) is not None
    fast = feeds.parse_xml_feed(data, where="t", base=None, source="news")
    slow = feeds._parse_with_feedparser(data, where="t", base=None, source="news", max_items=100, warn=None)
    assert fast == slow


def test_feed_with_xml_errors_is_read_with_a_warning() -> None:
    broken = WORDPRESS.replace("Plain &amp; simple.", "Plain & simple.")
    warnings: list[str] = []
    items = parse_document(broken.encode(), where="test feed", base=None, source="news", warn=warnings.append)
    assert len(items) == 4
    assert len(warnings) == 1 and warnings[0].startswith("test feed: the feed has XML errors (line ")


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example.org/">
 <title>Blog</title><link href="/" rel="alternate"/><id>urn:x</id><updated>2025-12-01T00:00:00Z</updated>
 <entry>
  <title type="html">Tom &amp;amp; Jerry &lt;em&gt;return&lt;/em&gt;</title>
  <link rel="alternate" href="posts/tom-and-jerry/"/>
  <id>urn:uuid:1</id>
  <updated>2025-12-02T10:00:00+01:00</updated>
  <category term="cartoons" label="Cartoons"/>
  <author><name>Ann</name></author>
  <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hello <a href="/x/">there</a>.</p>
   <img src="/img/cat.jpg" width="400" alt="cat"/></div></content>
 </entry>
 <entry>
  <title>Second</title><id>urn:uuid:2</id><published>2025-11-30T08:00:00Z</published>
  <link rel="alternate" href="https://blog.example.org/second/"/>
  <summary>Short summary.</summary>
 </entry>
</feed>
"""


def test_atom_with_xml_base_xhtml_and_html_title() -> None:
    first, second = parse(ATOM)
    assert first.title == "Tom & Jerry return"
    assert first.link == "https://blog.example.org/posts/tom-and-jerry/"
    assert first.date == datetime(2025, 12, 2, 9, 0, tzinfo=UTC)
    assert first.categories == ["Cartoons"]
    assert first.author == "Ann"
    assert first.image == "https://blog.example.org/img/cat.jpg"
    assert first.summary == "<p>Hello there.</p>"
    assert second.summary == "<p>Short summary.</p>"


RSS10 = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
 <channel rdf:about="https://rdf.example.org/"><title>RDF</title><link>https://rdf.example.org/</link>
  <description>d</description></channel>
 <item rdf:about="https://rdf.example.org/1"><title>RDF item</title><link>https://rdf.example.org/1</link>
  <dc:date>2025-12-05T12:00:00Z</dc:date><dc:subject>Research</dc:subject>
  <description>An RSS 1.0 item.</description></item>
</rdf:RDF>
"""


def test_rss10_goes_through_feedparser() -> None:
    assert fastfeed.parse(RSS10.encode()) is None
    (item,) = parse(RSS10)
    assert item.title == "RDF item"
    assert item.date == datetime(2025, 12, 5, 12, 0, tzinfo=UTC)
    assert item.categories == ["Research"]


JSONFEED = """{
  "version": "https://jsonfeed.org/version/1.1",
  "title": "JSON",
  "home_page_url": "https:\\/\\/json.example.org\\/",
  "items": [
    {"id": 42, "url": "/posts/42/", "title": "Numbered id", "content_html": "<p>Hi <img src='/a.jpg' width='500'></p>",
     "date_published": "2025-12-03T08:00:00Z", "tags": ["Events", "Events", "News"],
     "authors": [{"name": "Bea"}]},
    {"id": "b", "external_url": "https://elsewhere.example.org/b", "content_text": "A text-only post. With more.",
     "image": "https://json.example.org/b.png", "summary": "The summary."},
    "not an item"
  ]
}"""


def test_json_feed() -> None:
    first, second = parse(JSONFEED)
    assert first.id == "42"
    assert first.link == "https://json.example.org/posts/42/"
    assert first.image == "https://json.example.org/a.jpg"
    assert first.categories == ["Events", "News"]
    assert first.author == "Bea"
    assert first.date == datetime(2025, 12, 3, 8, 0, tzinfo=UTC)
    assert second.title == "The summary."  # untitled: from the summary it shows
    assert second.link == "https://elsewhere.example.org/b"
    assert second.image == "https://json.example.org/b.png"
    assert second.summary == "<p>The summary.</p>"
    assert second.date is None


@pytest.mark.parametrize(("data", "message"), [
    (b"", "test feed: empty, not a feed"),
    (b"   \n", "test feed: empty, not a feed"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "test feed: a binary file, not a feed"),
    (b"<!DOCTYPE html><html><body>Hi</body></html>", "test feed: a web page, not a feed"),
    (b"just some text", "test feed: not a feed"),
    (b"{not json", "test feed: not a feed (invalid JSON"),
    (b'{"title": "x"}', "test feed: JSON, but not a JSON Feed"),
    (b'{"version": "https://jsonfeed.org/version/1", "items": 3}', "test feed: JSON Feed without an items list"),
])
def test_documents_that_are_not_feeds(data: bytes, message: str) -> None:
    with pytest.raises(SourceError) as info:
        parse(data)
    assert info.value.message.startswith(message)


def test_an_empty_but_real_feed_has_no_items() -> None:
    assert parse('<rss version="2.0"><channel><title>t</title><link>https://e.example/</link></channel></rss>') == []


# ---------------------------------------------------------------- sources and the cache

def workspace(tmp_path: Path, sources: str) -> Path:
    (tmp_path / "cepletter.toml").write_text(
        f'[newsletter]\nname = "N"\nfrom = "N <n@example.org>"\ntimezone = "Europe/Amsterdam"\n\n{sources}',
        encoding="utf-8",
    )
    return tmp_path


def test_source_kind_is_inferred() -> None:
    assert source_kind(SourceSettings(name="a", url="https://x.example/feed/")) == "feed"
    assert source_kind(SourceSettings(name="a", url="https://x.example/cal.ics?x=1")) == "ics"
    assert source_kind(SourceSettings(name="a", path="events.ics")) == "ics"
    assert source_kind(SourceSettings(name="a", path="notes/")) == "markdown"
    assert source_kind(SourceSettings(name="a", path="news.xml", kind="markdown")) == "markdown"


def test_adhoc_source_names() -> None:
    assert adhoc_source("https://www.cep-probation.org/feed/") == SourceSettings(
        name="www.cep-probation.org", url="https://www.cep-probation.org/feed/")
    assert adhoc_source("feeds/news.xml") == SourceSettings(name="news.xml", path="feeds/news.xml")
    with pytest.raises(SourceError, match="only http"):
        adhoc_source("file:///etc/passwd")


def test_unchanged_file_is_read_from_the_cache_without_parsing(tmp_path: Path) -> None:
    ws = workspace(tmp_path, '[[sources]]\nname = "news"\npath = "news.xml"\n')
    feed = ws / "news.xml"
    feed.write_text(WORDPRESS, encoding="utf-8")
    settings = load_settings(ws)
    first = read_source(settings.sources[0], settings)
    assert list((ws / ".cepletter-cache" / "sources").glob("*.json"))
    # Same size and time, different words: only a cached read gives the old title.
    stat = feed.stat()
    feed.write_text(WORDPRESS.replace("Undated post", "Undated xxxx"), encoding="utf-8")
    os.utime(feed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert read_source(settings.sources[0], settings) == first
    # A new modification time: parsed again.
    os.utime(feed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = read_source(settings.sources[0], settings)
    assert again[2].title == "Undated xxxx"


def test_damaged_cache_is_a_miss(tmp_path: Path) -> None:
    ws = workspace(tmp_path, '[[sources]]\nname = "news"\npath = "news.xml"\n')
    (ws / "news.xml").write_text(WORDPRESS, encoding="utf-8")
    settings = load_settings(ws)
    first = read_source(settings.sources[0], settings)
    for cached in (ws / ".cepletter-cache" / "sources").glob("*.json"):
        cached.write_text("{broken", encoding="utf-8")
    assert read_source(settings.sources[0], settings) == first


def test_missing_file_and_folder_errors(tmp_path: Path) -> None:
    ws = workspace(tmp_path, '[[sources]]\nname = "news"\npath = "nope.xml"\n\n'
                             '[[sources]]\nname = "dir"\npath = "adir"\nkind = "feed"\n')
    (ws / "adir").mkdir()
    settings = load_settings(ws)
    with pytest.raises(SourceError) as info:
        read_source(settings.sources[0], settings)
    assert info.value.message == "source 'news' (nope.xml): file not found"
    with pytest.raises(SourceError) as info:
        read_source(settings.sources[1], settings)
    assert info.value.message == "source 'dir' (adir): is a folder, not a feed file"


def test_duplicates_across_sources_are_dropped(tmp_path: Path) -> None:
    ws = workspace(tmp_path, '[[sources]]\nname = "a"\npath = "a.xml"\n\n[[sources]]\nname = "b"\npath = "b.xml"\n')
    (ws / "a.xml").write_text(WORDPRESS, encoding="utf-8")
    (ws / "b.xml").write_text(WORDPRESS, encoding="utf-8")
    settings = load_settings(ws)
    items = read_items(list(settings.sources), settings)
    assert len(items) == 4
    assert {i.source for i in items} == {"a"}


def test_calendar_sources_give_no_items(tmp_path: Path) -> None:
    ws = workspace(tmp_path, '[[sources]]\nname = "events"\npath = "events.ics"\n')
    settings = load_settings(ws)
    assert read_source(settings.sources[0], settings) == []


NOTE = """---
title: Call for papers
date: 2026-01-12
link: https://www.cep-probation.org/call-for-papers/
categories: [CEP Events, Research]
image: /wp-content/uploads/cfp.jpg
---
We invite **proposals** for the conference.

<script>alert(1)</script>
"""


def test_markdown_folder(tmp_path: Path) -> None:
    ws = workspace(tmp_path, '[[sources]]\nname = "notes"\npath = "notes"\n')
    (ws / "notes").mkdir()
    (ws / "notes" / "cfp.md").write_text(NOTE, encoding="utf-8")
    (ws / "notes" / "untitled.md").write_text(
        "---\nlink: https://www.cep-probation.org/x/\ndate: 2026-01-10 09:30\nsummary: A *short* one. Yes.\n---\n",
        encoding="utf-8")
    (ws / "notes" / "README.txt").write_text("not a note", encoding="utf-8")
    settings = load_settings(ws)
    cfp, untitled = read_source(settings.sources[0], settings)
    assert cfp.title == "Call for papers"
    assert cfp.id == cfp.link == "https://www.cep-probation.org/call-for-papers/"
    assert cfp.categories == ["CEP Events", "Research"]
    assert cfp.image == "https://www.cep-probation.org/wp-content/uploads/cfp.jpg"
    assert cfp.summary == "<p>We invite proposals for the conference.</p>"
    assert cfp.date is not None and cfp.date.isoformat() == "2026-01-12T00:00:00+01:00"
    assert untitled.title == "A short one."
    assert untitled.date is not None and untitled.date.isoformat() == "2026-01-10T09:30:00+01:00"


@pytest.mark.parametrize(("front", "message"), [
    ("title: x\n", "link: missing or not an http(s) address"),
    ("title: x\nlink: javascript:alert(1)\n", "link: missing or not an http(s) address"),
    ("link: https://e.example/\ndate: soon\n", "date: 'soon' is not a date"),
    ("link: https://e.example/\ncolour: red\n", "unknown key 'colour'"),
    ("link: https://e.example/\ntitle: [unclosed\n", "invalid YAML"),
    ("link: https://e.example/\nimage: data:image/png;base64,xx\n", "is not an http(s) address"),
])
def test_markdown_errors_name_the_file(tmp_path: Path, front: str, message: str) -> None:
    ws = workspace(tmp_path, '[[sources]]\nname = "notes"\npath = "notes/"\n')
    (ws / "notes").mkdir()
    (ws / "notes" / "bad.md").write_text(f"---\n{front}---\nBody.\n", encoding="utf-8")
    settings = load_settings(ws)
    with pytest.raises(SourceError) as info:
        read_source(settings.sources[0], settings)
    assert "bad.md" in info.value.message
    assert message in info.value.message


def test_markdown_file_without_front_matter(tmp_path: Path) -> None:
    ws = workspace(tmp_path, '[[sources]]\nname = "notes"\npath = "notes/"\n')
    (ws / "notes").mkdir()
    (ws / "notes" / "plain.md").write_text("# Just a heading\n", encoding="utf-8")
    settings = load_settings(ws)
    with pytest.raises(SourceError, match=r"plain\.md: no front matter"):
        read_source(settings.sources[0], settings)


def test_reused_guid_keeps_both_posts_with_stable_ids() -> None:
    feed = """<rss version="2.0"><channel><title>t</title><link>https://e.example/</link>
    <item><title>One</title><link>https://e.example/news.html</link><guid>g1</guid>
     <pubDate>Mon, 01 Dec 2025 10:00:00 +0000</pubDate></item>
    <item><title>Two</title><link>https://e.example/news.html</link><guid>g1</guid>
     <pubDate>Tue, 02 Dec 2025 10:00:00 +0000</pubDate></item>
    <item><title>One</title><link>https://e.example/news.html</link><guid>g1</guid>
     <pubDate>Mon, 01 Dec 2025 10:00:00 +0000</pubDate></item>
    </channel></rss>"""
    first = parse(feed)
    assert [i.title for i in first] == ["One", "Two"]  # the exact repeat is dropped
    assert first[0].id == "g1"
    assert first[1].id.startswith("g1#") and len(first[1].id) == len("g1#") + 12
    assert [i.id for i in parse(feed)] == [i.id for i in first]


# ---------------------------------------------------------------- read as feedparser reads (through the CLI)

RSS_HEAD = ('<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/">'
            "<channel><title>T</title><link>https://example.org/</link>")
ATOM_HEAD = '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><link href="https://example.org/"/><id>urn:x</id><updated>2025-12-01T00:00:00Z</updated>'


def cli_items(tmp_path: Path, run: Invoke, name: str, data: bytes) -> list[list[str]]:
    """`items --feed` over ``data``: one row (number, date, source, category, title) per item."""
    from cepletter.workspace import init_workspace

    ws = tmp_path / "ws"
    if not ws.exists():
        init_workspace(ws)
    (ws / name).write_bytes(data)
    result = run("-C", str(ws), "items", "--feed", name)
    assert result.exit_code == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def drafted(tmp_path: Path, run: Invoke, name: str, data: bytes) -> list[Any]:
    """The items of an issue drafted from ``data`` alone."""
    from cepletter.issue.file import load

    cli_items(tmp_path, run, name, data)
    result = run("-C", str(tmp_path / "ws"), "draft", "--issue", "t", "--all", "--force", "--feed", name)
    assert result.exit_code == 0, result.stderr
    return list(load(tmp_path / "ws" / "issues" / "t" / "issue.md").items)


def test_escaped_markup_in_text_is_kept_as_characters(tmp_path: Path, run: Invoke) -> None:
    rss = (RSS_HEAD + "<item><title>Vec&lt;T&gt; and &lt;template&gt; explained</title>"
           "<link>https://example.org/vec</link><pubDate>Wed, 10 Dec 2025 09:00:00 +0000</pubDate></item>"
           "<item><title>Bold &lt;b&gt;news&lt;/b&gt; &amp;amp; more</title><link>https://example.org/b</link>"
           "<pubDate>Tue, 09 Dec 2025 09:00:00 +0000</pubDate></item></channel></rss>")
    assert [row[4] for row in cli_items(tmp_path, run, "rss.xml", rss.encode())] == [
        "Vec<T> and <template> explained",
        "Bold news & more",  # escaped HTML that feedparser takes for HTML (a closed tag) is read as HTML
    ]
    atom = (ATOM_HEAD + '<entry><id>https://example.org/blink</id><updated>2025-12-10T09:00:00Z</updated>'
            '<title type="text">History of the &lt;blink&gt; tag</title>'
            '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">The &lt;script&gt; tag runs code; '
            "<b>never</b> trust it.</div></content></entry></feed>")
    item = drafted(tmp_path, run, "atom.xml", atom.encode())[0]
    assert item.title == "History of the <blink> tag"
    assert item.summary == "<p>The &lt;script&gt; tag runs code; never trust it.</p>"


def test_latin1_label_with_windows_1252_bytes(tmp_path: Path, run: Invoke) -> None:
    rss = ('<?xml version="1.0" encoding="ISO-8859-1"?>' + RSS_HEAD
           + "<item><title>Don\x92t \x93quote\x94 me \x96 caf\xe9</title><link>https://example.org/q</link></item>"
           "</channel></rss>")
    rows = cli_items(tmp_path, run, "latin1.xml", rss.encode("latin-1"))
    assert rows[0][4] == "Don’t “quote” me – café"


def test_dc_title_and_dcterms_dates(tmp_path: Path, run: Invoke) -> None:
    rss = (RSS_HEAD
           + "<item><dc:title>Titled by Dublin Core</dc:title><link>https://example.org/1</link>"
           "<dcterms:issued>2025-12-03T10:00:00Z</dcterms:issued></item>"
           "<item><title>Modified</title><link>https://example.org/2</link>"
           "<dcterms:modified>2025-12-02T10:00:00Z</dcterms:modified></item>"
           "<item><title>Created</title><link>https://example.org/3</link>"
           "<dcterms:created>2025-12-01T10:00:00Z</dcterms:created></item></channel></rss>")
    rows = cli_items(tmp_path, run, "dc.xml", rss.encode())
    assert [(row[1], row[4]) for row in rows] == [
        ("2025-12-03", "Titled by Dublin Core"), ("2025-12-02", "Modified"), ("2025-12-01", "Created")]


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-le", "utf-32-be", "utf-16", "utf-16-be"])
def test_utf_16_and_utf_32_feeds(tmp_path: Path, run: Invoke, encoding: str) -> None:
    label = "utf-32" if "32" in encoding else "utf-16"
    rss = (f'<?xml version="1.0" encoding="{label}"?>' + RSS_HEAD
           + "<item><title>Grüße aus Zürich</title><link>https://example.org/z</link></item></channel></rss>")
    rows = cli_items(tmp_path, run, "wide.xml", rss.encode(encoding))
    assert [row[4] for row in rows] == ["Grüße aus Zürich"]


def test_atom_entry_without_a_link_links_to_its_http_id(tmp_path: Path, run: Invoke) -> None:
    atom = (ATOM_HEAD + "<entry><id>https://example.org/posts/7</id><title>Seven</title>"
            "<updated>2025-12-10T09:00:00Z</updated></entry>"
            "<entry><id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id><title>No address</title>"
            '<updated>2025-12-09T09:00:00Z</updated></entry></feed>')
    items = drafted(tmp_path, run, "ids.atom", atom.encode())
    assert [(i.title, i.link) for i in items] == [("Seven", "https://example.org/posts/7"),
                                                   ("No address", "https://example.org/")]


def test_a_doctype_after_a_long_comment_is_never_expanded(tmp_path: Path, run: Invoke) -> None:
    entities = '<!ENTITY lol0 "lol">' + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    doc = ('<?xml version="1.0" encoding="utf-8"?><!--' + "x" * 5000 + f"--><!DOCTYPE rss [{entities}]>"
           + RSS_HEAD + "<item><title>Bomb &lol9;</title><link>https://example.org/bomb</link></item></channel></rss>")
    assert fastfeed.parse(doc.encode()) is None  # a DTD anywhere: not the fast path's to read
    rows = cli_items(tmp_path, run, "bomb.xml", doc.encode())
    assert len(rows) == 1 and "lollol" not in rows[0][4]


@pytest.mark.parametrize("change", [
    ("<title>Plain title</title>", '<title type="html">Plain title</title>'),  # attributes where none are expected
    ("<title>Plain title</title>", "<title>Plain title</title><title>Again</title>"),  # a field given twice
    ("<link>https://example.org/p</link>", "<link>https://example.org/p</link><dc:title>DC</dc:title>"),
    ("<link>https://example.org/p</link>", "<link>https://example.org/p</link><itunes:summary>S</itunes:summary>"),
    ("<link>https://example.org/p</link>", "<link>https://example.org/p</link><body>xhtml body</body>"),
    ('<?xml version="1.0" encoding="utf-8"?>', '<?xml version="1.0" encoding="iso-8859-1"?>'),
    ("<item>", '<item xml:base="https://other.example/">'),
])
def test_the_fast_path_leaves_anything_unusual_to_feedparser(change: tuple[str, str]) -> None:
    doc = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
           'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
           "<channel><title>T</title><link>https://example.org/</link><item><title>Plain title</title>"
           "<link>https://example.org/p</link></item></channel></rss>")
    assert fastfeed.parse(doc.encode()) is not None
    unusual = doc.replace(*change).encode()
    assert fastfeed.parse(unusual) is None
