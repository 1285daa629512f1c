"""A counting, discarding SMTP server for the benchmarks (aiosmtpd on 127.0.0.1).

Run it as its own process so that its CPU use is not charged to the sender:

    python bench/sink.py [--port 0] [--engine aiosmtpd|raw]

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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
import time
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


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

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "messages": self.messages,
                "recipients": self.recipients,
                "distinct": len(self.distinct),
                "bytes": self.bytes,
                # The sink's own CPU time since the last reset, in microseconds: is it the bottleneck?
                "cpu_us": int((time.process_time() - self.cpu_start) * 1e6),
            }

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.content
        size = len(data) if isinstance(data, bytes | str) else 0
        with self.lock:
            self.messages += 1
            self.recipients += len(envelope.rcpt_tos)
            self.bytes += size
            self.distinct.update(address.lower() for address in envelope.rcpt_tos)
        return "250 OK"


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
                with self.handler.lock:
                    self.handler.messages += 1
                    self.handler.recipients += len(self.rcpts)
                    self.handler.bytes += len(body)
                    self.handler.distinct.update(r.lower() for r in self.rcpts)
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
    handler: CountingHandler, host: str, port: int, engine: str, ready: list[int], started: threading.Event
) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory() -> asyncio.Protocol:
        if engine == "raw":
            return RawSmtp(handler)
        return SMTP(handler, hostname="bench-sink", enable_SMTPUTF8=True, loop=loop)

    server = loop.run_until_complete(loop.create_server(factory, host, port))
    ready.append(server.sockets[0].getsockname()[1])
    started.set()
    loop.run_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--engine", choices=("aiosmtpd", "raw"), default="aiosmtpd")
    args = parser.parse_args(argv)
    # aiosmtpd logs every connection at INFO; that would cost more than the counting.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    handler = CountingHandler()
    ready: list[int] = []
    started = threading.Event()
    thread = threading.Thread(target=serve, args=(handler, args.host, args.port, args.engine, ready, started), daemon=True)
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
