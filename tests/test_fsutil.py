"""Atomic writes: whole files, usual permissions, no temporary files left behind, and a full
disk (a real one: a small tmpfs, see ``smalldisk``) said in words, the old file intact."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_workspace
from smalldisk import run_on_full_disk

from cepletter.fsutil import atomic_write_bytes, atomic_write_text, write_new_text
from cepletter.workspace import init_workspace

REPO = Path(__file__).resolve().parent.parent


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


# ---------------------------------------------------------------- a full disk, for real (tmpfs)


def cepletter(*args: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    return [sys.executable, "-m", "cepletter", *args], env


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


def test_a_full_disk_is_a_disk_full_error_and_the_old_file_stays(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "keep.txt").write_text("old", encoding="utf-8")
    code = ("import sys; from pathlib import Path; from cepletter.fsutil import atomic_write_bytes\n"
            "from cepletter.errors import CepletterError\n"
            "try:\n    atomic_write_bytes(Path(sys.argv[1]) / 'keep.txt', b'new' * 100_000)\n"
            "except CepletterError as e:\n    print(type(e).__name__, isinstance(e, OSError), e.errno, e)\n"
            "    sys.exit(3)\n")
    command, env = cepletter()
    done = run_on_full_disk(box, [command[0], "-c", code, str(box)], after=tmp_path / "after", env=env)
    assert done.returncode == 3, done.stderr
    # An OSError still (code that shrugs off a failed cache write keeps doing so), with its own message.
    assert done.stdout.strip() == f"DiskFullError True {errno.ENOSPC} {box}/keep.txt: cannot write: the disk is full"
    assert (done.folder / "keep.txt").read_text(encoding="utf-8") == "old"
    assert leftovers(done.folder) == []


def test_preview_on_a_full_disk_says_so_and_keeps_the_last_build(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    assert run("-C", str(ws), "preview").exit_code == 0
    folder = ws / "issues" / "2025-12"
    built = (folder / "build" / "newsletter.html").read_bytes()
    command, env = cepletter("-C", str(ws), "preview")
    # Before: an internal error, "OSError: [Errno 28] No space left on device".
    done = run_on_full_disk(folder, command, after=tmp_path / "after", env=env)
    assert done.returncode == 1, done.stderr
    assert f"Error: {folder}/build/newsletter.html: cannot write: the disk is full" in done.stderr
    assert "Free some space on the disk" in done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert (done.folder / "build" / "newsletter.html").read_bytes() == built
    assert leftovers(done.folder) == []


def test_draft_force_on_a_full_disk_says_so_and_keeps_the_issue_file(tmp_path: Path, run: Invoke) -> None:
    ws = tmp_path / "ws"
    init_workspace(ws)
    assert run("-C", str(ws), "draft", "--issue", "2026-01", "--all").exit_code == 0
    folder = ws / "issues" / "2026-01"
    issue = (folder / "issue.md").read_bytes()
    command, env = cepletter("-C", str(ws), "draft", "--issue", "2026-01", "--all", "--force",
                             "--title", "A new title")
    done = run_on_full_disk(folder, command, after=tmp_path / "after", env=env)
    assert done.returncode == 1, done.stderr
    # (draft keeps a copy of the old file first: that is the write that fails here)
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"Error: {folder}/issue.md") and first.endswith("the disk is full"), done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert (done.folder / "issue.md").read_bytes() == issue
    assert leftovers(done.folder) == []
