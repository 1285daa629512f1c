"""Append-only JSON-lines logs: the delivery journal and the review record.

One JSON object a line, each written with a single ``write`` to an
``O_APPEND`` descriptor, so a killed writer leaves whole lines and at most a
cut last one. Readers skip a cut or foreign line; the next writer first ends a
cut line, so its own record stands on a line of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def open_log(path: Path) -> int:
    """A descriptor that appends to ``path`` (made if missing); raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)


def ends_mid_line(fd: int) -> bool:
    """Whether the log ends inside a line: its last writer was stopped halfway through one."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (a short write is continued, not lost)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def line(record: dict[str, Any]) -> bytes:
    """``record`` as one log line."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed JSON object of the log, in order; cut, garbled or foreign lines are skipped."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return
    with fh:
        for raw in fh:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry
