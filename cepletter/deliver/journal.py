"""The delivery journal: ``issues/<ID>/send-log.jsonl``, one JSON object per line.

Result lines carry ``email``, ``status`` ("sent", "failed", "deferred" or
"uncertain"), ``time``, ``reply`` (the server's answer), ``message_id`` and
``attempts``. "uncertain" means the whole message went out and no verdict came
back: the server may have it. Other lines carry an ``event`` ("start", "stop")
and no status; readers skip them.

The journal is the record of who got which issue: it belongs in git beside
``issue.md``. While a run writes it, the run holds an exclusive ``flock`` on
it, so a second run is refused even when the send lock (in the cache folder)
was deleted under the first.

Each line is handed to the operating system with one ``os.write`` on an
``O_APPEND`` descriptor before the sender counts the message (a killed process
loses nothing) and the file is fsynced at least once a second and at the end
(a power cut costs at most a second). A line cut short by a kill is skipped
when read, and the next line starts on a fresh line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cepletter import jsonlines
from cepletter.errors import DeliveryError
from cepletter.fsutil import describe_os_error

JOURNAL_NAME = "send-log.jsonl"
SENT, FAILED, DEFERRED, UNCERTAIN = "sent", "failed", "deferred", "uncertain"
STATUSES = (SENT, FAILED, DEFERRED, UNCERTAIN)
FSYNC_INTERVAL = 0.5  # seconds; well inside the promised one second


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed JSON object in the journal; cut or garbled lines are skipped."""
    return jsonlines.read(path)


def read_results(path: Path) -> Iterator[dict[str, Any]]:
    """Only the result lines (those with an email and a known status)."""
    for entry in read_lines(path):
        if isinstance(entry.get("email"), str) and entry.get("status") in STATUSES:
            yield entry


def sent_keys(path: Path) -> set[str]:
    """Lower-cased addresses that have a "sent" line."""
    return {e["email"].strip().lower() for e in read_results(path) if e["status"] == SENT}


def uncertain_counts(path: Path) -> dict[str, int]:
    """Lower-cased address -> how many "uncertain" lines it has, for addresses never "sent"."""
    counts: dict[str, int] = {}
    sent: set[str] = set()
    for entry in read_results(path):
        key = entry["email"].strip().lower()
        if entry["status"] == SENT:
            sent.add(key)
        elif entry["status"] == UNCERTAIN:
            counts[key] = counts.get(key, 0) + 1
    return {key: n for key, n in counts.items() if key not in sent}


def is_busy(path: Path) -> bool:
    """Whether another process is writing the journal at ``path`` right now."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return not _try_flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


def _try_flock(fd: int, kind: int) -> bool:
    """Take a non-blocking flock; False when another process holds a conflicting one."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        pass  # a file system without flock: the send lock still guards the run
    return True


def _running(issue_id: str, who: str = "") -> DeliveryError:
    return DeliveryError(
        f"another `cepletter send` of issue {issue_id} is running{who}",
        "Wait for it to finish; a second run at the same time could mail people twice.",
    )


class SendLock:
    """An exclusive, non-blocking lock on ``<folder>/send-<ID>.lock`` for one send run.

    The folder is the workspace's cache folder: the lock is not part of the
    delivery record and stays out of git.
    """

    def __init__(self, folder: Path, issue_id: str) -> None:
        self.path = folder / f"send-{issue_id}.lock"
        self.issue_id = issue_id
        self._fd: int | None = None

    def acquire(self) -> None:
        for _ in range(10):
            fd = self._open()
            if not _try_flock(fd, fcntl.LOCK_EX):
                other = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                os.close(fd)
                raise _running(self.issue_id, f" (process {other})" if other.isdigit() else "")
            # A lock file deleted between our open and our flock locks nothing: take the new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        else:
            raise DeliveryError(f"{self.path}: the send lock keeps disappearing",
                                "Something is deleting the cache folder; stop it and run `cepletter send` again.")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise self._error(exc) from None
        self._fd = fd

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._error(exc) from None

    def _error(self, exc: OSError) -> DeliveryError:
        return DeliveryError(f"{self.path}: cannot write the send lock: {describe_os_error(exc)}; nothing was sent",
                             "Free some space or fix the folder's permissions, then run `cepletter send` again.")

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> SendLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Journal:
    """The append-only writer. Thread-safe: every line is one ``os.write``."""

    def __init__(self, path: Path, issue_id: str = "") -> None:
        self.path = path
        self.issue_id = issue_id or path.parent.name
        self._fd: int | None = None
        self._dirty = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None

    def open(self) -> None:
        try:
            fd = jsonlines.open_log(self.path)
        except OSError as exc:
            raise self._error(exc) from None
        if not _try_flock(fd, fcntl.LOCK_EX):
            os.close(fd)
            raise _running(self.issue_id)
        self._fd = fd
        self._repair_tail()
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-fsync", daemon=True)
        self._syncer.start()

    def _repair_tail(self) -> None:
        """If the last line was cut by a kill, end it so the next line stands alone."""
        assert self._fd is not None
        if jsonlines.ends_mid_line(self._fd):
            self._write(b"\n")

    def _error(self, exc: OSError) -> DeliveryError:
        return DeliveryError(
            f"{self.path}: cannot write the delivery journal: {describe_os_error(exc)}; sending stopped",
            "Fix the problem and run `cepletter send` again: it carries on where it stopped.",
        )

    def _write(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            raise DeliveryError(f"{self.path}: the journal is not open")
        try:
            jsonlines.write_all(fd, data)
        except OSError as exc:
            raise self._error(exc) from None
        self._dirty = True

    def event(self, name: str, **fields: Any) -> None:
        self._write(jsonlines.line({"event": name, "time": now_iso(), **fields}))

    def record(self, email: str, status: str, reply: str, *, message_id: str = "", attempts: int = 1) -> None:
        """Append one result line. Raises DeliveryError when the line cannot be written."""
        entry = {
            "email": email,
            "status": status,
            "time": now_iso(),
            "reply": reply,
            "message_id": message_id,
            "attempts": attempts,
        }
        self._write(jsonlines.line(entry))

    def sync(self) -> None:
        with self._lock:
            if self._fd is not None and self._dirty:
                self._dirty = False
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    raise self._error(exc) from None

    def _sync_loop(self) -> None:
        while not self._stop.wait(FSYNC_INTERVAL):
            # An fsync failure here is reported by the next write or by close().
            with contextlib.suppress(DeliveryError):
                self.sync()

    def close(self) -> None:
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
            self._syncer = None
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Journal:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
