"""`cepletter send` against SMTP servers that misbehave on purpose.

For every fault the same promises are checked: the journal agrees exactly with
what the server accepted (one "sent" line per accepted message, with its
Message-ID), every reachable subscriber has exactly one copy, permanent
failures are named in the report, and the exit code says whether everyone
got the issue.
"""

from __future__ import annotations

import email
import threading
import time
from collections import Counter
from pathlib import Path

from conftest import Invoke
from deliverykit import make_workspace
from faultservers import FaultServer

from cepletter.deliver.journal import read_results

JOURNAL = Path("issues/2025-12/send-log.jsonl")


def config(port: int, *, connections: int = 3, retries: int = 5, retry_max_seconds: float = 60,
           timeout: float = 10, rate: float = 1000, retry_uncertain: bool = True) -> str:
    return (
        f"[delivery]\ntransport = \"smtp\"\nrate = {rate}\nconnections = {connections}\n"
        f"retries = {retries}\nretry_max_seconds = {retry_max_seconds}\n"
        f"retry_uncertain = {'true' if retry_uncertain else 'false'}\n"
        f"[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\ntimeout = {timeout}\n"
    )


def addresses(n: int) -> list[str]:
    return [f"reader{i}@example.org" for i in range(n)]


def listing(emails: list[str], names: dict[str, str] | None = None) -> str:
    names = names or {}
    return "email,name\n" + "".join(f"{a},{names.get(a, 'Reader')}\n" for a in emails)


def workspace(tmp_path: Path, port: int, emails: list[str], names: dict[str, str] | None = None,
              **options: float) -> Path:
    return make_workspace(tmp_path / "ws", toml_extra=config(port, **options),  # type: ignore[arg-type]
                          subscribers=listing(emails, names))


def send(run: Invoke, ws: Path) -> tuple[int, str, str]:
    result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    return result.exit_code, " ".join(result.stdout.split()), result.stderr


def assert_journal_agrees(ws: Path, server: FaultServer) -> dict[str, dict[str, object]]:
    """The journal's "sent" lines are exactly the server's accepted messages; returns the last result per address."""
    results = list(read_results(ws / JOURNAL))
    sent_lines = Counter(e["email"] for e in results if e["status"] == "sent")
    received = server.received_by()
    assert all(count == 1 for count in sent_lines.values()), sent_lines
    assert set(sent_lines) == set(received)
    ids_on_server = sorted(email.message_from_bytes(m.data)["Message-ID"] for m in server.messages)
    assert ids_on_server == sorted(e["message_id"] for e in results if e["status"] == "sent")
    return {e["email"]: e for e in results}


def test_random_451_on_a_tenth_of_recipients_is_retried_until_everyone_has_one_copy(
        tmp_path: Path, run: Invoke) -> None:
    emails = addresses(60)
    with FaultServer(p451=0.1) as server:
        ws = workspace(tmp_path, server.port, emails)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 60" in out and "failed 0" in out and "deferred 0" in out
    assert "Sent 60 of 60" in err
    assert server.deferred_rcpts, "the server never answered 451: the fault was not exercised"
    assert server.received_by() == dict.fromkeys(emails, 1)
    last = assert_journal_agrees(ws, server)
    # Each address that met a 451 took more than one attempt, and the journal says how many.
    for address in set(server.deferred_rcpts):
        assert int(last[address]["attempts"]) > 1  # type: ignore[call-overload]


def test_transactions_dropped_mid_data_are_resent_and_not_counted_twice(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(80)
    with FaultServer(p_drop_data=0.05) as server:
        ws = workspace(tmp_path, server.port, emails)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 80" in out and "deferred 0" in out
    assert server.dropped_transactions >= 1
    # A transaction the server dropped before accepting is not a copy: each has exactly one.
    assert server.received_by() == dict.fromkeys(emails, 1)
    assert_journal_agrees(ws, server)
    # The dropped connections were replaced by new ones.
    assert server.connections >= 3 + server.dropped_transactions


def test_a_reply_to_the_final_dot_slower_than_the_timeout_is_waited_for(tmp_path: Path, run: Invoke) -> None:
    # RFC 5321 4.5.3.2.6 gives the reply to the final dot 10 minutes, whatever [smtp] timeout says.
    # Before: a reply later than the timeout had the message treated as lost, and sent again.
    emails = addresses(12)
    slow = ["reader5@example.org", "reader9@example.org"]
    with FaultServer(slow=dict.fromkeys(slow, 0), slow_seconds=2.5) as server:
        ws = workspace(tmp_path, server.port, emails, timeout=1, retries=1, connections=2)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 12" in out and "deferred 0" in out
    assert server.received_by() == dict.fromkeys(emails, 1)
    last = assert_journal_agrees(ws, server)
    for address in slow:
        assert server.rcpt_counts[address] == 1  # one transaction: nothing was sent twice
        assert last[address]["status"] == "sent" and last[address]["attempts"] == 1


def test_a_connection_lost_after_the_final_dot_is_uncertain_and_sent_once_more(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(8)
    lost = "reader3@example.org"
    # The server read the whole message and hung up without answering (and without keeping it).
    with FaultServer(drop_after_dot={lost: 1}) as server:
        ws = workspace(tmp_path, server.port, emails, connections=2)
        code, _, err = send(run, ws)
    assert code == 0, err
    assert server.dropped_after_dot == 1 and server.rcpt_counts[lost] == 2
    assert server.received_by() == dict.fromkeys(emails, 1)
    results = [e for e in read_results(ws / JOURNAL) if e["email"] == lost]
    assert [e["status"] for e in results] == ["uncertain", "sent"]
    assert "connection lost after the whole message was sent" in results[0]["reply"]
    # Named in the final report.
    assert f"{lost}: sent again and accepted: may have it twice" in err
    sent = Counter(e["email"] for e in read_results(ws / JOURNAL) if e["status"] == "sent")
    assert sent == dict.fromkeys(emails, 1) and set(sent) == set(server.received_by())


def test_with_retry_uncertain_false_an_uncertain_message_is_never_sent_again(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(6)
    lost = "reader2@example.org"
    # This time the relay queued it: the message arrived, only its 250 was lost on the way.
    with FaultServer(drop_after_dot={lost: 0}, keep_dropped=True) as server:
        ws = workspace(tmp_path, server.port, emails, retry_uncertain=False)
        code, out, err = send(run, ws)
        assert code == 1
        assert "delivered 5" in out and "uncertain 1" in out
        assert f"{lost}: still uncertain: may have it, not sent again" in err
        again = send(run, ws)
    assert server.rcpt_counts[lost] == 1  # neither the run nor the next one sent it again
    assert server.received_by() == dict.fromkeys(emails, 1)
    assert [e["status"] for e in read_results(ws / JOURNAL) if e["email"] == lost] == ["uncertain"]
    assert again[0] == 0 and "Nothing to send" in again[2]
    assert f"not mailed again (retry_uncertain = false): {lost}" in again[2]


def test_an_uncertain_message_is_retried_once_at_most_over_all_runs(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(4)
    lost = "reader1@example.org"
    with FaultServer(drop_after_dot={lost: 0}) as server:
        ws = workspace(tmp_path, server.port, emails)
        code, out, _ = send(run, ws)
        assert code == 1 and "uncertain 1" in out
        again = send(run, ws)
    assert server.rcpt_counts[lost] == 2  # the first try and one retry, and no third
    assert [e["status"] for e in read_results(ws / JOURNAL) if e["email"] == lost] == ["uncertain", "uncertain"]
    assert again[0] == 0 and f"not mailed again (tried twice already): {lost}" in again[2]
    assert server.received_by() == {a: 1 for a in emails if a != lost}


def test_replies_rfc_5321_does_not_allow_are_protocol_errors_and_never_count_as_sent(
        tmp_path: Path, run: Invoke) -> None:
    emails = addresses(10)
    odd = {
        "reader1@example.org": "251 2.1.0 Sender ok, will forward",  # to MAIL (the second transaction)
        "reader4@example.org": "252 2.1.5 Cannot VRFY user, but will accept message",  # to RCPT
        "reader6@example.org": "250 2.0.0 Ok",  # to DATA, instead of 354
        "reader8@example.org": "220 127.0.0.1 ready",  # to DATA, instead of 354
    }
    with FaultServer(odd_mail={2: odd["reader1@example.org"]}, odd_rcpt={"reader4@example.org": odd["reader4@example.org"]},
                     odd_data={a: odd[a] for a in ("reader6@example.org", "reader8@example.org")}) as server:
        ws = workspace(tmp_path, server.port, emails, connections=1)
        code, out, err = send(run, ws)
        assert code == 1, err
        assert "delivered 6" in out and "failed 4" in out
        # Before: each of these was journaled "sent", although no message was transmitted.
        assert server.received_by() == {a: 1 for a in emails if a not in odd}
        last = assert_journal_agrees(ws, server)
        for address, reply in odd.items():
            assert last[address]["status"] == "failed"
            assert str(last[address]["reply"]).startswith(f"protocol error: {reply}")
        step = {a: str(last[a]["reply"]) for a in odd}
        assert "allows to MAIL FROM (250" in step["reader1@example.org"]
        assert "allows to RCPT TO (250 or 251" in step["reader4@example.org"]
        assert "allows to DATA (354" in step["reader6@example.org"]
        # The server behaves the next time: the next run sends them, once.
        assert send(run, ws)[0] == 0
    assert server.received_by() == dict.fromkeys(emails, 1)


def test_a_server_that_always_closes_after_the_greeting_stops_the_send_at_once(
        tmp_path: Path, run: Invoke) -> None:
    with FaultServer(close_after_greeting=lambda n: True) as server:
        ws = workspace(tmp_path, server.port, addresses(5))
        code, out, err = send(run, ws)
    assert code == 1
    assert out == ""  # no delivery table: nothing was attempted
    assert f"Error: cannot connect to 127.0.0.1:{server.port}: Connection unexpectedly closed" in err
    assert "Check [smtp] host and port" in err
    assert "Traceback" not in err
    assert server.messages == []
    assert list(read_results(ws / JOURNAL)) == []


def test_connections_closed_after_the_greeting_are_replaced(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(30)
    # Connection 1 is the server's own start-up probe; the send's first connection (2)
    # works, the next two hang up after their greeting.
    with FaultServer(close_after_greeting=lambda n: n in (3, 4)) as server:
        ws = workspace(tmp_path, server.port, emails)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 30" in out
    assert server.closed_after_greeting == 2
    assert server.received_by() == dict.fromkeys(emails, 1)
    assert_journal_agrees(ws, server)


def test_552_message_too_large_is_a_permanent_failure_named_in_the_report(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(10)
    big = {"reader3@example.org": "Anna " + "A" * 120_000, "reader7@example.org": "Eva " + "E" * 120_000}
    with FaultServer(data_size_limit=100_000) as server:
        ws = workspace(tmp_path, server.port, emails, big)
        code, out, err = send(run, ws)
    assert code == 1
    assert "delivered 8" in out and "failed 2" in out and "deferred 0" in out
    assert "Not everyone got the issue" in err
    for address in big:
        assert f"{address} failed 552" in out
        assert server.rcpt_counts[address] == 1  # a 5xx is never retried
    assert server.received_by() == {a: 1 for a in emails if a not in big}
    last = assert_journal_agrees(ws, server)
    assert {a for a, e in last.items() if e["status"] == "failed"} == set(big)
    assert all(str(last[a]["reply"]).startswith("552") for a in big)


def test_a_server_that_disappears_and_comes_back_gets_everyone_once(tmp_path: Path, run: Invoke) -> None:
    emails = addresses(80)
    server = FaultServer().start()
    ws = workspace(tmp_path, server.port, emails, rate=40, connections=2, timeout=2, retries=5)
    journal = ws / JOURNAL
    outage: dict[str, float] = {}

    def disappear_then_return() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if journal.exists() and sum(1 for _ in read_results(journal)) >= 15:
                break
            time.sleep(0.01)
        outage["start"] = time.monotonic()
        server.pause()
        time.sleep(1.5)
        server.resume()
        outage["end"] = time.monotonic()

    chaos = threading.Thread(target=disappear_then_return)
    chaos.start()
    try:
        code, out, err = send(run, ws)
    finally:
        chaos.join()
        server.stop()
    assert "end" in outage, "the outage never happened"
    assert code == 0, err
    assert "delivered 80" in out and "deferred 0" in out
    assert server.received_by() == dict.fromkeys(emails, 1)
    last = assert_journal_agrees(ws, server)
    # Some messages met the outage and were delivered by a retry.
    assert any(int(e["attempts"]) > 1 for e in last.values())  # type: ignore[call-overload]
