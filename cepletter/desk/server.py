"""The desk's web server: the standard library's ThreadingHTTPServer on 127.0.0.1.

Safe by default, because the page can write files and send mail:

- it listens on 127.0.0.1 only, and a request whose Host header is not
  ``127.0.0.1:<port>`` is refused (a web page that points a name of its own
  at this machine cannot talk to the desk);
- every path starts with a random token, which only the printed address
  carries; every POST must also carry the CSRF token written into the page,
  and be JSON from the desk's own origin;
- no CORS headers, ever: another site's scripts cannot read an answer;
- only the page, its three static files and the JSON API are served, by
  name: no path reaches the file system;
- a Content-Security-Policy allows only the desk's own scripts. The email
  preview is put into a sandboxed frame without ``allow-scripts``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cepletter.desk.session import Desk
from cepletter.errors import CepletterError

HOST = "127.0.0.1"
MAX_BODY = 4 * 1024 * 1024
WAIT_SECONDS = 20.0
STATIC = {
    "desk.js": "text/javascript; charset=utf-8",
    "desk.css": "text/css; charset=utf-8",
    "Sortable.min.js": "text/javascript; charset=utf-8",
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src https: http: data:; font-src https: data:; connect-src 'self'; frame-src 'self'; "
       "base-uri 'self'; form-action 'none'; frame-ancestors 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the address: never send it to an image's host
    "X-Frame-Options": "SAMEORIGIN",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def static_file(name: str) -> bytes:
    """One of the desk's packaged files (``static/<name>``)."""
    return resources.files("cepletter.desk").joinpath("static", name).read_bytes()


class DeskServer:
    """The HTTP server and the file watcher; ``close()`` stops both."""

    def __init__(self, desk: Desk, port: int = 0, *, interval: float = 0.25,
                 log: Callable[[str], None] | None = None) -> None:
        self.desk = desk
        self.interval = interval
        self.log = log or (lambda message: None)
        self.token = secrets.token_urlsafe(24)
        self.csrf = secrets.token_urlsafe(24)
        self.httpd = ThreadingHTTPServer((HOST, port), _handler(self))
        self.httpd.daemon_threads = True
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True),
            threading.Thread(target=self._watch, daemon=True),
        ]

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/{self.token}/"

    def start(self) -> DeskServer:
        for thread in self._threads:
            thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.desk.poll()
            except Exception as exc:  # the watcher must outlive a bad moment on disk
                self.log(f"could not read the issue file: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)


def _handler(server: DeskServer) -> type[BaseHTTPRequestHandler]:
    desk = server.desk

    class Handler(BaseHTTPRequestHandler):
        server_version = "cepletter-desk"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            pass  # the terminal shows what the desk does, not every request

        # ---------------------------------------------------- answers

        def _send(self, status: HTTPStatus, body: bytes, content_type: str,
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                # The page may be closed or reloaded while it waits for news.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

        def _json(self, status: HTTPStatus, data: Any) -> None:
            body = json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
            self._send(status, body, "application/json; charset=utf-8")

        def _refuse(self, status: HTTPStatus, why: str) -> None:
            self._send(status, f"{why}\n".encode(), "text/plain; charset=utf-8")

        # ---------------------------------------------------- checks

        def _route(self) -> str | None:
            """The path after the token; None (answered) when the request is refused."""
            hosts = self.headers.get_all("Host") or []
            if len(hosts) != 1 or hosts[0].strip().lower() != f"{HOST}:{server.port}":
                self._refuse(HTTPStatus.FORBIDDEN, f"Forbidden: the desk answers only to {HOST}:{server.port}.")
                return None
            path = urlsplit(self.path).path if self.path.startswith("/") else ""
            token, _, rest = path[1:].partition("/")
            if not hmac.compare_digest(token.encode(), server.token.encode()):
                self._refuse(HTTPStatus.FORBIDDEN,
                             "Forbidden: open the address that `cepletter desk` printed (it has the token).")
                return None
            if path == f"/{server.token}":
                self._send(HTTPStatus.FOUND, b"", "text/plain; charset=utf-8", {"Location": f"/{server.token}/"})
                return None
            return rest

        def _post_allowed(self) -> bool:
            csrf = self.headers.get("X-CSRF-Token", "")
            if not hmac.compare_digest(csrf.encode(), server.csrf.encode()):
                self._refuse(HTTPStatus.FORBIDDEN, "Forbidden: the request has no valid CSRF token.")
                return False
            origin = self.headers.get("Origin")
            if origin is not None and origin != server.origin:
                self._refuse(HTTPStatus.FORBIDDEN, "Forbidden: the request comes from another site.")
                return False
            if self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
                self._refuse(HTTPStatus.FORBIDDEN, "Forbidden: the request comes from another site.")
                return False
            if self.headers.get_content_type() != "application/json":
                self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "The desk takes JSON only.")
                return False
            return True

        def _body(self) -> dict[str, Any] | None:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Too large.")
                return None
            try:
                data = json.loads(self.rfile.read(length).decode("utf-8") or "{}")
            except (UnicodeDecodeError, ValueError):
                self._refuse(HTTPStatus.BAD_REQUEST, "Not JSON.")
                return None
            if not isinstance(data, dict):
                self._refuse(HTTPStatus.BAD_REQUEST, "Expected a JSON object.")
                return None
            return data

        # ---------------------------------------------------- methods

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            rest = self._route()
            if rest is None:
                return
            if rest == "":
                page = static_file("index.html").decode("utf-8").replace("{{csrf}}", server.csrf)
                self._send(HTTPStatus.OK, page.encode("utf-8"), "text/html; charset=utf-8")
            elif rest.startswith("static/") and rest[len("static/"):] in STATIC:
                name = rest[len("static/"):]
                self._send(HTTPStatus.OK, static_file(name), STATIC[name])
            elif rest == "api/state":
                self._json(HTTPStatus.OK, desk.state())
            elif rest == "api/wait":
                query = parse_qs(urlsplit(self.path).query)
                try:
                    pv = int(query.get("pv", ["-1"])[0])
                except ValueError:
                    pv = -1
                self._json(HTTPStatus.OK, desk.wait(pv, WAIT_SECONDS))
            else:
                self._refuse(HTTPStatus.NOT_FOUND, "Not found.")

        def do_POST(self) -> None:
            rest = self._route()
            if rest is None or not self._post_allowed():
                return
            action = rest.removeprefix("api/") if rest.startswith("api/") else None
            if action not in ACTIONS:
                self._refuse(HTTPStatus.NOT_FOUND, "Not found.")
                return
            data = self._body()
            if data is None:
                return
            try:
                answer = ACTIONS[action](desk, data)
            except CepletterError as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": {"message": exc.message, "hint": exc.hint or ""},
                                                    "state": desk.state()})
                return
            except Exception as exc:  # shown on the page and in the terminal, the desk keeps running
                server.log(f"internal error in {action}: {type(exc).__name__}: {exc}")
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {
                    "error": {"message": f"internal error: {type(exc).__name__}: {exc}",
                              "hint": "This is a bug in cepletter; the terminal running the desk shows it too."},
                    "state": desk.state()})
                return
            self._json(HTTPStatus.OK, answer)

        def _not_allowed(self) -> None:
            if self._route() is not None:
                self._refuse(HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed.")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    return Handler


# ---------------------------------------------------------------- the API's actions

def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise CepletterError(f"{key} must be text")
    return value


def _edit(desk: Desk, data: dict[str, Any]) -> dict[str, Any]:
    rev, edits = data.get("rev"), data.get("edits")
    if not isinstance(rev, int) or not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
        raise CepletterError("an edit needs rev (a number) and edits (a list of objects)")
    return {"state": desk.edit(rev, edits)}


def _draft(desk: Desk, data: dict[str, Any]) -> dict[str, Any]:
    picks = data.get("picks", [])
    if not isinstance(picks, list) or not all(isinstance(p, str) for p in picks):
        raise CepletterError("picks must be a list of item ids")
    desk.draft(_text(data, "id"), picks, _text(data, "title"))
    return {"state": desk.state()}


def _open(desk: Desk, data: dict[str, Any]) -> dict[str, Any]:
    desk.open(_text(data, "id"))
    return {"state": desk.state()}


def _recipient(desk: Desk, data: dict[str, Any]) -> dict[str, Any]:
    desk.choose_recipient(_text(data, "email"))
    return {"state": desk.state()}


def _send_test(desk: Desk, data: dict[str, Any]) -> dict[str, Any]:
    result = desk.send_test(_text(data, "addresses"))
    return {"result": result, "state": desk.state()}


def _approve(desk: Desk, data: dict[str, Any]) -> dict[str, Any]:
    name = desk.approve(_text(data, "by"))
    return {"result": {"by": name}, "state": desk.state()}


def _dismiss(desk: Desk, data: dict[str, Any]) -> dict[str, Any]:
    desk.dismiss()
    return {"state": desk.state()}


def _candidates(desk: Desk, data: dict[str, Any]) -> dict[str, Any]:
    desk.refresh_candidates()
    return {"state": desk.state()}


ACTIONS: dict[str, Callable[[Desk, dict[str, Any]], dict[str, Any]]] = {
    "edit": _edit,
    "draft": _draft,
    "open": _open,
    "recipient": _recipient,
    "send-test": _send_test,
    "approve": _approve,
    "dismiss": _dismiss,
    "candidates": _candidates,
}
