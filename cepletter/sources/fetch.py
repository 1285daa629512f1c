"""HTTP(S) fetching for feeds: timeout, User-Agent, conditional GET, bounded
redirects and a cap on the bytes read. Only http and https are fetched."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urljoin, urlsplit

from cepletter import __version__
from cepletter.errors import SourceError

USER_AGENT = f"cepletter/{__version__} (newsletter composer)"
_CHUNK = 64 * 1024
TOTAL_TIMEOUTS = 5  # the whole answer must arrive within this many [fetch] timeouts


@dataclass
class Response:
    status: int  # 200, or 304 when the cached copy is still current
    url: str  # after redirects
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by ``fetch`` itself, to bound and check them."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SourceError(
            f"{url}: only http:// and https:// addresses can be fetched",
            "For a file on this computer use path = \"...\" instead of url.",
        )


def fetch(
    url: str,
    *,
    timeout: float = 20.0,
    max_bytes: int = 32 * 1024 * 1024,
    max_redirects: int = 5,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Response:
    """GET ``url``; a SourceError names the URL and the cause of any failure."""
    original = url
    for _ in range(max_redirects + 1):
        check_url(url)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate",
                   "Accept": "application/rss+xml, application/atom+xml, application/feed+json, "
                             "application/json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        request = urllib.request.Request(url, headers=headers)
        try:
            with _OPENER.open(request, timeout=timeout) as resp:
                body = _read(resp, url, max_bytes, time.monotonic() + timeout * TOTAL_TIMEOUTS)
                return Response(200, url, body, resp.headers.get("ETag"),
                                resp.headers.get("Last-Modified"), resp.headers.get("Content-Type"))
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 304:
                    return Response(304, url, etag=exc.headers.get("ETag") or etag,
                                    last_modified=exc.headers.get("Last-Modified") or last_modified)
                location = exc.headers.get("Location") if exc.code in (301, 302, 303, 307, 308) else None
                if location:
                    url = urljoin(url, location.strip())
                    continue
                raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}", _http_hint(exc.code)) from None
        except urllib.error.URLError as exc:
            raise SourceError(f"{url}: {_reason(exc.reason, timeout)}", _NET_HINT) from None
        except TimeoutError:
            raise SourceError(f"{url}: no answer within {timeout:g} seconds", _NET_HINT) from None
        except (ConnectionError, OSError) as exc:
            raise SourceError(f"{url}: {_reason(exc, timeout)}", _NET_HINT) from None
    raise SourceError(f"{original}: more than {max_redirects} redirects", "Use the feed's final address.")


_NET_HINT = "Check the address and your internet connection, or try again later."


def _http_hint(code: int) -> str:
    if code in (401, 403):
        return "The server refuses access; check that the feed is public."
    if code in (404, 410):
        return "Check the feed address in cepletter.toml (open it in a browser)."
    if code >= 500:
        return "The website has a problem; try again later."
    return "Check the feed address."


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} seconds"
    if isinstance(reason, socket.gaierror):
        return "cannot find this host name (DNS lookup failed)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (the server is down or the port is wrong)"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate is not valid ({reason.verify_message})"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason.reason or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def _read(resp: object, url: str, max_bytes: int, deadline: float | None = None) -> bytes:
    headers: Message = resp.headers  # type: ignore[attr-defined]
    encoding = (headers.get("Content-Encoding") or "").strip().lower()
    decoder = None
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    parts: list[bytes] = []
    size = 0
    while True:
        try:
            # read1: what has arrived, not a full chunk, so the deadline is checked as bytes come.
            chunk = resp.read1(_CHUNK)  # type: ignore[attr-defined]
        except TimeoutError:
            raise SourceError(f"{url}: the server stopped sending", _NET_HINT) from None
        if not chunk:
            break
        if deadline is not None and time.monotonic() > deadline:
            # ``timeout`` bounds each read; a server that drips a byte at a time would never end.
            raise SourceError(f"{url}: the answer is still not complete; giving up", _NET_HINT)
        if decoder is not None:
            try:
                chunk = decoder.decompress(chunk, max_bytes + 1 - size)
            except zlib.error:
                raise SourceError(f"{url}: the compressed answer is corrupt", _NET_HINT) from None
        size += len(chunk)
        if size > max_bytes:
            raise SourceError(f"{url}: larger than {max_bytes // (1024 * 1024)} MB",
                              "Check the address; raise [fetch] max_bytes if the feed is really that big.")
        parts.append(chunk)
    return b"".join(parts)
