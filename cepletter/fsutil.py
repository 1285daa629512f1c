"""Atomic file writes: write a temporary file beside the target, then os.replace."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str, *, fsync: bool = True) -> None:
    """Write ``text`` as UTF-8 (with ``\\n`` line ends) atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_new_text(path: Path, text: str) -> bool:
    """Create ``path`` with ``text`` unless it exists; return whether it was written."""
    if path.exists():
        return False
    atomic_write_text(path, text)
    return True
