"""Atomic file writes: write a temporary file beside the target, then os.replace.

A write that fails because the disk is full raises ``DiskFullError``: a
CepletterError (one line, exit 1, "the disk is full") that is still an
OSError, so code that shrugs off a failed cache write goes on doing so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cepletter.errors import CepletterError

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def describe_os_error(exc: OSError) -> str:
    """Why ``exc`` happened, for a message: "the disk is full" for ENOSPC and EDQUOT, else the system's words."""
    if exc.errno in DISK_FULL:
        return "the disk is full"
    return exc.strerror or str(exc)


class DiskFullError(CepletterError, OSError):
    """No room left on the disk (or in the user's quota) for a file; the old file is unchanged."""

    def __init__(self, path: Path) -> None:
        CepletterError.__init__(
            self, f"{path}: cannot write: the disk is full",
            f"Free some space on the disk, then run the command again; {path.name} was left as it was.",
        )
        self.errno = errno.ENOSPC
        self.strerror = "the disk is full"
        self.filename = str(path)


def _mode_for(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0666 less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Linux tells the umask without changing it; elsewhere set and restore it.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half.

    Raises DiskFullError when the disk is full, other OSErrors as they come.
    """
    try:
        _write_then_replace(path, data, fsync)
    except DiskFullError:
        raise
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise DiskFullError(path) from None
        raise


def _write_then_replace(path: Path, data: bytes, fsync: bool) -> None:
    with _replacing(path, fsync) as fh:
        fh.write(data)


@contextlib.contextmanager
def _replacing(path: Path, fsync: bool) -> Iterator[BinaryIO]:
    """A temporary file beside ``path`` that takes its place only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; the result gets the mode any new file would.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file to stream into that replaces ``path`` whole when the block ends without an error.

    For output too large to hold in memory (an mbox of every message); the same
    guarantees as `atomic_write_bytes`, DiskFullError included.
    """
    try:
        with _replacing(path, fsync=True) as fh:
            yield fh
    except DiskFullError:
        raise
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise DiskFullError(path) from None
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


def prune_oldest(folder: Path, pattern: str, keep: int) -> None:
    """Remove all but the ``keep`` most recently written files matching ``pattern`` (a cache's tidying)."""
    entries: list[tuple[float, Path]] = []
    for path in folder.glob(pattern):
        try:
            entries.append((path.stat().st_mtime, path))
        except OSError:
            continue
    entries.sort(reverse=True)
    for _, old in entries[keep:]:
        try:
            old.unlink()
        except OSError:
            continue
