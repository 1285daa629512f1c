"""Rendered issue + recipient → the bytes of one email message.

Everything that is the same for every recipient (the sender, the subject, the
List-Id, the MIME skeleton and the encoded static parts of both bodies) is
built once, when the factory is made. Per recipient only the values are
filled in and encoded, and the pieces are joined.

Each body goes out as 8bit (RFC 6152): UTF-8 as it is, with the line breaks
the renderer put in, so the message has few, long lines rather than the many
76-character lines of quoted-printable, and a quarter fewer bytes. A part
falls back to quoted-printable when it cannot go as 8bit: a line longer than
998 octets once the values are in, a NUL or carriage return, or a line
starting with "From " (which mbox files would have to quote). The whole
message is quoted-printable when the receiving server does not take 8bit
(``build(..., eight_bit=False)``).

For quoted-printable, each static part and each value is encoded on its own
and the pieces are joined with a soft line break ("=" at the end of a line,
which decoders remove): the decoded body is exactly the concatenation. Either
way a recipient's HTML is byte-for-byte what ``PersonalIssue.fill`` gives.

Messages are assembled with "\\n" line ends, as a Maildir expects; for SMTP
(``crlf=True``) one final replace makes them CRLF, because smtplib sends bytes
exactly as given.
"""

from __future__ import annotations

import binascii
import itertools
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, parseaddr

from cepletter.config import Settings, setting_line
from cepletter.errors import CepletterError, ConfigError
from cepletter.message.personal import PersonalIssue, envelope_sender, unsubscribe_url
from cepletter.message.recipient import Recipient
from cepletter.render.rendered import SlotTemplate

TEST_PREFIX = "[TEST] "

# Line breaks and other control characters in a header value could start a new
# header; they become spaces.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
_FOLD = 76
_LONG_WORD = re.compile(rf"\S{{{_FOLD},}}")


def one_line(value: str) -> str:
    """``value`` with every line break or control character made a space, trimmed."""
    return _CONTROL.sub(" ", value).strip()


def encode_header(name: str, value: str) -> str:
    """``Name: value`` folded, RFC 2047-encoded when the value is not ASCII (no line end)."""
    value = one_line(value)
    # A word too long to fold would make a line past SMTP's 998-character limit
    # (servers answer "500 Line too long"); encoded words can be split anywhere.
    charset = "us-ascii" if value.isascii() and not _LONG_WORD.search(value) else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep="\n")
    return f"{name}: {encoded}"


def _phrase(name: str) -> str:
    """A display name as it goes before ``<address>``."""
    name = one_line(name)
    if not name:
        return ""
    if not name.isascii() or len(name) > _FOLD:
        # Encoded words fold into short lines; a long plain phrase would not fold at all.
        return Header(name, "utf-8").encode(linesep="\n")
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+", name):
        return name
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def format_address(name: str, address: str) -> str:
    """``Name <address>`` with the name quoted or RFC 2047-encoded as needed."""
    address = one_line(address).replace("<", "").replace(">", "")
    phrase = _phrase(name)
    return f"{phrase} <{address}>" if phrase else address


def parse_mailbox(value: str) -> tuple[str, str]:
    """``Name <address>``, ``"Name" <address>`` or ``address`` as (name, address).

    What is before the last ``<...>`` is the name, whatever it holds:
    ``Friends @ CEP <newsletter@example.org>`` is "Friends @ CEP" at
    newsletter@example.org (``parseaddr`` reads the address "Friends@CEP").
    """
    value = one_line(value)
    match = re.fullmatch(r"(.*?)\s*<([^<>]*)>", value)
    if match is None:
        return parseaddr(value)
    name = match.group(1).strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name, match.group(2).strip()


def parse_mailboxes(value: str) -> list[tuple[str, str]]:
    """A comma-separated list of mailboxes (commas inside quotes or ``<...>`` do not separate)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = angle = escaped = False
    for char in one_line(value):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"' and not angle:
            quoted = not quoted
        elif char == "<" and not quoted:
            angle = True
        elif char == ">" and not quoted:
            angle = False
        elif char == "," and not quoted and not angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [parse_mailbox(part) for part in parts if part.strip()]


def _address_list(value: str) -> str:
    return ", ".join(format_address(n, a) for n, a in parse_mailboxes(value) if a)


class NeedsSmtpUtf8(CepletterError):
    """A recipient's address is not ASCII: the message can only go to a server that offers SMTPUTF8."""


def _ascii_domain(domain: str) -> str:
    """``domain`` in its ASCII (IDNA) form, for the Message-ID; as it is when that cannot be made."""
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"


_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)


def _from_safe(encoded: bytes) -> bytes:
    """Encode the F of a line starting "From " (=46), so mbox files need no ">From" quoting."""
    return _FROM_LINE.sub(b"=46rom ", encoded) if b"From " in encoded else encoded


def _qp(text: str) -> bytes:
    return _from_safe(binascii.b2a_qp(text.encode("utf-8"), istext=True))


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# RFC 5322: a line holds at most 998 octets, not counting its CRLF.
LINE_LIMIT = 998


# Where the line feeds of a piece of body fall, for checking joined lines cheaply:
# (size, octets before the first line feed, the longest line between the first
# and the last line feed, octets after the last one, whether it has a line feed).
_Shape = tuple[int, int, int, int, bool]


def _shape(data: bytes) -> _Shape:
    first = data.find(b"\n")
    if first < 0:
        return (len(data), len(data), 0, len(data), False)
    last = data.rfind(b"\n")
    inner = max((len(line) for line in data[first + 1: last].split(b"\n")), default=0) if last > first else 0
    return (len(data), first, inner, len(data) - last - 1, True)


def _lines_fit(shapes: list[_Shape]) -> bool:
    """Whether the pieces, joined, keep every line within LINE_LIMIT."""
    current = 0
    for size, first, inner, last, has_lf in shapes:
        if not has_lf:
            current += size
            continue
        if current + first > LINE_LIMIT or inner > LINE_LIMIT:
            return False
        current = last
    return current <= LINE_LIMIT


_FROM = b"\nFrom "


class _Body:
    """A SlotTemplate with its static parts encoded once, as 8bit and as quoted-printable."""

    def __init__(self, template: SlotTemplate) -> None:
        texts = tuple(_lf(part) for part in template.parts)
        self.slots = template.slots
        self.raw = tuple(text.encode("utf-8") for text in texts)
        self.shapes = tuple(_shape(part) for part in self.raw)
        # A static NUL or "From " line can never go as 8bit; values (and the
        # lines they start or end) are checked per recipient.
        self.raw_ok = not any(b"\x00" in part or _FROM in part for part in self.raw) and not self.raw[0].startswith(
            b"From "
        )
        self._qp: tuple[bytes, ...] | None = None

    @property
    def qp_parts(self) -> tuple[bytes, ...]:
        # Encoded on first use: most messages never need it.
        if self._qp is None:
            self._qp = tuple(_qp(part.decode("utf-8")) for part in self.raw)
        return self._qp

    def encode(self, values: Mapping[str, str], eight_bit: bool) -> tuple[bytes, bool]:
        """The encoded body and whether it is 8bit (else quoted-printable)."""
        filled = [escape(values.get(key, "")) for key, escape in self.slots]
        if eight_bit and self.raw_ok:
            data = self._eight_bit(filled)
            if data is not None:
                return data, True
        return self._quoted_printable(filled), False

    def _eight_bit(self, filled: list[str]) -> bytes | None:
        pieces = [self.raw[0]]
        shapes = [self.shapes[0]]
        spans: list[tuple[int, int]] = []  # where each value lands in the joined body
        offset = len(self.raw[0])
        for value, part, shape in zip(filled, self.raw[1:], self.shapes[1:], strict=True):
            if "\r" in value or "\x00" in value:
                return None  # no bare CR or NUL in an 8bit body
            encoded = value.encode("utf-8")
            pieces.append(encoded)
            shapes.append(_shape(encoded))
            spans.append((offset, offset + len(encoded)))
            offset += len(encoded) + len(part)
            pieces.append(part)
            shapes.append(shape)
        if not _lines_fit(shapes):
            return None
        data = b"".join(pieces)
        # The static parts hold no "From " line (raw_ok), so one can only touch a value.
        for start, end in spans:
            if data.find(_FROM, max(0, start - len(_FROM)), end + len(_FROM)) >= 0:
                return None
        return None if data.startswith(b"From ") else data

    def _quoted_printable(self, filled: list[str]) -> bytes:
        parts = self.qp_parts
        pieces = [parts[0]]
        for value, part in zip(filled, parts[1:], strict=True):
            # istext=False: a line break inside a value is encoded (=0A), so the
            # value decodes exactly and can never turn into a bare CR on the wire.
            encoded = binascii.b2a_qp(value.encode("utf-8"), istext=False)
            if b"\r" in encoded:
                # b2a_qp writes its soft breaks as "=\r\n" when the value holds a CRLF.
                encoded = encoded.replace(b"=\r\n", b"=\n")
            pieces.append(_from_safe(encoded))
            pieces.append(part)
        # The soft line break "=\n" joins pieces without adding anything.
        return b"=\n".join(p for p in pieces if p)


@dataclass(frozen=True)
class Built:
    """One finished message."""

    message_id: str
    data: bytes
    eight_bit: bool = False  # a body part is 8bit: SMTP needs a server that offers 8BITMIME
    sender: str = ""  # the envelope sender (MAIL FROM): [delivery] return_path for this recipient
    utf8: bool = False  # an address in the headers is not ASCII: SMTP needs a server that offers SMTPUTF8


class _DateCache:
    """The Date header text, recomputed once a second rather than per message."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            # formatdate gives -0000 for UTC ("zone unknown"); +0000 says it is UTC.
            self._text = formatdate(second).replace("-0000", "+0000")
            self._second = second
        return self._text


class MessageFactory:
    """Builds every recipient's message for one rendered issue."""

    def __init__(
        self, settings: Settings, rendered: PersonalIssue, *, subject_prefix: str = "", crlf: bool = False
    ) -> None:
        nl = settings.newsletter
        from_name, from_addr = parse_mailbox(nl.from_)
        if "@" not in from_addr:
            raise ConfigError(
                f"cepletter.toml: [newsletter] from: {nl.from_!r} is not an email address",
                'Write it like from = "CEP <newsletter@example.org>".',
            )
        self.rendered = rendered
        self.crlf = crlf
        self.sender = from_addr
        self._return_path = settings.delivery.return_path
        self.domain = _ascii_domain(from_addr.rpartition("@")[2].strip().lower())
        self.subject = one_line(subject_prefix + rendered.subject)
        self._unsubscribe_template = nl.unsubscribe_url
        self._list_name = nl.name
        self._mailto = one_line(nl.unsubscribe_mailto or "")
        self._run = f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}.{secrets.token_hex(6)}"
        self._counter = itertools.count(1)
        self._dates = _DateCache()
        self.boundary = f"=_cepletter_{secrets.token_hex(12)}"

        head = [f"From: {format_address(from_name, from_addr)}\n", encode_header("Subject", self.subject) + "\n"]
        tail = []
        if nl.reply_to:
            tail.append(f"Reply-To: {_address_list(nl.reply_to)}\n")
        tail.append(f"List-Id: {self._list_id(nl.list_id, nl.name, from_addr)}\n")
        # Names and the subject are RFC 2047-encoded; only an address can hold UTF-8 (RFC 6532).
        self._head = "".join(head).encode("utf-8")
        self._tail = "".join(tail).encode("utf-8")
        self._not_ascii = next((key for key, value in (("from", from_addr), ("reply_to", nl.reply_to or ""),
                                                       ("list_id", self._tail.decode("utf-8")))
                                if not value.isascii()), None)
        self._settings = settings
        b = self.boundary
        self._start = f'MIME-Version: 1.0\nContent-Type: multipart/alternative;\n boundary="{b}"\n\n'.encode("ascii")
        self._text_head = {
            cte: f'--{b}\nContent-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n\n'.encode("ascii")
            for cte in ("8bit", "quoted-printable")
        }
        self._html_head = {
            cte: f'\n--{b}\nContent-Type: text/html; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n\n'.encode(
                "ascii"
            )
            for cte in ("8bit", "quoted-printable")
        }
        self._end = f"\n--{b}--\n".encode("ascii")
        self._text = _Body(rendered.text)
        self._html = _Body(rendered.html)

    @staticmethod
    def _list_id(configured: str | None, name: str, from_addr: str) -> str:
        if configured:
            value = one_line(configured)
            return value if "<" in value else f"{_phrase(name)} <{value}>".strip()
        local, _, domain = from_addr.partition("@")
        label = re.sub(r"[^A-Za-z0-9-]+", "-", local).strip("-").lower() or "newsletter"
        return f"{_phrase(name)} <{label}.{domain.lower()}>".strip()

    @property
    def needs_utf8(self) -> bool:
        """Whether every message holds UTF-8 headers (``from``, ``reply_to`` or ``list_id`` is not ASCII)."""
        return self._not_ascii is not None

    def _refuse_utf8(self, key: str) -> ConfigError:
        nl = self._settings.newsletter
        value = {"from": nl.from_, "reply_to": nl.reply_to, "list_id": nl.list_id or nl.from_}[key]
        if key == "list_id" and not nl.list_id:
            key = "from"  # the List-Id made from the from address
        line = setting_line(self._settings, "newsletter", key)
        where = self._settings.config_path.name + (f", line {line}" if line else "")
        return ConfigError(
            f"{where}: [newsletter] {key}: {value!r} is not ASCII, and the mail server does not offer "
            "SMTPUTF8 (RFC 6531), which such an address needs; nothing sent",
            f"Use an ASCII address for {key}, or send through a server that offers SMTPUTF8 (Postfix does).",
        )

    def _message_id(self) -> str:
        return f"<{self._run}.{next(self._counter)}@{self.domain}>"

    def _unsubscribe_headers(self, url: str) -> bytes:
        targets = []
        url = one_line(url)
        https = url.startswith("https://") and url.isascii() and ">" not in url
        if https or (url.startswith("http://") and url.isascii() and ">" not in url):
            targets.append(f"<{url}>")
        if self._mailto:
            targets.append(f"<mailto:{self._mailto}?subject=unsubscribe>")
        elif url.startswith("mailto:") and url.isascii() and ">" not in url:
            targets.append(f"<{url}>")
        if not targets:
            return b""
        header = "List-Unsubscribe: " + ",\n ".join(targets) + "\n"
        if https:
            # RFC 8058 one-click: only meaningful with an https URL.
            header += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
        return header.encode("ascii", "replace")

    def reviewed_headers(self) -> bytes:
        """The headers every subscriber gets alike, exactly as sent: From, Subject, Reply-To,
        List-Id, and List-Unsubscribe (with List-Unsubscribe-Post) for the unsubscribe URL as
        configured, before each recipient's {email} and {token} are filled in."""
        return self._head + self._tail + self._unsubscribe_headers(self._unsubscribe_template or "")

    def build(self, recipient: Recipient, *, eight_bit: bool = True, utf8: bool = True) -> Built:
        """The message for one recipient; ``eight_bit=False`` for a server without 8BITMIME.

        ``utf8=False`` for a server without SMTPUTF8: a message whose headers would hold
        an address that is not ASCII is then refused, ConfigError for the settings'
        addresses (with their line in cepletter.toml), NeedsSmtpUtf8 for the recipient's.
        """
        if not utf8 and self._not_ascii is not None:
            raise self._refuse_utf8(self._not_ascii)
        if not utf8 and not recipient.email.isascii():
            raise NeedsSmtpUtf8(f"{recipient.email}: an address that is not ASCII needs a mail server that offers "
                                "SMTPUTF8 (RFC 6531), and this one does not")
        values = self.rendered.values_for(recipient)
        url = values.get("unsubscribe_url") or unsubscribe_url(
            self._unsubscribe_template, self._list_name, recipient
        )
        sender = (envelope_sender(self._return_path, self._list_name, recipient) if self._return_path
                  else self.sender)
        return self._assemble(format_address(recipient.name, recipient.email), values, url, eight_bit, sender)

    def build_web(self, *, eight_bit: bool = True) -> Built:
        """The web version as a message (no personal data): for `.eml` exports."""
        values = self.rendered.web_values
        url = values.get("unsubscribe_url", "")
        if "{" in url:
            url = ""
        return self._assemble("undisclosed-recipients:;", values, url, eight_bit)

    def _assemble(self, to: str, values: Mapping[str, str], url: str, eight_bit: bool, sender: str = "") -> Built:
        """Join the parts built once with this message's own headers and filled bodies."""
        message_id = self._message_id()
        per_text = f"To: {to}\nDate: {self._dates.now()}\nMessage-ID: {message_id}\n"
        # Only an address can make it UTF-8 (names are RFC 2047-encoded): see `build`.
        per = per_text.encode("utf-8")
        utf8 = self._not_ascii is not None or not per_text.isascii()
        text, text_8bit = self._text.encode(values, eight_bit)
        html, html_8bit = self._html.encode(values, eight_bit)
        data = b"".join(
            (
                self._head,
                per,
                self._tail,
                self._unsubscribe_headers(url),
                self._start,
                self._text_head["8bit" if text_8bit else "quoted-printable"],
                text,
                self._html_head["8bit" if html_8bit else "quoted-printable"],
                html,
                self._end,
            )
        )
        # Neither form of body nor the cleaned headers hold a CR, so this cannot double one.
        return Built(message_id, data.replace(b"\n", b"\r\n") if self.crlf else data, text_8bit or html_8bit,
                     sender or self.sender, utf8)
