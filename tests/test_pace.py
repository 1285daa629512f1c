"""The pace under [delivery] rate: a relay that asks to slow down gets fewer messages a second
and fewer connections (AIMD), every message still arrives once, and the report says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Invoke
from faultservers import FaultServer
from test_faults_smtp import addresses, assert_journal_agrees, send, workspace
from test_pipelining import engine, people

from cepletter.deliver.sender import RateLimiter, Sender, _Pace, asks_to_slow_down
from cepletter.deliver.transports import Outcome, Verdict


@pytest.mark.parametrize(("outcome", "slow_down"), [
    (Outcome.refusal(451, "451 4.7.1 Rate limited, try again later"), True),
    (Outcome.refusal(421, "421 4.7.0 Too many connections from your host"), True),
    (Outcome.refusal(454, "454 Throttling failure: Maximum sending rate exceeded"), True),
    (Outcome.refusal(432, "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"), True),
    (Outcome(0, "cannot connect to 127.0.0.1:25: 421 4.7.0 Too many concurrent SMTP connections",
             Verdict.TEMPORARY, True), True),
    (Outcome.refusal(451, "451 4.3.2 System busy, try again later"), False),
    (Outcome.refusal(452, "452 4.2.2 Mailbox full"), False),
    (Outcome.refusal(550, "550 5.7.1 Sending rate exceeded, message refused"), False),  # permanent: not a pace
    (Outcome(0, "connection lost: Connection reset by peer", Verdict.TEMPORARY, True), False),
])
def test_what_counts_as_a_request_to_slow_down(outcome: Outcome, slow_down: bool) -> None:
    assert asks_to_slow_down(outcome) is slow_down


def test_a_request_halves_the_pace_and_the_connections_and_the_pace_comes_back_to_the_cap() -> None:
    limiter = RateLimiter(100)
    pace = _Pace(limiter, 100, 4)
    assert pace.finish() is None  # nobody asked: nothing to report
    pace.slow_down("451 4.7.1 Rate limited")
    assert (pace.rate, pace.connections, limiter.interval) == (50, 2, 0.02)
    pace.slow_down("451 4.7.1 Rate limited")  # the same burst of refusals: one cut
    assert (pace.rate, pace.connections) == (50, 2)
    pace.accepted()
    assert 50 < pace.rate < 51  # slowly: a little per accepted message
    for _ in range(10_000):
        pace.accepted()
    assert pace.rate == 100 and limiter.interval == 0.01  # never past the cap, the relay's quota
    report = pace.finish()
    assert report is not None
    assert (report.times, report.reply, report.lowest_rate, report.lowest_connections) == (
        1, "451 4.7.1 Rate limited", 50, 2)
    assert (report.full_rate, report.full_connections, report.rate) == (100, 4, 100)


def test_a_relay_that_asks_to_slow_down_gets_fewer_connections_and_everyone_once(tmp_path: Path) -> None:
    slow = {f"r{i}@example.org": "451 4.7.1 Rate limited, slow down" for i in (3, 4, 5)}
    with FaultServer(odd_rcpt=slow) as server:
        transport, factory, opts = engine(tmp_path, server.port, connections=4, rate=1000)
        summary = Sender(transport, factory, opts).run(people(40))
    assert summary.sent == 40
    assert server.received_by() == {f"r{i}@example.org": 1 for i in range(40)}
    throttling = summary.throttling
    assert throttling is not None and throttling.times >= 1
    assert throttling.reply == "451 4.7.1 Rate limited, slow down"
    assert throttling.lowest_connections <= 2 and throttling.lowest_rate < 1000


def test_the_final_report_says_the_relay_asked_to_slow_down(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(20)
    with FaultServer(odd_rcpt={"reader2@example.org": "421 4.7.0 Too many connections, slow down"}) as server:
        ws = workspace(tmp_path, server.port, emails, connections=4)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 20" in out
    assert server.received_by() == dict.fromkeys(emails, 1)
    assert_journal_agrees(ws, server)
    said = " ".join(err.split())
    assert "The server asked to slow down once (421 4.7.0 Too many connections, slow down): cepletter lowered " \
           "its pace to" in said
    assert "on 2 connections" in said and "the messages it refused were sent again" in said
