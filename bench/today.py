"""cepletter as it was before the send path was reworked for the wire, run beside the checkout's.

Targets such as "no slower than today" and "10× today's figure" are ratios
taken in one run, so the older cepletter is a contender: its package is
exported from git (``REVISION``) into bench/work/ and run as
`python -m cepletter` with only that copy on its path. The settings file the
benchmark writes must stay one that both versions read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.measure import REPO, python_env, run_timed

if TYPE_CHECKING:
    from bench.context import Context

# cepletter before its send path was reworked for the wire: no TCP_NODELAY, no pipelining
# (the last commit before that work, with every other change up to it).
# `python bench/run.py --today REV` compares with another revision.
REVISION = "0eb8223245e3be334a17dcaad81fd92ab1b8ac38"


@dataclass(frozen=True)
class Today:
    root: Path  # holds cepletter/ and its default theme templates/ as they were at the revision
    revision: str

    @property
    def label(self) -> str:
        return f"cepletter at {self.revision[:7]} (today)"

    def env(self) -> dict[str, str]:
        env = python_env()
        env["PYTHONPATH"] = str(self.root)  # only the old copy: never the checkout's package
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cepletter", *args]


def export(work: Path, revision: str = REVISION) -> Today | str:
    """The old cepletter under ``work``, exported once; a reason string when git cannot give it."""
    if shutil.which("git") is None:
        return "git is not installed, so today's cepletter cannot be exported"
    resolved = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
                              capture_output=True, text=True, check=False).stdout.strip()
    if not resolved:
        return f"git does not know revision {revision[:12]} here (a shallow clone?)"
    revision = resolved
    root = work / f"cepletter-{revision[:12]}"
    if (root / "cepletter" / "__init__.py").exists():
        return Today(root, revision)
    with tempfile.TemporaryDirectory(prefix="bench-today-", dir=work) as tmp:
        archive = Path(tmp) / "cepletter.tar"
        proc = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), revision, "cepletter", "templates"],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            return f"git cannot export cepletter at {revision[:12]}: {proc.stderr.strip()[-300:]}"
        staging = Path(tmp) / "tree"
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        # As run.py does for the checkout: compile once, so that no run pays for it.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(staging / "cepletter")],
                       check=False, stdout=subprocess.DEVNULL, env=dict(os.environ))
        staging.rename(root)
    return Today(root, revision)


def for_run(ctx: Context) -> Today | str:
    """Today's cepletter for this run, exported once; a reason when it cannot be had."""
    if ctx.today is None:
        found = export(ctx.work, ctx.today_revision or REVISION)
        if isinstance(found, Today):
            # It must be the exported copy that runs, never the checkout's package.
            where = run_timed([sys.executable, "-c", "import cepletter; print(cepletter.__file__)"],
                              env=found.env(), cwd=found.root)
            if where.returncode != 0 or not where.stdout.strip().startswith(str(found.root)):
                found = f"today's cepletter does not run from {found.root}: {where.reason()}"
        ctx.today = found
    return ctx.today


def send_flags(found: Today, root: Path) -> list[str]:
    """`send` flags of today's cepletter for an unattended run."""
    help_text = run_timed(found.command("-C", str(root), "send", "--help"), env=found.env(), cwd=found.root).stdout
    return ["--yes", *(["--unreviewed"] if "--unreviewed" in help_text else [])]
