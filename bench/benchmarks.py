"""The benchmarks by name, and the ones that need no server: personalisation, memory, start-up.

Each benchmark runs its contenders for a number of rounds and returns a
Section. Within a round every contender runs once (start-up: a handful of
interleaved runs, their median being the round's sample), in an order
rotated by one each round. Ratios are taken between samples of the same round.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable

from bench import workspace as ws
from bench.content import bench_feeds, bench_render
from bench.context import SCALES, Context, Scale, send_flags
from bench.measure import BENCH, Section, Target, ratio_per_round, rotated, run_timed
from bench.send import bench_send1, bench_send4, bench_send_raw
from bench.wire import bench_postfix, bench_wire

__all__ = ["BENCHMARKS", "SCALES", "Context", "Scale"]


# ---------------------------------------------------------------- personalisation


def bench_personalise(ctx: Context) -> Section:
    section = Section("personalise", "Personalisation (in process, no sending)")
    news = ctx.newsletter()
    fig = section.figure("recipients/s, rendered issue → message bytes", "recipients/s")
    size = section.figure("message size", "bytes")
    share = 0.0
    for _ in range(ctx.scale.rounds):
        run = run_timed(
            [sys.executable, str(BENCH / "inprocess.py"), "personalise", str(news.root), news.issue_id,
             "--count", str(ctx.scale.personalise), "--runs", "1"],
            env=ctx.env,
        ).check("personalisation")
        data = json.loads(run.stdout)
        fig.samples.extend(data["rates"])
        size.samples.append(data["message_bytes"])
        section.figure("recipients/s, the same with plain ASCII names (diagnostic)", "recipients/s").samples.append(
            data["ascii_rate"])
        share = data["non_ascii_names"]
    section.targets.append(Target("personalisation: recipients per second", ">=", 5000, list(fig.samples), unit="/s"))
    section.notes.append(
        f"{ctx.scale.personalise:,} recipients per round from subscribers.csv ({share:.0%} with names outside "
        "ASCII, as in a European list, which need RFC 2047 encoding in To), in a fresh process each round; "
        "the issue is rendered and inlined once beforehand, then `MessageFactory.build` makes every "
        "recipient's complete message (headers, both bodies, 8bit)."
    )
    return section


# ---------------------------------------------------------------- memory


def bench_memory(ctx: Context) -> Section:
    sizes = ctx.scale.memory
    small, large = sizes[0], sizes[-1]
    section = Section("memory", "Memory: peak RSS of `send --dry-run`")
    news = ctx.newsletter()
    roots = {n: ws.memory_workspace(ctx.work, news, n) for n in sizes}
    flags = send_flags(ctx, roots[small])
    names = {n: f"send --dry-run, {n:,} subscribers" for n in sizes}
    for round_no in range(ctx.scale.rounds):
        for n in rotated(list(sizes), round_no):
            ws.clear_journal(roots[n], news.issue_id)
            cmd = ws.cepletter("-C", str(roots[n]), "send", news.issue_id, "--dry-run", *flags)
            run = run_timed(cmd, env=ctx.env, timeout=3600).check(names[n])
            section.figure(f"{names[n]}: peak RSS", "MiB", higher_is_better=False).samples.append(run.max_rss_kib / 1024)
            section.figure(f"{names[n]}: messages/s", "msgs/s").samples.append(n / run.seconds)
        for n in sizes[1:]:
            # What each further subscriber costs: the growth of peak RSS over the smallest list, per subscriber.
            grown = section.figure(f"{names[n]}: peak RSS", "MiB").samples[-1] - \
                section.figure(f"{names[small]}: peak RSS", "MiB").samples[-1]
            section.figure(f"bytes per subscriber, {small:,} → {n:,}", "bytes", higher_is_better=False).samples.append(
                grown * 1024 * 1024 / (n - small))
        ctx.log(f"  round {round_no + 1} done")
    section.targets.append(Target(
        f"memory: peak RSS at {large:,} ÷ at {small:,}", "<=", 1.5,
        ratio_per_round(section.figure(f"{names[large]}: peak RSS", "MiB"),
                        section.figure(f"{names[small]}: peak RSS", "MiB")),
    ))
    section.notes.append(
        "Peak RSS is the child's own ru_maxrss (os.wait4), whole process. Bytes per subscriber is the peak "
        "RSS at a list size less that at the smallest, divided by the subscribers added: what a list "
        "costs as it grows, the part that must stay flat."
    )
    return section


# ---------------------------------------------------------------- start-up


def bench_startup(ctx: Context) -> Section:
    section = Section("startup", "Start-up")
    py = sys.executable
    commands = {
        "cepletter --help": ws.cepletter("--help"),
        'python -c "import click"': [py, "-c", "import click"],
        'python -c "import click, rich.console"': [py, "-c", "import click, rich.console"],
        'python -c "pass"': [py, "-c", "pass"],
    }
    if ctx.peers.mailmerge is not None:
        commands["mailmerge --version (peer CLI)"] = [*ctx.peers.mailmerge, "--version"]
    names = list(commands)
    for round_no in range(ctx.scale.rounds):
        runs: dict[str, list[float]] = {n: [] for n in names}
        for i in range(ctx.scale.startup_runs):
            for name in rotated(names, round_no + i):
                runs[name].append(run_timed(commands[name], env=ctx.env).check(name).seconds * 1000)
        for name in names:
            section.figure(name, "ms", higher_is_better=False).samples.append(statistics.median(runs[name]))
    section.targets.append(Target(
        "start-up: `cepletter --help` ÷ `import click`", "<=", 1.3,
        ratio_per_round(section.figure(names[0], "ms"), section.figure(names[1], "ms")),
    ))
    section.notes.append(
        f"Each round's sample is the median of {ctx.scale.startup_runs} interleaved runs; "
        "cepletter runs as `python -m cepletter` from this checkout. The yardstick is importing click "
        "alone, the one library a click command cannot start without; rich is not needed for `--help`."
    )
    return section


BENCHMARKS: dict[str, Callable[[Context], Section]] = {
    "send1": bench_send1,
    "send4": bench_send4,
    "send-raw": bench_send_raw,
    "wire": bench_wire,
    "postfix": bench_postfix,
    "personalise": bench_personalise,
    "memory": bench_memory,
    "startup": bench_startup,
    "feeds": bench_feeds,
    "render": bench_render,
}
