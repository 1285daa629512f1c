"""Send throughput: cepletter against mailmerge and bare smtplib loops, every message counted at the sink.

Within a round every contender runs once, in an order rotated by one each
round; ratios are taken between samples of the same round.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import fixtures
from bench import today as old
from bench import workspace as ws
from bench.context import Context, send_flags
from bench.measure import BENCH, BenchError, Run, Section, Sink, Target, ratio_per_round, rotated, run_timed

# ---------------------------------------------------------------- send


def bare_message(ctx: Context, news: ws.Newsletter) -> Path:
    """One message exactly as cepletter builds it, for the bare loop to send to everyone."""
    if ctx.bare_message is not None:
        return ctx.bare_message
    out = ctx.work / "one-message.eml"
    ctx.bare_message = out
    run_timed(
        [sys.executable, str(BENCH / "inprocess.py"), "message", str(news.root), news.issue_id, str(out)],
        env=ctx.env,
    ).check("building one message with cepletter.message.build")
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
        try:
            got = sink.expect(count, name)
        except BenchError as exc:
            # Once, a run has been seen to deliver nothing though it exited 0: run it again, and say so.
            section.notes.append(f"Repeated one run: {exc}.")
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
    message = bare_message(ctx, news)
    flags = send_flags(ctx, news.root)
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
    today_name = ""
    if not raw:
        found = _today(ctx, news, sink.port, connections)
        if isinstance(found, str):
            section.notes.append(f"Today's cepletter is missing: {found}.")
        else:
            today_name = f"{found[0]}, {connections} conn."
            contenders[today_name] = _Contender(found[1], count)
    mm_name, mm_multi_name = "mailmerge (HTML part only)", "mailmerge (text + HTML, like cepletter)"
    if connections == 1:
        if ctx.peers.mailmerge is None:
            section.notes.append("mailmerge is not installed in the peer environment: its rows are missing.")
        elif raw:
            contenders.update(_mailmerge(ctx, news, subscribers, sink.port, mm_name, None))
            section.notes.append(
                "The minimal sink (`bench/sink.py --engine raw`) accepts each message with almost no work, "
                "so these rates show what each sender itself can do; against aiosmtpd (the sections above) "
                "the sink's own CPU, taken from the same cores, caps every sender."
            )
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
    info = "the sink costs almost nothing: the senders' own ceiling" if raw else ""
    prefix = "minimal sink, " if raw else ""
    if mm_name in contenders:
        section.targets.append(Target(f"{prefix}send 1 conn.: cepletter ÷ mailmerge (msgs/s)", ">=", 4.0,
                                      ratio_per_round(cep, section.figure(mm_name, "msgs/s")), note=info))
    if mm_multi_name in contenders:
        section.targets.append(Target("send 1 conn.: cepletter ÷ mailmerge text + HTML (msgs/s)", ">=", 4.0,
                                      ratio_per_round(cep, section.figure(mm_multi_name, "msgs/s")),
                                      note="mailmerge given the same text + HTML message as cepletter"))
    if today_name:
        section.targets.append(Target(
            f"loopback without TLS, {connections} conn.: cepletter ÷ today's cepletter (msgs/s)", ">=", 0.95,
            ratio_per_round(cep, section.figure(today_name, "msgs/s"))))
        section.notes.append(
            f"`{today_name}` is cepletter as it was before the send path was reworked for the wire "
            "(bench/today.py), in a copy of the same workspace; \"no slower than today\" allows 5% for the "
            "spread between rounds of two equal senders.")
    floor = 0.7 if connections == 1 else 0.85
    section.targets.append(Target(f"{prefix}send {connections} conn.: cepletter ÷ bare smtplib (msgs/s)", ">=",
                                  floor, ratio_per_round(cep, section.figure(bare_name, "msgs/s")), note=info))
    if not raw and mm_name in contenders:
        section.targets.append(Target(
            "send 1 conn.: bare smtplib ÷ mailmerge (msgs/s)", ">=", 4.0,
            ratio_per_round(section.figure(bare_name, "msgs/s"), section.figure(mm_name, "msgs/s")),
            note="smtplib's own sendmail() with cepletter's message, against mailmerge",
        ))
    section.notes.append(
        f"{count:,} recipients, one message each, every run checked at the sink (messages = distinct "
        f"recipients); the newsletter has {news.items} items, {len(news.html.encode()):,} bytes of HTML. "
        "cepletter's runs include its journal (send-log.jsonl, fsynced), removed before each run. "
        "The workspace was previewed once after drafting, as in normal use, so `send` renders the issue "
        "with Jinja and reuses the inlined page that preview left in the cache (it inlines again whenever "
        "the page changes). "
        "The bare loop sends one message built by cepletter's own message builder, unchanged, to everyone, "
        "with smtplib's `sendmail()`, as the issue defines the floor; cepletter writes MAIL, RCPT and the "
        "dot-stuffed DATA itself (smtplib's multi-line regular expression for the dots costs about half a "
        "millisecond per 47 KB message) and builds the next message while the server reads the current "
        "one, so it can pass that floor. On aiosmtpd the server's work per message (it reads DATA one "
        "line at a time; the HTML goes out in lines of up to 900 octets) sets the pace for every sender."
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


def _today(ctx: Context, news: ws.Newsletter, port: int, connections: int) -> tuple[str, Callable[[], Run]] | str:
    """Today's cepletter sending to the same sink, in its own copy of the newsletter workspace."""
    found = old.for_run(ctx)
    if isinstance(found, str):
        return found
    root = ws.copy_newsletter(news, ctx.work / "newsletter-today")
    shutil.copy2(news.root / "subscribers.csv", root / "subscribers.csv")
    fixtures.write_workspace(root, port=port, transport="smtp", connections=connections)
    flags = old.send_flags(found, root)

    def run() -> Run:
        ws.clear_journal(root, news.issue_id)
        cmd = found.command("-C", str(root), "send", news.issue_id, "--connections", str(connections), *flags)
        return run_timed(cmd, env=found.env(), cwd=found.root)

    return found.label, run


def bench_send1(ctx: Context) -> Section:
    return _send(ctx, 1)


def bench_send4(ctx: Context) -> Section:
    return _send(ctx, 4)


def bench_send_raw(ctx: Context) -> Section:
    return _send(ctx, 1, engine="raw")
