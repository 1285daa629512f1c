"""Hostile and broken feeds, through the commands people run: items → draft → preview → send.

Every payload is marked PWNED where it must vanish (script bodies, handler
code, forbidden URLs, frame targets); the marker must never reach the list
printed by `items`, the issue file, the built newsletter or a sent message.
Text that looks like a template tag is shown literally, never executed, and
never filled with a subscriber's data.
"""

from __future__ import annotations

import json
import mailbox
import random
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from conftest import Invoke
from htmlsafety import tags_of

from cepletter.workspace import init_workspace

PAYLOADS = [
    '<script>alert("PWNED")</script><p>Script item text.</p>',
    '<style>body{background:url("https://evil.example/PWNED")}</style><p>Style item text.</p>',
    '<p onclick="PWNED()" onmouseover=PWNED()>Handlers text.</p>'
    '<img src="https://example.org/i.png" onerror="PWNED()" width="600" height="300" alt="pic">',
    '<p>URLs: <a href="javascript:PWNED()">js</a> <a href="JaVaScRiPt:PWNED()">mixed</a> '
    '<a href="&#106;&#97;vascript:PWNED()">entity</a> <a href="&#x6A;avascript&colon;PWNED()">hex</a> '
    '<a href="java&#x09;script:PWNED()">tab</a> <a href=" javascript:PWNED()">space</a> '
    '<a href="vbscript:PWNED">vb</a> <a href="VbScRiPt:PWNED">vb2</a> <a href="data:text/html;base64,PWNED">data</a> '
    '<a href="DATA:text/html,PWNED">data2</a> <img src="data:image/png;base64,PWNED"> '
    '<a href="https://example.org/kept">kept</a></p>',
    '<iframe src="https://evil.example/PWNED"></iframe><p>Frame text.</p>',
    '<form action="https://evil.example/PWNED"><input name="PWNED"><button>PWNED</button></form><p>Form text.</p>',
    '<object data="https://evil.example/PWNED"></object><embed src="https://evil.example/PWNED"><p>Object text.</p>',
    '<svg onload="PWNED()"><circle r="5"/></svg><svg><script>PWNED</script></svg><p>Svg text.</p>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/PWNED"><p>Refresh text.</p>',
    '<div style="width: expression(PWNED())">CSS one.</div><p style="background:url(javascript:PWNED())">CSS two.</p>',
    '<base href="https://evil.example/PWNED"><link rel="stylesheet" href="https://evil.example/PWNED"><p>Base text.</p>',
    '<math><mi xlink:href="javascript:PWNED">m</mi></math><noscript><p title="</noscript><img src=x onerror=PWNED>">'
    '</noscript><p>Mxss text.</p>',
    '<!--<script>PWNED</script>--><p>Comment text.</p>',
    '<scr<script>ipt>alert(1)</script><p>Split tag text.</p>',
]
BIDI_TITLE = "Invoice \u202eFDP.exe\u202c is \u2066ready\u2069"
JINJA_TITLE = "Sum {{ 7*7 }} and {% for x in range(3) %}X{% endfor %}"
SLOT_TITLE = "Mail {{ recipient.email }} to {{ unsubscribe_url }}"
# A title is text: its markup is shown as characters, never run.
SCRIPT_TITLE = "<script>alert(1)</script> Scripted title"
TITLES = [BIDI_TITLE, JINJA_TITLE, SCRIPT_TITLE, SLOT_TITLE]
SUMMARY_TAIL = " {{ recipient.name }} {% if true %}IF{% endif %}"
BIDI = ("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069")


def title_of(i: int) -> str:
    return TITLES[i] if i < len(TITLES) else f"Hostile item {i}"


def rss(doctype: bool = False) -> str:
    items = "".join(
        f"<item><title>{escape(title_of(i))}</title><link>https://example.org/news/{i}/</link>"
        f"<guid>https://example.org/?p={i}</guid><pubDate>Wed, {10 + i:02d} Dec 2025 09:00:00 +0000</pubDate>"
        f"<description><![CDATA[{payload}{SUMMARY_TAIL}]]></description>"
        '<media:content url="javascript:PWNED()" medium="image"/><enclosure url="data:image/png;base64,PWNED" '
        'type="image/png" length="1"/></item>'
        for i, payload in enumerate(PAYLOADS)
    )
    head = '<?xml version="1.0" encoding="UTF-8"?>\n' + ("<!DOCTYPE rss>\n" if doctype else "")
    return (head + '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Hostile</title>'
            f"<link>https://example.org/</link><description>d</description>{items}</channel></rss>")


def json_feed() -> str:
    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "Hostile", "home_page_url": "https://example.org/",
        "items": [
            {"id": f"https://example.org/?p={i}", "url": f"https://example.org/news/{i}/", "title": title_of(i),
             "date_published": f"2025-12-{10 + i:02d}T09:00:00Z", "content_html": payload + SUMMARY_TAIL,
             "image": "javascript:PWNED()"}
            for i, payload in enumerate(PAYLOADS)
        ],
    })


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    init_workspace(root)
    return root


def assert_no_active_content(html: str) -> None:
    """Nothing that runs, loads a frame, submits or redirects; only http(s)/mailto URLs."""
    assert "PWNED" not in html
    lowered = html.lower()
    for needle in ("<script", "<iframe", "<object", "<embed", "<form", "<svg", "<math", "<base", "javascript:",
                   "vbscript:", "data:", "expression(", "http-equiv"):
        assert needle not in lowered, needle
    for tag, attrs in tags_of(html):
        assert tag not in {"script", "iframe", "object", "embed", "form", "input", "svg", "meta", "link"} or (
            tag == "meta" and not any(name == "http-equiv" for name, _ in attrs)), tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src"):
                assert (value or "").split(":", 1)[0].lower() in ("http", "https", "mailto"), value


@pytest.mark.parametrize("kind", ["rss", "rss-doctype", "json"])
def test_hostile_markup_never_reaches_the_list_the_issue_or_the_email(ws: Path, run: Invoke, kind: str) -> None:
    feed = ws / ("hostile.json" if kind == "json" else "hostile.xml")
    feed.write_text(json_feed() if kind == "json" else rss(doctype=kind == "rss-doctype"), encoding="utf-8")

    listed = run("-C", str(ws), "items", "--feed", feed.name)
    assert listed.exit_code == 0, listed.stderr
    assert f"{len(PAYLOADS)} items" in listed.stderr
    titles = [line.split("\t")[4] for line in listed.stdout.splitlines()]
    # Bidi controls are taken out; template-like text and markup in a title are kept literally.
    assert "Invoice FDP.exe is ready" in titles
    assert JINJA_TITLE in titles and SLOT_TITLE in titles and SCRIPT_TITLE in titles
    assert "PWNED" not in listed.stdout and not any(c in listed.stdout for c in BIDI)

    drafted = run("-C", str(ws), "draft", "--feed", feed.name, "--all", "--issue", "2026-01",
                  "--intro", "This month: what the feed gave us.")
    assert drafted.exit_code == 0, drafted.stderr
    issue_text = (ws / "issues" / "2026-01" / "issue.md").read_text(encoding="utf-8")
    assert "PWNED" not in issue_text and not any(c in issue_text for c in BIDI)
    assert "javascript:" not in issue_text.lower() and "data:" not in issue_text.lower()
    assert "Script item text." in issue_text and "Split tag text." in issue_text

    shown = run("-C", str(ws), "preview", "2026-01")
    assert shown.exit_code == 0, shown.stderr
    build = ws / "issues" / "2026-01" / "build"
    html = (build / "newsletter.html").read_text(encoding="utf-8")
    text = (build / "newsletter.txt").read_text(encoding="utf-8")
    # The template's own <style> block is the only style element; everything from the feed is inert.
    body = html.split("<body", 1)[1]
    assert_no_active_content(body)
    assert "PWNED" not in html and "PWNED" not in text
    assert not any(c in html + text for c in BIDI)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Scripted title" in body and SCRIPT_TITLE in text
    # Template syntax from the feed is text: shown as written, never evaluated.
    for literal in ("{{ 7*7 }}", "{% for x in range(3) %}X{% endfor %}", "{{ recipient.name }}", "{% if true %}IF"):
        assert literal in html and literal in text
    assert "49" not in html.replace("2049", "")
    assert "XXX" not in html
    # check flags the literal tags, as it should for anything that looks unrendered.
    assert "unrendered placeholder" in shown.stderr

    sent = run("-C", str(ws), "send", "2026-01", "--yes")
    assert sent.exit_code == 0, sent.stderr
    box = mailbox.Maildir(ws / "outbox", factory=None, create=False)
    messages = list(box)
    assert messages
    for message in messages:
        parts = {p.get_content_type(): p.get_payload(decode=True).decode("utf-8") for p in message.walk()
                 if not p.is_multipart()}
        html_part, text_part = parts["text/html"], parts["text/plain"]
        assert_no_active_content(html_part.split("<body", 1)[1])
        assert "PWNED" not in text_part
        # A subscriber's own data is filled only where the template asks, never into feed text.
        address = message["To"].rsplit("<", 1)[-1].rstrip(">")
        assert "Mail {{ recipient.email }} to {{ unsubscribe_url }}" in html_part
        assert f"Mail {address}" not in html_part and f"Mail {address}" not in text_part


def entity_bomb() -> str:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    return ('<?xml version="1.0"?>\n'
            f"<!DOCTYPE rss [{entities}]>\n"
            '<rss version="2.0"><channel><title>Bomb</title><link>https://example.org/</link>'
            "<item><title>&lol9;</title><link>https://example.org/bomb</link><description>&lol9;</description>"
            "</item></channel></rss>")


def test_an_xml_entity_expansion_bomb_is_not_expanded(ws: Path, run: Invoke) -> None:
    (ws / "bomb.xml").write_text(entity_bomb(), encoding="utf-8")
    result = run("-C", str(ws), "items", "--feed", "bomb.xml")
    # Read without its DTD: the entity is never expanded (a billion "lol"s would be 3 GB).
    assert result.exit_code == 0, result.stderr
    assert "lollol" not in result.stdout
    assert len(result.stdout) < 200
    assert "warning: source 'bomb.xml'" in result.stderr and "XML errors" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_20_mb_feed_is_read_and_its_summaries_kept_short(ws: Path, run: Invoke) -> None:
    paragraph = "<p>" + "Probation work across Europe. " * 40 + "</p>"
    body = paragraph * (5 * 1024 * 1024 // len(paragraph))  # about 5 MB of HTML per item
    items = "".join(
        f"<item><title>Big item {i}</title><link>https://example.org/big/{i}/</link>"
        f"<pubDate>Wed, {10 + i:02d} Dec 2025 09:00:00 +0000</pubDate><description><![CDATA[{body}]]></description></item>"
        for i in range(4)
    )
    feed = ws / "big.xml"
    feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>'
                    f"<link>https://example.org/</link>{items}</channel></rss>", encoding="utf-8")
    assert feed.stat().st_size > 20_000_000
    result = run("-C", str(ws), "draft", "--feed", "big.xml", "--all", "--issue", "2026-02")
    assert result.exit_code == 0, result.stderr
    issue_file = ws / "issues" / "2026-02" / "issue.md"
    # The issue keeps an excerpt of each item, not 5 MB of it.
    assert issue_file.stat().st_size < 20_000
    assert issue_file.read_text(encoding="utf-8").count("title: Big item") == 4


def test_ten_thousand_items_are_listed_and_more_are_capped(ws: Path, run: Invoke) -> None:
    def feed(n: int) -> str:
        items = "".join(
            f"<item><title>Item {i}</title><link>https://example.org/n/{i}</link><guid>g{i}</guid>"
            f"<pubDate>Wed, 10 Dec 2025 {i % 24:02d}:{i % 60:02d}:00 +0000</pubDate><description>Text {i}</description></item>"
            for i in range(n))
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Many</title><link>https://example.org/</link>{items}</channel></rss>'

    (ws / "many.xml").write_text(feed(10_000), encoding="utf-8")
    result = run("-C", str(ws), "items", "--feed", "many.xml")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 10_000
    assert result.stderr == "10000 items (no date limit).\n"
    (ws / "more.xml").write_text(feed(10_500), encoding="utf-8")
    more = run("-C", str(ws), "items", "--feed", "more.xml")
    assert more.exit_code == 0
    assert len(more.stdout.splitlines()) == 10_000  # [fetch] max_items


@pytest.mark.timeout(120)
def test_deeply_nested_markup_is_flattened_not_a_hang_or_a_crash(ws: Path, run: Invoke) -> None:
    depth = 100_000
    html_deep = "<div>" * depth + "Deep text survives." + "</div>" * depth
    xhtml_deep = "<div>" * 20_000 + "Deep xhtml survives." + "</div>" * 20_000
    (ws / "deep.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Deep</title><link>https://example.org/</link>'
        f"<item><title>{escape('<b>' * 5000)}Deep title{escape('</b>' * 5000)}</title><link>https://example.org/deep</link>"
        f"<pubDate>Wed, 10 Dec 2025 09:00:00 +0000</pubDate><description><![CDATA[{html_deep}]]></description></item>"
        "</channel></rss>", encoding="utf-8")
    (ws / "deep-atom.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>X</title>'
        '<link href="https://example.org/"/><id>x</id><updated>2025-12-10T00:00:00Z</updated>'
        '<entry><title>Deep xhtml</title><link href="https://example.org/dx"/><id>dx</id>'
        '<updated>2025-12-10T00:00:00Z</updated><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
        f"{xhtml_deep}</div></content></entry></feed>", encoding="utf-8")
    result = run("-C", str(ws), "draft", "--feed", "deep.xml", "--feed", "deep-atom.xml", "--all", "--issue", "2026-03")
    assert result.exit_code == 0, result.stderr
    issue_text = (ws / "issues" / "2026-03" / "issue.md").read_text(encoding="utf-8")
    assert "Deep text survives." in issue_text and "Deep xhtml survives." in issue_text
    assert "title: Deep title" in issue_text
    assert "<div>" not in issue_text


@pytest.mark.parametrize(("content", "message"), [
    pytest.param(b"", "empty, not a feed", id="empty"),
    pytest.param(b"   \n\t  \n", "empty, not a feed", id="blank"),
    pytest.param(bytes(random.Random(6).getrandbits(8) for _ in range(4096)), "not a feed", id="random-bytes"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64, "a binary file, not a feed", id="png"),
    pytest.param(b"<!DOCTYPE html><html><head><title>Home</title></head><body><h1>Welcome</h1></body></html>",
                 "a web page, not a feed", id="html-page"),
    pytest.param(b"<html><body><p>Our news</p></body></html>", "a web page, not a feed", id="html-fragment"),
    pytest.param(b"Just some text, no markup at all.", "not a feed", id="plain-text"),
    pytest.param(b'{"not": "a json feed"}', "JSON", id="other-json"),
])
def test_files_that_are_not_feeds_are_one_line_errors_and_nothing_is_written(
        ws: Path, run: Invoke, content: bytes, message: str) -> None:
    (ws / "bad.xml").write_bytes(content)
    before = sorted(p.relative_to(ws) for p in ws.rglob("*") if ".cepletter-cache" not in p.parts)
    for args in (["items", "--feed", "bad.xml"], ["draft", "--feed", "bad.xml", "--all", "--issue", "2026-04"]):
        result = run("-C", str(ws), *args)
        assert result.exit_code == 1, result.stdout
        first, *rest = result.stderr.splitlines()
        assert first.startswith("Error: source 'bad.xml' (")
        assert message in first
        assert len(rest) == 1 and rest[0].startswith("  ")  # the hint
        assert result.stdout == ""
    after = sorted(p.relative_to(ws) for p in ws.rglob("*") if ".cepletter-cache" not in p.parts)
    assert after == before  # no issue folder, no partial file


def test_a_feed_cut_off_mid_download_gives_its_whole_items_with_a_warning(ws: Path, run: Invoke) -> None:
    whole = rss()
    cut = whole[: whole.index("<item>", whole.index("<item>", whole.index("<item>") + 1) + 1) + 40]
    (ws / "cut.xml").write_text(cut, encoding="utf-8")
    result = run("-C", str(ws), "items", "--feed", "cut.xml")
    assert result.exit_code == 0, result.stderr
    assert "warning: source 'cut.xml'" in result.stderr and "XML errors" in result.stderr
    titles = [line.split("\t")[4] for line in result.stdout.splitlines()]
    # The whole items are there; what was cut is at most a partial, inert item.
    assert {JINJA_TITLE, "Invoice FDP.exe is ready"} <= set(titles) and len(titles) <= 3
    assert "PWNED" not in result.stdout
