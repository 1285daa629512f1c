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
import smtplib
import subprocess
import sys
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

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
        assert after == {"messages": 0, "recipients": 0, "distinct": 0, "bytes": 0}
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
                  "Memory: peak RSS", "Start-up", "Feeds:", "Render: `preview`"):
        assert f"## {title}" in report
    has_mailmerge = importlib.util.find_spec("mailmerge") is not None
    if has_mailmerge:
        assert "cepletter ÷ mailmerge" in report
    else:
        assert "mailmerge is not installed" in report
    for target in ("cepletter ÷ bare smtplib", "recipients per second",
                   "peak RSS at 40 ÷ at 10", "`cepletter --help` ÷", "`items` ÷ `feedparser.parse`",
                   "unchanged cached feed", "first render in a process"):
        assert target in report
    assert "## Machine" in report and "Python 3." in report
    assert "wrote" in proc.stderr
