"""Feed HTML is untrusted: the allow-list, absolute URLs, images, excerpts, titles."""

from __future__ import annotations

from htmlsafety import assert_safe
from hypothesis import given, settings
from hypothesis import strategies as st

from cepletter.sources.sanitize import (
    absolute_url,
    excerpt,
    first_image,
    is_content_image,
    plain_text,
    sanitize_html,
    shorten,
    text_of,
    title_from_text,
)

BASE = "https://www.cep-probation.org/news/some-post/"


def test_scripts_styles_frames_forms_and_their_content_are_removed() -> None:
    raw = (
        '<p>Kept</p><script>alert("x")</script><style>p{color:red}</style>'
        '<iframe src="https://evil.example/"></iframe><form action="/x"><input name="q"></form>'
        "<noscript>no</noscript><svg><script>alert(1)</script></svg>"
    )
    out = sanitize_html(raw, BASE)
    assert out == "<p>Kept</p>"


def test_event_handlers_and_style_attributes_are_removed() -> None:
    out = sanitize_html('<p onclick="steal()" style="color:red">Hi <b onmouseover="x()">there</b></p>', BASE)
    assert out == "<p>Hi <b>there</b></p>"


def test_javascript_and_data_urls_are_removed() -> None:
    out = sanitize_html(
        '<a href="javascript:alert(1)">a</a><a href=" JaVaScRiPt:alert(1)">b</a>'
        '<img src="data:image/png;base64,AAAA" alt="x"><a href="data:text/html,hi">c</a>', BASE)
    assert "javascript" not in out.lower()
    assert "data:" not in out
    assert "<img" not in out  # an image without an address is no image
    assert_safe(out)


def test_relative_links_and_images_become_absolute_against_the_item_link() -> None:
    out = sanitize_html(
        '<p><a href="/about/">About</a> <a href="../other/">Other</a> <a href="#top">Top</a>'
        '<img src="/wp-content/uploads/a.jpg" alt="A" width="600"> <img src="//cdn.example.org/b.png" alt="B"></p>',
        BASE,
    )
    assert 'href="https://www.cep-probation.org/about/"' in out
    assert 'href="https://www.cep-probation.org/news/other/"' in out
    assert 'href="https://www.cep-probation.org/news/some-post/#top"' in out
    assert 'src="https://www.cep-probation.org/wp-content/uploads/a.jpg"' in out
    assert 'src="https://cdn.example.org/b.png"' in out
    assert_safe(out)


def test_relative_urls_without_a_web_base_are_dropped() -> None:
    out = sanitize_html('<a href="/about/">About</a><img src="x.jpg" alt="">', None)
    assert out == '<a rel="noopener noreferrer">About</a>'


def test_mailto_links_are_kept_but_not_as_images() -> None:
    out = sanitize_html('<a href="mailto:info@example.org">mail</a><img src="mailto:x@example.org">', BASE)
    assert 'href="mailto:info@example.org"' in out
    assert "<img" not in out


def test_ampersands_in_urls_stay_escaped_once() -> None:
    out = sanitize_html('<a href="/search?a=1&amp;b=2">s</a>', BASE)
    assert 'href="https://www.cep-probation.org/search?a=1&amp;b=2"' in out


def test_tracking_pixels_avatars_and_emoji_are_dropped() -> None:
    raw = (
        '<p>Text<img src="https://cpx.golem.de/cpx.php?x=1" width="1" height="1" alt="">'
        '<img src="https://stats.example.org/p.gif" width="1" height="1">'
        '<img src="https://secure.gravatar.com/avatar/abc?s=96" alt="author">'
        '<img src="https://feeds.feedburner.com/~r/foo/~4/bar" height="1" width="1">'
        '<img src="https://s.w.org/images/core/emoji/14.0.0/72x72/1f642.png" alt="🙂">'
        '<img src="https://www.example.org/photo.jpg" alt="Photo" width="800"></p>'
    )
    out = sanitize_html(raw, BASE)
    assert out.count("<img") == 1
    assert 'src="https://www.example.org/photo.jpg"' in out


def test_is_content_image() -> None:
    assert is_content_image("https://www.example.org/a.jpg")
    assert not is_content_image("https://0.gravatar.com/avatar/x")
    assert not is_content_image("https://www.example.org/a.jpg", {"width": "1", "height": "1"})
    assert not is_content_image("https://www.example.org/icon.png", {"width": "16"}, min_size=60)
    assert not is_content_image("")


def test_first_image_skips_small_images() -> None:
    clean = sanitize_html(
        '<img src="/icons/rss.png" width="16" height="16" alt=""><img src="/big.jpg" width="640" alt="">', BASE)
    assert first_image(clean) == "https://www.cep-probation.org/big.jpg"
    assert first_image("<p>no image</p>") is None


def test_absolute_url() -> None:
    assert absolute_url("/x", BASE) == "https://www.cep-probation.org/x"
    assert absolute_url("https://a.example/b", None) == "https://a.example/b"
    assert absolute_url("ftp://a.example/b", BASE) is None
    assert absolute_url("http:///nohost", BASE) is None
    assert absolute_url("   ", BASE) is None
    assert absolute_url("/x", "file:///tmp/feed.xml") is None


def test_text_of_keeps_paragraphs_and_decodes_entities() -> None:
    assert text_of("<p>One &amp; two</p><p>Three<br>four</p>") == "One & two\nThree\nfour"
    assert text_of("plain   text") == "plain text"


def test_plain_text_for_titles() -> None:
    assert plain_text("  Tom &amp; Jerry\n  return ") == "Tom & Jerry return"
    assert plain_text("<b>Bold</b> &lt;tag&gt;") == "Bold <tag>"
    assert plain_text(None) == ""


def test_shorten_cuts_at_a_word_boundary() -> None:
    text = "The quick brown fox jumps over the lazy dog"
    assert shorten(text, 100) == text
    short = shorten(text, 20)
    assert short == "The quick brown fox…"
    assert len(short) <= 20


def test_title_from_text_takes_the_first_sentence() -> None:
    assert title_from_text("Good morning students and teachers! More text here.") == (
        "Good morning students and teachers!")
    long = "word " * 40
    title = title_from_text(long)
    assert len(title) <= 80 and title.endswith("…")


def test_excerpt_takes_first_paragraphs_up_to_the_limit() -> None:
    paragraphs = "".join(f"<p>Paragraph {n} " + "lorem ipsum " * 20 + "</p>" for n in range(20))
    out = excerpt(sanitize_html(paragraphs, BASE), 600)
    assert out.startswith("<p>Paragraph 0 ")
    assert len(text_of(out)) <= 600
    assert "Paragraph 19" not in out


def test_excerpt_cuts_one_long_paragraph_with_an_ellipsis() -> None:
    out = excerpt("<p>" + "word " * 500 + "</p>", 600)
    assert out.endswith("…</p>")
    assert len(text_of(out)) <= 600


def test_excerpt_drops_feed_boilerplate() -> None:
    clean = sanitize_html(
        "<p>The real summary of the post.</p>"
        '<p>The post <a href="https://x.example/p">Title</a> appeared first on <a href="https://x.example">X</a>.</p>',
        BASE,
    )
    assert excerpt(clean) == "<p>The real summary of the post.</p>"
    assert excerpt("<p>It is sale time again … Read More Here →</p>") == "<p>It is sale time again…</p>"
    assert excerpt("<p>Summary text [&hellip;]</p>") == "<p>Summary text…</p>"


def test_excerpt_escapes_text() -> None:
    assert excerpt("<p>a &lt;script&gt; b</p>") == "<p>a &lt;script&gt; b</p>"


_HOSTILE_PARTS = st.sampled_from([
    "<script>alert(1)</script>", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>', '<a href="JAVASCRIPT:alert(1)">x</a>', "<a href=' javascript:x'>y</a>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>', '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    '<img src="data:image/svg+xml,<svg onload=alert(1)>">', "<svg/onload=alert(1)>", "<body onload=x()>",
    '<iframe src="https://evil.example"></iframe>', "<style>@import 'x'</style>", '<p style="x:expression(1)">',
    "<div onmouseover='x'>", "<form><button formaction=javascript:x>", "<object data=x>", "<embed src=x>",
    "<math><mi xlink:href=javascript:x>", "<!--<script>-->", "<![CDATA[<script>]]>", "<a href=/rel>r</a>",
    "<img src=/rel.jpg>", "<p>", "</p>", "<b>", "text", "&lt;script&gt;", "<", ">", '"', "'", "=", "on",
    "<a href=\"//evil.example/x\">", "<meta http-equiv=refresh content='0;url=javascript:x'>",
    "<base href=javascript:x>", "<link rel=stylesheet href=x>", "<video src=x onerror=y>",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_HOSTILE_PARTS, st.text(max_size=12)), max_size=12),
       st.sampled_from([BASE, None, "http://example.org/a/b", "javascript:alert(1)"]))
def test_property_sanitised_output_is_never_unsafe(parts: list[str], base: str | None) -> None:
    out = sanitize_html("".join(parts), base)
    assert_safe(out)
    assert_safe(excerpt(out))
