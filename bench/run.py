"""Run cepletter's benchmarks against its peers and write bench/RESULTS.md.

    python bench/run.py                 # everything, full sizes (about 45 minutes on 2 cores)
    python bench/run.py --quick         # smaller inputs, for a fast look
    python bench/run.py --only send1 --only startup

Benchmarks: send1, send4, send-raw, wire, postfix, personalise, memory, startup, feeds, render.
Everything runs on this machine: SMTP sinks, a latency proxy, a private Postfix
(when installed) and a feed server on 127.0.0.1, the peers (mailmerge,
feedparser) in bench/.venv, made on first use, and today's cepletter exported
from git (bench/today.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

# Run as a script: make `bench` and the checkout's `cepletter` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import peers as peer_env
from bench import report
from bench.benchmarks import BENCHMARKS, SCALES, Context
from bench.measure import BENCH, REPO, BenchError, Section, python_env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Measure cepletter against its peers; write bench/RESULTS.md.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="scale",
                      help="smaller inputs (500 recipients, a 500-item feed, 20,000-subscriber memory run)")
    size.add_argument("--smoke", action="store_const", const="smoke", dest="scale",
                      help="tiny inputs and one round: checks that every benchmark runs, measures nothing")
    parser.add_argument("--only", action="append", metavar="NAME", default=[],
                        help=f"run only this benchmark (repeatable, or comma-separated): {', '.join(BENCHMARKS)}")
    parser.add_argument("--rounds", type=int, help="rounds per benchmark (default 5; at least 5 for figures to quote)")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md", help="where to write the report")
    parser.add_argument("--work", type=Path, default=BENCH / "work", help="folder for generated inputs")
    parser.add_argument("--current-peers", action="store_true",
                        help="use the peers installed in this interpreter instead of bench/.venv")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--today", metavar="REV", default="",
                        help="git revision of cepletter to compare with as today's (default: see bench/today.py)")
    parser.set_defaults(scale="full")
    args = parser.parse_args(argv)
    names = [n.strip() for value in args.only for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    args.names = names or list(BENCHMARKS)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped with SIGTERM: unwind like Ctrl-C, so that the sinks and servers are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    scale = SCALES[args.scale]
    if args.rounds is not None:
        from dataclasses import replace

        scale = replace(scale, rounds=args.rounds)
    started = time.perf_counter()
    load_before = report.load_average()
    args.work.mkdir(parents=True, exist_ok=True)
    log("peers: " + ("this interpreter" if args.current_peers else "bench/.venv (made on first use)"))
    peers = peer_env.ensure(use_current=args.current_peers)
    # As `pip install` would: compile cepletter's bytecode once, so that no run pays for it.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "cepletter")],
                   env=python_env(), check=False, stdout=subprocess.DEVNULL)
    log(f"peers in {peers.where}: " + ", ".join(f"{k} {v}" for k, v in peers.versions.items()))
    ctx = Context(scale=scale, work=args.work.resolve(), peers=peers, log=log, today_revision=args.today)
    sections: list[Section] = []
    try:
        for name in args.names:
            log(f"{name} ...")
            start = time.perf_counter()
            try:
                section = BENCHMARKS[name](ctx)
            except BenchError as exc:
                section = Section(name, name, error=str(exc))
            except Exception as exc:  # a benchmark that breaks must not hide the others' figures
                section = Section(name, name, error=f"{type(exc).__name__}: {exc}")
                traceback.print_exc()
            section.seconds = time.perf_counter() - start
            if section.error:
                log(f"  not measured: {section.error}")
            for target in section.targets:
                if target.samples:
                    verdict = "info" if target.informational else "PASS" if target.passed else "FAIL"
                    log(f"  {verdict} {target.name}: "
                        f"{report.spread(target.summary())} (goal {target.op} {target.threshold})")
            sections.append(section)
    finally:
        ctx.close()
    seconds = time.perf_counter() - started
    command = "python bench/run.py" + (f" --{args.scale}" if args.scale != "full" else "")
    text = report.render(sections, peers, scale.name, scale.rounds, seconds, command, load_before)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    (ctx.work / "results.json").write_text(
        json.dumps([s.as_dict() for s in sections], indent=1), encoding="utf-8"
    )
    log(f"wrote {args.out} ({seconds / 60:.1f} min)")
    errors = [s for s in sections if s.error]
    missed = [t for s in sections for t in s.targets if t.samples and not t.passed and not t.informational]
    if errors:
        return 1
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
