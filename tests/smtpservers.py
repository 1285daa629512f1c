"""Real SMTP servers for tests: aiosmtpd on 127.0.0.1, on a free port.

    with SmtpServer() as server:                       # plain SMTP, records every message
        ... send to server.host, server.port ...
        server.messages        # [Received(sender, recipients, data, peer)], in arrival order
        server.received_by()   # {recipient: number of messages}: "exactly once" checks
        server.rcpt_counts     # {recipient: RCPT attempts}, refused ones included

Fault injection, per recipient address (lower case):

    SmtpServer(rules={"a@example.org": Rule("451", times=2),   # 451 twice, then accept
                      "b@example.org": Rule("550"),            # always 550
                      "c@example.org": Rule("drop", times=1)}) # drop the connection once

Other options: ``delay`` (seconds to wait before answering DATA: a slow
server), ``tls=ServerCert`` (offers STARTTLS with that certificate),
``implicit_tls=ServerCert`` (TLS from the first byte, like port 465),
``auth={"user": "password"}`` (AUTH PLAIN and LOGIN, or only those in
``auth_mechanisms``; required before MAIL; ``authenticator.logins`` lists them),
``require_tls`` (refuse MAIL before STARTTLS), ``eightbitmime=False`` (leave
8BITMIME out of the EHLO reply, like an old relay), ``pipelining`` (offer
PIPELINING, RFC 2920), ``smtputf8=False`` (leave SMTPUTF8, RFC 6531, out, as Postfix can). ``Received.mail_options``
holds the MAIL FROM parameters, such as "BODY=8BITMIME".

Certificates are made with ``cryptography``: ``make_ca(folder)`` gives a test
certificate authority and a server certificate for 127.0.0.1/localhost signed
by it; ``make_self_signed(folder)`` a server certificate nobody trusts.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Rule:
    """What the server does for one recipient: "451", "550" or "drop"; ``times`` = 0 means always."""

    action: str
    times: int = 0


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    peer: tuple[str, int]  # the client's address and port: one per connection
    mail_options: tuple[str, ...] = ()  # MAIL FROM parameters, upper case: ("BODY=8BITMIME",)


@dataclass(frozen=True)
class ServerCert:
    cert: Path  # PEM: the server certificate
    key: Path  # PEM: its private key
    ca: Path | None = None  # PEM: the authority that signed it (None when self-signed)

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


class _Handler:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.owner.authenticator is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        action = self.owner._rule_for(address)
        if action == "451":
            return "451 4.7.1 Try again later"
        if action == "550":
            return "550 5.1.1 No such user here"
        if action == "drop":
            assert server.transport is not None
            server.transport.close()
            return "421 4.3.0 Closing connection"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.owner.delay:
            await asyncio.sleep(self.owner.delay)
        data = envelope.original_content or b""
        with self.owner.lock:
            received = Received(
                str(envelope.mail_from), tuple(envelope.rcpt_tos), data, tuple(session.peer),
                tuple(envelope.mail_options),
            )
            self.owner.messages.append(received)
            number = len(self.owner.messages)
        return f"250 2.0.0 Ok: queued as Q{number}"


    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's EHLO reply, with PIPELINING added or 8BITMIME left out as the server is told."""
        # With this hook aiosmtpd leaves remembering the greeting to the handler.
        session.host_name = hostname
        # aiosmtpd offers 8BITMIME whenever it keeps bytes; an old relay does not.
        lines = [line for line in responses if self.owner.eightbitmime or line[4:].upper() != "8BITMIME"]
        if self.owner.pipelining:
            # aiosmtpd reads commands one by one from its buffer, as RFC 2920 asks of a server.
            lines.insert(-1, "250-PIPELINING")
        return lines


class _Authenticator:
    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)
        self.logins: list[str] = []

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode()
            if self.users.get(user) == auth_data.password.decode():
                self.logins.append(f"{mechanism}:{user}")
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class _FreePortController(Controller):
    """aiosmtpd's Controller, bound to port 0, learning the real port before it checks the server."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """A recording SMTP server in a background thread. Use as a context manager."""

    def __init__(
        self,
        *,
        rules: Mapping[str, Rule] | None = None,
        delay: float = 0.0,
        tls: ServerCert | None = None,
        implicit_tls: ServerCert | None = None,
        auth: Mapping[str, str] | None = None,
        auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
        require_tls: bool = False,
        eightbitmime: bool = True,
        pipelining: bool = False,
        smtputf8: bool = True,
    ) -> None:
        self.rules = {k.lower(): v for k, v in (rules or {}).items()}
        self.delay = delay
        self.eightbitmime = eightbitmime
        self.pipelining = pipelining
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.rcpt_counts: dict[str, int] = {}
        self.authenticator = _Authenticator(auth) if auth else None
        kwargs: dict[str, Any] = {
            "hostname": HOST,
            "port": 0,
            "ready_timeout": 10.0,
            "decode_data": False,
            "enable_SMTPUTF8": smtputf8,
        }
        if tls is not None:
            kwargs["tls_context"] = tls.context()
            kwargs["require_starttls"] = require_tls
        if implicit_tls is not None:
            kwargs["ssl_context"] = implicit_tls.context()
        if self.authenticator is not None:
            kwargs["authenticator"] = self.authenticator
            # With TLS, aiosmtpd itself demands STARTTLS, then AUTH. Plain AUTH (to
            # 127.0.0.1) is allowed too; MAIL without a login is refused by the handler,
            # because aiosmtpd warns (an error under pytest) about auth_required without TLS.
            kwargs["auth_require_tls"] = tls is not None
            kwargs["auth_required"] = tls is not None
            kwargs["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN") if m not in auth_mechanisms]
        self.controller = _FreePortController(_Handler(self), **kwargs)

    def _rule_for(self, address: str) -> str | None:
        key = address.lower()
        with self.lock:
            seen = self.rcpt_counts.get(key, 0)
            self.rcpt_counts[key] = seen + 1
        rule = self.rules.get(key)
        if rule is None or (rule.times and seen >= rule.times):
            return None
        return rule.action

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def received_by(self) -> dict[str, int]:
        """How many messages each recipient got (lower-cased)."""
        counts: dict[str, int] = {}
        with self.lock:
            for message in self.messages:
                for rcpt in message.recipients:
                    counts[rcpt.lower()] = counts.get(rcpt.lower(), 0) + 1
        return counts


# ---------------------------------------------------------------- certificates


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(folder: Path, stem: str, key: Any, cert: Any) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization

    folder.mkdir(parents=True, exist_ok=True)
    cert_path = folder / f"{stem}.pem"
    key_path = folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _server_cert(subject_key: Any, issuer_name: Any, issuer_key: Any) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(issuer_name)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def make_ca(folder: Path) -> ServerCert:
    """A test certificate authority and a server certificate for 127.0.0.1 that it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    ca_key = _key()
    now = datetime.datetime.now(datetime.UTC)
    ca_name = _name("cepletter test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, _ = _write(folder, "ca", ca_key, ca_cert)
    server_key = _key()
    cert_path, key_path = _write(folder, "server", server_key, _server_cert(server_key, ca_name, ca_key))
    return ServerCert(cert=cert_path, key=key_path, ca=ca_path)


def make_self_signed(folder: Path) -> ServerCert:
    """A server certificate for 127.0.0.1 signed by itself: no client trusts it."""
    key = _key()
    cert = _server_cert(key, _name("localhost"), key)
    cert_path, key_path = _write(folder, "selfsigned", key, cert)
    return ServerCert(cert=cert_path, key=key_path)
