"""Sending as users do: over STARTTLS, with the latency of a real relay, and to a real Postfix.

`wire`: an aiosmtpd sink that offers PIPELINING and STARTTLS (its certificate
given to every client as the CA file), reached directly (RTT 0, loopback) or
through the latency proxy (RTT 20 and 50 ms), with 1, 4 and 8 connections.
The contenders: `cepletter send`, a bare smtplib loop with and without
TCP_NODELAY, and mailmerge (one connection per message, one at a time, so
only in the one-connection column).

`postfix`: a private Postfix instance on 127.0.0.1 (bench/postfix.py) with
STARTTLS, every message delivered to one Maildir and each recipient checked
to have exactly one; cepletter today (bench/today.py) is a contender, so
"N× today's figure" is a ratio of one run.

The rate of a run is taken at the server, from its first accepted message
to its last: the steady pace of the wire, without the sender's start-up
(measured in Start-up) or its connecting. Round trips are counted by the
proxy in the same window: client writes that followed a server reply.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import fixtures, tlscert
from bench import postfix as pf
from bench import today as old
from bench import workspace as ws
from bench.context import Context, send_flags
from bench.measure import (
    BENCH,
    BenchError,
    Proxy,
    Run,
    Section,
    Sink,
    Target,
    ratio_per_round,
    rotated,
    run_timed,
)
from bench.report import num
from bench.send import bare_message

CEP = "cepletter send"
BARE = "smtplib loop"
NODELAY = "smtplib loop, TCP_NODELAY"
MAILMERGE = "mailmerge"
PASSWORD = b"bench-password\n"


def certificate(ctx: Context) -> tlscert.Certificate:
    return tlscert.certificate(ctx.work / "tls")


def _subscribers(folder: Path, count: int) -> str:
    name = f"subscribers-{count}.csv"
    path = folder / name
    if not path.exists():
        fixtures.write_subscribers(path, count)
    return name


def _copy_workspace(ctx: Context, name: str) -> Path:
    return ws.copy_newsletter(ctx.newsletter(), ctx.work / name)


@dataclass
class _Contender:
    """How one contender sends ``count`` messages over ``connections`` connections to ``port``."""

    run: Callable[[int, int, int], Run]
    only_one_connection: bool = False


def _contenders(ctx: Context, root: Path, cert: tlscert.Certificate, sink_auth: bool) -> dict[str, _Contender]:
    news = ctx.newsletter()
    message = bare_message(ctx, news)
    flags = send_flags(ctx, news.root)

    def cepletter(port: int, connections: int, count: int) -> Run:
        fixtures.write_workspace(root, port=port, transport="smtp", connections=connections, security="starttls",
                                 ca_file=cert.cert, subscribers=_subscribers(root, count))
        ws.clear_journal(root, news.issue_id)
        cmd = ws.cepletter("-C", str(root), "send", news.issue_id, "--connections", str(connections), *flags)
        return run_timed(cmd, env=ctx.env)

    def bare(nodelay: bool) -> Callable[[int, int, int], Run]:
        def run(port: int, connections: int, count: int) -> Run:
            cmd = [sys.executable, str(BENCH / "baseline_smtp.py"), "--port", str(port), "--message", str(message),
                   "--list", str(root / _subscribers(root, count)), "--threads", str(connections),
                   "--starttls", "--ca-file", str(cert.cert), *(["--nodelay"] if nodelay else [])]
            return run_timed(cmd, env=ctx.env)
        return run

    found = {CEP: _Contender(cepletter), BARE: _Contender(bare(False)), NODELAY: _Contender(bare(True))}
    if ctx.peers.mailmerge is not None and sink_auth:
        command = ctx.peers.mailmerge
        folder = ctx.work / "mailmerge-tls"

        def mailmerge(port: int, connections: int, count: int) -> Run:
            files = fixtures.mailmerge_files(folder, port=port, subscribers=root / _subscribers(root, count),
                                             html=news.html, subject=news.subject, starttls=True)
            cmd = [*command, "--no-dry-run", "--no-limit", "--template", str(files["template"]),
                   "--database", str(files["database"]), "--config", str(files["config"])]
            # It asks for the login password (its STARTTLS mode always logs in): one line on stdin.
            return run_timed(cmd, cwd=folder, discard_stdout=True, stdin=PASSWORD)

        found[MAILMERGE] = _Contender(mailmerge, only_one_connection=True)
    return found


def _cell(rtt: int, connections: int) -> str:
    where = "loopback" if rtt == 0 else f"RTT {rtt} ms"
    return f"{where}, {connections} conn."


def _ceiling(rtt: int, connections: int) -> float:
    """One round trip per message per connection."""
    return connections * 1000.0 / rtt


def bench_wire(ctx: Context) -> Section:
    section = Section("wire", "Over the wire: STARTTLS, latency and connections (aiosmtpd with PIPELINING)")
    scale = ctx.scale
    cert = certificate(ctx)
    root = _copy_workspace(ctx, "wire")
    sink = Sink(pipelining=True, tls=(cert.cert, cert.key), auth=True)
    proxies: dict[int, Proxy] = {}
    try:
        for rtt in scale.wire_rtts:
            proxies[rtt] = Proxy(sink.port, rtt)  # at RTT 0 only for counting round trips (see below)
        contenders = _contenders(ctx, root, cert, sink_auth=True)
        if MAILMERGE not in contenders:
            section.notes.append("mailmerge is not installed in the peer environment: its rows are missing.")
        names = list(contenders)
        for round_no in range(scale.rounds):
            for rtt in scale.wire_rtts:
                for connections in scale.wire_connections:
                    for name in rotated(names, round_no + connections):
                        contender = contenders[name]
                        if contender.only_one_connection and connections != 1:
                            continue
                        _measure_cell(ctx, section, sink, proxies[rtt], name, contender, rtt, connections,
                                      count_round_trips=round_no == 0)
            ctx.log(f"  round {round_no + 1}: " + ", ".join(
                f"{_cell(r, c)} {section.figure(_fig(CEP, r, c, 'rate'), 'msgs/s').samples[-1]:.0f}/s"
                for r in scale.wire_rtts for c in scale.wire_connections[:1]))
    finally:
        for proxy in proxies.values():
            proxy.close()
        sink.close()
    where = ", ".join("loopback" if r == 0 else f"{r} ms" for r in scale.wire_rtts)
    per_connection = ", ".join(f"{scale.wire_per_connection[r]:,}" for r in scale.wire_rtts)
    mailmerge_count = ", ".join(f"{scale.wire_mailmerge[r]:,}" for r in scale.wire_rtts)
    size = bare_message(ctx, ctx.newsletter()).stat().st_size
    _wire_targets(section, scale.wire_rtts, scale.wire_connections, names)
    section.tables += _wire_tables(section, scale.wire_rtts, scale.wire_connections, names)
    section.notes += [
        f"Every run sends the newsletter ({size:,} bytes as cepletter builds it; mailmerge its HTML-only "
        "form) over STARTTLS, verified against the sink's self-signed certificate given as `ca_file`; the sink "
        "offers PIPELINING (RFC 2920). Each run is checked at the sink: messages = distinct recipients = "
        "the list.",
        "**msgs/s** is the steady rate at the server, from the first accepted message to the last: the "
        "sender's start-up and connecting are left out (start-up has its own section). The ceiling is one "
        "round trip per message per connection (connections ÷ RTT); on loopback it is the TCP_NODELAY "
        "smtplib loop over one TLS connection, of the same round.",
        "**RT/msg** is the round trips the client waited for per message in that window, counted by the "
        "latency proxy (bench/proxy.py: a client write after a server reply is one). Loopback runs go "
        "direct, with no proxy in the path; their round trips come from one extra run through the proxy "
        "with no delay, in the first round.",
        f"Messages per connection ({where}): {per_connection}; mailmerge sends {mailmerge_count} in all (it "
        "opens a connection, does STARTTLS and logs in for every message, one at a time; its STARTTLS mode "
        "always logs in, which the sink accepts).",
    ]
    return section


def _fig(name: str, rtt: int, connections: int, what: str) -> str:
    return f"{name}, {_cell(rtt, connections)}: {what}"


def _measure_cell(
    ctx: Context, section: Section, sink: Sink, proxy: Proxy, name: str, contender: _Contender,
    rtt: int, connections: int, *, count_round_trips: bool,
) -> None:
    scale = ctx.scale
    count = scale.wire_mailmerge[rtt] if contender.only_one_connection else scale.wire_per_connection[rtt] * connections
    direct = rtt == 0
    got, run = _one_run(sink, proxy if not direct else None, contender, connections, count, name)
    first, last = got["first_ns"], got["last_ns"]
    steady = (count - 1) / ((last - first) / 1e9) if count > 1 and last > first else count / run.seconds
    section.figure(_fig(name, rtt, connections, "rate"), "msgs/s", listed=False).samples.append(steady)
    section.figure(_fig(name, rtt, connections, "whole run"), "msgs/s", listed=False).samples.append(
        count / run.seconds)
    if not direct:
        turns = proxy.turns_between(first, last)
        section.figure(_fig(name, rtt, connections, "round trips"), "per message", listed=False).samples.append(
            turns / max(count - 1, 1))
        section.figure(_fig(name, rtt, connections, "round trips, whole run"), "per message",
                       listed=False).samples.append(proxy.stats()["turns"] / count)
    elif count_round_trips:
        # The same send through the proxy with no delay, only to count.
        small = max(2, min(count, 20 * connections)) if not contender.only_one_connection else count
        got, _ = _one_run(sink, proxy, contender, connections, small, name)
        turns = proxy.turns_between(got["first_ns"], got["last_ns"])
        section.figure(_fig(name, rtt, connections, "round trips"), "per message", listed=False).samples.append(
            turns / max(small - 1, 1))
        section.figure(_fig(name, rtt, connections, "round trips, whole run"), "per message",
                       listed=False).samples.append(proxy.stats()["turns"] / small)


def _one_run(
    sink: Sink, proxy: Proxy | None, contender: _Contender, connections: int, count: int, name: str,
) -> tuple[dict[str, int], Run]:
    sink.reset()
    if proxy is not None:
        proxy.reset()
    port = proxy.port if proxy is not None else sink.port
    run = contender.run(port, connections, count).check(name)
    return sink.expect(count, name), run


def _wire_targets(section: Section, rtts: tuple[int, ...], conns: tuple[int, ...], names: list[str]) -> None:
    fig = section.figure

    def rate(name: str, rtt: int, c: int) -> list[float]:
        return fig(_fig(name, rtt, c, "rate"), "msgs/s").samples

    def to_ceiling(rtt: int, c: int) -> list[float]:
        return [v / _ceiling(rtt, c) for v in rate(CEP, rtt, c)]

    if 20 in rtts and 1 in conns:
        section.targets.append(Target("RTT 20 ms, 1 conn.: cepletter ÷ the 1-RTT ceiling (msgs/s)", ">=", 0.75,
                                      to_ceiling(20, 1)))
        section.targets.append(Target("RTT 20 ms, 1 conn.: cepletter ÷ bare smtplib (msgs/s)", ">=", 3.0,
                                      _ratios(rate(CEP, 20, 1), rate(BARE, 20, 1))))
    if 50 in rtts and 8 in conns:
        section.targets.append(Target("RTT 50 ms, 8 conn.: cepletter ÷ eight times the 1-RTT ceiling (msgs/s)",
                                      ">=", 0.7, to_ceiling(50, 8)))
    if 0 in rtts and 1 in conns:
        section.targets.append(Target("STARTTLS on loopback, 1 conn.: cepletter ÷ TCP_NODELAY smtplib loop (msgs/s)",
                                      ">=", 0.8, _ratios(rate(CEP, 0, 1), rate(NODELAY, 0, 1))))
        section.targets.append(Target(
            "STARTTLS on loopback, 1 conn.: smtplib loop ÷ the same with TCP_NODELAY (msgs/s)", ">=", 0.8,
            _ratios(rate(BARE, 0, 1), rate(NODELAY, 0, 1)),
            note="what Nagle's algorithm and the delayed ACK cost a client that leaves them on"))
    if MAILMERGE in names and 20 in rtts and 1 in conns:
        section.targets.append(Target("RTT 20 ms, 1 conn.: cepletter ÷ mailmerge (msgs/s)", ">=", 4.0,
                                      _ratios(rate(CEP, 20, 1), rate(MAILMERGE, 20, 1)),
                                      note="mailmerge opens a connection per message"))


def _ratios(a: list[float], b: list[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=True) if y]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _wire_tables(section: Section, rtts: tuple[int, ...], conns: tuple[int, ...], names: list[str]) -> list[str]:
    """One table per RTT: contenders by connections, msgs/s, ratio to the ceiling, round trips per message."""
    lines: list[str] = []
    by_name = {f.name: f for f in section.figures}

    def samples(name: str, rtt: int, c: int, what: str) -> list[float]:
        found = by_name.get(_fig(name, rtt, c, what))
        return found.samples if found else []

    for rtt in rtts:
        title = "Loopback (RTT 0), STARTTLS" if rtt == 0 else f"RTT {rtt} ms, STARTTLS"
        ceiling = ("TCP_NODELAY smtplib loop over one TLS connection" if rtt == 0
                   else "one round trip per message per connection")
        lines += [f"**{title}**: msgs/s (median of the rounds) · ratio to the ceiling ({ceiling}) · "
                  "round trips per message", "",
                  "| contender | " + " | ".join(f"{c} conn." for c in conns) + " |",
                  "|---|" + "---:|" * len(conns)]
        for name in names:
            cells = []
            for c in conns:
                rate = samples(name, rtt, c, "rate")
                if not rate:
                    cells.append("—")
                    continue
                ceil = samples(NODELAY, 0, 1, "rate") if rtt == 0 else [_ceiling(rtt, c)] * len(rate)
                ratio = _median(_ratios(rate, ceil)) if ceil else None
                trips = _median(samples(name, rtt, c, "round trips"))
                text = f"{num(_median(rate) or 0)}/s"
                text += f" · {num(ratio)}×" if ratio is not None else ""
                text += f" · {num(trips)} RT" if trips is not None else ""
                cells.append(text)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        ceil_row = [f"{num(_ceiling(rtt, c))}/s" if rtt else "the loop's 1-conn. figure" for c in conns]
        lines += ["| *ceiling* | " + " | ".join(ceil_row) + " |", ""]
    lines += ["**Whole runs** (start-up and connecting included): msgs/s", "",
              "| contender | " + " | ".join(_cell(r, c) for r in rtts for c in conns) + " |",
              "|---|" + "---:|" * (len(rtts) * len(conns))]
    for name in names:
        cells = [num(m) if (m := _median(samples(name, r, c, "whole run"))) is not None else "—"
                 for r in rtts for c in conns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------- a real Postfix


def bench_postfix(ctx: Context) -> Section:
    section = Section("postfix", "A real Postfix with STARTTLS, loopback")
    reason = pf.unavailable()
    if reason:
        section.notes.append(f"Skipped: {reason}.")
        return section
    cert = certificate(ctx)
    news = ctx.newsletter()
    root = _copy_workspace(ctx, "postfix-ws")
    # No mailmerge: its STARTTLS mode always logs in, and this Postfix offers no login.
    contenders = _contenders(ctx, root, cert, sink_auth=False)
    found = old.for_run(ctx)
    if isinstance(found, old.Today):
        label = found.label
        old_root = _copy_workspace(ctx, "postfix-ws-today")
        old_flags = old.send_flags(found, old_root)

        def run_today(port: int, connections: int, count: int, found: old.Today = found) -> Run:
            fixtures.write_workspace(old_root, port=port, transport="smtp", connections=connections,
                                     security="starttls", ca_file=cert.cert, subscribers=_subscribers(old_root, count))
            ws.clear_journal(old_root, news.issue_id)
            cmd = found.command("-C", str(old_root), "send", news.issue_id, "--connections", str(connections),
                                *old_flags)
            return run_timed(cmd, env=found.env(), cwd=found.root)

        contenders[label] = _Contender(run_today)
    else:
        label = ""
        section.notes.append(f"Today's cepletter is missing: {found}.")
    names = list(contenders)
    per = ctx.scale.postfix_per_connection
    instance = ctx.work / "postfix"
    if pf.closed_parent(instance) is not None:
        # Postfix's daemons cannot enter the work folder: a folder of its own in the system's temporary one.
        folder = Path(tempfile.mkdtemp(prefix="bench-postfix-"))
        folder.chmod(0o711)
        ctx.cleanup.append(folder)
        instance = folder / "postfix"
    for name in names:  # listed in this order, whichever runs first
        for connections in ctx.scale.postfix_connections:
            section.figure(f"{name}, {connections} conn.", "msgs/s")
    with pf.PrivatePostfix(instance, cert.cert, cert.key) as server:
        for round_no in range(ctx.scale.rounds):
            for connections in ctx.scale.postfix_connections:
                count = per * connections
                addresses = {address for address, _ in fixtures.subscriber_rows(count)}
                for name in rotated(names, round_no + connections):
                    server.clear()
                    run = contenders[name].run(server.port, connections, count).check(name)
                    got = server.wait_delivered(count)
                    doubled = sorted(a for a, n in got.items() if n > 1)
                    missing = sorted(addresses - set(got))
                    if doubled or missing or set(got) - addresses:
                        raise BenchError(
                            f"{name}: Postfix delivered {sum(got.values())} messages for {count} recipients "
                            f"({len(missing)} missing, {len(doubled)} twice, e.g. {(missing or doubled or [''])[0]}); "
                            f"queue {server.queued()}; {server.log_tail(2)}")
                    section.figure(f"{name}, {connections} conn.", "msgs/s").samples.append(count / run.seconds)
            ctx.log(f"  round {round_no + 1}: " + ", ".join(
                f"{n}, {c} conn. {section.figure(f'{n}, {c} conn.', 'msgs/s').samples[-1]:.0f}/s"
                for n in names for c in ctx.scale.postfix_connections))
    fig = section.figure
    conns = ctx.scale.postfix_connections
    if label and 4 in conns and 1 in conns:
        section.targets.append(Target(
            "real Postfix, STARTTLS, 4 conn.: cepletter ÷ today's cepletter on 1 conn. (msgs/s)", ">=", 10.0,
            ratio_per_round(fig(f"{CEP}, 4 conn.", "msgs/s"), fig(f"{label}, 1 conn.", "msgs/s"))))
        section.targets.append(Target(
            "real Postfix, STARTTLS, 4 conn.: cepletter ÷ today's cepletter on 4 conn. (msgs/s)", ">=", 10.0,
            ratio_per_round(fig(f"{CEP}, 4 conn.", "msgs/s"), fig(f"{label}, 4 conn.", "msgs/s")),
            note="today's cepletter given the same four connections"))
    for c in conns:
        section.targets.append(Target(
            f"real Postfix, STARTTLS, {c} conn.: cepletter ÷ TCP_NODELAY smtplib loop (msgs/s)", ">=", 0.8,
            ratio_per_round(fig(f"{CEP}, {c} conn.", "msgs/s"), fig(f"{NODELAY}, {c} conn.", "msgs/s")),
            note="the loop that sets TCP_NODELAY, on as many connections"))
    section.notes += [
        f"Postfix {_postfix_version()} as a private instance (bench/postfix.py): its own configuration and "
        "queue under bench/work/postfix, listening on 127.0.0.1 only, STARTTLS with the benchmark's "
        "self-signed certificate (every client verifies it as `ca_file`), and every recipient at "
        f"{pf.DOMAIN} delivered by virtual(8) into one Maildir. It offers PIPELINING, as Postfix does.",
        f"{per:,} messages per connection; msgs/s is the whole run of the sender (start-up included), the "
        "time Postfix takes to accept them. After each run the benchmark waits until the queue is empty and "
        "checks the Maildir: every recipient's Delivered-To exactly once, nobody else.",
        f"`{label or 'today'}` is cepletter as it was before this work (bench/today.py), exported from git "
        "and given the same settings; the target compares with its one-connection figure, the one the issue "
        "quotes (21 msgs/s on the machine it was measured on).",
        "mailmerge is not run here: its STARTTLS mode always logs in, and this Postfix offers no login.",
    ]
    return section


def _postfix_version() -> str:
    proc = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "(version unknown)"
