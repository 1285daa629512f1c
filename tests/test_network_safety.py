"""What cepletter does on the network, and what it refuses to do.

TLS certificates are verified unless a private authority is named; a password
never crosses an unencrypted connection to another host; the live preview
listens on 127.0.0.1 only and serves nothing but the build; feed fetching
takes only http(s), follows a bounded number of redirects and caps the bytes
it reads. Every server here is on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_settings, make_workspace
from smtpservers import SmtpServer, make_ca, make_self_signed

from cepletter.deliver.transports import SmtpTransport, make_transport
from cepletter.errors import DeliveryError

REPO = Path(__file__).resolve().parent.parent
SECRET = "Pa55-net-S3CRET"


@pytest.fixture(autouse=True)
def password_in_environment(no_keyring: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEPLETTER_SMTP_PASSWORD", SECRET)


# ---------------------------------------------------------------- TLS


def tls_workspace(tmp_path: Path, port: int, security: str, ca_file: Path | None) -> Path:
    ca = f'ca_file = "{ca_file}"\n' if ca_file else ""
    return make_workspace(tmp_path / "ws", toml_extra=(
        '[delivery]\ntransport = "smtp"\nrate = 1000\nretries = 0\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\nusername = "newsletter"\n'
        f"timeout = 10\n{ca}"))


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_self_signed_certificate_is_refused_by_default(tmp_path: Path, run: Invoke, security: str) -> None:
    cert = make_self_signed(tmp_path / "certs")
    kind = {"tls": cert} if security == "starttls" else {"implicit_tls": cert}
    with SmtpServer(auth={"newsletter": SECRET}, **kind) as server:  # type: ignore[arg-type]
        ws = tls_workspace(tmp_path, server.port, security, None)
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 1
    assert f"Error: 127.0.0.1:{server.port}: the server's certificate is not trusted" in result.stderr
    assert "set [smtp] ca_file" in result.stderr
    assert server.messages == [] and not server.authenticator.logins  # type: ignore[union-attr]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_private_authority_named_in_ca_file_is_trusted(tmp_path: Path, run: Invoke, security: str) -> None:
    cert = make_ca(tmp_path / "certs")
    kind = {"tls": cert} if security == "starttls" else {"implicit_tls": cert}
    with SmtpServer(auth={"newsletter": SECRET}, require_tls=security == "starttls", **kind) as server:  # type: ignore[arg-type]
        ws = tls_workspace(tmp_path, server.port, security, cert.ca)
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 0, result.stderr
    assert "Sent 3 of 3" in result.stderr
    assert server.authenticator is not None and server.authenticator.logins
    assert len(server.messages) == 3


def test_a_ca_file_does_not_make_a_self_signed_certificate_trusted(tmp_path: Path, run: Invoke) -> None:
    authority = make_ca(tmp_path / "ca")
    with SmtpServer(tls=make_self_signed(tmp_path / "self"), auth={"newsletter": SECRET}) as server:
        ws = tls_workspace(tmp_path, server.port, "starttls", authority.ca)
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 1
    assert "the server's certificate is not trusted" in result.stderr
    assert server.messages == []


# ---------------------------------------------------------------- no password in clear


@pytest.mark.parametrize("host", [
    "smtp.example.org", "192.0.2.10", "10.0.0.1", "localhost.example.org", "127.0.0.1.example.org", "2001:db8::1",
])
def test_no_password_over_an_unencrypted_connection_to_another_host(tmp_path: Path, host: str) -> None:
    settings = make_settings(tmp_path, delivery={"transport": "smtp"},
                             smtp={"host": host, "port": 25, "security": "none", "username": "newsletter"})
    # The decision is made before any connection or name lookup.
    with pytest.raises(DeliveryError, match=f"the password would cross the network unencrypted to {re.escape(host)}"):
        make_transport(settings)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "::1"])
def test_a_password_may_go_unencrypted_to_this_machine_only(tmp_path: Path, host: str) -> None:
    settings = make_settings(tmp_path, delivery={"transport": "smtp"},
                             smtp={"host": host, "port": 25, "security": "none", "username": "newsletter"})
    assert isinstance(make_transport(settings), SmtpTransport)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_an_encrypted_connection_to_another_host_may_carry_the_password(tmp_path: Path, security: str) -> None:
    settings = make_settings(tmp_path, delivery={"transport": "smtp"},
                             smtp={"host": "smtp.example.org", "port": 587, "security": security,
                                   "username": "newsletter"})
    assert isinstance(make_transport(settings), SmtpTransport)  # nothing connects until a send starts


def test_the_refusal_through_the_command_line(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws", toml_extra=(
        '[delivery]\ntransport = "smtp"\n[smtp]\nhost = "smtp.example.org"\nport = 25\n'
        'security = "none"\nusername = "newsletter"\n'))
    for args in (["send", "--yes", "--unreviewed"], ["send", "--test", "me@example.org"]):
        result = run("-C", str(ws), *args)
        assert result.exit_code == 1
        assert ('Error: cepletter.toml: [smtp] security = "none" with a username: the password would cross '
                "the network unencrypted to smtp.example.org") in result.stderr
        assert 'Use security = "starttls"' in result.stderr
        assert SECRET not in result.stderr


# ---------------------------------------------------------------- preview --serve


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port``, from /proc/net/tcp and tcp6."""
    found: set[str] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    found.add(address)
    return found


def raw_get(port: int, target: str, host: str | None = None, method: str = "GET") -> tuple[int, bytes]:
    """One request with the target and Host header exactly as given (no client-side normalising).

    ``host``: the Host header lines, default ``127.0.0.1:PORT`` as a browser sends it.
    """
    host_lines = f"Host: 127.0.0.1:{port}\r\n" if host is None else host
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"{method} {target} HTTP/1.1\r\n{host_lines}Connection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """One real `cepletter preview --serve` for all the requests below."""
    ws = make_workspace(tmp_path_factory.mktemp("served") / "ws")
    (ws / "issues" / "2025-12" / "send-log.jsonl").write_text('{"email": "secret@example.org"}\n', encoding="utf-8")
    (ws / "issues" / "2025-12" / "build").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cepletter", "-C", str(ws), "preview", "2025-12", "--serve", "--port", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        port = 0
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            match = re.search(r"at http://(\S+?):(\d+)/", line)
            if match:
                assert match.group(1) == "127.0.0.1", line
                port = int(match.group(2))
                break
            if not line and process.poll() is not None:
                break
        assert port, "the preview server did not start"
        yield ws, port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_the_live_preview_listens_on_127_0_0_1_only(served: tuple[Path, int]) -> None:
    _, port = served
    assert listening_addresses(port) == {"127.0.0.1"}
    status, body = raw_get(port, "/")
    assert status == 200 and b"Newsletter December 2025" in body


@pytest.mark.parametrize("target", [
    "/../issue.md", "/../../cepletter.toml", "/%2e%2e/issue.md", "/%2E%2E/%2E%2E/cepletter.toml", "/..%2fissue.md",
    "/..%2f..%2fcepletter.toml", "/%2e%2e%2f%2e%2e%2fsubscribers.csv", "/newsletter.html/../../issue.md",
    "/..\\issue.md", "/%5c..%5cissue.md", "//etc/passwd", "/etc/passwd", "/%2fetc%2fpasswd",
    "http://127.0.0.1/../issue.md", "/build/newsletter.html", "/issue.md", "/send-log.jsonl",
    "/newsletter.html%00.png", "/./../issue.md", "/....//issue.md",
])
def test_the_live_preview_serves_nothing_outside_the_build(served: tuple[Path, int], target: str) -> None:
    _, port = served
    status, body = raw_get(port, target)
    assert status in (400, 404), (target, status)
    for private in (b"[newsletter]", b"title:", b"root:", b"anna@example.org", b"secret@example.org", b"sections:"):
        assert private not in body, (target, private)


@pytest.mark.parametrize("host", [
    "evil.example:{port}", "evil.example", "127.0.0.1", "localhost", "127.0.0.1:{other}", "localhost:{other}",
    "127.0.0.1.nip.io:{port}", "localhost.evil.example:{port}", "evil.example:{port}@127.0.0.1:{port}",
    "127.0.0.2:{port}", "0.0.0.0:{port}", "[::ffff:127.0.0.1]:{port}", "2130706433:{port}", "",
])
@pytest.mark.parametrize("target", ["/", "/newsletter.html", "/newsletter.txt", "/__version"])
def test_the_live_preview_answers_no_other_host_name(served: tuple[Path, int], host: str, target: str) -> None:
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 must not read the preview."""
    _, port = served
    value = host.format(port=port, other=port + 1 if port < 65535 else port - 1)
    status, body = raw_get(port, target, f"Host: {value}\r\n")
    assert status == 421, (value, status)
    assert b"Newsletter December 2025" not in body and b"Dear" not in body


@pytest.mark.parametrize("lines", [
    "",  # no Host at all
    "Host: 127.0.0.1:{port}\r\nHost: evil.example:{port}\r\n",
    "Host: evil.example:{port}\r\nHost: 127.0.0.1:{port}\r\n",
])
def test_the_live_preview_wants_exactly_one_local_host(served: tuple[Path, int], lines: str) -> None:
    _, port = served
    for method in ("GET", "HEAD"):
        status, body = raw_get(port, "/", lines.format(port=port), method)
        assert status == 421, (lines, method, status)
        assert b"Newsletter December 2025" not in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "[::1]:{port}"])
def test_the_live_preview_answers_its_own_names(served: tuple[Path, int], host: str) -> None:
    _, port = served
    status, body = raw_get(port, "/", f"Host: {host.format(port=port)}\r\n")
    assert status == 200 and b"Newsletter December 2025" in body
    assert raw_get(port, "/newsletter.txt", f"Host: {host.format(port=port)}\r\n")[0] == 200


# ---------------------------------------------------------------- feed fetching


@contextmanager
def hostile_http() -> Iterator[str]:
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://example.org/</link>'
            b"<item><title>Fetched item</title><link>https://example.org/a</link></item></channel></rss>")
    bomb = gzip.compress(b"<rss>" + b" " * (64 * 1024 * 1024), compresslevel=9)
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            path = self.path
            if path == "/feed.xml":
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(feed)))
                self.end_headers()
                self.wfile.write(feed)
            elif path == "/loop":
                self.redirect("/loop")
            elif path.startswith("/chain/"):
                n = int(path.rsplit("/", 1)[1])
                self.redirect(f"/chain/{n - 1}" if n > 0 else "/feed.xml")
            elif path == "/to-file":
                self.redirect("file:///etc/passwd")
            elif path == "/to-ftp":
                self.redirect("ftp://127.0.0.1/feed.xml")
            elif path == "/endless":
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"<item>" + b"x" * 65536 + b"</item>"
                try:
                    while not stop.is_set():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except OSError:
                    pass  # the client hung up, as it should
            elif path == "/drip":
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.end_headers()
                try:
                    while not stop.is_set():  # one byte at a time, each well within the read timeout
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass
            elif path == "/gzip-bomb":
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(bomb)))
                self.end_headers()
                self.wfile.write(bomb)
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def fetch_workspace(tmp_path: Path, url: str, fetch: str = "") -> Path:
    ws = make_workspace(tmp_path / "ws")
    config = ws / "cepletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + f'[[sources]]\nname = "web"\nurl = "{url}"\n{fetch}',
                      encoding="utf-8")
    return ws


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "FILE:///etc/passwd", "ftp://127.0.0.1/feed.xml", "gopher://127.0.0.1:70/",
    "data:application/rss+xml,<rss/>", "javascript:alert(1)", "jar:file:///x.jar!/feed.xml", "//127.0.0.1/feed.xml",
])
def test_only_http_and_https_urls_are_fetched(tmp_path: Path, run: Invoke, url: str) -> None:
    ws = make_workspace(tmp_path / "ws")
    config = ws / "cepletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + f'[[sources]]\nname = "web"\nurl = "{url}"\n',
                      encoding="utf-8")
    result = run("-C", str(ws), "items")
    assert result.exit_code == 1
    assert f"Error: source 'web': {url}: only http:// and https:// addresses can be fetched" in result.stderr
    assert 'For a file on this computer use path = "..." instead of url.' in result.stderr
    assert "root:" not in result.stdout + result.stderr


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml"])
def test_a_feed_option_with_another_scheme_is_refused(tmp_path: Path, run: Invoke, url: str) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "items", "--feed", url)
    assert result.exit_code == 1
    assert f"Error: {url}: only http:// and https:// addresses can be fetched" in result.stderr
    assert "Give a local feed as a plain file path instead." in result.stderr
    assert "root:" not in result.stdout + result.stderr


def test_a_local_file_is_read_through_path(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "local.xml").write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                                  "<link>https://example.org/</link><item><title>Local item</title>"
                                  "<link>https://example.org/l</link></item></channel></rss>", encoding="utf-8")
    result = run("-C", str(ws), "items", "--feed", "local.xml")
    assert result.exit_code == 0
    assert result.stdout.rstrip("\n").endswith("Local item")


def test_redirects_are_followed_up_to_the_limit(tmp_path: Path, run: Invoke) -> None:
    with hostile_http() as base:
        within = run("-C", str(fetch_workspace(tmp_path / "a", f"{base}/chain/2", "[fetch]\nmax_redirects = 3\n")), "items")
        beyond = run("-C", str(fetch_workspace(tmp_path / "b", f"{base}/chain/4", "[fetch]\nmax_redirects = 3\n")), "items")
        loop = run("-C", str(fetch_workspace(tmp_path / "c", f"{base}/loop")), "items")
    assert within.exit_code == 0, within.stderr
    assert "Fetched item" in within.stdout
    assert beyond.exit_code == 1
    assert f"Error: source 'web': {base}/chain/4: more than 3 redirects" in beyond.stderr
    assert loop.exit_code == 1
    assert f"Error: source 'web': {base}/loop: more than 5 redirects" in loop.stderr


@pytest.mark.parametrize(("route", "scheme"), [("/to-file", "file:///etc/passwd"), ("/to-ftp", "ftp://127.0.0.1/feed.xml")])
def test_a_redirect_to_another_scheme_is_refused(tmp_path: Path, run: Invoke, route: str, scheme: str) -> None:
    with hostile_http() as base:
        result = run("-C", str(fetch_workspace(tmp_path, f"{base}{route}")), "items")
    assert result.exit_code == 1
    assert f"{scheme}: only http:// and https:// addresses can be fetched" in result.stderr
    assert "root:" not in result.stdout + result.stderr


@pytest.mark.parametrize("route", ["/endless", "/gzip-bomb"])
def test_the_bytes_read_are_capped(tmp_path: Path, run: Invoke, route: str) -> None:
    with hostile_http() as base:
        ws = fetch_workspace(tmp_path, f"{base}{route}", "[fetch]\nmax_bytes = 2097152\n")
        result = run("-C", str(ws), "items")
    assert result.exit_code == 1
    assert f"Error: source 'web': {base}{route}: larger than 2 MB" in result.stderr
    assert "raise [fetch] max_bytes" in result.stderr


def test_a_server_that_drips_bytes_is_given_up_on(tmp_path: Path, run: Invoke) -> None:
    with hostile_http() as base:
        ws = fetch_workspace(tmp_path, f"{base}/drip", "[fetch]\ntimeout = 0.5\n")
        result = run("-C", str(ws), "items")
    assert result.exit_code == 1
    assert f"Error: source 'web': {base}/drip: no complete answer within 0.5 seconds ([fetch] timeout)" in result.stderr


# ---------------------------------------------------------------- answers that are not HTTP

_FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://example.org/</link>'
         b"<item><title>Raw item</title><link>https://example.org/r</link></item></channel></rss>")
RAW_ANSWERS: dict[str, list[bytes]] = {
    "/ok": [b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: %d\r\n\r\n%s" % (
        len(_FEED), _FEED)],
    "/many-headers": [b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Header-%d: v\r\n" % i for i in range(101)) + b"\r\n"],
    "/long-header": [b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n"],
    "/garbage-status": [b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n"],
    "/broken-chunks": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<rss>\r\nzz\r\nnot a chunk\r\n"],
    "/hang-up": [b""],
    # The status line and then the headers, a byte every 0.2 s: each read is quick, the answer never ends.
    "/dribble-status": [bytes([b]) for b in b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" * 50],
    "/dribble-headers": [b"HTTP/1.1 200 OK\r\n", *(bytes([b]) for b in b"X-Slow: " + b"y" * 500)],
}


@contextmanager
def raw_http() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that answers each path with exactly the bytes of RAW_ANSWERS."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            path = request.split(b" ", 2)[1].decode("latin-1")
            parts = RAW_ANSWERS.get(path, [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"])
            try:
                for part in parts:
                    if stop.is_set():
                        return
                    conn.sendall(part)
                    if len(parts) > 1:
                        time.sleep(0.2)
            except OSError:
                return  # the client gave up, as it should

    listener.settimeout(0.1)  # so that the loop sees ``stop``

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize(("route", "message"), [
    ("/many-headers", "the server's answer has more than 100 header lines"),
    ("/long-header", "the server's answer has a line longer than 64 KB"),
    ("/garbage-status", "not an HTTP answer (status line 'SSH-2.0-OpenSSH_9.2p1 Debian-2')"),
    ("/broken-chunks", "the answer broke off before its end (a broken chunk or a short body)"),
    ("/hang-up", "the server closed the connection without answering"),
])
def test_a_malformed_answer_is_a_one_line_error_naming_the_feed(tmp_path: Path, run: Invoke, route: str,
                                                               message: str) -> None:
    with raw_http() as base:
        result = run("-C", str(fetch_workspace(tmp_path, f"{base}{route}")), "items")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"Error: source 'web': {base}{route}: {message}"
    assert "does not answer in valid HTTP" in result.stderr or route == "/hang-up"
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_the_raw_server_gives_a_feed_when_the_answer_is_right(tmp_path: Path, run: Invoke) -> None:
    with raw_http() as base:
        result = run("-C", str(fetch_workspace(tmp_path, f"{base}/ok")), "items")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.rstrip("\n").endswith("Raw item")


@pytest.mark.parametrize("route", ["/dribble-status", "/dribble-headers"])
def test_the_timeout_is_a_deadline_for_the_status_line_and_headers_too(tmp_path: Path, run: Invoke,
                                                                       route: str) -> None:
    with raw_http() as base:
        result = run("-C", str(fetch_workspace(tmp_path, f"{base}{route}", "[fetch]\ntimeout = 1\n")), "items")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: source 'web': {base}{route}: no complete answer within 1 seconds ([fetch] timeout)")


# ---------------------------------------------------------------- redirects to this computer (SSRF)


@contextmanager
def proxy_for_public_sites(targets: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy on 127.0.0.1 standing in for public web sites: ``targets`` maps a URL to the
    Location it redirects to ("" serves a feed). Yields the proxy's URL and every URL asked for."""
    asked: list[str] = []
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://example.org/</link>'
            b"<item><title>Public item</title><link>https://example.org/p</link></item></channel></rss>")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            asked.append(self.path)  # a proxy is asked for the whole URL
            location = targets.get(self.path)
            if location is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif location:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(feed)))
                self.end_headers()
                self.wfile.write(feed)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}/feed.xml", "http://127.9.9.9/", "http://[::1]:{port}/feed.xml", "http://localhost:{port}/",
    "http://LOCALHOST./", "http://admin.localhost/", "http://10.1.2.3/feed", "http://172.16.0.1/", "http://172.31.255.1/",
    "http://192.168.1.1/router", "http://169.254.169.254/latest/meta-data/", "http://[fd00::1]/", "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://0x7f.1/", "http://0.0.0.0:{port}/",
    "https://127.0.0.1:{port}/feed.xml",
])
def test_a_public_feed_may_not_redirect_to_this_computer_or_a_private_network(
        tmp_path: Path, run: Invoke, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    location = target.format(port=8080)  # never connected to
    with proxy_for_public_sites({"http://news.example.org/feed": location}) as (proxy, asked):
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.setenv("no_proxy", "")
        result = run("-C", str(fetch_workspace(tmp_path, "http://news.example.org/feed")), "items")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: source 'web': http://news.example.org/feed: redirects to {location}, an address on this "
        "computer or a private network; refused")
    assert "configure that address as the source's url" in result.stderr
    assert asked == ["http://news.example.org/feed"]  # the local address was never asked


def test_a_public_feed_may_redirect_to_another_public_address(tmp_path: Path, run: Invoke,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sites = {"http://news.example.org/feed": "http://feeds.example.net/news.xml", "http://feeds.example.net/news.xml": ""}
    with proxy_for_public_sites(sites) as (proxy, asked):
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.setenv("no_proxy", "")
        result = run("-C", str(fetch_workspace(tmp_path, "http://news.example.org/feed")), "items")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.rstrip("\n").endswith("Public item")
    assert asked == list(sites)


def test_a_feed_configured_on_a_local_address_may_redirect_locally(tmp_path: Path, run: Invoke) -> None:
    with hostile_http() as base:
        port = base.rsplit(":", 1)[1]
        result = run("-C", str(fetch_workspace(tmp_path, f"http://localhost:{port}/chain/1")), "items")
    assert result.exit_code == 0, result.stderr
    assert "Fetched item" in result.stdout


def test_a_redirected_name_that_leads_to_a_local_address_is_refused_at_connect() -> None:
    """After a public address has redirected, the address actually connected to is checked too
    (a name of the internet can resolve to 127.0.0.1)."""
    from cepletter.sources import fetch as fetching

    with hostile_http() as base:
        port = int(base.rsplit(":", 1)[1])
        guard = fetching._Guard(5)
        try:
            guard.check_peer = True

            class Connection(fetching._CheckedHTTP):
                pass

            Connection.guard = guard
            with pytest.raises(fetching._LocalPeer, match=r"127\.0\.0\.1"):
                Connection("127.0.0.1", port, timeout=5).connect()
            guard.check_peer = False
            allowed = Connection("127.0.0.1", port, timeout=5)
            allowed.connect()
            allowed.close()
        finally:
            guard.close()
