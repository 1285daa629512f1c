"""Timing whole processes, their peak memory, and the statistics the report quotes.

Every figure is a list of samples; the report gives median [min–max]. Every
comparison is a ratio taken between two figures of the same round, and the
report gives the median of those per-round ratios with their spread, so that
a slow moment of the machine affects both sides of a ratio alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


@dataclass
class Run:
    """One finished process: wall seconds, peak resident memory, CPU time, exit code, output."""

    seconds: float
    max_rss_kib: int
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0  # user + system time of the process and what it waited for

    def check(self, what: str) -> Run:
        if self.returncode != 0:
            raise BenchError(f"{what} exited with {self.returncode}: {self.reason()}")
        return self

    def reason(self) -> str:
        """The line of its output that says what went wrong (an "Error:" line, else the last)."""
        lines = [line.strip() for line in (self.stderr or self.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error")]
        return (errors or lines or ["no output"])[-1][:500]


class BenchError(Exception):
    """A benchmark could not run (a command failed, a count did not match)."""


# The launcher runs in its own small interpreter. Linux counts the memory a
# child had before exec (a copy of its parent's) in the child's ru_maxrss, so
# a child forked straight from this harness would inherit the harness's size;
# forked from a fresh `python -S`, the floor is a few MB, below any process
# measured here. The launcher also does the timing, so its own start-up is
# not counted.
_LAUNCHER = """
import json, os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(out, "w") as fh:
    json.dump({"seconds": seconds, "maxrss": usage.ru_maxrss, "code": code,
               "cpu": usage.ru_utime + usage.ru_stime}, fh)
"""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_timed(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    discard_stdout: bool = False,
    timeout: float = 1800.0,
    stdin: bytes | None = None,
) -> Run:
    """Run ``cmd`` to completion: its wall time (perf_counter) and its own peak RSS.

    ``os.wait4`` in the launcher returns the resource use of exactly this
    command, so peak RSS is per run, not the running maximum that
    RUSAGE_CHILDREN would give. Output goes to temporary files, not pipes, so
    that a chatty process never blocks on a full pipe while being timed.
    ``stdin`` is what the command reads on standard input (from a file; nothing by default).
    """
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        result = Path(tmp) / "result.json"
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        in_path = Path(tmp) / "stdin"
        in_path.write_bytes(stdin or b"")
        with out_path.open("wb") as out, err_path.open("wb") as err, in_path.open("rb") as given:
            stdout: IO[bytes] | int = subprocess.DEVNULL if discard_stdout else out
            proc = subprocess.Popen(
                [sys.executable, "-S", "-c", _LAUNCHER, str(result), *cmd],
                cwd=cwd, env=env, stdin=given if stdin is not None else subprocess.DEVNULL, stdout=stdout,
                stderr=err, start_new_session=True,
            )
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise BenchError(f"{' '.join(cmd)} did not finish within {timeout:.0f} s") from None
            except BaseException:  # Ctrl-C or SIGTERM: leave nothing running behind
                _kill_group(proc)
                raise
        if not result.exists():
            raise BenchError(f"could not start {' '.join(cmd)}: {err_path.read_text('utf-8', 'replace')[-500:]}")
        data = json.loads(result.read_text(encoding="utf-8"))
        # ru_maxrss is in KiB on Linux (bytes on macOS).
        rss = int(data["maxrss"]) // (1024 if sys.platform == "darwin" else 1)
        return Run(
            seconds=float(data["seconds"]),
            max_rss_kib=rss,
            returncode=int(data["code"]),
            stdout=out_path.read_text(encoding="utf-8", errors="replace"),
            stderr=err_path.read_text(encoding="utf-8", errors="replace"),
            cpu_seconds=float(data["cpu"]),
        )


def python_env(extra_path: Path | None = None) -> dict[str, str]:
    """The environment for running cepletter from this checkout, with no colour or pager."""
    env = dict(os.environ)
    paths = [str(REPO)]
    if extra_path is not None:
        paths.append(str(extra_path))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # An installed package has its bytecode compiled; so does this checkout once
    # run.py has compiled it. Without this, every run would compile cepletter anew.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_COLOR"] = "1"
    env["TERM"] = "dumb"
    env["COLUMNS"] = "120"
    env.pop("CEPLETTER_SMTP_PASSWORD", None)
    return env


# ---------------------------------------------------------------- the sink


def reap(proc: subprocess.Popen[str]) -> None:
    """Wait for a helper process that was told to stop; kill it after 10 s; close its output."""
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


class _Helper:
    """A helper process that prints ``PORT <n>``, then answers one command per line on stdin."""

    what = "helper"

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("PORT "):
            self.close()
            raise BenchError(f"the {self.what} did not start: {line!r}")
        self.port = int(line.split()[1])

    def _ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def reset(self) -> None:
        self._ask("reset")

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the helper's signal to stop
        reap(self.proc)


class Sink(_Helper):
    """The counting SMTP sink (bench/sink.py) in its own process.

    With ``tls`` (a certificate and its key) it offers STARTTLS and takes mail
    only after it; with ``pipelining`` its EHLO offers PIPELINING.
    """

    what = "SMTP sink"

    def __init__(
        self, engine: str = "aiosmtpd", python: str = sys.executable, *, pipelining: bool = False,
        tls: tuple[Path, Path] | None = None, auth: bool = False,
    ) -> None:
        self.engine = engine
        cmd = [python, str(BENCH / "sink.py"), "--port", "0", "--engine", engine]
        if pipelining:
            cmd.append("--pipelining")
        if tls is not None:
            cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        if auth:
            cmd.append("--auth")
        super().__init__(cmd)

    def stats(self) -> dict[str, int]:
        data: dict[str, int] = json.loads(self._ask("stats"))
        return data

    def expect(self, count: int, what: str) -> dict[str, int]:
        """Check that exactly ``count`` distinct recipients got one message each."""
        got = self.stats()
        if got["messages"] != count or got["distinct"] != count:
            raise BenchError(
                f"{what}: the sink received {got['messages']} messages for "
                f"{got['distinct']} distinct recipients, expected {count}"
            )
        return got

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Proxy(_Helper):
    """The latency proxy (bench/proxy.py) in its own process, in front of a server on 127.0.0.1."""

    what = "latency proxy"

    def __init__(self, upstream: int, rtt_ms: float, python: str = sys.executable) -> None:
        self.rtt_ms = rtt_ms
        super().__init__([python, str(BENCH / "proxy.py"), "--upstream", str(upstream), "--rtt-ms", str(rtt_ms)])

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._ask("stats"))
        return data

    def turns_between(self, first_ns: int, last_ns: int) -> int:
        """Client round trips that began in (first_ns, last_ns] (see bench/proxy.py)."""
        return int(self._ask(f"between {first_ns} {last_ns}"))

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    n: int


def summarise(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no samples")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def rotated(names: Sequence[T], round_no: int) -> list[T]:
    """The run order of round ``round_no``: rotated by one each round, so no peer always goes first."""
    k = round_no % len(names) if names else 0
    return [*names[k:], *names[:k]]


@dataclass
class Figure:
    """One measured quantity, one sample per round (each round's sample may itself be a median)."""

    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    note: str = ""
    listed: bool = True  # False: shown in one of the section's tables instead of the list of figures

    def summary(self) -> Summary:
        return summarise(self.samples)


@dataclass
class Target:
    """A comparison with its goal: value op threshold (op is ">=" or "<=")."""

    name: str
    op: str
    threshold: float
    samples: list[float] = field(default_factory=list)  # one per round
    unit: str = "×"
    note: str = ""  # non-empty: shown for information, not counted as a target

    def summary(self) -> Summary:
        return summarise(self.samples)

    @property
    def informational(self) -> bool:
        return bool(self.note)

    @property
    def passed(self) -> bool:
        value = self.summary().median
        return value >= self.threshold if self.op == ">=" else value <= self.threshold


def ratio_per_round(numerator: Figure, denominator: Figure) -> list[float]:
    """Round-by-round ratios of two figures sampled in the same rounds."""
    return [a / b for a, b in zip(numerator.samples, denominator.samples, strict=True) if b]


@dataclass
class Section:
    """What one benchmark reports: figures, targets, notes, or why it could not run."""

    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    tables: list[str] = field(default_factory=list)  # Markdown lines shown after the figures

    def figure(self, name: str, unit: str, higher_is_better: bool = True, listed: bool = True) -> Figure:
        for existing in self.figures:
            if existing.name == name:
                return existing
        fig = Figure(name, unit, higher_is_better=higher_is_better, listed=listed)
        self.figures.append(fig)
        return fig

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "error": self.error,
            "figures": {f.name: f.samples for f in self.figures},
            "targets": {t.name: {"samples": t.samples, "op": t.op, "threshold": t.threshold} for t in self.targets},
        }
