"""`preview --serve`: the build folder on 127.0.0.1, re-rendered on every save.

Only the built files are served, by name (nothing else in the workspace is
reachable), and only to a request addressed to this machine by its own name:
a web page the user visits could otherwise point a name of its own at
127.0.0.1 (DNS rebinding) and read the personalised preview. A watcher
polls the modification times of the issue file, the templates and
cepletter.toml, and re-renders when one changes. The page
reloads itself through a small script that is added to the served response
only: the built file, and anything sent, never contains it.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cepletter.config import Settings
from cepletter.errors import CepletterError

RELOAD_PATH = "/__version"
# The names a browser on this machine uses for the server; anything else in Host is refused.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
FILES = {
    "/newsletter.html": "text/html; charset=utf-8",
    "/newsletter.txt": "text/plain; charset=utf-8",
    "/desktop.png": "image/png",
    "/mobile.png": "image/png",
}

_RELOAD_SCRIPT = """<script>
(function () {
  var seen = %s;
  setInterval(function () {
    fetch("%s", {cache: "no-store"}).then(function (r) { return r.text(); })
      .then(function (v) { if (v !== seen) { location.reload(); } })
      .catch(function () {});
  }, 800);
})();
</script>"""


def with_reload_script(page: str, version: int) -> str:
    """The page as served: the reload script just before </body>."""
    script = _RELOAD_SCRIPT % (f'"{version}"', RELOAD_PATH)
    index = page.rfind("</body>")
    return page + script if index < 0 else page[:index] + script + page[index:]


def watched_files(settings: Settings, issue_file: Path, template_dirs: Iterable[Path]) -> list[Path]:
    files = [settings.config_path, issue_file]
    for folder in template_dirs:
        if folder.is_dir():
            files.extend(sorted(p for p in folder.rglob("*") if p.is_file()))
    return files


def _stamp(files: Iterable[Path]) -> tuple[tuple[str, float, int], ...]:
    out = []
    for path in files:
        try:
            st = path.stat()
            out.append((str(path), st.st_mtime, st.st_size))
        except OSError:
            out.append((str(path), -1.0, -1))
    return tuple(out)


@dataclass
class PreviewState:
    """What the server shows: the last good build, or the error that stopped the latest one."""

    build: Callable[[], Path]  # renders and returns the build folder
    stamp: Callable[[], tuple[tuple[str, float, int], ...]]
    folder: Path | None = None
    error: str | None = None
    version: int = 0
    last_stamp: tuple[tuple[str, float, int], ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_change: Callable[[PreviewState], None] | None = None
    edition: str = ""  # a translation's language: its build is newsletter.<lang>.html, served as newsletter.html

    def file_name(self, served: str) -> str:
        """The build file a served path shows: ``/newsletter.html`` → ``newsletter.fr.html`` for an edition."""
        name = served.lstrip("/")
        if not self.edition:
            return name
        stem, dot, extension = name.rpartition(".")
        return f"{stem}.{self.edition}{dot}{extension}"

    def refresh(self, force: bool = False) -> bool:
        """Re-render when a watched file changed; True when something new is on show."""
        stamp = self.stamp()
        if not force and stamp == self.last_stamp:
            return False
        with self.lock:
            self.last_stamp = stamp
            try:
                self.folder = self.build()
                self.error = None
            except CepletterError as exc:
                self.error = exc.message + (f"\n{exc.hint}" if exc.hint else "")
            self.version += 1
        if self.on_change is not None:
            self.on_change(self)
        return True


def preview_state(root: Path, issue_id: str, language: str | None = None) -> PreviewState:
    """A state that rebuilds ``issue_id`` of the workspace at ``root``, reloading the config each time.

    ``language``: show that edition of the issue (see `build_preview`).
    """
    from cepletter import i18n
    from cepletter.config import load_settings
    from cepletter.issue.edition import translation_files
    from cepletter.issue.folder import issue_path
    from cepletter.render.renderer import template_dirs
    from cepletter.review.preview import build_preview

    first = load_settings(root)
    issue_file = issue_path(first.issues_dir, issue_id)

    def build() -> Path:
        result = build_preview(load_settings(root), issue_id, language=language)
        assert result.html_path is not None
        return result.html_path.parent

    def stamp() -> tuple[tuple[str, float, int], ...]:
        try:
            settings = load_settings(root)
        except CepletterError:
            settings = first
        translations = list(translation_files(issue_file.parent).values())
        return _stamp([*watched_files(settings, issue_file, template_dirs(settings)), *translations])

    main = i18n.normalise(first.newsletter.language)
    shown = i18n.normalise(language) if language else main
    return PreviewState(build=build, stamp=stamp, edition="" if shown == main else shown)


def _handler(state: PreviewState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "cepletter-preview"

        def log_message(self, format: str, *args: object) -> None:
            pass  # the terminal shows re-renders, not every request

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            address = self.server.server_address
            port = int(address[1]) if isinstance(address, tuple) else 0
            if not local_host(self.headers.get_all("Host") or [], port):
                self._send(HTTPStatus.MISDIRECTED_REQUEST,
                           b"This preview answers only to http://127.0.0.1 or http://localhost.\n",
                           "text/plain; charset=utf-8")
                return
            path = self.path.split("?", 1)[0]
            if path == RELOAD_PATH:
                self._send(HTTPStatus.OK, str(state.version).encode(), "text/plain; charset=utf-8")
                return
            if path == "/":
                path = "/newsletter.html"
            if state.error is not None and path == "/newsletter.html":
                page = _error_page(state.error)
                body = with_reload_script(page, state.version).encode("utf-8")
                self._send(HTTPStatus.OK, body, FILES[path])
                return
            content_type = FILES.get(path)
            target = state.folder / state.file_name(path) if state.folder is not None else None
            if content_type is None or target is None or not target.is_file():
                self._send(HTTPStatus.NOT_FOUND, b"Not found\n", "text/plain; charset=utf-8")
                return
            data = target.read_bytes()
            if path == "/newsletter.html":
                data = with_reload_script(data.decode("utf-8"), state.version).encode("utf-8")
            self._send(HTTPStatus.OK, data, content_type)

    return Handler


def local_host(values: list[str], port: int) -> bool:
    """Whether the request's Host header names this machine and the server's port.

    Exactly one Host, ``127.0.0.1:PORT``, ``localhost:PORT`` or ``[::1]:PORT``
    (any case); without the port only when it is 80, as a browser writes it then.
    """
    if len(values) != 1:
        return False
    host = values[0].strip().lower()
    allowed = {f"{name}:{port}" for name in LOCAL_HOSTS}
    if port == 80:
        allowed.update(LOCAL_HOSTS)
    return host in allowed


def _error_page(message: str) -> str:
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Preview error</title></head>"
        "<body style=\"font-family:sans-serif;margin:40px;color:#1f2933\"><h1>The preview could not be built</h1>"
        f"<pre style=\"white-space:pre-wrap;background:#fdecea;padding:16px\">{html.escape(message)}</pre>"
        "<p>Fix it and save: this page reloads by itself.</p></body></html>"
    )


class PreviewServer:
    """The HTTP server and the watcher thread; ``close()`` stops both."""

    def __init__(self, state: PreviewState, port: int = 0, interval: float = 0.5) -> None:
        self.state = state
        self.interval = interval
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
        self.httpd.daemon_threads = True
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True),
            threading.Thread(target=self._watch, daemon=True),
        ]

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> PreviewServer:
        for thread in self._threads:
            thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.state.refresh()

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
