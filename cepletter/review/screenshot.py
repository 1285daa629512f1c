"""Headless Chromium: screenshots and measurements of the built email.

Chromium is driven through the DevTools protocol over a pipe (no network
port): headless windows cannot be narrower than 500 px, so the phone width is
set by device emulation instead. Chromium runs with a fresh profile in a
temporary folder and without background networking; pages are opened from files.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from cepletter.errors import CepletterError
from cepletter.fsutil import atomic_write_bytes

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DESKTOP_WIDTH = 600
MOBILE_WIDTH = 375
TIMEOUT = 60.0
MAX_HEIGHT = 16000
INSTALL_HINT = (
    "Install Chromium (Debian/Ubuntu: apt-get install chromium; macOS: brew install --cask chromium), "
    "then run the command again."
)


class BrowserError(CepletterError):
    """Chromium is missing or failed."""


def find_browser() -> str | None:
    """The first Chromium-like browser on PATH (CEPLETTER_BROWSER wins when set)."""
    override = os.environ.get("CEPLETTER_BROWSER")
    if override:
        return shutil.which(override)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_browser() -> str:
    browser = find_browser()
    if browser is None:
        raise BrowserError("no Chromium found on PATH (looked for chromium, chromium-browser, google-chrome)",
                           INSTALL_HINT)
    return browser


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are numbered 10 or more, clear of the 3 and 4 the browser gets."""
    import fcntl

    ends = []
    for fd in os.pipe():
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        ends.append(high)
    return ends[0], ends[1]


class Browser:
    """One headless Chromium, spoken to through DevTools messages on a pipe."""

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or require_browser()
        self._tmp = tempfile.TemporaryDirectory(prefix="cepletter-chromium-")
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._to_browser = -1
        self._from_browser = -1
        self.session: str | None = None

    # ------------------------------------------------------------ process

    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        to_r, to_w = _high_pipe()
        from_r, from_w = _high_pipe()
        args = [
            self.executable, "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
            f"--user-data-dir={Path(self._tmp.name) / 'profile'}", "--window-size=800,600", "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        # DevTools reads commands on fd 3 and writes replies on fd 4: a tiny
        # Python trampoline puts the pipe ends there, then becomes Chromium.
        trampoline = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.close(int(sys.argv[1])); os.close(int(sys.argv[2])); os.execv(sys.argv[3], sys.argv[3:])"
        )
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-S", "-c", trampoline, str(to_r), str(from_w), *args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(to_r, from_w),
            )
        except OSError as exc:
            raise BrowserError(f"cannot start {self.executable}: {exc.strerror}", INSTALL_HINT) from None
        finally:
            os.close(to_r)
            os.close(from_w)
        self._to_browser, self._from_browser = to_w, from_r
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next((t for t in targets if t.get("type") == "page"), None)
        target_id = page["targetId"] if page else self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target_id, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)

    def close(self) -> None:
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._send({"id": self._new_id(), "method": "Browser.close"})
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                os.close(fd)
        self._to_browser = self._from_browser = -1
        self._tmp.cleanup()

    # ------------------------------------------------------------ protocol

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode("utf-8") + b"\0"
        while data:
            written = os.write(self._to_browser, data)
            data = data[written:]

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"Chromium did not answer within {TIMEOUT:.0f} seconds",
                                   "Run it again; if it keeps hanging, check that Chromium starts on its own.")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError("Chromium stopped unexpectedly",
                                   "Check that it runs: chromium --headless --dump-dom about:blank")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        message_id = self._new_id()
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise BrowserError(f"Chromium: {method} failed: {reply['error'].get('message')}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self._events.append(reply)

    def wait_event(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == name:
                    return self._events.pop(index)
            self._events.append(self._read_message(deadline))

    # ------------------------------------------------------------ pages

    def open(self, path: Path, width: int, *, dark: bool = False, height: int = 900) -> None:
        """Load the file ``path`` in a viewport ``width`` CSS pixels wide."""
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        scheme = "dark" if dark else "light"
        self.call("Emulation.setEmulatedMedia", session=True,
                  features=[{"name": "prefers-color-scheme", "value": scheme}])
        self._events.clear()
        self.call("Page.navigate", session=True, url=path.resolve().as_uri())
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"Chromium: script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def measure(self) -> dict[str, Any]:
        """Page height, widths and colour scheme of the loaded page."""
        value = self.evaluate(
            "JSON.stringify({height: Math.max(document.documentElement.scrollHeight,"
            " document.body ? document.body.scrollHeight : 0),"
            " scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,"
            " dark: matchMedia('(prefers-color-scheme: dark)').matches, title: document.title,"
            " text: document.body ? document.body.innerText : ''})"
        )
        data: dict[str, Any] = json.loads(value)
        return data

    def screenshot(self, width: int) -> bytes:
        """A PNG of the whole loaded page."""
        height = max(200, min(int(self.measure()["height"]), MAX_HEIGHT))
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        # The viewport now holds the whole page. Capturing beyond it would shift a
        # right-to-left page by the window's width beyond the viewport's.
        shot = self.call("Page.captureScreenshot", session=True, format="png",
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                         captureBeyondViewport=False)
        return base64.b64decode(shot["data"])


def screenshots(html_path: Path, folder: Path, *, dark: bool = False, tag: str = "") -> list[Path]:
    """desktop.png (600 px) and mobile.png (375 px) of the built email, for approvers.

    ``tag``: a language edition's, in the names (desktop.fr.png).
    """
    outputs = []
    suffix = ("-dark" if dark else "") + (f".{tag}" if tag else "")
    with Browser() as browser:
        for name, width in (("desktop", DESKTOP_WIDTH), ("mobile", MOBILE_WIDTH)):
            browser.open(html_path, width, dark=dark)
            out = folder / f"{name}{suffix}.png"
            atomic_write_bytes(out, browser.screenshot(width))
            outputs.append(out)
    return outputs
