"""A full disk for real: a small tmpfs mounted over one folder, for one command.

    result = run_on_full_disk(ws / "issues" / "2025-12", [sys.executable, "-m", "cepletter", ...],
                              after=tmp_path / "after", free=8192, env=env)
    result.returncode, result.stdout, result.stderr   # of the command
    result.folder                                     # what the folder held when it ended (= after)

The command runs in a private mount namespace (``unshare --user --mount``, no
privileges needed where the kernel allows it), with a tmpfs over ``folder``
holding a copy of its files and a filler that leaves ``free`` bytes (rounded
to pages) unused: writes beyond that fail with ENOSPC, exactly as on a full
disk. Nothing outside the namespace is mounted or changed, except that the
folder's final content is copied to ``after`` for the test to read.

``tmpfs_problem()`` says why it cannot be done here (None when it can); the
tests skip with that reason, except in CI, where they fail.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import missing

SIZE = 1024 * 1024  # the tmpfs; the filler takes all of it but ``free``

# Runs inside the namespace: argv = [folder, out, free, size, env (JSON), command...].
_DRIVER = r"""
import json, os, shutil, subprocess, sys, tempfile
folder, out, free, size, env, command = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], \
    json.loads(sys.argv[5]), sys.argv[6:]
stash = tempfile.mkdtemp()
shutil.copytree(folder, stash, dirs_exist_ok=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", folder], check=True)
shutil.copytree(stash, folder, dirs_exist_ok=True)
filler = os.path.join(folder, ".filler")
with open(filler, "wb", buffering=0) as fh:
    try:
        while True:
            fh.write(b"\0" * 4096)
    except OSError:
        pass
os.truncate(filler, max(0, os.path.getsize(filler) - free))
done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL)
os.unlink(filler)
shutil.copytree(folder, out, dirs_exist_ok=True)
sys.exit(done.returncode)
"""


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    folder: Path


def _unshare() -> list[str]:
    return ["unshare", "--user", "--map-root-user", "--mount"]


@functools.cache
def tmpfs_problem() -> str | None:
    """Why a private tmpfs cannot be mounted on this machine; None when it can."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "needs unshare and mount (util-linux)"
    try:
        probe = subprocess.run([*_unshare(), "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt || "
                                "mount -t tmpfs -o size=64k tmpfs /tmp"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a private namespace: {probe.stderr.strip()}"
    return None


def need_tmpfs() -> None:
    problem = tmpfs_problem()
    if problem is not None:
        missing(problem)  # a skip, except in CI


def run_on_full_disk(folder: Path, command: list[str], *, after: Path, free: int = 0,
                     env: dict[str, str] | None = None) -> Finished:
    """Run ``command`` with ``folder`` on a tmpfs that has only ``free`` bytes left; copy what the
    folder then holds to ``after`` (a new folder)."""
    need_tmpfs()
    out = after
    out.mkdir(parents=True)
    environment = dict(env if env is not None else os.environ)
    done = subprocess.run(
        [*_unshare(), sys.executable, "-c", _DRIVER, str(folder), str(out), str(free), str(SIZE),
         json.dumps(environment), *command],
        capture_output=True, text=True, timeout=240,
    )
    return Finished(done.returncode, done.stdout, done.stderr, out)
