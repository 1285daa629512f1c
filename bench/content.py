"""Feeds and rendering: `items` against feedparser, the feed cache, and `preview`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench import workspace as ws
from bench.context import Context
from bench.measure import (
    BENCH,
    BenchError,
    Run,
    Section,
    Target,
    ratio_per_round,
    reap,
    rotated,
    run_timed,
)

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
        reap(self.proc)


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
                if name.startswith("cepletter"):
                    shutil.rmtree(cache, ignore_errors=True)  # a first run: nothing cached
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
        "`http.server` on 127.0.0.1 with the cache emptied first; the cached run is the same command again. "
        "A whole cached run cannot take less than starting Python and cepletter (see Start-up), so the "
        "in-process pair shows what the cache itself saves."
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
        # The first render in process compiles the templates: drop the compiled copies the preview kept.
        shutil.rmtree(root / ".cepletter-cache" / "templates", ignore_errors=True)
        split = run_timed(
            [sys.executable, str(BENCH / "inprocess.py"), "render", str(root), issue_id,
             "--runs", str(ctx.scale.render_runs)],
            env=ctx.env,
        ).check("in-process render")
        data = json.loads(split.stdout)
        section.figure("renderer's imports (jinja2, premailer, cssutils, lxml, markdown-it)", "ms",
                       higher_is_better=False).samples.append(data["imports"] * 1000)
        for label, values in (("first render in process", data["first"]), ("warm render", data["warm"])):
            for part in ("total", "jinja", "inlining", "layout", "setup", "text", "split", "other"):
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
        "the renderer's imports done (and timed) beforehand, split by the renderer's own stage timings: `jinja` is the HTML "
        "template (loading and rendering), `inlining` premailer, `layout` laying the inlined page out in "
        "lines for the wire (timed around the renderer's call to it), `setup` loading the inliner, `text` "
        "the text template, `split` cutting the page at the per-recipient slots, `other` the rest "
        "(settings, context, Markdown, the per-recipient values). "
        "The first render includes compiling the templates, as in a first `preview` (later ones load the "
        "compiled templates from `.cepletter-cache/templates`, removed before each in-process run)."
    )
    return section
