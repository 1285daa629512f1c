"""Where messages go: a local Maildir, or an SMTP server.

A transport makes connections; a connection sends one message at a time and
answers with an ``Outcome``. Problems that stop the whole run (no password,
a certificate that does not verify, a refused login) are DeliveryErrors;
problems with one message are outcomes the sender retries or reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import mailbox
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cepletter.config import Settings, SmtpSettings
from cepletter.deliver import credentials, smtpauth
from cepletter.errors import DeliveryError

PASSWORD_ENV = "CEPLETTER_SMTP_PASSWORD"
KEYRING_SERVICE = "cepletter"
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# RFC 5321 section 4.5.3.2.6: a client waits 10 minutes for the reply to the final dot, whatever
# its command timeout; giving up sooner turns a slow server into a message sent twice.
DATA_END_TIMEOUT = 600.0
WAIT_SLICE = 0.2  # how often a wait for a reply looks whether the run has stopped waiting
LAST_LOOK = 0.05  # once it has, how long it still reads for a reply already on its way
QUIT_TIMEOUT = 5.0
MAX_REPLY = 64 * 1024


class Verdict(enum.Enum):
    """What one attempt came to."""

    ACCEPTED = "accepted"  # 250 to the final dot: the server took the message
    TEMPORARY = "temporary"  # 4xx, or the connection lost before the message was complete: not taken
    PERMANENT = "permanent"  # 5xx, or a reply RFC 5321 does not allow at that step: not taken
    UNCERTAIN = "uncertain"  # the whole message went out, then no usable verdict came back
    ABANDONED = "abandoned"  # the run stopped waiting before the message was complete: not taken


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The server's answer to one message.

    ``code`` is the SMTP reply code (250 for a Maildir write), 0 when no reply
    came. Only ``Verdict.ACCEPTED`` means the message was delivered.
    ``closed`` says the connection cannot be used again.
    """

    code: int
    reply: str
    verdict: Verdict = Verdict.TEMPORARY
    closed: bool = False

    @classmethod
    def refusal(cls, code: int, reply: str, *, closed: bool = False) -> Outcome:
        """A 4xx or 5xx reply."""
        return cls(code, reply, Verdict.PERMANENT if code >= 500 else Verdict.TEMPORARY, closed or code == 421)

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    @property
    def permanent(self) -> bool:
        return self.verdict is Verdict.PERMANENT

    @property
    def uncertain(self) -> bool:
        return self.verdict is Verdict.UNCERTAIN

    @property
    def dropped(self) -> bool:
        return self.closed


Finish = Callable[[], Outcome]


class Connection(Protocol):
    eight_bit: bool  # the far end takes 8bit bodies (SMTP: the server offers 8BITMIME)

    def send(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Outcome: ...

    def start(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False,
              abandon: threading.Event | None = None) -> Finish:
        """Hand the message over; the returned function waits for the answer.

        In between, the caller may do other work while the server reads the message.
        Once ``abandon`` is set, waiting for a reply stops (a reply already
        received is still read): the outcome is then ``ABANDONED`` before the
        message was complete, ``UNCERTAIN`` after.
        """
        ...

    def close(self, *, quick: bool = False) -> None:
        """End the session; ``quick`` hangs up without waiting for the server."""
        ...


def _done(outcome: Outcome) -> Finish:
    return lambda: outcome


class Transport(Protocol):
    name: str
    description: str
    max_connections: int

    def connect(self) -> Connection: ...


# ---------------------------------------------------------------- maildir


class MaildirConnection:
    eight_bit = True  # a file takes any bytes

    def __init__(self, box: mailbox.Maildir, path: Path | None = None) -> None:
        self.box = box
        self.path = path

    def send(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Outcome:
        try:
            key = self.box.add(data)
        except OSError as exc:
            # A local folder that cannot take a message will not take the next one either.
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise DeliveryError(
                f"{self.path}: cannot write a message into the Maildir: {reason}; sending stopped",
                "Fix the problem and run `cepletter send` again: it carries on where it stopped.",
            ) from None
        return Outcome(250, f"delivered to Maildir as {key}", Verdict.ACCEPTED)

    def start(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False,
              abandon: threading.Event | None = None) -> Finish:
        return _done(self.send(sender, recipient, data, eight_bit=eight_bit))

    def close(self, *, quick: bool = False) -> None:
        pass


class MaildirTransport:
    """A standard Maildir (``new/``, ``cur/``, ``tmp/``) that mail clients open."""

    name = "maildir"
    max_connections = 1  # one local writer is already faster than any relay

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"Maildir {path}"

    def connect(self) -> MaildirConnection:
        path = self.path
        hint = 'Set [delivery] maildir to a folder of its own, such as "outbox".'
        if path.exists() and not path.is_dir():
            raise DeliveryError(f"{path}: [delivery] maildir is a file, not a folder", hint)
        parts = [path / sub for sub in ("tmp", "new", "cur")]
        # Never scatter tmp/, new/ and cur/ into a folder that holds other things.
        if path.is_dir() and not all(p.is_dir() for p in parts) and any(path.iterdir()):
            raise DeliveryError(f"{path}: [delivery] maildir is a folder with other files, not a Maildir", hint)
        try:
            for part in parts:
                part.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(path, factory=None, create=False)
        except OSError as exc:
            raise DeliveryError(f"{path}: cannot create the Maildir: {exc.strerror}", hint) from None
        return MaildirConnection(box, path)


# ---------------------------------------------------------------- smtp


def smtp_password(smtp: SmtpSettings) -> str:
    """The password for ``smtp.username``: the environment first, then the keyring."""
    return credentials.password(PASSWORD_ENV, KEYRING_SERVICE, smtp.username or "", smtp.host or "", "SMTP",
                                DeliveryError)


def tls_context(smtp: SmtpSettings, settings: Settings) -> ssl.SSLContext:
    """Verify against the system store plus the optional private CA file."""
    return credentials.tls_context(smtp.ca_file, settings, "smtp", DeliveryError)


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}".strip()


def dot_stuffed(data: bytes) -> bytes:
    """``data`` (CRLF line ends) as it goes after DATA: lines starting with "." get another, then "." alone.

    What smtplib's ``data()`` sends, with a byte search instead of its
    multi-line regular expression, which costs more than the rest of the
    message's journey through the client.
    """
    if data.startswith(b"."):
        data = b"." + data
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class _Abandoned(Exception):
    """The run stopped waiting for this reply."""


class _Garbled(OSError):
    """Bytes that are not an SMTP reply: the session cannot go on."""


class _Replies:
    """Reads SMTP replies straight from the socket, each within its own deadline.

    A wait can be given up from another thread (``abandon``): the socket is
    read in short slices, and once ``abandon`` is set, one last short read
    takes whatever reply has already arrived.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._timeout: float | None = None

    def settimeout(self, seconds: float) -> None:
        if seconds != self._timeout:
            self.sock.settimeout(seconds)
            self._timeout = seconds

    def reply(self, seconds: float, abandon: threading.Event | None) -> tuple[int, str]:
        """The next whole reply (all lines of a multi-line one): its code and its text on one line."""
        deadline = time.monotonic() + seconds
        texts: list[str] = []
        while True:
            line = self._line(deadline, abandon)
            if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in (b" ", b"-", b""):
                raise _Garbled(f"not an SMTP reply: {line[:40]!r}")
            texts.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                code = int(line[:3])
                return code, _reply(code, " ".join(texts))

    def _line(self, deadline: float, abandon: threading.Event | None) -> bytes:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end]).rstrip(b"\r")
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > MAX_REPLY:
                raise _Garbled(f"a reply line longer than {MAX_REPLY} bytes")
            self._fill(deadline, abandon)

    def _fill(self, deadline: float, abandon: threading.Event | None) -> None:
        while True:
            giving_up = abandon is not None and abandon.is_set()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            if giving_up:
                remaining = min(remaining, LAST_LOOK)
            elif abandon is not None:
                remaining = min(remaining, WAIT_SLICE)
            self.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                if giving_up:
                    raise _Abandoned from None
                continue
            if not chunk:
                raise ConnectionAbortedError("the server closed the connection")
            self._buffer += chunk
            return


# What RFC 5321 (section 4.3.2) lets a server answer at each step, besides 4xx and 5xx refusals.
# Anything else (251 to MAIL, 252 to RCPT, 250 or 220 to DATA...) is a protocol error.
_ALLOWED = {"MAIL FROM": (250,), "RCPT TO": (250, 251), "DATA": (354,)}


class SmtpConnection:
    """One SMTP session, reused for many messages.

    smtplib makes the connection (TLS, EHLO, AUTH); the transactions are written
    and read here, on the socket, so that each wait has its own limit: every
    command reply gets ``[smtp] timeout``, the reply to the final dot
    ``DATA_END_TIMEOUT``, and a stopping run can give up any of them.
    """

    def __init__(self, client: smtplib.SMTP, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        # RFC 6152: 8bit bodies only to a server that said so in its EHLO reply.
        self.eight_bit = client.has_extn("8bitmime")
        assert client.sock is not None
        self._replies = _Replies(client.sock)
        self._open = True

    def send(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Outcome:
        """Send ``data``; ``eight_bit`` says it holds 8bit body parts (sent as BODY=8BITMIME)."""
        return self.start(sender, recipient, data, eight_bit=eight_bit)()

    def start(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False,
              abandon: threading.Event | None = None) -> Finish:
        """MAIL, RCPT, DATA and the message; the returned function reads the server's verdict.

        The addresses are checked ones (no quoting needed), so the commands are
        written directly rather than through smtplib's address parser.
        """
        params = " BODY=8BITMIME" if eight_bit and self.eight_bit else ""
        try:
            for step, command in (("MAIL FROM", f"MAIL FROM:<{sender}>{params}"),
                                  ("RCPT TO", f"RCPT TO:<{recipient}>"), ("DATA", "DATA")):
                code, reply = self._command(command, abandon)
                if code not in _ALLOWED[step]:
                    return _done(self._refused(step, code, reply))
            self._write(dot_stuffed(data))
        except _Abandoned:
            self.close(quick=True)
            return _done(Outcome(0, "not sent: the run stopped waiting for the server", Verdict.ABANDONED, True))
        except OSError as exc:
            self.close(quick=True)
            return _done(Outcome(0, f"connection lost: {_describe(exc)}", Verdict.TEMPORARY, True))
        return lambda: self._verdict(abandon)

    def _verdict(self, abandon: threading.Event | None) -> Outcome:
        """The answer to the final dot. Only 250 means the server took the message."""
        try:
            code, reply = self._replies.reply(DATA_END_TIMEOUT, abandon)
        except _Abandoned:
            self.close(quick=True)
            return Outcome(0, "no answer after the whole message was sent: the run stopped waiting "
                              "(the server may have taken it)", Verdict.UNCERTAIN, True)
        except OSError as exc:
            self.close(quick=True)
            return Outcome(0, f"connection lost after the whole message was sent, before the server's "
                              f"answer: {_describe(exc)} (the server may have taken it)", Verdict.UNCERTAIN, True)
        if code == 250:
            return Outcome(code, reply, Verdict.ACCEPTED)
        if 400 <= code < 600:
            return self._after_refusal(Outcome.refusal(code, reply))
        self.close(quick=True)
        return Outcome(code, f"protocol error: {reply} is not an answer RFC 5321 allows to the end of "
                             "the message (250, or a 4xx or 5xx refusal); the server may have taken it",
                       Verdict.UNCERTAIN, True)

    def _command(self, line: str, abandon: threading.Event | None) -> tuple[int, str]:
        self._write(f"{line}\r\n".encode("ascii"))
        return self._replies.reply(self.timeout, abandon)

    def _write(self, data: bytes) -> None:
        self._replies.settimeout(self.timeout)
        self._replies.sock.sendall(data)

    def _refused(self, step: str, code: int, reply: str) -> Outcome:
        if 400 <= code < 600:
            return self._after_refusal(Outcome.refusal(code, reply))
        # Which state the server is in now is anybody's guess: this session ends here.
        allowed = " or ".join(str(c) for c in _ALLOWED[step])
        self.close(quick=True)
        return Outcome(code, f"protocol error: {reply} is not an answer RFC 5321 allows to {step} "
                             f"({allowed}, or a 4xx or 5xx refusal); the message was not sent",
                       Verdict.PERMANENT, True)

    def _after_refusal(self, outcome: Outcome) -> Outcome:
        """Reset the session for the next message; a session that cannot be reset is closed."""
        if not outcome.closed:
            try:
                code, _ = self._command("RSET", None)
            except OSError:
                code = 0
            if code == 250:
                return outcome
            outcome = dataclasses.replace(outcome, closed=True)
        self.close(quick=True)
        return outcome

    def close(self, *, quick: bool = False) -> None:
        if not self._open:
            return
        self._open = False
        if not quick:
            with contextlib.suppress(OSError):
                self._write(b"QUIT\r\n")
                self._replies.reply(min(self.timeout, QUIT_TIMEOUT), None)
        with contextlib.suppress(OSError):
            self.client.close()


def _no_delay(client: smtplib.SMTP) -> None:
    """TCP_NODELAY on the session's socket, before EHLO and STARTTLS.

    Every write here is a whole command, group or message, so Nagle's algorithm gains
    nothing: it only holds back a small last segment (often the last TLS record of a
    message) until the server's delayed ACK, up to 40 ms later, for every message.
    """
    if client.sock is not None:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SmtpTransport:
    """Connections to ``[smtp]``: starttls, ssl or none; login when a username is set."""

    name = "smtp"
    max_connections = 50

    def __init__(self, settings: Settings, smtp: SmtpSettings) -> None:
        self.settings = settings
        self.smtp = smtp
        self.description = f"SMTP {smtp.host}:{smtp.port} ({smtp.security})"
        self._password: str | None = None
        if smtp.username:
            if smtp.security == "none" and smtp.host.lower() not in LOCAL_HOSTS:
                raise DeliveryError(
                    f"cepletter.toml: [smtp] security = \"none\" with a username: the password "
                    f"would cross the network unencrypted to {smtp.host}",
                    'Use security = "starttls" (port 587) or "ssl" (port 465).',
                )
            self._password = smtp_password(smtp)
        self._context = tls_context(smtp, settings) if smtp.security != "none" else None

    def _where(self) -> str:
        return f"{self.smtp.host}:{self.smtp.port}"

    def connect(self) -> SmtpConnection:
        smtp = self.smtp
        client: smtplib.SMTP | None = None
        try:
            if smtp.security == "ssl":
                client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=self._context)
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
            _no_delay(client)
            client.ehlo()
            if smtp.security == "starttls":
                if not client.has_extn("starttls"):
                    raise DeliveryError(
                        f"{self._where()} does not offer STARTTLS",
                        'Check host and port, or use security = "ssl" for port 465.',
                    )
                client.starttls(context=self._context)
                client.ehlo()
            if smtp.username and self._password is not None:
                smtpauth.login(client, smtp.username, self._password)
            return SmtpConnection(client, smtp.timeout)
        except smtplib.SMTPAuthenticationError as exc:
            self._discard(client)
            raise DeliveryError(
                f"{self._where()} refused the login of {smtp.username}: "
                f"{_reply(exc.smtp_code, smtpauth.hide(exc.smtp_error, smtp.username, self._password))}",
                f"Check [smtp] username and the password in {PASSWORD_ENV} or the keyring.",
            ) from None
        except smtplib.SMTPNotSupportedError:
            self._discard(client)
            raise DeliveryError(
                f"{self._where()} does not accept a login on this connection",
                "Check [smtp] security and port, or remove username if the server needs no login.",
            ) from None
        except ssl.SSLCertVerificationError as exc:
            self._discard(client)
            raise DeliveryError(
                f"{self._where()}: the server's certificate is not trusted: {exc.verify_message}",
                "If the server uses a private certificate authority, set [smtp] ca_file to its PEM file.",
            ) from None
        except ssl.SSLError as exc:
            self._discard(client)
            raise DeliveryError(
                f"{self._where()}: TLS failed: {exc.reason or exc}",
                'Check [smtp] security: "ssl" for port 465, "starttls" for 587.',
            ) from None
        except DeliveryError:
            self._discard(client)
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._discard(client)
            raise ConnectFailed(f"cannot connect to {self._where()}: "
                                f"{smtpauth.hide(_describe(exc), smtp.username, self._password)}") from None

    @staticmethod
    def _discard(client: smtplib.SMTP | None) -> None:
        if client is not None:
            with contextlib.suppress(OSError):
                client.close()


class ConnectFailed(DeliveryError):
    """A connection could not be made: fatal at the start, retried during a run."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "Check [smtp] host and port, and that the server is reachable.")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def make_transport(settings: Settings, *, maildir: Path | None = None) -> MaildirTransport | SmtpTransport:
    """The transport the settings name."""
    delivery = settings.delivery
    if delivery.transport == "smtp":
        if settings.smtp is None:
            raise DeliveryError("cepletter.toml: [delivery] transport = \"smtp\" but there is no [smtp] table")
        return SmtpTransport(settings, settings.smtp)
    return MaildirTransport(maildir or settings.path(delivery.maildir))
