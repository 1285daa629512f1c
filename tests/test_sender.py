"""The sending engine against real SMTP servers that refuse, defer and drop."""

from __future__ import annotations

import email
import email.policy
import mailbox
import threading
import time
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from deliverykit import make_rendered, make_settings
from faultservers import FaultServer
from smtpservers import Rule, SmtpServer

from cepletter.deliver.journal import Journal, read_results
from cepletter.deliver.sender import Options, RateLimiter, Sender, Summary, dry_run
from cepletter.deliver.transports import MaildirTransport, SmtpTransport, make_transport
from cepletter.errors import DeliveryError
from cepletter.message.build import MessageFactory
from cepletter.message.personal import PersonalIssue
from cepletter.message.recipient import Recipient


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


def people(n: int, prefix: str = "r") -> list[Recipient]:
    return [Recipient(f"{prefix}{i}@example.org", f"Reader {i}") for i in range(n)]


def test_faults_each_reachable_recipient_gets_exactly_one_and_the_journal_agrees(tmp_path: Path) -> None:
    rules = {
        "r3@example.org": Rule("451", times=2),
        "r7@example.org": Rule("550"),
        "r11@example.org": Rule("drop", times=1),
        "r12@example.org": Rule("550"),
        "r20@example.org": Rule("drop", times=2),
    }
    journal_path = tmp_path / "send-log.jsonl"
    with SmtpServer(rules=rules) as server:
        transport, factory, opts = engine(tmp_path, server.port, connections=3)
        with Journal(journal_path) as journal:
            summary = Sender(transport, factory, opts, journal=journal).run(people(30))
    received = server.received_by()
    reachable = {f"r{i}@example.org" for i in range(30)} - {"r7@example.org", "r12@example.org"}
    assert received == {address: 1 for address in reachable}
    assert (summary.sent, summary.failed, summary.deferred) == (28, 2, 0)
    assert sorted((r.email, r.reply) for r in summary.failures) == [
        ("r12@example.org", "550 5.1.1 No such user here"),
        ("r7@example.org", "550 5.1.1 No such user here"),
    ]
    results = list(read_results(journal_path))
    assert {e["email"] for e in results if e["status"] == "sent"} == set(received)
    assert {e["email"] for e in results if e["status"] == "failed"} == {"r7@example.org", "r12@example.org"}
    attempts = {e["email"]: e["attempts"] for e in results}
    assert attempts["r3@example.org"] == 3 and attempts["r20@example.org"] == 3 and attempts["r0@example.org"] == 1
    # The journal records the server's own answer, e.g. its queue ID.
    assert all(e["reply"].startswith("250 2.0.0 Ok: queued as Q") for e in results if e["status"] == "sent")
    # Every message on the server is the one the journal names by Message-ID.
    ids = {email.message_from_bytes(m.data)["Message-ID"] for m in server.messages}
    assert ids == {e["message_id"] for e in results if e["status"] == "sent"}


def test_temporary_failures_become_deferred_after_the_retries(tmp_path: Path) -> None:
    with SmtpServer(rules={"r1@example.org": Rule("451")}) as server:
        transport, factory, opts = engine(tmp_path, server.port, retries=2)
        summary = Sender(transport, factory, opts).run(people(3))
    assert (summary.sent, summary.failed, summary.deferred) == (2, 0, 1)
    [deferred] = summary.failures
    assert (deferred.email, deferred.status, deferred.attempts) == ("r1@example.org", "deferred", 3)
    assert deferred.reply == "451 4.7.1 Try again later"
    assert server.rcpt_counts["r1@example.org"] == 3


def test_retrying_stops_at_retry_max_seconds(tmp_path: Path) -> None:
    with SmtpServer(rules={"r0@example.org": Rule("451")}) as server:
        # The first backoff (about 5 s) would already pass the 1 s bound: no retry at all.
        transport, factory, opts = engine(tmp_path, server.port, retries=10, backoff_base=5.0, retry_max_seconds=1.0)
        summary = Sender(transport, factory, opts).run(people(1))
    assert summary.deferred == 1 and summary.failures[0].attempts == 1


def test_one_connection_is_reused_and_a_dropped_one_is_replaced(tmp_path: Path) -> None:
    with SmtpServer(rules={"r5@example.org": Rule("drop", times=1)}) as server:
        transport, factory, opts = engine(tmp_path, server.port)
        summary = Sender(transport, factory, opts).run(people(10))
    assert summary.sent == 10
    peers = [m.peer for m in server.messages]
    assert len(set(peers)) == 2  # one connection until the drop, one after


def test_parallel_connections_share_the_work(tmp_path: Path) -> None:
    with SmtpServer(delay=0.01) as server:
        transport, factory, opts = engine(tmp_path, server.port, connections=4)
        summary = Sender(transport, factory, opts).run(people(60))
    assert summary.sent == 60
    assert 1 < len({m.peer for m in server.messages}) <= 4
    assert server.received_by() == {f"r{i}@example.org": 1 for i in range(60)}


@pytest.mark.slow
def test_two_thousand_messages_each_delivered_once(tmp_path: Path) -> None:
    journal_path = tmp_path / "send-log.jsonl"
    with SmtpServer() as server:
        transport, factory, opts = engine(tmp_path, server.port, connections=4)
        with Journal(journal_path) as journal:
            summary = Sender(transport, factory, opts, journal=journal).run(people(2000))
    assert summary.sent == 2000 and not summary.failures
    assert server.received_by() == {f"r{i}@example.org": 1 for i in range(2000)}
    assert len(list(read_results(journal_path))) == 2000


def test_a_journal_that_cannot_be_written_stops_the_run(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    with SmtpServer() as server:
        transport, factory, opts = engine(tmp_path, server.port)
        journal = Journal(Path("/dev/full"))
        journal.open()
        try:
            with pytest.raises(DeliveryError, match="disk is full; sending stopped"):
                Sender(transport, factory, opts, journal=journal).run(people(50))
        finally:
            journal.close()
    # Only the message whose result could not be recorded went out.
    assert len(server.messages) == 1


def test_nothing_listening_fails_before_anything_is_sent(tmp_path: Path) -> None:
    with SmtpServer() as server:
        port = server.port
    transport, factory, opts = engine(tmp_path, port)
    with pytest.raises(DeliveryError, match=r"cannot connect to 127\.0\.0\.1"):
        Sender(transport, factory, opts).run(people(3))


def test_the_maildir_transport_through_the_engine(tmp_path: Path) -> None:
    import mailbox

    settings = make_settings(tmp_path)
    transport = make_transport(settings)
    assert isinstance(transport, MaildirTransport)
    summary = Sender(transport, MessageFactory(settings, make_rendered()), Options(connections=4, rate=0)).run(people(5))
    assert summary.sent == 5
    box = mailbox.Maildir(tmp_path / "outbox", factory=None, create=False)
    assert sorted(m["To"] for m in box) == sorted(f"Reader {i} <r{i}@example.org>" for i in range(5))


def test_dry_run_builds_without_sending(tmp_path: Path) -> None:
    factory = MessageFactory(make_settings(tmp_path), make_rendered())
    count, size = dry_run(factory, people(7))
    assert count == 7 and size > 7 * 500


def test_rate_limiter_gives_up_when_stopped() -> None:
    limiter = RateLimiter(rate=0.001)  # one message per 1000 s
    stop = threading.Event()
    assert limiter.wait(stop) is True  # the first token is there at once
    stop.set()
    assert limiter.wait(stop) is False  # the next is far away: a stop ends the wait


# ---------------------------------------------------------------- stopping


def test_the_first_stop_waits_for_the_verdicts_in_flight_and_the_second_gives_up_on_them(tmp_path: Path) -> None:
    import signal

    journal_path = tmp_path / "send-log.jsonl"
    with FaultServer() as server:
        transport, factory, opts = engine(tmp_path, server.port, connections=2)
        server.hold()  # no answer to any final dot until released
        with Journal(journal_path) as journal:
            sender = Sender(transport, factory, opts, journal=journal)
            outcome: list[object] = []
            worker = threading.Thread(target=lambda: outcome.append(sender.run(people(10))))
            worker.start()
            deadline = time.monotonic() + 30
            while server.held < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert server.held == 2  # one message on each connection, waiting for its answer
            sender.request_stop(signal.SIGTERM)
            worker.join(0.5)
            assert worker.is_alive() and not outcome  # the first stop waits for them
            sender.request_stop(signal.SIGINT)
            worker.join(30)
    assert not worker.is_alive()
    [summary] = outcome
    assert isinstance(summary, Summary)
    assert summary.stopped_by == signal.SIGTERM and summary.interrupted
    assert (summary.sent, summary.uncertain) == (0, 2)
    results = list(read_results(journal_path))
    assert [e["status"] for e in results] == ["uncertain", "uncertain"]
    assert all("the run stopped waiting (the server may have taken it)" in e["reply"] for e in results)
    assert server.messages == []  # it never answered, and forgot them when the client hung up
    assert server.rcpt_counts == {e["email"]: 1 for e in results}  # nothing new went out after the stop


def test_a_verdict_that_arrives_after_the_first_stop_is_journaled(tmp_path: Path) -> None:
    import signal

    journal_path = tmp_path / "send-log.jsonl"
    with FaultServer() as server:
        transport, factory, opts = engine(tmp_path, server.port, connections=2)
        server.hold()
        with Journal(journal_path) as journal:
            sender = Sender(transport, factory, opts, journal=journal)
            outcome: list[Summary] = []
            worker = threading.Thread(target=lambda: outcome.append(sender.run(people(10))))
            worker.start()
            deadline = time.monotonic() + 30
            while server.held < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            sender.request_stop(signal.SIGINT)
            time.sleep(0.3)
            server.release()  # the answers come, after the stop
            worker.join(30)
    [summary] = outcome
    assert (summary.sent, summary.uncertain, summary.stopped_by) == (2, 0, signal.SIGINT)
    sent = {e["email"] for e in read_results(journal_path) if e["status"] == "sent"}
    assert sent == set(server.received_by()) and len(sent) == 2


def test_after_an_uncertain_attempt_one_more_and_no_more(tmp_path: Path) -> None:
    journal_path = tmp_path / "send-log.jsonl"
    with FaultServer(drop_after_dot={"r1@example.org": 0}) as server:
        transport, factory, opts = engine(tmp_path, server.port, retries=5)
        with Journal(journal_path) as journal:
            summary = Sender(transport, factory, opts, journal=journal,
                             uncertain_before={"r2@example.org": 1}).run(people(3))
    # r1: its first attempt uncertain, one retry, uncertain again: done. r2 was uncertain in an
    # earlier run: this attempt was its one retry.
    assert server.rcpt_counts == {"r0@example.org": 1, "r1@example.org": 2, "r2@example.org": 1}
    assert (summary.sent, summary.uncertain) == (2, 1)
    assert [(r.email, r.status) for r in summary.uncertain_results] == [("r1@example.org", "uncertain")]
    assert [e["status"] for e in read_results(journal_path) if e["email"] == "r1@example.org"] == [
        "uncertain", "uncertain"]

# ---------------------------------------------------------------- 8bit or quoted-printable


def _dotted_rendered() -> PersonalIssue:
    """A rendered issue whose text has a line that is a single "." and no "From " line."""
    rendered = make_rendered(body_lines=30)
    parts = tuple(p.replace("From the start", "from the start") for p in rendered.text.parts)
    return replace(rendered, rendered=replace(rendered.rendered, text=replace(rendered.text, parts=parts)))


def _parts(data: bytes) -> list[EmailMessage]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage) and message.defects == []
    return list(message.iter_parts())


@pytest.mark.parametrize("eightbitmime", [True, False])
def test_8bit_only_to_a_server_that_offers_8bitmime(tmp_path: Path, eightbitmime: bool) -> None:
    rendered = _dotted_rendered()
    recipients = [Recipient("a@example.org", "Åsa Lindqvist"), Recipient("b@example.org", "Bob")]
    with SmtpServer(eightbitmime=eightbitmime) as server:
        transport, _, opts = engine(tmp_path, server.port)
        factory = MessageFactory(make_settings(tmp_path), rendered, crlf=True)
        summary = Sender(transport, factory, opts).run(recipients)
    assert summary.sent == 2
    encoding = "8bit" if eightbitmime else "quoted-printable"
    for received, recipient in zip(server.messages, recipients, strict=True):
        assert received.mail_options == (("BODY=8BITMIME",) if eightbitmime else ())
        text_part, html_part = _parts(received.data)
        assert text_part["Content-Transfer-Encoding"] == html_part["Content-Transfer-Encoding"] == encoding
        html, text = rendered.fill(recipient)
        # The server hands over CRLF line ends; smtplib's dot-stuffing of the "." line is undone.
        assert html_part.get_payload(decode=True) == html.replace("\n", "\r\n").encode("utf-8")
        assert text_part.get_payload(decode=True) == text.replace("\n", "\r\n").encode("utf-8")
        assert "\n.\n" in text
        assert all(len(line) <= 998 for line in received.data.split(b"\r\n"))
        assert received.data.isascii() is not eightbitmime


def test_maildir_messages_are_8bit_and_open_with_mailbox(tmp_path: Path) -> None:
    rendered = _dotted_rendered()
    factory = MessageFactory(make_settings(tmp_path), rendered)
    recipient = Recipient("a@example.org", "Åsa Lindqvist")
    summary = Sender(MaildirTransport(tmp_path / "outbox"), factory, Options(rate=0)).run([recipient])
    assert summary.sent == 1
    box = mailbox.Maildir(tmp_path / "outbox", factory=None, create=False)
    (key,) = box.keys()
    message = box.get_message(key)
    assert message["To"] == "=?utf-8?q?=C3=85sa_Lindqvist?= <a@example.org>"
    parts = _parts(box.get_bytes(key))
    assert [p["Content-Transfer-Encoding"] for p in parts] == ["8bit", "8bit"]
    assert (parts[1].get_content(), parts[0].get_content()) == rendered.fill(recipient)
