"""Addresses that are not ASCII (zoë@…, 用户@…): sent with SMTPUTF8 (RFC 6531) and UTF-8 headers to
a server that offers it, and skipped with a clear warning by one that does not."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_workspace
from faultservers import FaultServer
from smtpservers import SmtpServer
from test_faults_smtp import JOURNAL, config
from test_pipelining import engine

from cepletter.deliver.journal import read_results
from cepletter.deliver.sender import Sender
from cepletter.message.recipient import Recipient

WIDE = ["zoë@example.org", "用户@例子.广告"]
LIST = "email,name\nanna@example.org,Anna\nzoë@example.org,Zoë Brontë\n用户@例子.广告,王芳\nluca@example.org,Luca\n"


def send(run: Invoke, ws: Path) -> tuple[int, str, str]:
    result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    return result.exit_code, " ".join(result.stdout.split()), " ".join(result.stderr.split())


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_server_offering_smtputf8_gets_them_with_smtputf8_and_utf8_headers(
        tmp_path: Path, run: Invoke, pipelining: bool) -> None:
    with SmtpServer(smtputf8=True, pipelining=pipelining) as server:
        ws = make_workspace(tmp_path / "ws", config(server.port, connections=1), LIST)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 4" in out and "skipped" not in err
    assert server.received_by() == {a: 1 for a in ["anna@example.org", "luca@example.org", *WIDE]}
    for received in server.messages:
        [to] = received.recipients
        wide = not to.isascii()
        assert ("SMTPUTF8" in received.mail_options) is wide
        message = email.message_from_string(received.data.decode("utf-8"), policy=email.policy.SMTPUTF8)
        assert message["To"].addresses[0].addr_spec == to  # the header holds the address as it is, in UTF-8
        if wide:
            assert to.encode() in received.data
    sent = {e["email"] for e in read_results(ws / JOURNAL) if e["status"] == "sent"}
    assert sent == set(server.received_by())


def test_a_server_without_smtputf8_gets_the_others_and_they_are_skipped_with_the_reason(
        tmp_path: Path, run: Invoke) -> None:
    with SmtpServer(smtputf8=False) as server:
        ws = make_workspace(tmp_path / "ws", config(server.port, connections=1), LIST)
        code, out, err = send(run, ws)
    assert code == 0, err
    assert "delivered 2" in out
    for line, address in ((3, WIDE[0]), (4, WIDE[1])):
        assert (f"subscribers.csv, line {line}: {address!r} skipped: address needs an internationalised (SMTPUTF8) "
                f"mail server, and SMTP 127.0.0.1:{server.port} (none) does not offer SMTPUTF8") in err
    assert server.received_by() == {"anna@example.org": 1, "luca@example.org": 1}
    assert {e["email"] for e in read_results(ws / JOURNAL)} == {"anna@example.org", "luca@example.org"}


def test_a_connection_without_smtputf8_never_gets_such_an_address(tmp_path: Path) -> None:
    # Past the check before the send (one server of a pool without SMTPUTF8, say): refused, not sent.
    with FaultServer(pipelining=True, smtputf8=False) as server:
        transport, factory, opts = engine(tmp_path, server.port)
        people = [Recipient("r0@example.org"), Recipient(WIDE[0]), Recipient("r2@example.org"), Recipient(WIDE[1])]
        summary = Sender(transport, factory, opts).run(people)
    assert (summary.sent, summary.failed) == (2, 2)
    assert {r.email for r in summary.failures} == set(WIDE)
    assert all("needs a mail server that offers SMTPUTF8" in r.reply for r in summary.failures)
    assert server.received_by() == {"r0@example.org": 1, "r2@example.org": 1}
    assert set(server.rcpt_counts) == {"r0@example.org", "r2@example.org"}
