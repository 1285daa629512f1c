"""Transports against real servers: plain, STARTTLS, implicit TLS, AUTH; and the Maildir."""

from __future__ import annotations

import email
import mailbox
import socket
from pathlib import Path
from typing import Any

import pytest
from deliverykit import make_settings
from smtpservers import SmtpServer, make_ca, make_self_signed

from cepletter.deliver.transports import (
    PASSWORD_ENV,
    ConnectFailed,
    MaildirTransport,
    SmtpTransport,
    dot_stuffed,
    make_transport,
)
from cepletter.errors import DeliveryError

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


def smtp_transport(tmp_path: Path, port: int, **smtp: Any) -> SmtpTransport:
    settings = make_settings(
        tmp_path, delivery={"transport": "smtp"}, smtp={"host": "127.0.0.1", "port": port, "timeout": 10, **smtp}
    )
    transport = make_transport(settings)
    assert isinstance(transport, SmtpTransport)
    return transport


def send_one(transport: SmtpTransport) -> tuple[int, str]:
    connection = transport.connect()
    try:
        outcome = connection.send("a@example.org", "b@example.org", MESSAGE)
    finally:
        connection.close()
    return outcome.code, outcome.reply


def test_plain_smtp(tmp_path: Path) -> None:
    with SmtpServer() as server:
        code, reply = send_one(smtp_transport(tmp_path, server.port, security="none"))
    assert (code, reply) == (250, "250 2.0.0 Ok: queued as Q1")
    [got] = server.messages
    assert got.recipients == ("b@example.org",)
    assert email.message_from_bytes(got.data)["Subject"] == "hi"


def test_starttls_with_a_private_ca_from_ca_file(tmp_path: Path) -> None:
    cert = make_ca(tmp_path / "pki")
    assert cert.ca is not None
    with SmtpServer(tls=cert, require_tls=True) as server:
        code, _ = send_one(smtp_transport(tmp_path, server.port, security="starttls", ca_file=str(cert.ca)))
    assert code == 250 and len(server.messages) == 1


def test_starttls_without_the_ca_is_refused(tmp_path: Path) -> None:
    cert = make_ca(tmp_path / "pki")
    with SmtpServer(tls=cert, require_tls=True) as server:
        transport = smtp_transport(tmp_path, server.port, security="starttls")
        with pytest.raises(DeliveryError, match=r"certificate is not trusted") as info:
            transport.connect()
    assert "ca_file" in (info.value.hint or "")
    assert server.messages == []


def test_a_self_signed_certificate_is_refused_even_with_another_ca(tmp_path: Path) -> None:
    other = make_ca(tmp_path / "pki")
    assert other.ca is not None
    with SmtpServer(tls=make_self_signed(tmp_path / "self"), require_tls=True) as server:
        transport = smtp_transport(tmp_path, server.port, security="starttls", ca_file=str(other.ca))
        with pytest.raises(DeliveryError, match=r"127\.0\.0\.1:\d+: the server's certificate is not trusted"):
            transport.connect()


def test_implicit_tls(tmp_path: Path) -> None:
    cert = make_ca(tmp_path / "pki")
    with SmtpServer(implicit_tls=cert) as server:
        code, _ = send_one(smtp_transport(tmp_path, server.port, security="ssl", ca_file=str(cert.ca)))
    assert code == 250


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_every_smtp_socket_has_tcp_nodelay(tmp_path: Path, security: str) -> None:
    # Without it, the last small segment of each message (over TLS, its last record) waits
    # for the server's delayed ACK: up to 40 ms per message, whatever the relay could take.
    cert = make_ca(tmp_path / "pki")
    tls = {"tls": cert} if security == "starttls" else {"implicit_tls": cert} if security == "ssl" else {}
    with SmtpServer(**tls) as server:  # type: ignore[arg-type]
        connection = smtp_transport(tmp_path, server.port, security=security, ca_file=str(cert.ca)).connect()
        try:
            sock = connection.client.sock
            assert sock is not None
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert connection.send("a@example.org", "b@example.org", MESSAGE).ok
        finally:
            connection.close()
    assert len(server.messages) == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_with_the_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mechanism: str
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret pass")
    cert = make_ca(tmp_path / "pki")
    with SmtpServer(tls=cert, auth={"newsletter": "s3cret pass"}, auth_mechanisms=(mechanism,)) as server:
        code, _ = send_one(
            smtp_transport(tmp_path, server.port, security="starttls", ca_file=str(cert.ca), username="newsletter")
        )
    assert code == 250
    assert server.authenticator is not None and server.authenticator.logins == [f"{mechanism}:newsletter"]


def test_a_wrong_password_is_a_clear_error_without_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong-one")
    with SmtpServer(auth={"newsletter": "right-one"}) as server:
        transport = smtp_transport(tmp_path, server.port, security="none", username="newsletter")
        with pytest.raises(DeliveryError, match=r"refused the login of newsletter: 535") as info:
            transport.connect()
    assert "wrong-one" not in str(info.value) and "wrong-one" not in (info.value.hint or "")


def test_no_password_anywhere_says_how_to_set_one(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match=r"no SMTP password for newsletter on 127\.0\.0\.1") as info:
        smtp_transport(tmp_path, 2525, security="none", username="newsletter")
    assert PASSWORD_ENV in (info.value.hint or "") and "keyring set cepletter newsletter@127.0.0.1" in (info.value.hint or "")


def test_a_password_is_never_sent_unencrypted_to_another_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    settings = make_settings(
        tmp_path, delivery={"transport": "smtp"},
        smtp={"host": "smtp.example.org", "port": 25, "security": "none", "username": "u"},
    )
    with pytest.raises(DeliveryError, match=r"would cross the network unencrypted to smtp\.example\.org"):
        make_transport(settings)


def test_starttls_not_offered_is_an_error(tmp_path: Path) -> None:
    with SmtpServer() as server, pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        smtp_transport(tmp_path, server.port, security="starttls").connect()


def test_nothing_listening_is_a_connect_failure(tmp_path: Path) -> None:
    with SmtpServer() as server:
        port = server.port
    with pytest.raises(ConnectFailed, match=rf"cannot connect to 127\.0\.0\.1:{port}"):
        smtp_transport(tmp_path, port, security="none").connect()


def test_a_refused_recipient_is_an_outcome_and_the_connection_stays_usable(tmp_path: Path) -> None:
    from smtpservers import Rule

    with SmtpServer(rules={"no@example.org": Rule("550")}) as server:
        connection = smtp_transport(tmp_path, server.port, security="none").connect()
        refused = connection.send("a@example.org", "no@example.org", MESSAGE)
        accepted = connection.send("a@example.org", "b@example.org", MESSAGE)
        connection.close()
    assert (refused.code, refused.permanent) == (550, True)
    assert refused.reply == "550 5.1.1 No such user here"
    assert accepted.ok and len(server.messages) == 1


def test_lines_starting_with_a_dot_arrive_unchanged(tmp_path: Path) -> None:
    body = b".starts with a dot\r\n..two\r\n.\r\nmiddle . dot\r\n.\r\n"
    message = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: dots\r\n\r\n" + body
    with SmtpServer() as server:
        connection = smtp_transport(tmp_path, server.port, security="none").connect()
        outcomes = [connection.send("a@example.org", "b@example.org", data) for data in (message, b"." + body)]
        connection.close()
    assert all(o.ok for o in outcomes)
    first, second = server.messages
    assert first.data.replace(b"\r\n", b"\n") == message.replace(b"\r\n", b"\n")
    assert second.data.replace(b"\r\n", b"\n") == (b"." + body).replace(b"\r\n", b"\n")


def test_dot_stuffing_is_what_smtplib_sends() -> None:
    import smtplib

    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.lists(st.sampled_from([b".", b"..", b"a", b" .", b"\r\n", b"\n", b"x.y"]), max_size=30).map(b"".join))
    def check(data: bytes) -> None:
        expected = smtplib._quote_periods(data)  # type: ignore[attr-defined]
        if expected[-2:] != b"\r\n":
            expected += b"\r\n"
        assert dot_stuffed(data) == expected + b".\r\n"

    check()


def test_a_dropped_connection_is_an_outcome(tmp_path: Path) -> None:
    from smtpservers import Rule

    with SmtpServer(rules={"drop@example.org": Rule("drop")}) as server:
        connection = smtp_transport(tmp_path, server.port, security="none").connect()
        outcome = connection.send("a@example.org", "drop@example.org", MESSAGE)
        connection.close()
    # The server closes the connection before its 421 can be written: the client sees it drop.
    assert outcome.dropped and outcome.code == 0


def test_maildir_is_a_standard_maildir(tmp_path: Path) -> None:
    transport = make_transport(make_settings(tmp_path))
    assert isinstance(transport, MaildirTransport)
    connection = transport.connect()
    outcome = connection.send("a@example.org", "b@example.org", MESSAGE.replace(b"\r\n", b"\n"))
    assert outcome.ok and outcome.reply.startswith("delivered to Maildir as ")
    box = mailbox.Maildir(tmp_path / "outbox", factory=None, create=False)
    [message] = list(box)
    assert message["Subject"] == "hi"
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1
