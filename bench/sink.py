"""A counting, discarding SMTP server for the benchmarks (aiosmtpd on 127.0.0.1).

Run it as its own process so that its CPU use is not charged to the sender:

    python bench/sink.py [--port 0] [--engine aiosmtpd|raw] [--pipelining] [--tls-cert PEM --tls-key PEM]

It prints ``PORT <n>`` once it listens, then answers one command per line
on stdin: ``stats`` prints a JSON line of counters, ``reset`` zeroes them and
prints ``ok``; end of input stops it. Messages are counted in the DATA handler,
before the client gets its 250 reply, so when a sender has exited every
message it saw accepted is already counted.

The default engine is aiosmtpd, a real SMTP server. ``--engine raw`` is a
minimal SMTP responder that finds the end of DATA with one ``bytes.find`` per
chunk: it costs the sink so little that what remains is the senders' own
ceiling (aiosmtpd reads DATA a line at a time, and on two cores the sink's
CPU is taken from the sender).

``--pipelining`` adds PIPELINING (RFC 2920) to aiosmtpd's EHLO reply; aiosmtpd
reads commands from a buffered stream, so a client that sends a group of
them in one write gets its replies in order. ``--tls-cert`` and ``--tls-key``
make it offer STARTTLS with that certificate and refuse mail before it, as
a relay on port 587 does; ``--auth`` then accepts any login after STARTTLS,
for clients that always log in.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session


class CountingHandler:
    """Counts messages, recipients, distinct recipients and bytes; keeps nothing else."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages = 0
            self.recipients = 0
            self.bytes = 0
            self.distinct: set[str] = set()
            self.cpu_start = time.process_time()
            # When the first and the last message were accepted (CLOCK_MONOTONIC, the same in every
            # process of the machine): the steady rate, without the sender's start-up and set-up.
            self.first_ns = 0
            self.last_ns = 0

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "messages": self.messages,
                "recipients": self.recipients,
                "distinct": len(self.distinct),
                "bytes": self.bytes,
                # The sink's own CPU time since the last reset, in microseconds: is it the bottleneck?
                "cpu_us": int((time.process_time() - self.cpu_start) * 1e6),
                "first_ns": self.first_ns,
                "last_ns": self.last_ns,
            }

    def accepted(self, recipients: list[str], size: int) -> None:
        now = time.monotonic_ns()
        with self.lock:
            self.messages += 1
            self.recipients += len(recipients)
            self.bytes += size
            self.distinct.update(address.lower() for address in recipients)
            self.first_ns = self.first_ns or now
            self.last_ns = now

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.content
        self.accepted(envelope.rcpt_tos, len(data) if isinstance(data, bytes | str) else 0)
        return "250 OK"


class PipeliningHandler(CountingHandler):
    """The counting handler, with PIPELINING added to the EHLO reply (aiosmtpd's EHLO hook)."""

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        # With this hook, recording the client's name is the hook's job.
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


def accept_any_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object) -> AuthResult:
    return AuthResult(success=True)


class RawSmtp(asyncio.Protocol):
    """Just enough SMTP for smtplib: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def __init__(self, handler: CountingHandler) -> None:
        self.handler = handler
        self.buffer = b""
        self.in_data = False
        self.rcpts: list[str] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 bench-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer:
            if self.in_data:
                # Search only where the terminator can be: the new chunk and 4 bytes before it.
                start = max(0, len(self.buffer) - len(data) - 4)
                end = self.buffer.find(b"\r\n.\r\n", start)
                if end < 0:
                    return
                body, self.buffer = self.buffer[: end + 2], self.buffer[end + 5 :]
                self.in_data = False
                self.handler.accepted(self.rcpts, len(body))
                self.rcpts = []
                self.reply(b"250 OK")
                data = self.buffer
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                return
            self.buffer = rest
            self.command(line)

    def command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            self.reply(b"250-bench-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 104857600")
        elif verb == b"MAIL" or verb in (b"RSET", b"NOOP"):
            if verb != b"NOOP":
                self.rcpts = []
            self.reply(b"250 OK")
        elif verb == b"RCPT":
            address = line.partition(b":")[2].strip().split(b" ")[0].strip(b"<>")
            self.rcpts.append(address.decode("utf-8", "replace"))
            self.reply(b"250 OK")
        elif verb == b"DATA":
            self.in_data = True
            self.reply(b"354 End data with <CR><LF>.<CR><LF>")
        elif verb == b"QUIT":
            self.reply(b"221 Bye")
            assert self.transport is not None
            self.transport.close()
        else:
            self.reply(b"502 Command not implemented")

    def reply(self, text: bytes) -> None:
        assert self.transport is not None
        self.transport.write(text + b"\r\n")


def serve(
    handler: CountingHandler, host: str, port: int, engine: str, ready: list[int], started: threading.Event,
    tls: ssl.SSLContext | None = None, auth: bool = False,
) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    options: dict[str, object] = {}
    if tls is not None:
        options.update(tls_context=tls, require_starttls=True)
        if auth:
            options.update(authenticator=accept_any_login, auth_require_tls=True)

    def factory() -> asyncio.Protocol:
        if engine == "raw":
            return RawSmtp(handler)
        return SMTP(handler, hostname="bench-sink", enable_SMTPUTF8=True, loop=loop, **options)  # type: ignore[arg-type]

    server = loop.run_until_complete(loop.create_server(factory, host, port))
    ready.append(server.sockets[0].getsockname()[1])
    started.set()
    loop.run_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--engine", choices=("aiosmtpd", "raw"), default="aiosmtpd")
    parser.add_argument("--pipelining", action="store_true", help="offer PIPELINING in the EHLO reply")
    parser.add_argument("--tls-cert", type=Path, help="offer STARTTLS with this PEM certificate (and --tls-key)")
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--auth", action="store_true", help="with TLS: accept any login")
    args = parser.parse_args(argv)
    if args.engine == "raw" and (args.pipelining or args.tls_cert or args.auth):
        parser.error("--pipelining, --tls-cert and --auth need the aiosmtpd engine")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    tls: ssl.SSLContext | None = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(args.tls_cert), str(args.tls_key))
    # aiosmtpd logs every connection at INFO; that would cost more than the counting.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    handler = PipeliningHandler() if args.pipelining else CountingHandler()
    ready: list[int] = []
    started = threading.Event()
    thread = threading.Thread(target=serve, args=(handler, args.host, args.port, args.engine, ready, started, tls,
                                                  args.auth), daemon=True)
    thread.start()
    if not started.wait(10):
        print("ERROR sink did not start", flush=True)
        return 1
    print(f"PORT {ready[0]}", flush=True)
    for line in sys.stdin:
        command = line.strip()
        reply: Any
        if command == "stats":
            reply = json.dumps(handler.stats())
        elif command == "reset":
            handler.reset()
            reply = "ok"
        else:
            reply = json.dumps({"error": f"unknown command {command!r}"})
        print(reply, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
