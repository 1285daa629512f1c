"""SMTP servers that misbehave on purpose, for the fault-injection suite.

Built on ``smtpservers.SmtpServer`` (same ``messages``, ``received_by()`` and
``rcpt_counts``), with faults that a real relay shows under load:

    FaultServer(p451=0.1)                   # 451 on a random 10% of RCPTs (seeded)
    FaultServer(p_drop_data=0.05)           # 5% of transactions: connection closed during DATA
    FaultServer(slow={"a@example.org": 1}, slow_seconds=3)   # DATA answered too late, once
    FaultServer(close_after_greeting=lambda n: n in (2, 3))  # those connections close after the 220
    FaultServer(data_size_limit=5000)       # 552 for a message larger than that
    FaultServer(refuse={"gone@example.org": "550 5.1.1 <gone@example.org>: User unknown"})
                                            # RCPT of that address always answered with that reply
    server.pause(); ...; server.resume()    # gone for a while, back on the same port

Logins (``auth={"user": "password"}``: AUTH PLAIN and LOGIN, checked as UTF-8):

    FaultServer(auth=..., echo_credentials=True)  # a 535 repeating the credentials: decoded,
                                            # and the base64 of the password, of "\0user\0password"
                                            # and of each LOGIN step
    FaultServer(auth=..., logins_allowed=1) # only the first login succeeds; later ones are refused
    FaultServer(auth=..., auth_mechanisms=("LOGIN",))  # offer only these mechanisms
    server.mail_pipelined                   # per MAIL: whether the client sent its RCPT with it

After the final dot, and in reply to MAIL, RCPT and DATA:

    FaultServer(drop_after_dot={"a@example.org": 1})   # whole message read, then hang up: no reply
    FaultServer(drop_after_dot=..., keep_dropped=True) # ... but keep it: it was queued, the reply lost
    server.hold(); ...; server.release()    # the reply to every final dot waits until released
    FaultServer(delay=0.005)                # every final dot answered after that long
    FaultServer(odd_mail={3: "251 2.1.0 Ok"})           # the 3rd MAIL gets a reply not allowed there
    FaultServer(odd_rcpt={"a@example.org": "252 2.1.5 Cannot VRFY user"})  # likewise RCPT (once)
    FaultServer(odd_data={"a@example.org": "250 2.0.0 Ok"})  # DATA answered without 354 (once)

Inside a pipelined group (``pipelining=True`` offers PIPELINING, RFC 2920):

    FaultServer(pipelining=True, drop_at_mail={5})      # the 5th MAIL: connection closed, no answer
    FaultServer(pipelining=True, echo_rcpt={"a@example.org"})   # RCPT answered twice (once): out of step
    FaultServer(pipelining=True, swallow_after_dot={"a@example.org"})
                                            # after that message's 250, the next 3 commands go unanswered
                                            # (once), like a server that drops what it had read ahead

A message counts as accepted (is in ``messages``) only when the server could
still answer 250 for it: a transaction dropped or given up during DATA is not
a copy, exactly as a real relay discards a message it never acknowledged.
``keep_dropped`` is the exception on purpose: the relay queued the message and
the connection died before its answer got through, the case a client can only
call uncertain.
"""

from __future__ import annotations

import asyncio
import base64
import random
import threading
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from smtpservers import Received, SmtpServer, _Authenticator, _FreePortController, _Handler


class _EchoingAuthenticator(_Authenticator):
    """smtpservers' authenticator, refusing as ``FaultServer`` says (``logins_allowed``, ``echo_credentials``)."""

    def __init__(self, owner: FaultServer, users: dict[str, str]) -> None:
        super().__init__(users)
        self.owner = owner
        self.received: list[tuple[str, bytes, bytes]] = []  # (mechanism, user, password) as the server decoded them

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        owner = self.owner
        if isinstance(auth_data, LoginPassword):
            self.received.append((mechanism, auth_data.login, auth_data.password))
        with owner.lock:
            owner.login_attempts += 1
            allowed = owner.logins_allowed is None or owner.login_attempts <= owner.logins_allowed
        result = super().__call__(server, session, envelope, mechanism, auth_data) if allowed else AuthResult(
            success=False, handled=False)
        if result.success or not owner.echo_credentials or not isinstance(auth_data, LoginPassword):
            return result
        user, password = auth_data.login, auth_data.password
        b64 = [base64.b64encode(data).decode("ascii") for data in (password, b"\0" + user + b"\0" + password, user)]
        echo = (f"535-5.7.8 Authentication failed for {user.decode('utf-8', 'replace')} "
                f"with password {password.decode('utf-8', 'replace')}\r\n"
                f"535 5.7.8 you sent {b64[1]} (PLAIN), or {b64[2]} then {b64[0]} (LOGIN)")
        # As bytes: aiosmtpd would encode a str as ASCII, and the password may not be.
        return AuthResult(success=False, handled=False, message=echo.encode("utf-8"))  # type: ignore[arg-type]


class _FaultHandler(_Handler):
    owner: FaultServer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        odd = self.owner.odd_rcpt.pop(address.lower(), None)
        if odd is not None:
            return odd
        if address.lower() in self.owner.echo_rcpt:
            self.owner.echo_rcpt.discard(address.lower())
            await server.push("250 2.1.5 Ok")  # one reply too many: every later one answers the command before
        refusal = self.owner.refuse.get(address.lower())
        if refusal is not None:
            with self.owner.lock:
                self.owner.rcpt_counts[address.lower()] = self.owner.rcpt_counts.get(address.lower(), 0) + 1
                self.owner.refused_rcpts.append(address.lower())
            return refusal
        if self.owner._draw(self.owner.p451):
            with self.owner.lock:
                self.owner.rcpt_counts[address.lower()] = self.owner.rcpt_counts.get(address.lower(), 0) + 1
                self.owner.deferred_rcpts.append(address.lower())
            return "451 4.3.2 System busy, try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        with self.owner.lock:
            self.owner.mails += 1
            odd = self.owner.odd_mail.pop(self.owner.mails, None)
            drop = self.owner.mails in self.owner.drop_at_mail
        if drop:
            assert server.transport is not None
            server.transport.close()  # gone before answering: the rest of the group is never read
            return "421 4.3.0 Closing connection"
        if odd is not None:
            return odd
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        owner = self.owner
        if owner.delay:
            await asyncio.sleep(owner.delay)
        if owner.holding.is_set():
            # Held: no answer until released. A client that hangs up meanwhile cancels this
            # coroutine, so what it gave up on is never recorded.
            with owner.lock:
                owner.held += 1
            try:
                while owner.holding.is_set():
                    await asyncio.sleep(0.01)
            finally:
                with owner.lock:
                    owner.held -= 1
        if owner._drop_now(envelope):
            with owner.lock:
                owner.dropped_after_dot += 1
                if owner.keep_dropped:
                    owner.messages.append(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos),
                                                   envelope.original_content or b"", tuple(session.peer)))
            assert server.transport is not None
            server.transport.abort()  # the whole message read, then gone without an answer
            return "421 4.3.0 Closing connection"
        if owner._draw(owner.p_drop_data):
            with owner.lock:
                owner.dropped_transactions += 1
            assert server.transport is not None
            server.transport.abort()  # gone mid-DATA: no reply, nothing accepted
            return "421 4.3.0 Closing connection"
        if owner._slow_now(envelope):
            # aiosmtpd cancels this coroutine when the client hangs up, so a
            # message the client gave up on is never recorded as accepted.
            await asyncio.sleep(owner.slow_seconds)
        if server.transport is None or server.transport.is_closing():
            return "421 4.3.0 Closing connection"
        data = envelope.original_content or b""
        with owner.lock:
            owner.messages.append(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), data, tuple(session.peer)))
            number = len(owner.messages)
        return f"250 2.0.0 Ok: queued as Q{number}"


class _FaultSMTP(SMTP):
    owner: FaultServer

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        with self.owner.lock:
            self.owner.connections += 1
            self.number = self.owner.connections
            self.owner.live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        with self.owner.lock:
            self.owner.live.discard(self)
        super().connection_lost(error)

    swallow = 0  # commands still to leave unanswered

    async def smtp_MAIL(self, arg: str) -> None:
        # Whether this MAIL came in a group: its RCPT already waits in what was read.
        waiting = bytes(getattr(self._reader, "_buffer", b""))
        with self.owner.lock:
            self.owner.mail_pipelined.append(waiting.upper().startswith(b"RCPT"))
        if not self._swallowed():
            await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str) -> None:
        if not self._swallowed():
            await super().smtp_RCPT(arg)

    def _swallowed(self) -> bool:
        if self.swallow > 0:
            self.swallow -= 1
            return True
        return False

    async def smtp_DATA(self, arg: str) -> None:
        if self._swallowed():
            return
        assert self.envelope is not None
        rcpts = [rcpt.lower() for rcpt in self.envelope.rcpt_tos]
        for rcpt in rcpts:
            odd = self.owner.odd_data.pop(rcpt, None)
            if odd is not None:
                await self.push(odd)  # instead of 354: the message is never read
                return
        await super().smtp_DATA(arg)
        with self.owner.lock:
            if any(rcpt in self.owner.swallow_after_dot for rcpt in rcpts):
                self.owner.swallow_after_dot.difference_update(rcpts)
                self.swallow = 3

    async def smtp_EHLO(self, hostname: str) -> None:
        if self.owner.close_after_greeting(self.number):
            with self.owner.lock:
                self.owner.closed_after_greeting += 1
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_EHLO(hostname)


class _FaultController(_FreePortController):
    def __init__(self, owner: FaultServer, handler: Any, **kwargs: Any) -> None:
        self.owner = owner
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        smtp = _FaultSMTP(self.handler, **self.SMTP_kwargs)
        smtp.owner = self.owner
        return smtp


class FaultServer(SmtpServer):
    """A plain SMTP server on 127.0.0.1 with injected faults (see the module docstring)."""

    def __init__(
        self,
        *,
        p451: float = 0.0,
        p_drop_data: float = 0.0,
        slow: dict[str, int] | None = None,
        slow_seconds: float = 0.0,
        close_after_greeting: Callable[[int], bool] = lambda n: False,
        data_size_limit: int | None = None,
        delay: float = 0.0,
        drop_after_dot: dict[str, int] | None = None,
        keep_dropped: bool = False,
        odd_mail: dict[int, str] | None = None,
        odd_rcpt: dict[str, str] | None = None,
        odd_data: dict[str, str] | None = None,
        refuse: dict[str, str] | None = None,
        seed: int = 6,
        port: int = 0,
        auth: dict[str, str] | None = None,
        echo_credentials: bool = False,
        logins_allowed: int | None = None,
        auth_mechanisms: tuple[str, ...] | None = None,
        pipelining: bool = False,
        drop_at_mail: set[int] | None = None,
        echo_rcpt: set[str] | None = None,
        swallow_after_dot: set[str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        super().__init__(pipelining=pipelining, smtputf8=smtputf8)
        self.p451 = p451
        self.p_drop_data = p_drop_data
        self.slow = {k.lower(): v for k, v in (slow or {}).items()}  # address -> times (0: always)
        self.slow_seconds = slow_seconds
        self.slow_seen: dict[str, int] = {}
        self.close_after_greeting = close_after_greeting
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}  # address -> RCPT reply
        self.refused_rcpts: list[str] = []
        self.rng = random.Random(seed)
        self.connections = 0
        self.closed_after_greeting = 0
        self.dropped_transactions = 0
        self.deferred_rcpts: list[str] = []
        self.drop_after_dot = {k.lower(): v for k, v in (drop_after_dot or {}).items()}  # address -> times (0: always)
        self.drop_after_dot_seen: dict[str, int] = {}
        self.keep_dropped = keep_dropped
        self.dropped_after_dot = 0
        self.odd_mail = dict(odd_mail or {})  # MAIL number (from 1, across connections) -> reply
        self.odd_rcpt = {k.lower(): v for k, v in (odd_rcpt or {}).items()}
        self.odd_data = {k.lower(): v for k, v in (odd_data or {}).items()}
        self.mails = 0
        self.mail_pipelined: list[bool] = []  # per MAIL, in order: whether its RCPT came with it
        self.drop_at_mail = set(drop_at_mail or ())  # MAIL numbers (from 1, across connections)
        self.echo_rcpt = {a.lower() for a in echo_rcpt or ()}
        self.swallow_after_dot = {a.lower() for a in swallow_after_dot or ()}
        self.holding = threading.Event()
        self.held = 0  # final dots waiting for their reply right now
        self.delay = delay  # seconds before every reply to a final dot
        self.live: set[_FaultSMTP] = set()
        self._kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "ready_timeout": 10.0, "decode_data": False,
                                        "enable_SMTPUTF8": smtputf8}
        if data_size_limit is not None:
            self._kwargs["data_size_limit"] = data_size_limit
        self.echo_credentials = echo_credentials
        self.logins_allowed = logins_allowed  # None: every login with the right password succeeds
        self.login_attempts = 0
        if auth:
            # Plain AUTH on 127.0.0.1, as smtpservers.SmtpServer does it; MAIL needs a login.
            self.authenticator = _EchoingAuthenticator(self, auth)
            self._kwargs.update(authenticator=self.authenticator, auth_require_tls=False, auth_required=False)
            if auth_mechanisms is not None:
                self._kwargs["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN") if m not in auth_mechanisms]
        self.handler = _FaultHandler(self)
        self.controller = _FaultController(self, self.handler, port=port, **self._kwargs)
        self.running = False

    def _draw(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self.lock:
            return self.rng.random() < probability

    def _drop_now(self, envelope: Envelope) -> bool:
        """Whether this transaction is to be dropped after its final dot (``drop_after_dot``)."""
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                key = rcpt.lower()
                if key in self.drop_after_dot:
                    seen = self.drop_after_dot_seen.get(key, 0)
                    self.drop_after_dot_seen[key] = seen + 1
                    times = self.drop_after_dot[key]
                    return times == 0 or seen < times
        return False

    def hold(self) -> None:
        """From now on, the reply to every final dot waits (until ``release``, or the client hangs up)."""
        self.holding.set()

    def release(self) -> None:
        self.holding.clear()

    def _slow_now(self, envelope: Envelope) -> bool:
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                key = rcpt.lower()
                if key in self.slow:
                    seen = self.slow_seen.get(key, 0)
                    self.slow_seen[key] = seen + 1
                    times = self.slow[key]
                    return times == 0 or seen < times
        return False

    def start(self) -> FaultServer:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.controller.stop()

    def pause(self) -> None:
        """Disappear: drop every open connection and stop listening."""
        port = self.port
        loop = self.controller.loop
        done = threading.Event()

        def hang_up() -> None:
            for smtp in list(self.live):
                if smtp.transport is not None:
                    smtp.transport.abort()
            done.set()

        loop.call_soon_threadsafe(hang_up)
        done.wait(5)
        self.stop()
        self._paused_port = port

    def resume(self) -> None:
        """Come back on the same port, keeping what was received so far."""
        self.controller = _FaultController(self, self.handler, port=self._paused_port, **self._kwargs)
        self.start()
