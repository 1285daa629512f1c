"""RFC 2920 pipelining against real aiosmtpd servers that offer it, and misbehave inside a group.

With PIPELINING, each message's content carries the next message's MAIL, RCPT
and DATA behind its final dot: one write and one wait per message. Every fault
inside such a group must end as it does without pipelining: the journal agrees
with what the server accepted, and every reachable subscriber has one copy.
The round trips are counted by the benchmark's latency proxy (with no delay:
nothing here is timed).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_rendered, make_settings
from faultservers import FaultServer
from smtpservers import SmtpServer
from test_faults_smtp import JOURNAL, addresses, assert_journal_agrees, send, workspace

from cepletter.deliver.journal import Journal, read_results
from cepletter.deliver.sender import Options, Sender, Summary
from cepletter.deliver.transports import SmtpConnection, SmtpTransport, make_transport
from cepletter.message.build import MessageFactory
from cepletter.message.recipient import Recipient

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.proxy import LatencyProxy  # noqa: E402


def engine(tmp_path: Path, port: int, **options: float) -> tuple[SmtpTransport, MessageFactory, Options]:
    settings = make_settings(
        tmp_path, delivery={"transport": "smtp"},
        smtp={"host": "127.0.0.1", "port": port, "security": "none", "timeout": 10},
    )
    transport = make_transport(settings)
    assert isinstance(transport, SmtpTransport)
    opts = Options(connections=1, rate=10_000, retries=3, retry_max_seconds=60, backoff_base=0.01)
    for key, value in options.items():
        setattr(opts, key, value)
    return transport, MessageFactory(settings, make_rendered(), crlf=True), opts


def people(n: int) -> list[Recipient]:
    return [Recipient(f"r{i}@example.org", f"Reader {i}") for i in range(n)]


# ---------------------------------------------------------------- a well-behaved server


def test_a_server_offering_pipelining_gets_every_message_once_in_groups(tmp_path: Path) -> None:
    with FaultServer(pipelining=True) as server:
        transport, factory, opts = engine(tmp_path, server.port)
        connection = transport.connect()
        assert isinstance(connection, SmtpConnection) and connection.pipelining
        with Journal(tmp_path / "send-log.jsonl") as journal:
            summary = Sender(transport, factory, opts, journal=journal).run(people(40))
            connection.close()
    assert summary.sent == 40
    assert server.received_by() == {f"r{i}@example.org": 1 for i in range(40)}
    assert len({m.peer for m in server.messages}) == 1  # one connection carried them all
    # Every MAIL came with its RCPT and DATA in one write.
    assert server.mail_pipelined == [True] * 40
    sent = [e["email"] for e in read_results(tmp_path / "send-log.jsonl") if e["status"] == "sent"]
    assert sorted(sent) == sorted(f"r{i}@example.org" for i in range(40))


def test_without_pipelining_on_offer_every_command_waits_for_its_reply(tmp_path: Path) -> None:
    with FaultServer() as server:
        transport, factory, opts = engine(tmp_path, server.port)
        summary = Sender(transport, factory, opts).run(people(10))
    assert summary.sent == 10 and server.received_by() == {f"r{i}@example.org": 1 for i in range(10)}
    assert server.mail_pipelined == [False] * 10


@pytest.mark.parametrize("offered", [True, False])
def test_a_steady_send_waits_about_one_round_trip_per_message(tmp_path: Path, offered: bool) -> None:
    # The proxy counts a round trip each time the client writes after hearing from the server.
    # With PIPELINING that is once per message (its content with the next one's commands),
    # plus EHLO, the first group and QUIT; without, four times (MAIL, RCPT, DATA, the content).
    count = 60
    with SmtpServer(pipelining=offered) as server, LatencyProxy(server.port, 0.0) as proxy:
        transport, factory, opts = engine(tmp_path, proxy.port)
        summary = Sender(transport, factory, opts).run(people(count))
        assert summary.sent == count
        deadline = time.monotonic() + 10
        while not proxy.stats()["per_connection"] and time.monotonic() < deadline:
            time.sleep(0.01)  # the proxy notes a connection's turns once both ends have closed
        turns = proxy.stats()["per_connection"]
    assert server.received_by() == {f"r{i}@example.org": 1 for i in range(count)}
    assert isinstance(turns, list) and len(turns) == 1  # one connection
    if offered:
        assert turns[0] <= 1.2 * count, turns
    else:
        assert turns[0] >= 4 * count, turns


# ---------------------------------------------------------------- faults inside a group


def test_refused_rcpts_inside_groups_fail_alone_and_the_rest_go_on(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(40)
    gone = {"reader3@example.org", "reader17@example.org"}
    with FaultServer(pipelining=True, p451=0.1,
                     refuse={a: f"550 5.1.1 <{a}>: User unknown" for a in gone}) as server:
        ws = workspace(tmp_path, server.port, emails, connections=1)
        code, out, err = send(run, ws)
    assert code == 1, err
    assert "delivered 38" in out and "failed 2" in out and "deferred 0" in out
    assert server.deferred_rcpts, "no 451 came: the fault was not exercised"
    assert server.received_by() == {a: 1 for a in emails if a not in gone}
    last = assert_journal_agrees(ws, server)
    assert {a for a, e in last.items() if e["status"] == "failed"} == gone
    assert all(str(last[a]["reply"]).startswith("550 5.1.1") for a in gone)
    assert all(server.mail_pipelined)  # each group stayed a group


def test_a_refused_mail_and_a_4xx_to_data_inside_groups(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(12)
    # MAIL 3 and 7 are those of reader2 and reader6 (one connection, in list order).
    with FaultServer(pipelining=True, odd_mail={3: "550 5.7.1 Sender address rejected", 7: "451 4.3.0 Try later"},
                     odd_data={"reader9@example.org": "451 4.3.1 Queue full, try again"}) as server:
        ws = workspace(tmp_path, server.port, emails, connections=1)
        code, out, err = send(run, ws)
    assert code == 1, err
    assert "delivered 11" in out and "failed 1" in out
    assert server.received_by() == {a: 1 for a in emails if a != "reader2@example.org"}
    last = assert_journal_agrees(ws, server)
    assert last["reader2@example.org"]["status"] == "failed"
    assert str(last["reader2@example.org"]["reply"]).startswith("550 5.7.1 Sender address rejected")
    # The temporary refusals (451 to MAIL, 451 to DATA) were retried and accepted once.
    for address in ("reader6@example.org", "reader9@example.org"):
        assert last[address]["status"] == "sent" and int(last[address]["attempts"]) == 2  # type: ignore[call-overload]


def test_a_connection_dropped_inside_a_group_loses_and_doubles_nothing(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(20)
    # The 4th MAIL (reader3's) arrives behind reader2's final dot: the 250 for reader2 goes out,
    # then the server hangs up without answering MAIL, or reading the RCPT and DATA behind it.
    with FaultServer(pipelining=True, drop_at_mail={4}) as server:
        ws = workspace(tmp_path, server.port, emails, connections=1)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 20" in out
    assert server.received_by() == dict.fromkeys(emails, 1)
    last = assert_journal_agrees(ws, server)
    assert [e["status"] for e in read_results(ws / JOURNAL)].count("sent") == 20
    # reader2 was accepted once; reader3, whose MAIL met the hang-up, was sent again on a new connection.
    assert {a: e["attempts"] for a, e in last.items() if e["attempts"] != 1} == {"reader3@example.org": 2}
    assert server.rcpt_counts["reader3@example.org"] == 1  # its first RCPT was never read
    assert server.connections == 1 + 2  # the server's start-up probe, the first and one more


def test_a_server_that_answers_out_of_step_is_sent_to_without_pipelining(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(12)
    # reader5's RCPT is answered twice: DATA's reply is then a 250, the RCPT's echo.
    with FaultServer(pipelining=True, echo_rcpt={"reader5@example.org"}) as server:
        ws = workspace(tmp_path, server.port, emails, connections=1)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 12" in out
    assert server.received_by() == dict.fromkeys(emails, 1)
    last = assert_journal_agrees(ws, server)
    assert int(last["reader5@example.org"]["attempts"]) == 2  # type: ignore[call-overload]
    # Groups up to reader5's; after it, one command at a time (on a new connection).
    assert server.mail_pipelined == [True] * 6 + [False] * 7


def test_a_server_that_drops_the_commands_behind_a_dot_is_sent_to_without_pipelining(
        tmp_path: Path, run: Invoke) -> None:
    emails = addresses(10)
    # After answering reader3's final dot, the server forgets the MAIL, RCPT and DATA that came
    # with it: no answer comes, and after [smtp] timeout the client gives up on that group.
    with FaultServer(pipelining=True, swallow_after_dot={"reader3@example.org"}) as server:
        ws = workspace(tmp_path, server.port, emails, connections=1, timeout=1)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 10" in out
    assert server.received_by() == dict.fromkeys(emails, 1)
    last = assert_journal_agrees(ws, server)
    assert last["reader3@example.org"]["attempts"] == 1
    assert int(last["reader4@example.org"]["attempts"]) == 2  # type: ignore[call-overload]
    assert server.mail_pipelined == [True] * 5 + [False] * 6


# ---------------------------------------------------------------- stopping inside a group


def _hold_the_first(server: FaultServer, sender: Sender) -> tuple[threading.Thread, list[Summary]]:
    server.hold()  # no answer to any final dot until released
    outcome: list[Summary] = []
    worker = threading.Thread(target=lambda: outcome.append(sender.run(people(10))))
    worker.start()
    deadline = time.monotonic() + 30
    while server.held < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.held == 1  # r0's final dot unanswered, r1's MAIL, RCPT and DATA behind it
    return worker, outcome


def test_a_first_stop_inside_a_group_finishes_the_message_and_drops_the_next(tmp_path: Path) -> None:
    with FaultServer(pipelining=True) as server:
        transport, factory, opts = engine(tmp_path, server.port)
        with Journal(tmp_path / "send-log.jsonl") as journal:
            sender = Sender(transport, factory, opts, journal=journal)
            worker, outcome = _hold_the_first(server, sender)
            sender.request_stop(signal.SIGTERM)
            time.sleep(0.3)
            server.release()  # r0 is accepted; r1's commands are answered (354), its content never sent
            worker.join(30)
    assert not worker.is_alive()
    [summary] = outcome
    assert (summary.sent, summary.uncertain, summary.stopped_by) == (1, 0, signal.SIGTERM)
    assert server.received_by() == {"r0@example.org": 1}
    assert [(e["email"], e["status"]) for e in read_results(tmp_path / "send-log.jsonl")] == [
        ("r0@example.org", "sent")]
    assert server.rcpt_counts == {"r0@example.org": 1, "r1@example.org": 1}


def test_a_second_stop_inside_a_group_leaves_the_message_uncertain_and_the_next_unsent(tmp_path: Path) -> None:
    with FaultServer(pipelining=True) as server:
        transport, factory, opts = engine(tmp_path, server.port)
        with Journal(tmp_path / "send-log.jsonl") as journal:
            sender = Sender(transport, factory, opts, journal=journal)
            worker, outcome = _hold_the_first(server, sender)
            sender.request_stop(signal.SIGINT)
            sender.request_stop(signal.SIGINT)
            worker.join(30)
    assert not worker.is_alive()
    [summary] = outcome
    assert (summary.sent, summary.uncertain, summary.deferred) == (0, 1, 0)
    assert [(e["email"], e["status"]) for e in read_results(tmp_path / "send-log.jsonl")] == [
        ("r0@example.org", "uncertain")]
    assert server.messages == []
