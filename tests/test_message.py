"""Messages: headers, MIME structure, encodings, and that bodies are exactly the rendered ones."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest
from deliverykit import make_rendered, make_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from cepletter.errors import ConfigError
from cepletter.message.build import TEST_PREFIX, MessageFactory, encode_header, format_address, one_line
from cepletter.message.recipient import Recipient
from cepletter.render.rendered import SlotTemplate


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


def test_quoted_printable_lines_stay_within_76_characters(factory: MessageFactory) -> None:
    recipient = Recipient("anna@example.org", "A" * 300)
    built = factory.build(recipient, eight_bit=False)
    assert not built.eight_bit
    body = built.data.split(b"\n\n", 1)[1]
    assert max(len(line) for line in body.split(b"\n")) <= 76
    assert body.count(b"Content-Transfer-Encoding: quoted-printable") == 2
    assert b"8bit" not in built.data
    assert bodies(parse(built.data)) == factory.rendered.fill(recipient)


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
    assert max(len(line) for line in factory.build(recipient).data.split(b"\n")) <= 998
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


# ---------------------------------------------------------------- 8bit bodies


def parts_of(data: bytes) -> list[EmailMessage]:
    return list(parse(data).iter_parts())


def test_html_goes_as_8bit_with_long_lines_and_fewer_bytes(factory: MessageFactory) -> None:
    recipient = Recipient("eva@example.org", "Eva Novák")
    built = factory.build(recipient)
    assert built.eight_bit
    text_part, html_part = parts_of(built.data)
    assert html_part["Content-Transfer-Encoding"] == "8bit"
    # The text holds a line starting "From ": that part stays quoted-printable.
    assert text_part["Content-Transfer-Encoding"] == "quoted-printable"
    assert "café".encode() in built.data and b"=C3=A9" in built.data.split(b"text/html")[0]
    assert bodies(parse(built.data)) == factory.rendered.fill(recipient)
    assert html_part.get_content() == factory.rendered.fill(recipient)[0]
    assert max(len(line) for line in built.data.split(b"\n")) <= 998
    assert len(built.data) < len(factory.build(recipient, eight_bit=False).data)


def test_a_text_without_from_lines_goes_as_8bit(tmp_path: Path) -> None:
    rendered = make_rendered()
    text = rendered.text
    parts = tuple(p.replace("From the start", "from the start") for p in text.parts)
    rendered = replace(rendered, rendered=replace(rendered.rendered, text=replace(text, parts=parts)))
    factory = MessageFactory(make_settings(tmp_path), rendered)
    recipient = Recipient("a@example.org", "Ann")
    text_part, html_part = parts_of(factory.build(recipient).data)
    assert (text_part["Content-Transfer-Encoding"], html_part["Content-Transfer-Encoding"]) == ("8bit", "8bit")
    # A line that is a single "." stays as it is in the message; SMTP's dot-stuffing is smtplib's job.
    assert b"\n.\n" in factory.build(recipient).data
    assert bodies(parse(factory.build(recipient).data)) == rendered.fill(recipient)


@pytest.mark.parametrize(
    ("name", "why"),
    [("N" * 1000, "a line over 998 octets"), ("Zoë\rBcc", "a bare CR"), ("nul\x00here", "a NUL"),
     ("x\nFrom the boss", "a line starting From")],
)
def test_a_value_that_cannot_go_as_8bit_makes_its_part_quoted_printable(
    factory: MessageFactory, name: str, why: str
) -> None:
    recipient = Recipient("a@example.org", name)
    built = factory.build(recipient)
    _, html_part = parts_of(built.data)
    assert html_part["Content-Transfer-Encoding"] == "quoted-printable", why
    assert not built.eight_bit
    assert bodies(parse(built.data)) == factory.rendered.fill(recipient)
    assert max(len(line) for line in built.data.split(b"\n")) <= 998
    assert not re.search(rb"(?m)^From ", built.data)


def test_a_name_just_within_the_limit_stays_8bit(tmp_path: Path) -> None:
    rendered = make_rendered()
    factory = MessageFactory(make_settings(tmp_path), rendered)
    fixed = len("<html><body><p>Dear ") + len(",</p>")
    fits = Recipient("a@example.org", "N" * (998 - fixed))
    over = Recipient("a@example.org", "N" * (999 - fixed))
    assert parts_of(factory.build(fits).data)[1]["Content-Transfer-Encoding"] == "8bit"
    assert parts_of(factory.build(over).data)[1]["Content-Transfer-Encoding"] == "quoted-printable"


def test_8bit_smtp_form_has_only_crlf_line_ends(tmp_path: Path) -> None:
    factory = MessageFactory(make_settings(tmp_path), make_rendered(body_lines=20), crlf=True)
    data = factory.build(Recipient("a@example.org", "Ann\nLee")).data
    assert data.count(b"\n") == data.count(b"\r\n") and data.count(b"\r") == data.count(b"\r\n")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert b"\x00" not in data


def test_web_message_is_8bit_too(factory: MessageFactory) -> None:
    built = factory.build_web()
    assert built.eight_bit
    assert bodies(parse(built.data)) == factory.rendered.web()


@pytest.mark.parametrize(
    ("parts", "value", "eight_bit"),
    [
        (("Hello ", "\nend\n"), "Ann", True),
        (("Hello\n", " there\n"), "From", False),  # the value starts a line with "From "
        (("Hello\nFr", "\n"), "om here", False),  # a "From " line made of static text and the value
        (("Fr", "\n"), "om the start", False),  # at the very start of the body
        (("Hello\n", "rom x\n"), "F", False),
        (("Hello\nFrom here ", "\n"), "Ann", False),  # in the static text: never 8bit
        (("Hello ", "\n"), "x\nFrom y", False),
        (("Hello ", "\n"), "x\nfrom y", True),
    ],
)
def test_no_line_starts_with_from_in_an_8bit_part(
    tmp_path: Path, parts: tuple[str, str], value: str, eight_bit: bool
) -> None:
    template = SlotTemplate(parts, (("recipient.name", lambda v: v),))
    base = make_rendered()
    rendered = replace(base, rendered=replace(base.rendered, text=template))
    factory = MessageFactory(make_settings(tmp_path), rendered)
    recipient = Recipient("a@example.org", value)
    data = factory.build(recipient).data
    text_part = parts_of(data)[0]
    assert text_part["Content-Transfer-Encoding"] == ("8bit" if eight_bit else "quoted-printable")
    assert not re.search(rb"(?m)^From ", data)
    assert text_part.get_payload(decode=True) == (parts[0] + value + parts[1]).encode("utf-8")
