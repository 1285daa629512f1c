"""A small feed server on 127.0.0.1 (port 0) for fetch tests: real HTTP, no mocks."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Served</title><link>https://news.example.org/</link>
<description>d</description>
<item><title>First served item</title><link>https://news.example.org/first/</link>
<guid>https://news.example.org/?p=1</guid><pubDate>Wed, 10 Dec 2025 09:00:00 +0000</pubDate>
<description>&lt;p&gt;The first &lt;a href="/more/"&gt;item&lt;/a&gt;.&lt;/p&gt;</description></item>
<item><title>Second served item</title><link>https://news.example.org/second/</link>
<guid>https://news.example.org/?p=2</guid><pubDate>Thu, 11 Dec 2025 09:00:00 +0000</pubDate>
<description>Second.</description></item>
</channel></rss>
"""
ETAG = '"v1"'
LAST_MODIFIED = "Thu, 11 Dec 2025 09:00:00 GMT"


@dataclass
class FeedServer:
    url: str
    requests: list[dict[str, str]] = field(default_factory=list)
    body: str = RSS


@contextmanager
def feed_server(delay: float = 2.0) -> Iterator[FeedServer]:
    """Routes: /feed.xml (ETag, 304), /lm.xml (Last-Modified, 304), /gzip.xml, /missing, /redirect, /loop, /slow, /page.html, /error."""
    state = FeedServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str = "application/rss+xml",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.requests.append({"path": self.path, **{k: v for k, v in self.headers.items()}})
            if self.path == "/feed.xml":
                if self.headers.get("If-None-Match") == ETAG:
                    self.send_response(304)
                    self.send_header("ETag", ETAG)
                    self.end_headers()
                    return
                self._send(200, state.body.encode(), headers={"ETag": ETAG})
            elif self.path == "/lm.xml":
                if self.headers.get("If-Modified-Since") == LAST_MODIFIED:
                    self.send_response(304)
                    self.end_headers()
                    return
                self._send(200, state.body.encode(), headers={"Last-Modified": LAST_MODIFIED})
            elif self.path == "/gzip.xml":
                self._send(200, gzip.compress(state.body.encode()), headers={"Content-Encoding": "gzip"})
            elif self.path == "/redirect":
                self._send(301, b"", headers={"Location": "/feed.xml"})
            elif self.path == "/loop":
                self._send(302, b"", headers={"Location": "/loop"})
            elif self.path == "/slow":
                time.sleep(delay)
                self._send(200, state.body.encode())
            elif self.path == "/page.html":
                self._send(200, b"<!DOCTYPE html><html><body><p>Welcome</p></body></html>", "text/html")
            elif self.path == "/error":
                self._send(500, b"oops", "text/plain")
            else:
                self._send(404, b"not found", "text/plain")

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that gave up (the timeout tests) is expected here

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
