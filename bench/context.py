"""What every benchmark gets: the sizes of this run, the work folder, the peers, the sinks."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench import workspace as ws
from bench.measure import Sink, python_env, run_timed
from bench.peers import Peers

if TYPE_CHECKING:
    from bench.today import Today


@dataclass(frozen=True)
class Scale:
    name: str
    rounds: int
    send: int  # recipients for the send benchmarks
    memory: tuple[int, ...]  # list sizes for the memory benchmark, smallest first
    feed_items: int
    startup_runs: int  # interleaved runs per round
    personalise: int  # recipients per personalisation run
    render_runs: int  # warm renders after the first, per round
    wire_per_connection: dict[int, int]  # messages per connection at each RTT (ms) of the wire benchmark
    wire_mailmerge: dict[int, int]  # messages for mailmerge (one connection per message) at each RTT
    postfix_per_connection: int  # messages per connection to the real Postfix
    issue_items: int | None = None  # items in the send issue; None: as many as make ~40 KB of HTML
    wire_rtts: tuple[int, ...] = (0, 20, 50)  # added round trip, ms; 0 is loopback, no proxy
    wire_connections: tuple[int, ...] = (1, 4, 8)
    postfix_connections: tuple[int, ...] = (1, 4)


SCALES = {
    "full": Scale("full", 5, 2_000, (1_000, 100_000, 1_000_000), 2_000, 10, 20_000, 5,
                  {0: 150, 20: 40, 50: 20}, {0: 30, 20: 10, 50: 6}, 250),
    "quick": Scale("quick", 3, 500, (1_000, 20_000), 500, 5, 5_000, 3,
                   {0: 60, 20: 15, 50: 8}, {0: 10, 20: 5, 50: 3}, 60),
    # Tiny sizes, one round: proves that every benchmark still runs; measures nothing.
    "smoke": Scale("smoke", 1, 12, (10, 40), 15, 1, 50, 1, {0: 3, 20: 2, 50: 2}, {0: 2, 20: 2, 50: 2}, 3,
                   issue_items=3, wire_connections=(1, 8)),
}


@dataclass
class Context:
    scale: Scale
    work: Path
    peers: Peers
    _newsletter: ws.Newsletter | None = None
    _sinks: dict[str, Sink] = field(default_factory=dict)
    send_flags: list[str] | None = None
    bare_message: Path | None = None
    today: Today | str | None = None  # today's cepletter (bench/today.py), or why it is missing
    today_revision: str = ""  # the git revision to export as today's; empty: bench/today.py's REVISION
    cleanup: list[Path] = field(default_factory=list)  # folders outside the work folder, removed at the end
    log: Callable[[str], None] = field(default=lambda message: None)

    @property
    def env(self) -> dict[str, str]:
        return python_env()

    def newsletter(self) -> ws.Newsletter:
        if self._newsletter is None:
            self.log("  preparing the newsletter workspace (draft + preview)")
            self._newsletter = ws.newsletter(self.work, self.scale.send, self.scale.issue_items)
        return self._newsletter

    def sink(self, engine: str = "aiosmtpd") -> Sink:
        if engine not in self._sinks:
            self._sinks[engine] = Sink(engine)
        return self._sinks[engine]

    def close(self) -> None:
        for sink in self._sinks.values():
            sink.close()
        self._sinks.clear()
        for folder in self.cleanup:
            shutil.rmtree(folder, ignore_errors=True)
        self.cleanup.clear()


def send_flags(ctx: Context, root: Path) -> list[str]:
    """`send` flags for an unattended run to the list; --unreviewed when the command has it."""
    if ctx.send_flags is None:
        help_text = run_timed(ws.cepletter("-C", str(root), "send", "--help"), env=ctx.env).stdout
        ctx.send_flags = ["--yes", *(["--unreviewed"] if "--unreviewed" in help_text else [])]
    return ctx.send_flags
