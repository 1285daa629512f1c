"""The newsletter's own addresses (from, reply_to, list_id) as cepletter.toml gives them and as they are sent.

A display name may hold an "@"; a line break in a value that goes into a header
is refused with its line; an address that is not ASCII goes out as UTF-8
(RFC 6532) only where the message may hold UTF-8 headers, and is otherwise
refused with its line in cepletter.toml.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_workspace
from smtpservers import SmtpServer

from cepletter.config import load_settings
from cepletter.errors import ConfigError
from cepletter.issue.file import resolve
from cepletter.message.build import MessageFactory, NeedsSmtpUtf8
from cepletter.message.personal import render_personal
from cepletter.message.recipient import Recipient


def smtp_toml(port: int) -> str:
    return (f'[delivery]\ntransport = "smtp"\nrate = 1000\nconnections = 1\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n')


def with_newsletter(ws: Path, key: str, toml_value: str) -> int:
    """Set ``[newsletter] key`` to ``toml_value`` (TOML, quotes included); the line it is on."""
    path = ws / "cepletter.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    line = f"{key} = {toml_value}"
    for number, text in enumerate(lines):
        if text.startswith(f"{key} = "):
            lines[number] = line
            break
    else:
        lines.insert(1, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if text == line)


def test_a_display_name_with_an_at_sign_is_quoted_not_taken_for_the_address(tmp_path: Path, run: Invoke) -> None:
    with SmtpServer() as server:
        ws = make_workspace(tmp_path / "ws", smtp_toml(server.port))
        with_newsletter(ws, "from", '"Friends @ CEP <newsletter@example.org>"')
        with_newsletter(ws, "reply_to", '"Team @ CEP <team@example.org>, other@example.org"')
        checked = run("-C", str(ws), "check")
        assert "from" not in checked.stdout + checked.stderr.replace("From:", "")  # no finding about it
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert result.exit_code == 0, result.stderr
    assert len(server.messages) == 3
    for received in server.messages:
        assert received.sender == "newsletter@example.org"
        assert received.data.startswith(b'From: "Friends @ CEP" <newsletter@example.org>\r\n')
        assert b'\r\nReply-To: "Team @ CEP" <team@example.org>, other@example.org\r\n' in received.data
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        assert [(a.display_name, a.addr_spec) for a in parsed["From"].addresses] == [
            ("Friends @ CEP", "newsletter@example.org")]


@pytest.mark.parametrize(("key", "value"), [
    ("from", r'"CEP <newsletter@example.org>\nBcc: everyone@example.net"'),
    ("from", r'"CEP\r\nBcc: everyone@example.net <newsletter@example.org>"'),
    ("reply_to", r'"replies@example.org\nBcc: everyone@example.net"'),
    ("list_id", r'"news.example.org\tX-Extra: 1"'),
])
def test_a_line_break_in_a_header_setting_is_refused_with_its_line(
        tmp_path: Path, run: Invoke, key: str, value: str) -> None:
    with SmtpServer() as server:
        ws = make_workspace(tmp_path / "ws", smtp_toml(server.port))
        line = with_newsletter(ws, key, value)
        for command in (("send", "--yes", "--unreviewed"), ("send", "--test", "me@example.org"), ("check",)):
            result = run("-C", str(ws), *command)
            assert result.exit_code == 1, (command, result.stderr)
            assert (f"Error: cepletter.toml, line {line}: [newsletter] {key}: " in result.stderr
                    and "has a line break or control character in it" in result.stderr), result.stderr
            assert "Traceback" not in result.stderr
    assert server.messages == []


def _factory(ws: Path) -> MessageFactory:
    settings = load_settings(ws)
    return MessageFactory(settings, render_personal(settings, resolve(settings.issues_dir, None)), crlf=True)


@pytest.mark.parametrize(("key", "value", "header"), [
    ("from", '"Zoë <zoë@example.org>"', "From: =?utf-8?q?Zo=C3=AB?= <zoë@example.org>"),
    ("reply_to", '"用户@example.org"', "Reply-To: 用户@example.org"),
    ("list_id", '"nouvelles.exämple.org"', "List-Id: CEP Newsletter <nouvelles.exämple.org>"),
])
def test_a_non_ascii_address_goes_out_as_utf8_only_where_utf8_headers_may_go(
        tmp_path: Path, key: str, value: str, header: str) -> None:
    ws = make_workspace(tmp_path / "ws")
    line = with_newsletter(ws, key, value)
    factory = _factory(ws)
    assert factory.needs_utf8
    built = factory.build(Recipient(email="anna@example.org", name="Anna"))
    assert built.utf8
    assert f"\r\n{header}\r\n".encode() in b"\r\n" + built.data
    assert b"Message-ID: <" in built.data and built.data.split(b"Message-ID: ")[1].split(b"\r\n")[0].isascii()
    with pytest.raises(ConfigError) as refused:
        factory.build(Recipient(email="anna@example.org", name="Anna"), utf8=False)
    assert str(refused.value).startswith(f"cepletter.toml, line {line}: [newsletter] {key}: ")
    assert "SMTPUTF8" in str(refused.value) and "nothing sent" in str(refused.value)


def test_ascii_settings_need_no_utf8_and_a_non_ascii_recipient_is_refused_without_it(tmp_path: Path) -> None:
    factory = _factory(make_workspace(tmp_path / "ws"))
    assert not factory.needs_utf8
    plain = factory.build(Recipient(email="anna@example.org", name="Anna Jansen"), utf8=False)
    assert not plain.utf8 and plain.data.split(b"\r\n\r\n")[0].isascii()
    wide = factory.build(Recipient(email="zoë@example.org", name="Zoë"))
    assert wide.utf8 and "\r\nTo: =?utf-8?q?Zo=C3=AB?= <zoë@example.org>\r\n".encode() in wide.data
    with pytest.raises(NeedsSmtpUtf8, match=r"zoë@example\.org: .*SMTPUTF8"):
        factory.build(Recipient(email="zoë@example.org", name="Zoë"), utf8=False)


def test_a_non_ascii_from_reaches_the_maildir_as_a_utf8_header(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    with_newsletter(ws, "from", '"Zoë <zoë@exämple.org>"')
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 0, result.stderr
    messages = list(mailbox.Maildir(ws / "outbox", factory=None, create=False))
    assert len(messages) == 3
    for message in messages:
        data = message.as_bytes()
        assert data.startswith("From: =?utf-8?q?Zo=C3=AB?= <zoë@exämple.org>\n".encode())  # RFC 6532: as UTF-8
        # (the standard library reads 8-bit header bytes as text only from a str)
        parsed = email.message_from_string(data.decode("utf-8"), policy=email.policy.default)
        assert [(a.display_name, a.addr_spec) for a in parsed["From"].addresses] == [("Zoë", "zoë@exämple.org")]
