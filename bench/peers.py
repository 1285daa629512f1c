"""The peers cepletter is compared with, in their own virtual environment (bench/.venv).

    python bench/peers.py          # create or update bench/.venv

The versions are pinned to those of the published peer measurements, so that
the ratios here can be set beside them. When the environment cannot be made
(no network, no package index), the benchmarks fall back to the peers
installed in the running interpreter, and the report says so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv"
PINS = ("mailmerge==2.3.0", "feedparser==6.0.14")


@dataclass(frozen=True)
class Peers:
    python: str  # interpreter that has feedparser
    mailmerge: tuple[str, ...] | None  # command that runs mailmerge, None when not installed
    where: str  # how the report describes them
    versions: dict[str, str]


def _venv_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _versions(python: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m\n"
        "for name in ('mailmerge', 'feedparser'):\n"
        "    try: print(name, m.version(name))\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def _mailmerge_command(python: str) -> tuple[str, ...] | None:
    """The mailmerge console script beside ``python``, as a user runs it; None when not installed."""
    probe = subprocess.run([python, "-c", "import mailmerge.__main__"], capture_output=True, check=False)
    if probe.returncode != 0:
        return None
    script = Path(python).parent / ("mailmerge.exe" if sys.platform == "win32" else "mailmerge")
    if script.is_file():
        return (str(script),)
    # `python -m mailmerge` does not work (its __main__ calls main() before defining its helpers).
    return (python, "-c", "import sys; from mailmerge.__main__ import main; sys.exit(main())")


def create_venv(root: Path = VENV, quiet: bool = True) -> Path:
    """Make ``root`` with the pinned peers; raises CalledProcessError when pip cannot install them."""
    python = _venv_python(root)
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(root)
    have = _versions(str(python))
    wanted = dict(pin.split("==") for pin in PINS)
    if have != wanted:
        cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *PINS]
        if quiet:
            cmd.insert(4, "-q")
        subprocess.run(cmd, check=True, capture_output=quiet, timeout=600)
    return python


def current() -> Peers:
    """The peers as installed beside cepletter (no separate environment)."""
    python = sys.executable
    return Peers(python, _mailmerge_command(python), "the running interpreter", _versions(python))


def ensure(use_current: bool = False) -> Peers:
    """The peer environment: bench/.venv when it can be made, else the running interpreter."""
    if use_current:
        return current()
    try:
        python = str(create_venv())
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(VENV, ignore_errors=True)
        peers = current()
        reason = getattr(exc, "stderr", b"") or str(exc)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        last = reason.strip().splitlines()[-1] if reason.strip() else type(exc).__name__
        return Peers(peers.python, peers.mailmerge, f"the running interpreter (bench/.venv failed: {last})", peers.versions)
    return Peers(python, _mailmerge_command(python), "bench/.venv", _versions(python))


if __name__ == "__main__":
    found = ensure()
    print(f"peers in {found.where}: " + ", ".join(f"{k} {v}" for k, v in found.versions.items()))
