"""Rendered issue + recipient → the bytes of one email message.

Everything that is the same for every recipient (the sender, the subject, the
List-Id, the MIME skeleton and the quoted-printable encoding of the static
parts of both bodies) is built once, when the factory is made. Per recipient
only the values are filled in and encoded, and the pieces are joined.

The bodies are quoted-printable. Each static part and each value is encoded on
its own and the pieces are joined with a soft line break ("=" at the end of a
line, which decoders remove): the decoded body is exactly the concatenation, so
a recipient's HTML is byte-for-byte what ``RenderedIssue.fill`` gives, and no
encoded line is longer than 76 characters.

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
from email.utils import formatdate, getaddresses, parseaddr

from cepletter.config import Settings
from cepletter.errors import ConfigError
from cepletter.recipient import Recipient, unsubscribe_url
from cepletter.rendered import FilledTemplate, RenderedIssue

TEST_PREFIX = "[TEST] "

# Line breaks and other control characters in a header value could start a new
# header; they become spaces.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
_FOLD = 76
_LONG_WORD = re.compile(rf"\S{{{_FOLD},}}")


def one_line(value: str) -> str:
    """``value`` with every line break or control character made a space, trimmed."""
    return _CONTROL.sub(" ", value).strip()


def _is_ascii(value: str) -> bool:
    return value.isascii()


def encode_header(name: str, value: str) -> str:
    """``Name: value`` folded, RFC 2047-encoded when the value is not ASCII (no line end)."""
    value = one_line(value)
    # A word too long to fold would make a line past SMTP's 998-character limit
    # (servers answer "500 Line too long"); encoded words can be split anywhere.
    charset = "us-ascii" if _is_ascii(value) and not _LONG_WORD.search(value) else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep="\n")
    return f"{name}: {encoded}"


def _phrase(name: str) -> str:
    """A display name as it goes before ``<address>``."""
    name = one_line(name)
    if not name:
        return ""
    if not _is_ascii(name) or len(name) > _FOLD:
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


def _address_list(value: str) -> str:
    return ", ".join(format_address(n, a) for n, a in getaddresses([one_line(value)]) if a)


_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)


def _from_safe(encoded: bytes) -> bytes:
    """Encode the F of a line starting "From " (=46), so mbox files need no ">From" quoting."""
    return _FROM_LINE.sub(b"=46rom ", encoded) if b"From " in encoded else encoded


def _qp(text: str) -> bytes:
    return _from_safe(binascii.b2a_qp(text.encode("utf-8"), istext=True))


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _QpBody:
    """A FilledTemplate with its static parts encoded once."""

    def __init__(self, template: FilledTemplate) -> None:
        self.parts = tuple(_qp(_lf(part)) for part in template.parts)
        self.slots = template.slots

    def encode(self, values: Mapping[str, str]) -> bytes:
        pieces = [self.parts[0]]
        for (key, escape), part in zip(self.slots, self.parts[1:], strict=True):
            # istext=False: a line break inside a value is encoded (=0A), so the
            # value decodes exactly and can never turn into a bare CR on the wire.
            value = binascii.b2a_qp(escape(values.get(key, "")).encode("utf-8"), istext=False)
            if b"\r" in value:
                # b2a_qp writes its soft breaks as "=\r\n" when the value holds a CRLF.
                value = value.replace(b"=\r\n", b"=\n")
            pieces.append(_from_safe(value))
            pieces.append(part)
        # The soft line break "=\n" joins pieces without adding anything.
        return b"=\n".join(p for p in pieces if p)


@dataclass(frozen=True)
class Built:
    """One finished message."""

    message_id: str
    data: bytes


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
        self, settings: Settings, rendered: RenderedIssue, *, subject_prefix: str = "", crlf: bool = False
    ) -> None:
        nl = settings.newsletter
        from_name, from_addr = parseaddr(one_line(nl.from_))
        if "@" not in from_addr:
            raise ConfigError(
                f"cepletter.toml: [newsletter] from: {nl.from_!r} is not an email address",
                'Write it like from = "CEP <newsletter@example.org>".',
            )
        self.rendered = rendered
        self.crlf = crlf
        self.sender = from_addr
        self.domain = from_addr.rpartition("@")[2].strip().lower()
        self.subject = one_line(subject_prefix + rendered.subject)
        self._unsubscribe_template = nl.unsubscribe_url
        self._list_name = nl.name
        self._mailto = one_line(nl.unsubscribe_mailto or "")
        self._run = f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}.{secrets.token_hex(6)}"
        self._counter = itertools.count(1)
        self._dates = _DateCache()
        self.boundary = f"=_cepletter_{secrets.token_hex(12)}"

        head = [f"From: {format_address(from_name, from_addr)}\n", encode_header("Subject", self.subject) + "\n"]
        self._head = "".join(head).encode("ascii")
        tail = []
        if nl.reply_to:
            tail.append(f"Reply-To: {_address_list(nl.reply_to)}\n")
        tail.append(f"List-Id: {self._list_id(nl.list_id, nl.name, from_addr)}\n")
        self._tail = "".join(tail).encode("ascii")
        b = self.boundary
        self._mime = (
            "MIME-Version: 1.0\n"
            f'Content-Type: multipart/alternative;\n boundary="{b}"\n'
            "\n"
            f"--{b}\n"
            'Content-Type: text/plain; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n"
            "\n"
        ).encode("ascii")
        self._between = (
            f"\n--{b}\n"
            'Content-Type: text/html; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n"
            "\n"
        ).encode("ascii")
        self._end = f"\n--{b}--\n".encode("ascii")
        self._text = _QpBody(rendered.text)
        self._html = _QpBody(rendered.html)

    @staticmethod
    def _list_id(configured: str | None, name: str, from_addr: str) -> str:
        if configured:
            value = one_line(configured)
            return value if "<" in value else f"{_phrase(name)} <{value}>".strip()
        local, _, domain = from_addr.partition("@")
        label = re.sub(r"[^A-Za-z0-9-]+", "-", local).strip("-").lower() or "newsletter"
        return f"{_phrase(name)} <{label}.{domain.lower()}>".strip()

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

    def build(self, recipient: Recipient) -> Built:
        """The message for one recipient."""
        values = self.rendered.values_for(recipient)
        url = values.get("unsubscribe_url") or unsubscribe_url(
            self._unsubscribe_template, self._list_name, recipient
        )
        return self._assemble(format_address(recipient.name, recipient.email), values, url)

    def build_web(self) -> Built:
        """The web version as a message (no personal data): for `.eml` exports."""
        values = self.rendered.web_values
        url = values.get("unsubscribe_url", "")
        if "{" in url:
            url = ""
        return self._assemble("undisclosed-recipients:;", values, url)

    def _assemble(self, to: str, values: Mapping[str, str], url: str) -> Built:
        """Join the parts built once with this message's own headers and filled bodies."""
        message_id = self._message_id()
        per = f"To: {to}\nDate: {self._dates.now()}\nMessage-ID: {message_id}\n".encode("ascii", "replace")
        data = b"".join(
            (
                self._head,
                per,
                self._tail,
                self._unsubscribe_headers(url),
                self._mime,
                self._text.encode(values),
                self._between,
                self._html.encode(values),
                self._end,
            )
        )
        # QP bodies and cleaned headers hold no bare CR, so this cannot double one.
        return Built(message_id, data.replace(b"\n", b"\r\n") if self.crlf else data)
