"""The benchmarks: each runs its contenders for a number of rounds and returns a Section.

Within a round every contender runs once (start-up: a handful of interleaved
runs, their median being the round's sample), in an order rotated by one each
round. Ratios are taken between samples of the same round.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import fixtures
from bench import workspace as ws
from bench.measure import (
    BENCH,
    BenchError,
    Run,
    Section,
    Sink,
    Target,
    python_env,
    ratio_per_round,
    rotated,
    run_timed,
)
from bench.peers import Peers


@dataclass(frozen=True)
class Scale:
    name: str
    rounds: int
    send: int  # recipients for the send benchmarks
    memory: tuple[int, int]  # small and large list for the memory benchmark
    feed_items: int
    startup_runs: int  # interleaved runs per round
    personalise: int  # recipients per personalisation run
    render_runs: int  # warm renders after the first, per round
    issue_items: int | None = None  # items in the send issue; None: as many as make ~40 KB of HTML


SCALES = {
    "full": Scale("full", 3, 2_000, (1_000, 100_000), 2_000, 10, 20_000, 5),
    "quick": Scale("quick", 3, 500, (1_000, 20_000), 500, 5, 5_000, 3),
    # Tiny sizes, one round: proves that every benchmark still runs; measures nothing.
    "smoke": Scale("smoke", 1, 12, (10, 40), 15, 1, 50, 1, issue_items=3),
}


@dataclass
class Context:
    scale: Scale
    work: Path
    peers: Peers
    _newsletter: ws.Newsletter | None = None
    _sinks: dict[str, Sink] = field(default_factory=dict)
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


def _send_flags(ctx: Context, root: Path) -> list[str]:
    """`send` flags for an unattended run to the list; --unreviewed when the command has it."""
    help_text = run_timed(ws.cepletter("-C", str(root), "send", "--help"), env=ctx.env).stdout
    flags = ["--yes"]
    if "--unreviewed" in help_text:
        flags.append("--unreviewed")
    return flags


# ---------------------------------------------------------------- send


def _bare_message(ctx: Context, news: ws.Newsletter) -> Path:
    """One message exactly as cepletter builds it, for the bare loop to send to everyone."""
    out = ctx.work / "one-message.eml"
    run_timed(
        [sys.executable, str(BENCH / "inprocess.py"), "message", str(news.root), news.issue_id, str(out)],
        env=ctx.env,
    ).check("building one message with cepletter.message")
    return out


@dataclass
class _Contender:
    run: Callable[[], Run]
    count: int  # recipients it sends to


def _send_round(sink: Sink, section: Section, order: list[str], contenders: dict[str, _Contender]) -> None:
    for name in order:
        count = contenders[name].count
        sink.reset()
        run = contenders[name].run().check(name)
        got = sink.expect(count, name)
        section.figure(f"{name}", "msgs/s").samples.append(count / run.seconds)
        # Where the time goes: the sender's own CPU, and the sink's (on 2 cores they compete).
        section.figure(f"{name}: sender CPU per message", "ms", higher_is_better=False).samples.append(
            run.cpu_seconds * 1000 / count)
        section.figure(f"{name}: sink CPU per message", "ms", higher_is_better=False).samples.append(
            got["cpu_us"] / 1000 / count)
        section.figure(f"{name}: bytes per message at the sink", "bytes").samples.append(
            got["bytes"] / max(got["messages"], 1))


def _send(ctx: Context, connections: int, engine: str = "aiosmtpd") -> Section:
    raw = engine == "raw"
    key = "send-raw" if raw else "send1" if connections == 1 else "send4"
    title = f"Send throughput, {connections} connection{'s' if connections > 1 else ''}"
    section = Section(key, title + (", minimal sink (the senders' ceiling)" if raw else ""))
    news = ctx.newsletter()
    count = ctx.scale.send
    sink = ctx.sink(engine)
    ws.use_sink(news.root, sink.port, connections)
    message = _bare_message(ctx, news)
    flags = _send_flags(ctx, news.root)
    subscribers = news.root / "subscribers.csv"

    def cepletter() -> Run:
        ws.clear_journal(news.root, news.issue_id)
        cmd = ws.cepletter("-C", str(news.root), "send", news.issue_id, "--connections", str(connections), *flags)
        return run_timed(cmd, env=ctx.env)

    def bare() -> Run:
        cmd = [sys.executable, str(BENCH / "baseline_smtp.py"), "--port", str(sink.port),
               "--message", str(message), "--list", str(subscribers), "--threads", str(connections)]
        return run_timed(cmd, env=ctx.env)

    cep_name = f"cepletter send, {connections} conn."
    bare_name = "smtplib loop, 1 conn. (floor)" if connections == 1 else f"smtplib, {connections} threads (floor)"
    contenders = {cep_name: _Contender(cepletter, count), bare_name: _Contender(bare, count)}
    mm_name, mm_multi_name = "mailmerge (HTML part only)", "mailmerge (text + HTML, like cepletter)"
    if connections == 1:
        if ctx.peers.mailmerge is None:
            section.notes.append("mailmerge is not installed in the peer environment: its rows are missing.")
        elif raw:
            contenders.update(_mailmerge(ctx, news, subscribers, sink.port, mm_name, None))
        else:
            contenders.update(_mailmerge(ctx, news, subscribers, sink.port, mm_name, mm_multi_name))
            section.notes.append(
                f"`{mm_name}` sends the same newsletter HTML as one text/html part, mailmerge's fastest "
                f"form; the target applies to it. `{mm_multi_name}` sends text and HTML as "
                "multipart/alternative, the message cepletter sends: mailmerge then parses the HTML with "
                "html5lib for every message. Being slow, it runs on the first "
                f"{contenders[mm_multi_name].count:,} recipients only (its rate is per message; it "
                "opens a connection per message either way)."
            )
    names = list(contenders)
    for round_no in range(ctx.scale.rounds):
        _send_round(sink, section, rotated(names, round_no), contenders)
        ctx.log(f"  round {round_no + 1}: " + ", ".join(
            f"{n} {section.figure(n, 'msgs/s').samples[-1]:.0f}/s" for n in names))
    cep = section.figure(cep_name, "msgs/s")
    info = "information: minimal sink" if raw else ""
    prefix = "minimal sink, " if raw else ""
    if mm_name in contenders:
        section.targets.append(Target(f"{prefix}send 1 conn.: cepletter ÷ mailmerge (msgs/s)", ">=", 4.0,
                                      ratio_per_round(cep, section.figure(mm_name, "msgs/s")), note=info))
    if mm_multi_name in contenders:
        section.targets.append(Target("send 1 conn.: cepletter ÷ mailmerge text + HTML (msgs/s)", ">=", 4.0,
                                      ratio_per_round(cep, section.figure(mm_multi_name, "msgs/s")),
                                      note="information: the same MIME structure as cepletter"))
    floor = 0.7 if connections == 1 else 0.85
    section.targets.append(Target(f"{prefix}send {connections} conn.: cepletter ÷ bare smtplib (msgs/s)", ">=",
                                  floor, ratio_per_round(cep, section.figure(bare_name, "msgs/s")), note=info))
    if not raw and mm_name in contenders:
        section.targets.append(Target(
            "send 1 conn.: bare smtplib ÷ mailmerge (msgs/s): the most any sender can show here", ">=", 4.0,
            ratio_per_round(section.figure(bare_name, "msgs/s"), section.figure(mm_name, "msgs/s")),
            note="information: the floor's own ratio",
        ))
    section.notes.append(
        f"{count:,} recipients, one message each, every run checked at the sink (messages = distinct "
        f"recipients); the newsletter has {news.items} items, {len(news.html.encode()):,} bytes of HTML. "
        "cepletter's runs include its journal (send-log.jsonl, fsynced), removed before each run. "
        "The bare loop sends one message built by cepletter's own message builder, unchanged, to everyone."
    )
    return section


def _mailmerge(
    ctx: Context, news: ws.Newsletter, subscribers: Path, port: int, name: str, multi_name: str | None
) -> dict[str, _Contender]:
    assert ctx.peers.mailmerge is not None
    command = ctx.peers.mailmerge
    folder = ctx.work / "mailmerge"
    files = fixtures.mailmerge_files(folder, port=port, subscribers=subscribers, html=news.html,
                                     subject=news.subject, text=news.text)
    subset = min(ctx.scale.send, max(10, ctx.scale.send // 10))
    short_list = folder / f"subscribers-{subset}.csv"
    fixtures.write_subscribers(short_list, subset)

    def runner(template: Path, database: Path) -> Callable[[], Run]:
        def run() -> Run:
            cmd = [*command, "--no-dry-run", "--no-limit", "--template", str(template),
                   "--database", str(database), "--config", str(files["config"])]
            # Its per-message echo of the whole message goes nowhere, as a user would pipe it.
            return run_timed(cmd, cwd=folder, discard_stdout=True)
        return run

    found = {name: _Contender(runner(files["template"], subscribers), ctx.scale.send)}
    if multi_name is not None:
        found[multi_name] = _Contender(runner(files["template_multipart"], short_list), subset)
    return found


def bench_send1(ctx: Context) -> Section:
    return _send(ctx, 1)


def bench_send4(ctx: Context) -> Section:
    return _send(ctx, 4)


def bench_send_raw(ctx: Context) -> Section:
    return _send(ctx, 1, engine="raw")


# ---------------------------------------------------------------- personalisation


def bench_personalise(ctx: Context) -> Section:
    section = Section("personalise", "Personalisation (in process, no sending)")
    news = ctx.newsletter()
    fig = section.figure("recipients/s, rendered issue → message bytes", "recipients/s")
    size = section.figure("message size", "bytes")
    for _ in range(ctx.scale.rounds):
        run = run_timed(
            [sys.executable, str(BENCH / "inprocess.py"), "personalise", str(news.root), news.issue_id,
             "--count", str(ctx.scale.personalise), "--runs", "1"],
            env=ctx.env,
        ).check("personalisation")
        data = json.loads(run.stdout)
        fig.samples.extend(data["rates"])
        size.samples.append(data["message_bytes"])
    section.targets.append(Target("personalisation: recipients per second", ">=", 5000, list(fig.samples), unit="/s"))
    section.notes.append(
        f"{ctx.scale.personalise:,} recipients per round from subscribers.csv, in a fresh process each round; "
        "the issue is rendered and inlined once beforehand, then `MessageFactory.build` makes every "
        "recipient's complete message (headers, both bodies, quoted-printable)."
    )
    return section


# ---------------------------------------------------------------- memory


def bench_memory(ctx: Context) -> Section:
    small, large = ctx.scale.memory
    section = Section("memory", "Memory: peak RSS of `send --dry-run`")
    news = ctx.newsletter()
    roots = {n: ws.memory_workspace(ctx.work, news, n) for n in (small, large)}
    flags = _send_flags(ctx, roots[small])
    names = {n: f"send --dry-run, {n:,} subscribers" for n in (small, large)}
    for round_no in range(ctx.scale.rounds):
        for n in rotated([small, large], round_no):
            ws.clear_journal(roots[n], news.issue_id)
            cmd = ws.cepletter("-C", str(roots[n]), "send", news.issue_id, "--dry-run", *flags)
            run = run_timed(cmd, env=ctx.env).check(names[n])
            section.figure(f"{names[n]}: peak RSS", "MiB", higher_is_better=False).samples.append(run.max_rss_kib / 1024)
            section.figure(f"{names[n]}: messages/s", "msgs/s").samples.append(n / run.seconds)
        ctx.log(f"  round {round_no + 1} done")
    section.targets.append(Target(
        f"memory: peak RSS at {large:,} ÷ at {small:,}", "<=", 1.5,
        ratio_per_round(section.figure(f"{names[large]}: peak RSS", "MiB"),
                        section.figure(f"{names[small]}: peak RSS", "MiB")),
    ))
    section.notes.append("Peak RSS is the child's own ru_maxrss (os.wait4), whole process.")
    return section


# ---------------------------------------------------------------- start-up


def bench_startup(ctx: Context) -> Section:
    section = Section("startup", "Start-up")
    py = sys.executable
    commands = {
        "cepletter --help": ws.cepletter("--help"),
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
        "start-up: `cepletter --help` ÷ `import click, rich.console`", "<=", 1.3,
        ratio_per_round(section.figure(names[0], "ms"), section.figure(names[1], "ms")),
    ))
    section.notes.append(
        f"Each round's sample is the median of {ctx.scale.startup_runs} interleaved runs; "
        "cepletter runs as `python -m cepletter` from this checkout."
    )
    return section


# ---------------------------------------------------------------- feeds


class _FeedServer:
    """`python -m http.server` on 127.0.0.1 in its own process (answers If-Modified-Since with 304)."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(folder)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        try:
            self.port = int(line.split(" port ")[1].split()[0])
        except (IndexError, ValueError):
            self.close()
            raise BenchError(f"the feed server did not start: {line!r}") from None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _listed(run: Run) -> int:
    return sum(1 for line in run.stdout.splitlines() if line.strip())


def bench_feeds(ctx: Context) -> Section:
    n = ctx.scale.feed_items
    section = Section("feeds", f"Feeds: {n:,}-item feed")
    root, feed = ws.feeds_workspace(ctx.work, n)
    cache = root / ".cepletter-cache"
    server = _FeedServer(feed.parent)
    url = f"http://127.0.0.1:{server.port}/{feed.name}"
    check = f"import feedparser, sys; d = feedparser.parse(sys.argv[1]); assert len(d.entries) == {n}, len(d.entries)"
    file_runners: dict[str, list[str]] = {
        "cepletter items (file)": ws.cepletter("-C", str(root), "items", "--feed", str(feed)),
        "feedparser.parse (defaults)": [ctx.peers.python, "-c", check, str(feed)],
    }
    counts: dict[str, int] = {}
    try:
        for round_no in range(ctx.scale.rounds):
            for name in rotated(list(file_runners), round_no):
                shutil.rmtree(cache, ignore_errors=True)
                run = run_timed(file_runners[name], env=ctx.env).check(name)
                section.figure(name, "ms", higher_is_better=False).samples.append(run.seconds * 1000)
                if name.startswith("cepletter"):
                    counts[name] = _listed(run)
            second = run_timed(file_runners["cepletter items (file)"], env=ctx.env).check("items, file, again")
            section.figure("cepletter items (file, second run)", "ms", higher_is_better=False).samples.append(
                second.seconds * 1000)
            # Over HTTP: a cold cache, then the same unchanged feed again (conditional GET).
            shutil.rmtree(cache, ignore_errors=True)
            items_url = ws.cepletter("-C", str(root), "items", "--feed", url)
            cold = run_timed(items_url, env=ctx.env).check("items over HTTP, cold cache")
            warm = run_timed(items_url, env=ctx.env).check("items over HTTP, cached")
            counts["cepletter items (http, cached)"] = _listed(warm)
            section.figure("cepletter items (http, first run)", "ms", higher_is_better=False).samples.append(
                cold.seconds * 1000)
            section.figure("cepletter items (http, unchanged, cached)", "ms", higher_is_better=False).samples.append(
                warm.seconds * 1000)
            # The same two reads in process: fetching and parsing against the cache, start-up left out.
            for label, where in (("file", str(feed)), ("http", url)):
                data = json.loads(run_timed(
                    [sys.executable, str(BENCH / "inprocess.py"), "feed", str(root), where], env=ctx.env,
                ).check(f"in-process feed read ({label})").stdout)
                section.figure(f"in process, {label}: first read", "ms", higher_is_better=False).samples.append(
                    data["cold"] * 1000)
                section.figure(f"in process, {label}: unchanged, cached", "ms", higher_is_better=False).samples.append(
                    data["warm"] * 1000)
            ctx.log(f"  round {round_no + 1} done")
    finally:
        server.close()
    for name, listed in counts.items():
        if listed != n:
            section.notes.append(f"{name} listed {listed:,} lines for a feed of {n:,} items.")
    fig = section.figure
    section.targets.append(Target(
        "feeds: `items` ÷ `feedparser.parse` defaults (whole process)", "<=", 0.5,
        ratio_per_round(fig("cepletter items (file)", "ms"), fig("feedparser.parse (defaults)", "ms")),
    ))
    section.targets.append(Target(
        "feeds: unchanged cached feed ÷ first run (http)", "<=", 0.1,
        ratio_per_round(fig("cepletter items (http, unchanged, cached)", "ms"),
                        fig("cepletter items (http, first run)", "ms")),
    ))
    section.targets.append(Target(
        "feeds, in process: unchanged cached feed ÷ first read (http)", "<=", 0.1,
        ratio_per_round(fig("in process, http: unchanged, cached", "ms"), fig("in process, http: first read", "ms")),
    ))
    section.notes.append(
        f"Generated RSS 2.0 feed, {feed.stat().st_size / 1e6:.1f} MB, ~2.8 KB of HTML per item. Both sides "
        "are whole processes (imports included); the peer is `feedparser.parse(path)` with its defaults "
        "(its own sanitiser and relative-URI resolution on). The HTTP runs fetch the same file from "
        "`http.server` on 127.0.0.1 with the cache emptied first; the cached run is the same command again."
    )
    return section


# ---------------------------------------------------------------- render


def bench_render(ctx: Context) -> Section:
    section = Section("render", "Render: `preview` of the example issue")
    root, issue_id = ws.example_workspace(ctx.work)
    for round_no in range(ctx.scale.rounds):
        run = run_timed(ws.cepletter("-C", str(root), "preview", issue_id), env=ctx.env).check("cepletter preview")
        section.figure("cepletter preview, whole process", "ms", higher_is_better=False).samples.append(
            run.seconds * 1000)
        split = run_timed(
            [sys.executable, str(BENCH / "inprocess.py"), "render", str(root), issue_id,
             "--runs", str(ctx.scale.render_runs)],
            env=ctx.env,
        ).check("in-process render")
        data = json.loads(split.stdout)
        for label, values in (("first render in process", data["first"]), ("warm render", data["warm"])):
            for part in ("total", "jinja", "inlining", "text", "split", "other"):
                section.figure(f"{label}: {part}", "ms", higher_is_better=False).samples.append(
                    values.get(part, 0.0) * 1000)
        section.figure("HTML size", "bytes").samples.append(data["html_bytes"])
        section.figure("text size", "bytes").samples.append(data["text_bytes"])
        ctx.log(f"  round {round_no + 1} done")
    section.targets.append(Target(
        "render: example issue, first render in a process (Jinja + premailer + text)", "<=", 300,
        list(section.figure("first render in process: total", "ms").samples), unit="ms",
    ))
    section.notes.append(
        f"Example issue {issue_id} of the repository. The in-process split times `render_issue` with "
        "imports done beforehand, split by the renderer's own stage timings: `jinja` is the HTML "
        "template (loading and rendering), `inlining` premailer, `text` the text template, `split` "
        "cutting the page at the per-recipient slots, `other` the rest (settings, context, Markdown). "
        "The first render includes compiling the templates, as in a `preview` run."
    )
    return section


BENCHMARKS: dict[str, Callable[[Context], Section]] = {
    "send1": bench_send1,
    "send4": bench_send4,
    "send-raw": bench_send_raw,
    "personalise": bench_personalise,
    "memory": bench_memory,
    "startup": bench_startup,
    "feeds": bench_feeds,
    "render": bench_render,
}
