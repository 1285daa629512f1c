"""Messages: headers, MIME structure, encodings, and that bodies are exactly the rendered ones."""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest
from deliverykit import make_rendered, make_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from cepletter.errors import ConfigError
from cepletter.message import TEST_PREFIX, MessageFactory, encode_header, format_address, one_line
from cepletter.recipient import Recipient


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    # The decoded bytes, not get_content(): that would also rewrite line ends.
    html, text = (p.get_payload(decode=True) for p in (parts[1], parts[0]))
    assert isinstance(html, bytes) and isinstance(text, bytes)
    return html.decode("utf-8"), text.decode("utf-8")


@pytest.fixture
def factory(tmp_path: Path) -> MessageFactory:
    return MessageFactory(make_settings(tmp_path), make_rendered(body_lines=40))


def test_headers_of_a_message(factory: MessageFactory) -> None:
    recipient = Recipient("anna@example.org", "Anna Jansen")
    message = parse(factory.build(recipient).data)
    assert message["From"] == "CEP <newsletter@example.org>"
    assert message["To"] == "Anna Jansen <anna@example.org>"
    assert message["Subject"] == "Newsletter December 2025"
    assert message["Reply-To"] == "communications@example.org"
    assert message["MIME-Version"] == "1.0"
    assert message["List-Id"] == "CEP Newsletter <newsletter.example.org>"
    assert message["List-Unsubscribe"] == (
        "<https://example.org/unsubscribe?email=anna@example.org>, "
        "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].endswith("@example.org>")
    assert message["Date"].endswith("+0000")
    assert message.get_content_type() == "multipart/alternative"
    assert message.defects == []


def test_bodies_are_byte_for_byte_the_rendered_ones(factory: MessageFactory) -> None:
    recipient = Recipient("eva@example.org", "Eva Novák <&> \"quoted\"")
    html, text = bodies(parse(factory.build(recipient).data))
    assert (html, text) == factory.rendered.fill(recipient)
    assert "Eva Novák &lt;&amp;&gt; &quot;quoted&quot;" in html


def test_encoded_lines_stay_within_the_mime_limit(factory: MessageFactory) -> None:
    data = factory.build(Recipient("anna@example.org", "A" * 300)).data
    body = data.split(b"\n\n", 1)[1]
    assert max(len(line) for line in body.split(b"\n")) <= 76


def test_smtp_messages_use_crlf_and_maildir_messages_lf(tmp_path: Path) -> None:
    settings, rendered = make_settings(tmp_path), make_rendered()
    crlf = MessageFactory(settings, rendered, crlf=True).build(Recipient("a@example.org")).data
    lf = MessageFactory(settings, rendered).build(Recipient("a@example.org")).data
    assert b"\r\n" in crlf and crlf.count(b"\n") == crlf.count(b"\r\n")
    assert b"\r" not in lf
    assert bodies(parse(crlf.replace(b"\r\n", b"\n"))) == bodies(parse(lf))


def test_message_ids_are_unique(factory: MessageFactory) -> None:
    ids = {factory.build(Recipient(f"r{i}@example.org")).message_id for i in range(500)}
    assert len(ids) == 500


def test_non_ascii_subject_and_name_are_rfc2047_encoded(tmp_path: Path) -> None:
    factory = MessageFactory(make_settings(tmp_path), make_rendered(subject="Lettre d'information — décembre"))
    data = factory.build(Recipient("eva@example.org", "Eva Novák")).data
    head = data.split(b"\n\n", 1)[0]
    assert head.isascii()
    assert b"=?utf-8?" in head
    message = parse(data)
    assert message["Subject"] == "Lettre d'information — décembre"
    assert message["To"].addresses[0].display_name == "Eva Novák"
    assert message["To"].addresses[0].addr_spec == "eva@example.org"


@pytest.mark.parametrize(
    "name",
    ["Mallory\r\nBcc: victim@example.net", "Mallory\nBcc: victim@example.net", "Zoë\rBcc: x@example.net",
     "Line\u2028Bcc: x@example.net"],
)
def test_a_line_break_in_a_name_never_adds_a_header(factory: MessageFactory, name: str) -> None:
    message = parse(factory.build(Recipient("m@example.org", name)).data)
    assert message["Bcc"] is None
    assert message["To"].addresses[0].addr_spec == "m@example.org"
    assert "Bcc: " in message["To"].addresses[0].display_name


def test_a_line_break_in_the_subject_never_adds_a_header(tmp_path: Path) -> None:
    factory = MessageFactory(make_settings(tmp_path), make_rendered(subject="News\r\nBcc: victim@example.net"))
    message = parse(factory.build(Recipient("a@example.org")).data)
    assert message["Bcc"] is None
    assert message["Subject"] == "News Bcc: victim@example.net"


def test_test_prefix(tmp_path: Path) -> None:
    factory = MessageFactory(make_settings(tmp_path), make_rendered(), subject_prefix=TEST_PREFIX)
    assert parse(factory.build(Recipient("a@example.org")).data)["Subject"] == "[TEST] Newsletter December 2025"


def test_configured_list_id_and_no_reply_to(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, newsletter={"list_id": "news.cep-probation.org", "reply_to": ""})
    message = parse(MessageFactory(settings, make_rendered()).build(Recipient("a@example.org")).data)
    assert message["List-Id"] == "CEP Newsletter <news.cep-probation.org>"
    assert message["Reply-To"] is None


def test_without_https_unsubscribe_there_is_no_one_click_header(tmp_path: Path) -> None:
    url = "http://example.org/u?e={email}"
    settings = make_settings(tmp_path, newsletter={"unsubscribe_url": url})
    message = parse(MessageFactory(settings, make_rendered(unsub=url)).build(Recipient("a@example.org")).data)
    assert message["List-Unsubscribe-Post"] is None
    assert "<mailto:unsubscribe@example.org?subject=unsubscribe>" in message["List-Unsubscribe"]


def test_a_from_without_address_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[newsletter\] from"):
        MessageFactory(make_settings(tmp_path, newsletter={"from": "CEP newsletter"}), make_rendered())


def test_web_version_has_no_personal_values(factory: MessageFactory) -> None:
    message = parse(factory.build_web().data)
    html, text = bodies(message)
    assert (html, text) == factory.rendered.web()
    assert message["To"] == "undisclosed-recipients:;"


def test_header_helpers() -> None:
    assert one_line(" a\r\nb\tc ") == "a b c"
    assert format_address('Smith, "J"', "j@example.org") == '"Smith, \\"J\\"" <j@example.org>'
    assert format_address("", "j@example.org") == "j@example.org"
    folded = encode_header("Subject", "word " * 40)
    assert all(len(line) <= 78 for line in folded.split("\n"))


def test_no_line_starts_with_from_so_mbox_needs_no_quoting(factory: MessageFactory) -> None:
    recipient = Recipient("f@example.org", "From Here\nFrom there")
    data = factory.build(recipient).data
    assert not re.search(rb"(?m)^From ", data)
    assert bodies(parse(data)) == factory.rendered.fill(recipient)


@settings(max_examples=60, deadline=None)
@given(name=st.text(max_size=120), tail=st.text(max_size=200))
def test_any_name_round_trips_through_the_body(tmp_path_factory: pytest.TempPathFactory, name: str, tail: str) -> None:
    root = tmp_path_factory.mktemp("msg")
    factory = MessageFactory(make_settings(root), make_rendered(subject="S " + tail.replace("\x00", "")))
    recipient = Recipient("r@example.org", name)
    message = parse(factory.build(recipient).data)
    html, text = bodies(message)
    expected_html, expected_text = factory.rendered.fill(recipient)
    assert html == expected_html
    assert text == expected_text
    assert not re.search(rb"(?m)^From ", factory.build(recipient).data)
    wire = MessageFactory(make_settings(root), factory.rendered, crlf=True).build(recipient).data
    assert b"\r\r" not in wire and wire.count(b"\n") == wire.count(b"\r\n")
    assert set(message.keys()) == {
        "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id", "List-Unsubscribe",
        "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
    }


def test_long_words_in_subject_and_name_still_fold(tmp_path: Path) -> None:
    word = "https://example.org/" + "x" * 1200
    factory = MessageFactory(make_settings(tmp_path), make_rendered(subject=f"See {word}"))
    data = factory.build(Recipient("a@example.org", "N" * 1200)).data
    head = data.split(b"\n\n", 1)[0]
    assert max(len(line) for line in head.split(b"\n")) <= 998
    message = parse(data)
    assert message["Subject"] == f"See {word}"
    # decode_header, not the address parser: that one keeps the folding space
    # between encoded words inside a display name, against RFC 2047 section 6.2.
    raw_to = email.message_from_bytes(data)["To"]
    assert str(make_header(decode_header(raw_to))) == "N" * 1200 + " <a@example.org>"
