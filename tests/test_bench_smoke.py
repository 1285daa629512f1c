"""The benchmark suite (bench/) keeps working: its parts, and every benchmark at tiny sizes.

No timing is asserted here: the figures belong in bench/RESULTS.md, written
by `python bench/run.py`. These tests prove that the harness measures what
it says (the sink counts what was sent, the fixtures are what they claim)
and that no benchmark has rotted as the commands changed.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def bench(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


def test_statistics_give_median_and_spread_and_per_round_ratios() -> None:
    measure = bench("measure")
    summary = measure.summarise([3.0, 1.0, 2.0, 10.0])
    assert (summary.median, summary.low, summary.high, summary.n) == (2.5, 1.0, 10.0, 4)
    fast = measure.Figure("a", "msgs/s", samples=[400.0, 500.0, 300.0])
    slow = measure.Figure("b", "msgs/s", samples=[100.0, 100.0, 150.0])
    assert measure.ratio_per_round(fast, slow) == [4.0, 5.0, 2.0]
    target = measure.Target("x", ">=", 4.0, measure.ratio_per_round(fast, slow))
    assert target.summary().median == 4.0 and target.passed
    assert not measure.Target("y", "<=", 3.9, [4.0, 5.0, 2.0]).passed


def test_rounds_rotate_the_order_so_no_contender_always_goes_first() -> None:
    rotated = bench("measure").rotated
    names = ["cepletter", "mailmerge", "smtplib"]
    firsts = {rotated(names, r)[0] for r in range(3)}
    assert firsts == set(names)
    assert sorted(rotated(names, 4)) == sorted(names)


def test_timed_run_reports_exit_code_output_and_its_own_peak_memory() -> None:
    measure = bench("measure")
    # A child that holds ~60 MB; a later small child must not inherit that figure.
    big = measure.run_timed([sys.executable, "-c", "b = bytearray(60_000_000); b[::4096] = b'x' * len(b[::4096]); print('ok')"])
    small = measure.run_timed([sys.executable, "-c", "import sys; sys.exit('no luck')"])
    assert big.returncode == 0 and big.stdout.strip() == "ok"
    assert big.max_rss_kib > 50_000
    assert small.max_rss_kib < big.max_rss_kib - 40_000
    assert small.returncode == 1 and "no luck" in small.stderr
    with pytest.raises(measure.BenchError, match="exited with 1: no luck"):
        small.check("the child")


def _message(to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "newsletter@example.org"
    msg["To"] = to
    msg["Subject"] = "Benchmark"
    msg.set_content("Hello\n.\nA line with only a dot above.\n")
    return msg.as_bytes()


def test_sink_counts_messages_and_distinct_recipients_and_resets() -> None:
    measure = bench("measure")
    with measure.Sink() as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
            for address in ("a@example.org", "b@example.org", "A@example.org"):
                smtp.sendmail("newsletter@example.org", [address], _message(address))
        stats = sink.stats()
        assert stats["messages"] == 3
        assert stats["distinct"] == 2  # addresses compare case-insensitively
        assert stats["bytes"] > 3 * 100
        with pytest.raises(measure.BenchError, match="received 3 messages for 2 distinct recipients, expected 3"):
            sink.expect(3, "sending")
        sink.reset()
        after = sink.stats()
        assert after.pop("cpu_us") >= 0
        assert after == {"messages": 0, "recipients": 0, "distinct": 0, "bytes": 0, "first_ns": 0, "last_ns": 0}
    assert sink.proc.returncode == 0


def test_bare_smtplib_loop_sends_the_same_bytes_to_every_address(tmp_path: Path) -> None:
    measure, fixtures = bench("measure"), bench("fixtures")
    subscribers = fixtures.write_subscribers(tmp_path / "subscribers.csv", 9)
    eml = tmp_path / "one.eml"
    eml.write_bytes(_message("reader000000@example.org"))
    with measure.Sink() as sink:
        run = measure.run_timed([
            sys.executable, str(REPO / "bench" / "baseline_smtp.py"), "--port", str(sink.port),
            "--message", str(eml), "--list", str(subscribers), "--threads", "4",
        ])
        assert run.returncode == 0, run.stderr
        stats = sink.expect(9, "bare loop")
    # The loop sends CRLF line ends, as belongs on the wire; the sink keeps what it got.
    assert stats["bytes"] >= 9 * len(eml.read_bytes())


def test_sink_marks_when_it_accepted_the_first_and_the_last_message() -> None:
    measure = bench("measure")
    with measure.Sink() as sink:
        before = time.monotonic_ns()
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
            smtp.sendmail("newsletter@example.org", ["a@example.org"], _message("a@example.org"))
            between = time.monotonic_ns()
            smtp.sendmail("newsletter@example.org", ["b@example.org"], _message("b@example.org"))
        after = time.monotonic_ns()
        stats = sink.stats()
    # The sink's clock is this process's: CLOCK_MONOTONIC is one clock for the whole machine.
    assert before < stats["first_ns"] < between < stats["last_ns"] < after


# ---------------------------------------------------------------- the latency proxy


def _pipelined_session(port: int, messages: int) -> None:
    """A client that pipelines as RFC 2920 allows: each message's content goes with the next envelope."""
    def envelope(i: int) -> bytes:
        return f"MAIL FROM:<newsletter@example.org>\r\nRCPT TO:<p{i}@example.org>\r\nDATA\r\n".encode()

    content = b"Subject: pipelined\r\n\r\nHello\r\n.\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def replies(count: int) -> list[bytes]:
            got: list[bytes] = []
            while len(got) < count:
                line = reader.readline()
                assert line, "the server closed the connection"
                if line[3:4] != b"-":  # the last line of a reply
                    got.append(line[:3])
            return got

        assert replies(1) == [b"220"]
        sock.sendall(b"EHLO client.example.org\r\n")
        assert replies(1) == [b"250"]
        sock.sendall(envelope(0))
        assert replies(3) == [b"250", b"250", b"354"]
        for i in range(1, messages):
            sock.sendall(content + envelope(i))  # one write: the end of one message, the next envelope
            assert replies(4) == [b"250", b"250", b"250", b"354"]
        sock.sendall(content)
        assert replies(1) == [b"250"]
        sock.sendall(b"QUIT\r\n")
        assert replies(1) == [b"221"]


def test_proxy_counts_one_round_trip_per_command_for_smtplib() -> None:
    measure, proxy_mod = bench("measure"), bench("proxy")
    with measure.Sink() as sink, proxy_mod.LatencyProxy(sink.port, 0.004) as proxy:
        with smtplib.SMTP("127.0.0.1", proxy.port, timeout=10) as smtp:
            for address in ("a@example.org", "b@example.org", "c@example.org"):
                smtp.sendmail("newsletter@example.org", [address], _message(address))
        got = sink.expect(3, "through the proxy")
        # EHLO, then MAIL, RCPT, DATA and the content for each message, then QUIT.
        assert _settled(proxy)["turns"] == 1 + 3 * 4 + 1
        # Between the first and the last accepted message: the 4 waits of each later message.
        assert proxy.turns_between(got["first_ns"], got["last_ns"]) == 2 * 4
        stats = proxy.stats()
        assert stats["connections"] == 1 and stats["per_connection"] == [14]
        assert stats["client_bytes"] > 3 * 100 and stats["server_bytes"] > 0


def test_proxy_counts_a_pipelined_group_as_one_round_trip() -> None:
    measure, proxy_mod = bench("measure"), bench("proxy")
    with measure.Sink(pipelining=True) as sink, proxy_mod.LatencyProxy(sink.port, 0.004) as proxy:
        _pipelined_session(proxy.port, 5)
        got = sink.expect(5, "pipelined through the proxy")
        # EHLO, the first envelope, each content (with the next envelope), QUIT.
        assert _settled(proxy)["turns"] == 1 + 1 + 5 + 1
        assert proxy.turns_between(got["first_ns"], got["last_ns"]) == 4  # one per later message


def test_proxy_process_relays_and_counts_like_the_thread() -> None:
    measure = bench("measure")
    with measure.Sink() as sink, measure.Proxy(sink.port, 2) as proxy:
        with smtplib.SMTP("127.0.0.1", proxy.port, timeout=10) as smtp:
            smtp.sendmail("newsletter@example.org", ["a@example.org"], _message("a@example.org"))
            smtp.sendmail("newsletter@example.org", ["b@example.org"], _message("b@example.org"))
        got = sink.expect(2, "through the proxy process")
        assert proxy.turns_between(got["first_ns"], got["last_ns"]) == 4
        assert proxy.stats()["turns"] >= 1 + 2 * 4
        proxy.reset()
        assert proxy.stats()["turns"] == 0


def _settled(proxy: Any) -> dict[str, Any]:
    """The proxy's counters once the client's connection has been wound down through it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stats: dict[str, Any] = proxy.stats()
        if stats["per_connection"]:
            return stats
        time.sleep(0.01)
    raise AssertionError("the relayed connection did not close")


# ---------------------------------------------------------------- TLS


def test_tls_sink_offers_pipelining_and_starttls_and_takes_mail_only_after_it(tmp_path: Path) -> None:
    measure, tlscert = bench("measure"), bench("tlscert")
    cert = tlscert.certificate(tmp_path)
    assert tlscert.certificate(tmp_path) == cert  # made once, then reused
    with measure.Sink(pipelining=True, tls=(cert.cert, cert.key)) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("pipelining") and smtp.has_extn("starttls")
            code, _ = smtp.mail("newsletter@example.org")
            assert code == 530  # not before STARTTLS
            smtp.rset()
            smtp.starttls(context=cert.client_context())  # verified: host name and chain, against the file
            smtp.ehlo()
            assert smtp.has_extn("pipelining") and not smtp.has_extn("starttls")
            smtp.sendmail("newsletter@example.org", ["a@example.org"], _message("a@example.org"))
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp, pytest.raises(ssl.SSLCertVerificationError):
            smtp.starttls(context=ssl.create_default_context())  # the system store does not know it
        assert sink.expect(1, "over TLS")["messages"] == 1


def test_bare_loop_over_starttls_with_nodelay_through_the_proxy(tmp_path: Path) -> None:
    measure, fixtures, tlscert = bench("measure"), bench("fixtures"), bench("tlscert")
    cert = tlscert.certificate(tmp_path)
    subscribers = fixtures.write_subscribers(tmp_path / "subscribers.csv", 6)
    eml = tmp_path / "one.eml"
    eml.write_bytes(_message("reader000000@example.org"))
    with measure.Sink(pipelining=True, tls=(cert.cert, cert.key)) as sink, measure.Proxy(sink.port, 0) as proxy:
        run = measure.run_timed([
            sys.executable, str(REPO / "bench" / "baseline_smtp.py"), "--port", str(proxy.port),
            "--message", str(eml), "--list", str(subscribers), "--threads", "2",
            "--starttls", "--ca-file", str(cert.cert), "--nodelay",
        ])
        assert run.returncode == 0, run.stderr
        got = sink.expect(6, "bare loop over TLS")
        assert proxy.stats()["connections"] == 2
        # Two connections of three messages each, four waits per message: between the first and
        # the last message at least the other connection's three and this one's two later messages.
        assert proxy.turns_between(got["first_ns"], got["last_ns"]) >= 4 * 4


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder other users may enter (pytest's own are closed): Postfix's daemons run as postfix."""
    folder = Path(tempfile.mkdtemp(prefix="bench-postfix-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_private_postfix_delivers_each_message_once_to_its_maildir(open_folder: Path) -> None:
    postfix, tlscert = bench("postfix"), bench("tlscert")
    reason = postfix.unavailable()
    if reason:
        pytest.skip(reason)
    cert = tlscert.certificate(open_folder / "tls")
    with postfix.PrivatePostfix(open_folder / "postfix", cert.cert, cert.key) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as smtp:
            smtp.starttls(context=cert.client_context())
            for address in ("a@example.org", "b@example.org", "c@example.org"):
                smtp.sendmail("newsletter@example.org", [address], _message(address))
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("newsletter@example.org", ["someone@example.com"], _message("x"))  # no relaying
        got = server.wait_delivered(3, timeout=60)
        assert got == {"a@example.org": 1, "b@example.org": 1, "c@example.org": 1}
        server.clear()
        assert server.wait_delivered(0, timeout=5) == {}
    assert not server.running


def test_fixtures_feed_and_lists_are_what_they_claim(tmp_path: Path) -> None:
    import feedparser

    fixtures = bench("fixtures")
    feed = fixtures.write_feed(tmp_path / "feed.xml", 25)
    assert feed.read_bytes() == fixtures.feed_xml(25).encode("utf-8")  # fixed seed: reruns are identical
    parsed = feedparser.parse(str(feed))
    assert not parsed.bozo
    assert len(parsed.entries) == 25
    assert all(entry.title and entry.link.startswith("https://example.org/") for entry in parsed.entries)
    assert 2_000 < len(fixtures.feed_xml(10)) / 10 < 4_000  # ~2.8 KB per item, like the peers' feed

    subscribers = fixtures.write_subscribers(tmp_path / "subscribers.csv", 1_000)
    with subscribers.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1_000
    assert len({row["email"] for row in rows}) == 1_000
    assert any(not row["name"].isascii() for row in rows)


def test_mailmerge_template_sends_the_newsletter_html_unchanged(tmp_path: Path) -> None:
    pytest.importorskip("mailmerge")
    from mailmerge.template_message import TemplateMessage

    fixtures = bench("fixtures")
    html = "<html><style>a{#x:1} .c{color:#fff}</style><body>{{ not jinja }} &amp; café</body></html>"
    files = fixtures.mailmerge_files(tmp_path, port=2525, subscribers=tmp_path / "s.csv", html=html, subject="Issue")
    _sender, recipients, message = TemplateMessage(files["template"]).render({"email": "x@example.org"})
    assert recipients == ["x@example.org"]
    parsed = message_from_bytes(message.as_bytes())
    assert parsed.get_content_type() == "text/html"
    payload = parsed.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.decode("utf-8").strip() == html
    assert "ratelimit = 0" in files["config"].read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_benchmark_runs_at_tiny_sizes(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--current-peers",
         "--out", str(out), "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text(encoding="utf-8")
    assert "Not measured" not in report
    assert "## Send throughput, 1 connection, minimal sink" in report
    for title in ("Send throughput, 1 connection", "Send throughput, 4 connections", "Personalisation",
                  "Memory: peak RSS", "Start-up", "Feeds:", "Render: `preview`", "Over the wire: STARTTLS",
                  "A real Postfix with STARTTLS"):
        assert f"## {title}" in report
    # The wire tables: every RTT, with the ceiling and the round trips counted through the proxy.
    for table in ("**Loopback (RTT 0), STARTTLS**", "**RTT 20 ms, STARTTLS**", "**RTT 50 ms, STARTTLS**",
                  "**Whole runs**"):
        assert table in report
    assert "| *ceiling* | the loop's 1-conn. figure |" in report and "| *ceiling* | 50.0/s |" in report
    assert "| cepletter send | " in report and " RT |" in report
    for target in ("RTT 20 ms, 1 conn.: cepletter ÷ the 1-RTT ceiling", "RTT 20 ms, 1 conn.: cepletter ÷ bare smtplib",
                   "RTT 50 ms, 8 conn.: cepletter ÷ eight times the 1-RTT ceiling",
                   "STARTTLS on loopback, 1 conn.: cepletter ÷ TCP_NODELAY smtplib loop"):
        assert target in report
    postfix_reason = bench("postfix").unavailable()
    if postfix_reason is None:
        assert "real Postfix, STARTTLS, 4 conn.: cepletter ÷ today's cepletter on 1 conn." in report
    else:
        assert f"Skipped: {postfix_reason}." in report
    today = bench("today")
    known = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{today.REVISION}^{{commit}}"],
                           capture_output=True, check=False).returncode == 0
    if known:
        assert "loopback without TLS, 1 conn.: cepletter ÷ today's cepletter" in report
    else:
        assert "Today's cepletter is missing" in report
    assert "first render in process: layout" in report
    assert "bytes per subscriber, 10 → 40" in report
    has_mailmerge = importlib.util.find_spec("mailmerge") is not None
    if has_mailmerge:
        assert "cepletter ÷ mailmerge" in report
    else:
        assert "mailmerge is not installed" in report
    for target in ("cepletter ÷ bare smtplib", "recipients per second",
                   "peak RSS at 40 ÷ at 10", "`cepletter --help` ÷ `import click`", "`items` ÷ `feedparser.parse`",
                   "unchanged cached feed", "first render in a process"):
        assert target in report
    assert "## Machine" in report and "Python 3." in report
    assert "wrote" in proc.stderr
