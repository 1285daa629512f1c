"""HTTP fetching against a real server on 127.0.0.1: 200, 304, 404, redirects, timeouts, caching."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from feedserver import ETAG, LAST_MODIFIED, feed_server

from cepletter import __version__
from cepletter.config import load_settings
from cepletter.errors import SourceError
from cepletter.sources.fetch import _reason, fetch
from cepletter.sources.reader import read_source


def test_200_with_user_agent_and_etag() -> None:
    with feed_server() as srv:
        resp = fetch(f"{srv.url}/feed.xml", timeout=5)
    assert resp.status == 200
    assert resp.etag == ETAG
    assert b"First served item" in resp.body
    assert srv.requests[0]["User-Agent"].startswith(f"cepletter/{__version__}")


def test_304_when_the_etag_matches() -> None:
    with feed_server() as srv:
        resp = fetch(f"{srv.url}/feed.xml", timeout=5, etag=ETAG)
    assert resp.status == 304
    assert resp.body == b""
    assert srv.requests[0]["If-None-Match"] == ETAG


def test_404_names_the_url_and_the_status() -> None:
    with feed_server() as srv, pytest.raises(SourceError) as info:
        fetch(f"{srv.url}/missing", timeout=5)
    assert info.value.message == f"{srv.url}/missing: HTTP 404 Not Found"
    assert info.value.hint and "address" in info.value.hint


def test_500_is_an_error() -> None:
    with feed_server() as srv, pytest.raises(SourceError, match="HTTP 500"):
        fetch(f"{srv.url}/error", timeout=5)


def test_redirect_is_followed() -> None:
    with feed_server() as srv:
        resp = fetch(f"{srv.url}/redirect", timeout=5)
    assert resp.status == 200
    assert resp.url == f"{srv.url}/feed.xml"
    assert [r["path"] for r in srv.requests] == ["/redirect", "/feed.xml"]


def test_redirect_loop_is_bounded() -> None:
    with feed_server() as srv, pytest.raises(SourceError, match="more than 3 redirects"):
        fetch(f"{srv.url}/loop", timeout=5, max_redirects=3)
    assert len(srv.requests) == 4


def test_gzip_answer_is_decompressed() -> None:
    with feed_server() as srv:
        resp = fetch(f"{srv.url}/gzip.xml", timeout=5)
    assert resp.body.startswith(b"<?xml")


def test_answer_larger_than_the_cap_is_refused() -> None:
    with feed_server() as srv, pytest.raises(SourceError, match="larger than"):
        fetch(f"{srv.url}/feed.xml", timeout=5, max_bytes=100)


def test_timeout_names_the_seconds() -> None:
    with feed_server(delay=3) as srv, pytest.raises(SourceError) as info:
        fetch(f"{srv.url}/slow", timeout=0.5)
    assert info.value.message == f"{srv.url}/slow: no complete answer within 0.5 seconds ([fetch] timeout)"


def test_server_down_is_connection_refused() -> None:
    with feed_server() as srv:
        url = f"{srv.url}/feed.xml"
    with pytest.raises(SourceError, match="connection refused"):
        fetch(url, timeout=5)


def test_only_http_and_https_are_fetched() -> None:
    for url in ("file:///etc/passwd", "ftp://example.org/feed", "javascript:alert(1)", "http://"):
        with pytest.raises(SourceError, match="only http:// and https://"):
            fetch(url)


def test_dns_failure_is_explained() -> None:
    # Resolving a name would leave this machine; the message for the resolver's answer is checked instead.
    assert _reason(socket.gaierror(-2, "Name or service not known"), 20) == (
        "cannot find this host name (DNS lookup failed)")


# ---------------------------------------------------------------- through the source cache

def workspace(tmp_path: Path, url: str, timeout: float = 5) -> Path:
    (tmp_path / "cepletter.toml").write_text(
        f'[newsletter]\nname = "N"\nfrom = "N <n@example.org>"\n\n'
        f'[[sources]]\nname = "news"\nurl = "{url}"\n\n[fetch]\ntimeout = {timeout}\n',
        encoding="utf-8",
    )
    return tmp_path


def test_second_read_sends_the_etag_and_uses_the_cache_on_304(tmp_path: Path) -> None:
    with feed_server() as srv:
        settings = load_settings(workspace(tmp_path, f"{srv.url}/feed.xml"))
        first = read_source(settings.sources[0], settings)
        second = read_source(settings.sources[0], settings)
    assert [i.title for i in first] == ["First served item", "Second served item"]
    assert second == first
    assert "If-None-Match" not in srv.requests[0]
    assert srv.requests[1]["If-None-Match"] == ETAG
    assert first[0].summary == "<p>The first item.</p>"


def test_last_modified_gives_a_conditional_get(tmp_path: Path) -> None:
    with feed_server() as srv:
        settings = load_settings(workspace(tmp_path, f"{srv.url}/lm.xml"))
        first = read_source(settings.sources[0], settings)
        srv.body = "<rss version='2.0'><channel><title>changed</title></channel></rss>"  # only a 304 hides it
        second = read_source(settings.sources[0], settings)
    assert second == first
    assert srv.requests[1]["If-Modified-Since"] == LAST_MODIFIED


def test_source_that_is_down_gives_its_cached_items_with_a_warning(tmp_path: Path) -> None:
    with feed_server() as srv:
        settings = load_settings(workspace(tmp_path, f"{srv.url}/feed.xml"))
        first = read_source(settings.sources[0], settings)
    warnings: list[str] = []
    again = read_source(settings.sources[0], settings, warn=warnings.append)
    assert again == first
    assert len(warnings) == 1
    assert warnings[0].startswith(f"source 'news': {srv.url}/feed.xml: connection refused (")
    assert "using the 2 items saved" in warnings[0]


def test_source_that_times_out_without_a_cache_is_an_error(tmp_path: Path) -> None:
    with feed_server(delay=3) as srv:
        settings = load_settings(workspace(tmp_path, f"{srv.url}/slow", timeout=0.5))
        with pytest.raises(SourceError) as info:
            read_source(settings.sources[0], settings)
    assert info.value.message == f"source 'news': {srv.url}/slow: no complete answer within 0.5 seconds ([fetch] timeout)"


def test_web_page_instead_of_a_feed_is_an_error(tmp_path: Path) -> None:
    with feed_server() as srv:
        settings = load_settings(workspace(tmp_path, f"{srv.url}/page.html"))
        with pytest.raises(SourceError) as info:
            read_source(settings.sources[0], settings)
    assert info.value.message.endswith("a web page, not a feed")
    assert "news" in info.value.message
