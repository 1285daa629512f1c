"""In-process measurements of cepletter's library: rendering and personalisation.

    python bench/inprocess.py render WORKSPACE ISSUE_ID --runs 5
    python bench/inprocess.py personalise WORKSPACE ISSUE_ID --count 20000 --runs 3
    python bench/inprocess.py message WORKSPACE ISSUE_ID OUT.eml
    python bench/inprocess.py web WORKSPACE ISSUE_ID OUT_DIR
    python bench/inprocess.py feed WORKSPACE FEED_PATH_OR_URL

Each prints one JSON object on stdout. Imports happen before any clock
starts: import time is start-up, measured on its own.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

# Run as a script from anywhere: the checkout's cepletter comes first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cepletter.config import Settings, load_settings
from cepletter.issue import file as issue_file
from cepletter.message.personal import PersonalIssue
from cepletter.message.recipient import Recipient


def _render_function() -> Callable[..., PersonalIssue]:
    from cepletter.message import personal

    fn: Callable[..., PersonalIssue] = personal.render_personal
    return fn


def load(workspace: Path, issue_id: str) -> tuple[Settings, Any]:
    settings = load_settings(workspace)
    return settings, issue_file.resolve(settings.issues_dir, issue_id)


def render(settings: Settings, issue: Any) -> PersonalIssue:
    return _render_function()(settings, issue)


# ---------------------------------------------------------------- render split


RENDER_IMPORTS = ("jinja2", "markupsafe", "markdown_it", "lxml.etree", "lxml.html", "cssutils", "premailer")


def cmd_render(workspace: Path, issue_id: str, runs: int) -> dict[str, Any]:
    """Render the issue ``runs`` times; the first call (templates not yet compiled) apart.

    The split comes from the renderer's own stage timings (Jinja, including
    template loading; inlining; the text template; cutting the page at the
    per-recipient slots); "layout" is laying the inlined page out in lines
    for the wire, which the renderer does not time on its own, so it is timed
    here around the renderer's call; "setup" loading the inliner; "other" is
    the rest of the wall time (settings, context, Markdown of the intro,
    preparing the per-recipient values).
    """
    from cepletter.message.personal import render_personal
    from cepletter.render import renderer
    from cepletter.render.renderer import Timings

    layout = [0.0]
    laid_out: Callable[..., str] = getattr(renderer, "layout_html")  # noqa: B009  (the name the renderer calls)

    def timed_layout(*args: Any, **kwargs: Any) -> str:
        start = time.perf_counter()
        try:
            return laid_out(*args, **kwargs)
        finally:
            layout[0] += time.perf_counter() - start

    setattr(renderer, "layout_html", timed_layout)  # noqa: B010

    settings, issue = load(workspace, issue_id)
    # What the renderer imports lazily is start-up, not render time: imported (and timed) apart.
    start = time.perf_counter()
    for module in RENDER_IMPORTS:
        importlib.import_module(module)
    imports = time.perf_counter() - start

    laps: list[dict[str, float]] = []
    rendered = None
    for _ in range(runs + 1):
        timings = Timings()
        layout[0] = 0.0
        start = time.perf_counter()
        rendered = render_personal(settings, issue, timings)
        total = time.perf_counter() - start
        laps.append({
            "total": total, "jinja": timings.jinja, "inlining": timings.inline, "layout": layout[0],
            "setup": timings.setup, "text": timings.text, "split": timings.split,
            "other": total - timings.total - layout[0],
        })
    assert rendered is not None
    html, text = rendered.web()
    first, warm = laps[0], laps[1:]
    return {
        "imports": imports,
        "first": first,
        "warm": {k: statistics.median(lap[k] for lap in warm) for k in first},
        "html_bytes": len(html.encode("utf-8")),
        "text_bytes": len(text.encode("utf-8")),
    }


# ---------------------------------------------------------------- personalisation


def recipients_from(settings: Settings, count: int) -> list[Recipient]:
    from cepletter.message.subscribers import SubscriberFile

    found: list[Recipient] = []
    for row in SubscriberFile(settings.path(settings.delivery.subscribers)).rows():
        if isinstance(row, Recipient):
            found.append(row)
    if not found:
        raise SystemExit("no subscribers in the benchmark workspace")
    # Repeat the list when asked for more than it holds: the work per recipient is the same.
    return [found[i % len(found)] for i in range(count)]


def cmd_personalise(workspace: Path, issue_id: str, count: int, runs: int) -> dict[str, Any]:
    """Recipients per second from the rendered issue to finished message bytes, no sending."""
    from cepletter.message.build import MessageFactory

    settings, issue = load(workspace, issue_id)
    people = recipients_from(settings, count)
    start = time.perf_counter()
    rendered = render(settings, issue)
    render_seconds = time.perf_counter() - start
    rates: list[float] = []
    size = 0
    for _ in range(runs):
        factory = MessageFactory(settings, rendered)
        start = time.perf_counter()
        for person in people:
            size += len(factory.build(person).data)
        rates.append(count / (time.perf_counter() - start))
    # Diagnostic: the same recipients with plain ASCII names (no RFC 2047 encoding of the To name).
    plain = [replace(person, name="Anna Janssens") for person in people]
    factory = MessageFactory(settings, rendered)
    start = time.perf_counter()
    for person in plain:
        factory.build(person)
    ascii_rate = count / (time.perf_counter() - start)
    return {
        "rates": rates,
        "ascii_rate": ascii_rate,
        "non_ascii_names": sum(not person.name.isascii() for person in people) / count,
        "render_seconds": render_seconds,
        "message_bytes": size / (count * runs),
    }


def cmd_message(workspace: Path, issue_id: str, out: Path) -> dict[str, Any]:
    """One recipient's message, exactly as cepletter sends it: the bare loop's payload."""
    from cepletter.message.build import MessageFactory

    settings, issue = load(workspace, issue_id)
    rendered = render(settings, issue)
    person = recipients_from(settings, 1)[0]
    data = MessageFactory(settings, rendered).build(person).data
    out.write_bytes(data)
    html, _text = rendered.web()
    return {"message_bytes": len(data), "html_bytes": len(html.encode("utf-8")), "subject": rendered.subject}


def cmd_feed(workspace: Path, feed: str) -> dict[str, Any]:
    """Reading one feed into items in process: with an empty cache, then unchanged and cached."""
    import shutil

    from cepletter.sources.reader import adhoc_source, read_items

    settings = load_settings(workspace)
    source = adhoc_source(feed)
    shutil.rmtree(settings.cache_dir, ignore_errors=True)
    start = time.perf_counter()
    first = read_items([source], settings)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    again = read_items([source], settings)
    warm = time.perf_counter() - start
    return {"cold": cold, "warm": warm, "items": len(first), "items_again": len(again)}


def cmd_web(workspace: Path, issue_id: str, out: Path) -> dict[str, Any]:
    """The rendered issue without personal data: newsletter.html and .txt in ``out``."""
    settings, issue = load(workspace, issue_id)
    html, text = render(settings, issue).web()
    out.mkdir(parents=True, exist_ok=True)
    (out / "newsletter.html").write_text(html, encoding="utf-8")
    (out / "newsletter.txt").write_text(text, encoding="utf-8")
    return {"html_bytes": len(html.encode("utf-8")), "text_bytes": len(text.encode("utf-8"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("feed")
    p.add_argument("workspace", type=Path)
    p.add_argument("feed")
    for name in ("render", "personalise", "message", "web"):
        p = sub.add_parser(name)
        p.add_argument("workspace", type=Path)
        p.add_argument("issue_id")
        if name in ("message", "web"):
            p.add_argument("out", type=Path)
        else:
            p.add_argument("--runs", type=int, default=3)
        if name == "personalise":
            p.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.command == "feed":
        result = cmd_feed(args.workspace, args.feed)
    elif args.command == "render":
        result = cmd_render(args.workspace, args.issue_id, args.runs)
    elif args.command == "personalise":
        result = cmd_personalise(args.workspace, args.issue_id, args.count, args.runs)
    elif args.command == "message":
        result = cmd_message(args.workspace, args.issue_id, args.out)
    else:
        result = cmd_web(args.workspace, args.issue_id, args.out)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
