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
    smtputf8: bool  # the far end takes addresses and headers in UTF-8 (SMTP: the server offers SMTPUTF8)

    def send(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Outcome: ...

    def start(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False, utf8: bool = False,
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
    smtputf8 = True

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

    def start(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False, utf8: bool = False,
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

    def pending(self) -> bool:
        """Whether bytes not yet read as a reply have arrived (looked at without waiting)."""
        if self._buffer:
            return True
        pending = getattr(self.sock, "pending", None)  # TLS: decrypted bytes waiting inside the SSL object
        if pending is not None and pending() > 0:
            return True
        self.settimeout(0.0)
        try:
            chunk = self.sock.recv(65536, socket.MSG_PEEK) if pending is None else self.sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, TimeoutError):
            return False
        except OSError:
            return False
        if chunk and pending is not None:
            self._buffer += chunk  # an SSL socket cannot peek: keep what was read
        return bool(chunk)

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


@dataclasses.dataclass(frozen=True)
class Envelope:
    """Who a message is from and to, as MAIL FROM and RCPT TO give it."""

    sender: str
    recipient: str
    eight_bit: bool = False  # the message holds 8bit body parts (BODY=8BITMIME, when the server offers it)
    utf8: bool = False  # an address, here or in the headers, is not ASCII (SMTPUTF8, RFC 6531)


Replies = Callable[[], tuple[Outcome, Outcome | None]]


class SmtpConnection:
    """One SMTP session, reused for many messages.

    smtplib makes the connection (TLS, EHLO, AUTH); the transactions are written
    and read here, on the socket, so that each wait has its own limit: every
    command reply gets ``[smtp] timeout``, the reply to the final dot
    ``DATA_END_TIMEOUT``, and a stopping run can give up any of them.

    With PIPELINING (RFC 2920), MAIL, RCPT and DATA go out as one group, and a
    message's content can carry the next message's group behind its final dot
    (``content(data, then=...)``): one write, and one wait, per message. The
    replies come back in order and are matched to their commands by position;
    a reply that cannot be the answer to its command means the two sides are out
    of step: the session ends, the message whose commands were in question is
    retried, and the transport stops pipelining (``on_out_of_step``).
    """

    def __init__(self, client: smtplib.SMTP, timeout: float, *, pipelining: bool = True,
                 on_out_of_step: Callable[[], None] | None = None) -> None:
        self.client = client
        self.timeout = timeout
        # RFC 6152: 8bit bodies only to a server that said so in its EHLO reply.
        self.eight_bit = client.has_extn("8bitmime")
        # RFC 6531: addresses and headers in UTF-8 only to a server that offers SMTPUTF8.
        self.smtputf8 = client.has_extn("smtputf8")
        self.pipelining = pipelining and client.has_extn("pipelining")
        self._on_out_of_step = on_out_of_step
        assert client.sock is not None
        self._replies = _Replies(client.sock)
        self._open = True
        self._in_data = False  # the server answered 354 and takes everything that follows as the message

    def send(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Outcome:
        """Send ``data``; ``eight_bit`` says it holds 8bit body parts (sent as BODY=8BITMIME)."""
        return self.start(sender, recipient, data, eight_bit=eight_bit)()

    def start(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False, utf8: bool = False,
              abandon: threading.Event | None = None) -> Finish:
        """MAIL, RCPT, DATA and the message; the returned function reads the server's verdict."""
        utf8 = utf8 or not (sender.isascii() and recipient.isascii())
        refused = self.begin(Envelope(sender, recipient, eight_bit, utf8), abandon)
        if refused is not None:
            return _done(refused)
        replies = self.content(data, None, abandon)
        return lambda: replies()[0]

    def begin(self, envelope: Envelope, abandon: threading.Event | None = None) -> Outcome | None:
        """MAIL, RCPT and DATA (one group when pipelining); None once the server waits for the content.

        The addresses are checked ones (no quoting needed), so the commands are
        written directly rather than through smtplib's address parser.
        """
        try:
            if self.pipelining:
                self._write(self._commands(envelope))
                return self._group_replies(abandon)
            for step, command in zip(_ALLOWED, self._commands(envelope).decode("utf-8").splitlines(), strict=True):
                code, reply = self._command(command, abandon)
                if code not in _ALLOWED[step]:
                    return self._refused(step, code, reply)
            self._in_data = True
            return None
        except _Abandoned:
            self.close(quick=True)
            return Outcome(0, "not sent: the run stopped waiting for the server", Verdict.ABANDONED, True)
        except OSError as exc:
            self.close(quick=True)
            if self.pipelining and isinstance(exc, (TimeoutError, _Garbled)):
                self._out_of_step()
            return Outcome(0, f"connection lost: {_describe(exc)}", Verdict.TEMPORARY, True)

    def content(self, data: bytes, then: Envelope | None = None,
                abandon: threading.Event | None = None) -> Replies:
        """The begun message's content and final dot; with ``then`` (pipelining only), the next
        message's MAIL, RCPT and DATA in the same write.

        The returned function reads the verdict on this message and, with ``then``,
        the answer to the next one's commands: None when the server waits for its
        content, else its outcome (refused, or not sent).
        """
        assert self._in_data and (then is None or self.pipelining)
        payload = dot_stuffed(data)
        if then is not None:
            payload += self._commands(then)
        try:
            self._write(payload)
        except OSError as exc:
            self.close(quick=True)
            lost = Outcome(0, f"connection lost: {_describe(exc)}", Verdict.TEMPORARY, True)
            return _both(lost, _unanswered(then, exc))
        self._in_data = False
        return lambda: self._replies_after(then, abandon)

    def _replies_after(self, then: Envelope | None, abandon: threading.Event | None) -> tuple[Outcome, Outcome | None]:
        outcome = self._verdict(abandon, reset=then is None)
        if then is None:
            return outcome, None
        if outcome.closed:
            # The session ended at the final dot: the next commands were never answered.
            self.close(quick=True)
            if abandon is not None and abandon.is_set():
                return outcome, Outcome(0, "not sent: the run stopped waiting for the server", Verdict.ABANDONED, True)
            return outcome, Outcome(0, "not sent: the connection ended before the server answered its MAIL FROM",
                                    Verdict.TEMPORARY, True)
        try:
            return outcome, self._group_replies(abandon)
        except _Abandoned:
            self.close(quick=True)
            return outcome, Outcome(0, "not sent: the run stopped waiting for the server", Verdict.ABANDONED, True)
        except OSError as exc:
            self.close(quick=True)
            if isinstance(exc, (TimeoutError, _Garbled)):
                self._out_of_step()
            return outcome, _unanswered(then, exc)

    def _group_replies(self, abandon: threading.Event | None) -> Outcome | None:
        """The replies to a pipelined MAIL, RCPT and DATA, in order; None when DATA got 354."""
        refusal: Outcome | None = None
        for step in _ALLOWED:
            code, reply = self._replies.reply(self.timeout, abandon)
            if refusal is None:
                if code in _ALLOWED[step]:
                    continue
                if not 400 <= code < 600:
                    return self._stepped_out(step, code, reply)
                refusal = Outcome.refusal(code, reply)
                if refusal.closed:  # 421: the server closes; nothing more will be answered
                    self.close(quick=True)
                    return refusal
            elif not 400 <= code < 600:
                # After a refused MAIL or RCPT, the next commands must be refused too (503).
                # A 354 would take whatever is written next as a message with no valid recipient.
                return self._stepped_out(step, code, reply)
        if refusal is not None:
            return self._after_refusal(refusal)
        if self._replies.pending():
            # Nothing can follow a 354 until the content is sent: these bytes answer something else.
            return self._stepped_out("DATA", 354, "354 followed by more replies")
        self._in_data = True
        return None

    def _stepped_out(self, step: str, code: int, reply: str) -> Outcome:
        """A reply in a pipelined group that cannot answer its command: this message was not sent
        (its content never went out); it is sent again on a session without pipelining."""
        self.close(quick=True)
        self._out_of_step()
        return Outcome(code, f"not sent: the server answered out of step with the pipelined commands "
                             f"({reply} to {step}); sending on without pipelining", Verdict.TEMPORARY, True)

    def _out_of_step(self) -> None:
        if self._on_out_of_step is not None:
            self._on_out_of_step()

    def _commands(self, envelope: Envelope) -> bytes:
        params = " BODY=8BITMIME" if envelope.eight_bit and self.eight_bit else ""
        if envelope.utf8 and self.smtputf8:
            params += " SMTPUTF8"
        # UTF-8 only after SMTPUTF8 (the sender never gives a server without it such an address).
        return (f"MAIL FROM:<{envelope.sender}>{params}\r\nRCPT TO:<{envelope.recipient}>\r\n"
                "DATA\r\n").encode("utf-8" if params.endswith("SMTPUTF8") else "ascii")

    def _verdict(self, abandon: threading.Event | None, *, reset: bool = True) -> Outcome:
        """The answer to the final dot. Only 250 means the server took the message.

        Without ``reset``, a refusal sends no RSET: pipelined commands already follow
        (a refused message ends its transaction anyway).
        """
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
            refusal = Outcome.refusal(code, reply)
            if refusal.closed:
                self.close(quick=True)
                return refusal
            return self._after_refusal(refusal) if reset else refusal
        self.close(quick=True)
        return Outcome(code, f"protocol error: {reply} is not an answer RFC 5321 allows to the end of "
                             "the message (250, or a 4xx or 5xx refusal); the server may have taken it",
                       Verdict.UNCERTAIN, True)

    def _command(self, line: str, abandon: threading.Event | None) -> tuple[int, str]:
        self._write(f"{line}\r\n".encode())
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
        # After a 354, a QUIT would be read as part of a message: hang up instead, and the
        # server drops the message it never saw end.
        if not quick and not self._in_data:
            with contextlib.suppress(OSError):
                self._write(b"QUIT\r\n")
                self._replies.reply(min(self.timeout, QUIT_TIMEOUT), None)
        with contextlib.suppress(OSError):
            self.client.close()


def _both(first: Outcome, second: Outcome | None) -> Replies:
    return lambda: (first, second)


def _unanswered(then: Envelope | None, exc: BaseException) -> Outcome | None:
    """The outcome of a pipelined message whose commands were never answered: not sent."""
    if then is None:
        return None
    return Outcome(0, f"not sent: connection lost before the server answered its commands: {_describe(exc)}",
                   Verdict.TEMPORARY, True)


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
        # PIPELINING when the server offers it, until it answers a group out of step.
        self.pipelining = True

    def _stop_pipelining(self) -> None:
        self.pipelining = False

    def offers(self, extension: str) -> bool:
        """Whether the server names ``extension`` in its EHLO reply (after STARTTLS): one connection, closed."""
        connection = self.connect()
        try:
            return connection.client.has_extn(extension)
        finally:
            connection.close()

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
            return SmtpConnection(client, smtp.timeout, pipelining=self.pipelining,
                                  on_out_of_step=self._stop_pipelining)
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
