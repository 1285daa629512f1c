"""Where messages go: a local Maildir, or an SMTP server.

A transport makes connections; a connection sends one message at a time and
answers with an ``Outcome``. Problems that stop the whole run (no password,
a certificate that does not verify, a refused login) are DeliveryErrors;
problems with one message are outcomes the sender retries or reports.
"""

from __future__ import annotations

import contextlib
import errno
import mailbox
import os
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cepletter.config import Settings, SmtpSettings
from cepletter.errors import DeliveryError

PASSWORD_ENV = "CEPLETTER_SMTP_PASSWORD"
KEYRING_SERVICE = "cepletter"
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Outcome:
    """The server's answer to one message.

    ``code`` is the SMTP reply code (250 for a Maildir write); 0 means the
    connection dropped before an answer, which is retried like a 4xx.
    """

    code: int
    reply: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    @property
    def dropped(self) -> bool:
        return self.code == 0


Finish = Callable[[], Outcome]


class Connection(Protocol):
    eight_bit: bool  # the far end takes 8bit bodies (SMTP: the server offers 8BITMIME)

    def send(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Outcome: ...

    def start(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Finish:
        """Hand the message over; the returned function waits for the answer.

        In between, the caller may do other work while the server reads the message.
        """
        ...

    def close(self) -> None: ...


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
        return Outcome(250, f"delivered to Maildir as {key}")

    def start(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Finish:
        return _done(self.send(sender, recipient, data, eight_bit=eight_bit))

    def close(self) -> None:
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
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    account = f"{smtp.username}@{smtp.host}"
    try:
        import keyring

        password = keyring.get_password(KEYRING_SERVICE, account)
    except Exception:  # any keyring backend failure means "no password from there"
        password = None
    if not password:
        raise DeliveryError(
            f"no SMTP password for {smtp.username} on {smtp.host}",
            f"Set {PASSWORD_ENV}, or store it in the system keyring: "
            f"keyring set {KEYRING_SERVICE} {account}",
        )
    return password


def tls_context(smtp: SmtpSettings, settings: Settings) -> ssl.SSLContext:
    """Verify against the system store plus the optional private CA file."""
    context = ssl.create_default_context()
    if smtp.ca_file:
        ca = settings.path(smtp.ca_file)
        try:
            context.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(
                f"cepletter.toml: [smtp] ca_file: cannot load {ca}: {exc}",
                "Point ca_file at a PEM file with the certificate authority.",
            ) from None
    return context


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


class SmtpConnection:
    """One SMTP session, reused for many messages."""

    def __init__(self, client: smtplib.SMTP) -> None:
        self.client = client
        # RFC 6152: 8bit bodies only to a server that said so in its EHLO reply.
        self.eight_bit = client.has_extn("8bitmime")

    def send(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Outcome:
        """Send ``data``; ``eight_bit`` says it holds 8bit body parts (sent as BODY=8BITMIME)."""
        return self.start(sender, recipient, data, eight_bit=eight_bit)()

    def start(self, sender: str, recipient: str, data: bytes, *, eight_bit: bool = False) -> Finish:
        """MAIL, RCPT, DATA and the message; the returned function reads the server's verdict.

        The addresses are checked ones (no quoting needed), so the commands are
        written directly rather than through smtplib's address parser.
        """
        client = self.client
        try:
            params = " BODY=8BITMIME" if eight_bit and self.eight_bit else ""
            client.putcmd("mail", f"FROM:<{sender}>{params}")
            code, msg = client.getreply()
            if code != 250:
                return self._refused(code, msg)
            client.putcmd("rcpt", f"TO:<{recipient}>")
            code, msg = client.getreply()
            if code not in (250, 251):
                return self._refused(code, msg)
            client.putcmd("data")
            code, msg = client.getreply()
            if code != 354:
                return self._refused(code, msg)
            client.send(dot_stuffed(data))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            return _done(self._lost(exc))
        return self._verdict

    def _verdict(self) -> Outcome:
        try:
            code, msg = self.client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            return self._lost(exc)
        if code != 250:
            self._rset()
        return Outcome(code, _reply(code, msg))

    def _refused(self, code: int, msg: bytes) -> Finish:
        self._rset()
        return _done(Outcome(code, _reply(code, msg)))

    def _lost(self, exc: BaseException) -> Outcome:
        self.close()
        return Outcome(0, f"connection lost: {exc}".strip())

    def _rset(self) -> None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.client.rset()

    def close(self) -> None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.client.quit()
        with contextlib.suppress(OSError):
            self.client.close()


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
                client.login(smtp.username, self._password)
            return SmtpConnection(client)
        except smtplib.SMTPAuthenticationError as exc:
            self._discard(client)
            raise DeliveryError(
                f"{self._where()} refused the login of {smtp.username}: {_reply(exc.smtp_code, exc.smtp_error)}",
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
            raise ConnectFailed(f"cannot connect to {self._where()}: {_describe(exc)}") from None

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
