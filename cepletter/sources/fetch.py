"""HTTP(S) fetching for feeds: User-Agent, conditional GET, bounded redirects,
a cap on the bytes read and one deadline for the whole answer. Only http and
https are fetched.

A feed on the internet may not send cepletter to this computer or a private
network: once a public address redirects, neither the new URL nor the address
actually connected to may be loopback, private, link-local or unique-local
(SSRF). A URL that the user configured on such an address stays allowed.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
import zlib
from contextlib import suppress
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urljoin, urlsplit

from cepletter import __version__
from cepletter.errors import SourceError

USER_AGENT = f"cepletter/{__version__} (newsletter composer)"
_CHUNK = 64 * 1024


@dataclass
class Response:
    status: int  # 200, or 304 when the cached copy is still current
    url: str  # after redirects
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SourceError(
            f"{url}: only http:// and https:// addresses can be fetched",
            "For a file on this computer use path = \"...\" instead of url.",
        )


# ---------------------------------------------------------------- local addresses


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address, in any form a resolver accepts ("127.1", "2130706433", "0x7f.0.0.1")."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_local_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local or unspecified."""
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def is_local_host(host: str) -> bool:
    """Whether a URL's host names this computer or a private network, by its text alone."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _address(name)
    return address is not None and is_local_address(address)


class _Guard:
    """One fetch's deadline and address rule, shared by the connections it opens."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.check_peer = False  # set once a public address has redirected
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if not self.expired:
                return
        self._cut(sock)

    def _expire(self) -> None:
        # A server that sends its status line or headers a byte at a time passes every
        # per-read timeout; shutting the socket down ends the read wherever it is.
        with self._lock:
            self.expired = True
            socks = list(self._socks)
        for sock in socks:
            self._cut(sock)

    @staticmethod
    def _cut(sock: socket.socket) -> None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()


class _Checked(http.client.HTTPConnection):
    """A connection that keeps to its fetch's deadline and, after a public redirect, refuses local peers."""

    guard: _Guard

    def connect(self) -> None:
        self.timeout = min(self.timeout, self.guard.remaining()) if self.timeout else self.guard.remaining()
        super().connect()
        self.guard.watch(self.sock)
        if self.guard.check_peer and getattr(self, "_tunnel_host", None) is None:
            peer = _address(str(self.sock.getpeername()[0]))
            if peer is not None and is_local_address(peer):
                self.sock.close()
                raise _LocalPeer(str(peer))


class _LocalPeer(OSError):
    """The redirected URL's name led to a local address."""


class _CheckedHTTP(_Checked):
    pass


class _CheckedHTTPS(http.client.HTTPSConnection, _Checked):
    # HTTPSConnection.connect calls _Checked.connect (the socket, checked) before the TLS handshake.
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self.guard = guard

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        guard = self.guard

        class Connection(_CheckedHTTP):
            pass

        Connection.guard = guard
        return self.do_open(Connection, req)  # type: ignore[arg-type]


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self.guard = guard

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        guard = self.guard

        class Connection(_CheckedHTTPS):
            pass

        Connection.guard = guard
        return self.do_open(Connection, req, context=getattr(self, "_context", None))  # type: ignore[arg-type]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by ``fetch`` itself, to bound and check them."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _proxied(url: str) -> bool:
    """Whether a proxy from the environment carries ``url`` (it then resolves the name itself)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    return parts.scheme.lower() in proxies and not urllib.request.proxy_bypass(parts.hostname or "")


# ---------------------------------------------------------------- fetch


def fetch(
    url: str,
    *,
    timeout: float = 20.0,
    max_bytes: int = 32 * 1024 * 1024,
    max_redirects: int = 5,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Response:
    """GET ``url`` within ``timeout`` seconds in all; a SourceError names the URL and the cause of any failure."""
    check_url(url)
    guard = _Guard(timeout)
    try:
        return _fetch(url, guard, max_bytes, max_redirects, etag, last_modified)
    finally:
        guard.close()


def _fetch(url: str, guard: _Guard, max_bytes: int, max_redirects: int,
           etag: str | None, last_modified: str | None) -> Response:
    original = url
    public = not is_local_host(urlsplit(url).hostname or "")
    opener = urllib.request.build_opener(_NoRedirect(), _HTTPHandler(guard), _HTTPSHandler(guard))
    timeout = guard.timeout
    for hop in range(max_redirects + 1):
        check_url(url)
        if hop and public:
            host = urlsplit(url).hostname or ""
            if is_local_host(host):
                raise _refused(original, url)
            guard.check_peer = not _proxied(url)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate",
                   "Accept": "application/rss+xml, application/atom+xml, application/feed+json, "
                             "application/json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        request = urllib.request.Request(url, headers=headers)
        try:
            with opener.open(request, timeout=min(timeout, guard.remaining())) as resp:
                body = _read(resp, url, max_bytes, guard)
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
        except SourceError:
            raise
        except _LocalPeer:
            raise _refused(original, url) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, _LocalPeer):
                raise _refused(original, url) from None
            if guard.expired or isinstance(exc.reason, TimeoutError):
                raise _too_slow(url, timeout) from None
            raise SourceError(f"{url}: {_reason(exc.reason, timeout)}", _NET_HINT) from None
        except (http.client.HTTPException, ValueError) as exc:
            if guard.expired:
                raise _too_slow(url, timeout) from None
            raise SourceError(f"{url}: {_malformed(exc)}", _BAD_HTTP_HINT) from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            if guard.expired or isinstance(exc, TimeoutError):
                raise _too_slow(url, timeout) from None
            raise SourceError(f"{url}: {_reason(exc, timeout)}", _NET_HINT) from None
    raise SourceError(f"{original}: more than {max_redirects} redirects", "Use the feed's final address.")


_NET_HINT = "Check the address and your internet connection, or try again later."
_BAD_HTTP_HINT = "The server does not answer in valid HTTP; check the address, or try again later."


def _refused(original: str, target: str) -> SourceError:
    return SourceError(
        f"{original}: redirects to {target}, an address on this computer or a private network; refused",
        "A feed on the internet may not lead cepletter to local addresses. If the feed really is there, "
        "configure that address as the source's url.")


def _too_slow(url: str, timeout: float) -> SourceError:
    return SourceError(f"{url}: no complete answer within {timeout:g} seconds ([fetch] timeout)", _NET_HINT)


def _malformed(exc: Exception) -> str:
    if isinstance(exc, http.client.LineTooLong):
        return "the server's answer has a line longer than 64 KB"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, http.client.BadStatusLine):
        line = str(exc.args[0] if exc.args else "").strip()[:60]
        return f"not an HTTP answer (status line {line!r})"
    if isinstance(exc, http.client.IncompleteRead):
        return "the answer broke off before its end (a broken chunk or a short body)"
    text = str(exc)
    if "headers" in text:
        return "the server's answer has more than 100 header lines"
    return f"the server's answer is not valid HTTP ({text[:80] or type(exc).__name__})"


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
    if isinstance(reason, http.client.HTTPException):
        return _malformed(reason)
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def _read(resp: object, url: str, max_bytes: int, guard: _Guard) -> bytes:
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
        # read1: what has arrived, not a full chunk, so the deadline is checked as bytes come.
        chunk = resp.read1(_CHUNK)  # type: ignore[attr-defined]
        if guard.expired or time.monotonic() > guard.deadline:
            raise _too_slow(url, guard.timeout)
        if not chunk:
            break
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
