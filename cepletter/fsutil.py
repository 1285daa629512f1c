"""Atomic file writes: write a temporary file beside the target, then os.replace."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


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
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
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
