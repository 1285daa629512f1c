"""Atomic writes: whole files, usual permissions, no temporary files left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cepletter.fsutil import atomic_write_bytes, atomic_write_text, write_new_text


def test_new_file_gets_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a" / "b.txt", "héllo\n")
    finally:
        os.umask(old)
    path = tmp_path / "a" / "b.txt"
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_existing_permissions_kept(tmp_path: Path) -> None:
    path = tmp_path / "run.sh"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o750)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o750


def test_failure_leaves_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "keep.txt"
    path.write_text("old", encoding="utf-8")


    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_write_new_text_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    assert write_new_text(path, "first") is True
    assert write_new_text(path, "second") is False
    assert path.read_text(encoding="utf-8") == "first"
