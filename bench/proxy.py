"""A latency proxy on 127.0.0.1: a TCP relay that holds every chunk for RTT/2 each way and counts round trips.

    python bench/proxy.py --upstream PORT --rtt-ms 20 [--port 0]

It prints ``PORT <n>`` once it listens, then answers one command per line
on stdin, like the sink: ``stats`` prints a JSON line of counters,
``between FIRST_NS LAST_NS`` the number of turns that began in that window
(``time.monotonic_ns``, the same clock in every process), ``reset`` zeroes
them and prints ``ok``; end of input stops it. ``LatencyProxy`` runs
the same relay in a thread of the calling process.

What crosses it is not read, so TLS passes through unchanged. Order is kept:
each direction is one queue, released in arrival order when its time comes.

A round trip is a turn of the conversation seen from the client: the client
writes after it has been handed something from the server since its last
write. Writes with nothing heard in between (a pipelined group, a message
sent in many segments) are one turn; so are replies that arrive in many
pieces. The server's greeting counts as heard, so a plain SMTP session with
one message is 6 turns: EHLO, MAIL, RCPT, DATA, the content, QUIT.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Counters:
    connections: int = 0
    turns: int = 0  # client writes that followed something heard from the server
    client_bytes: int = 0
    server_bytes: int = 0
    per_connection: list[int] = field(default_factory=list)  # turns of each finished connection
    times: list[int] = field(default_factory=list)  # when each turn began (time.monotonic_ns)

    def between(self, first_ns: int, last_ns: int) -> int:
        """Turns that began after ``first_ns`` and no later than ``last_ns``."""
        return sum(1 for t in self.times if first_ns < t <= last_ns)

    def as_dict(self) -> dict[str, object]:
        return {
            "connections": self.connections, "turns": self.turns, "client_bytes": self.client_bytes,
            "server_bytes": self.server_bytes, "per_connection": list(self.per_connection),
        }


class _Leg(asyncio.Protocol):
    """One side of a relayed connection: what it receives goes, delayed, to the other side."""

    relay: _Relay

    def __init__(self, from_client: bool) -> None:
        self.from_client = from_client

    def data_received(self, data: bytes) -> None:
        self.relay.received(self.from_client, data)

    def eof_received(self) -> bool:
        self.relay.received(self.from_client, None)
        return True  # keep this side open until the delayed end has been passed on

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.received(self.from_client, None)


class _UpstreamSide(_Leg):
    def __init__(self, relay: _Relay) -> None:
        super().__init__(from_client=False)
        self.relay = relay


class _ClientSide(_Leg):
    def __init__(self, proxy: _Proxy) -> None:
        super().__init__(from_client=True)
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.relay = _Relay(self.proxy, transport)
        with self.proxy.lock:
            self.proxy.counters.connections += 1
        self._task = self.proxy.loop.create_task(self._connect())

    async def _connect(self) -> None:
        relay = self.relay
        try:
            transport, _ = await self.proxy.loop.create_connection(
                lambda: _UpstreamSide(relay), self.proxy.upstream_host, self.proxy.upstream_port)
        except OSError:
            relay.close()
            return
        assert isinstance(transport, asyncio.Transport)
        relay.upstream = transport
        if relay.closed:
            transport.close()


class _Relay:
    """One client connection and its upstream connection, with a delay line each way."""

    def __init__(self, proxy: _Proxy, client: asyncio.Transport) -> None:
        self.proxy = proxy
        self.loop = proxy.loop
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self.lines: dict[bool, collections.deque[tuple[float, bytes | None]]] = {
            True: collections.deque(), False: collections.deque()}
        self.timers: dict[bool, asyncio.TimerHandle | None] = {True: None, False: None}
        self.ended = {True: False, False: False}
        self.heard = False  # the client was handed server data since its last write
        self.turns = 0
        self.closed = False

    # --- arrivals

    def received(self, from_client: bool, data: bytes | None) -> None:
        if self.ended[from_client]:
            return
        if data is None:
            self.ended[from_client] = True
        elif from_client:
            with self.proxy.lock:
                self.proxy.counters.client_bytes += len(data)
                if self.heard:
                    self.turns += 1
                    self.proxy.counters.turns += 1
                    self.proxy.counters.times.append(time.monotonic_ns())
            self.heard = False
        else:
            with self.proxy.lock:
                self.proxy.counters.server_bytes += len(data)
        line = self.lines[from_client]
        line.append((self.loop.time() + self.proxy.delay, data))
        if self.proxy.delay <= 0 and (not from_client or self.upstream is not None):
            self._release(from_client)
        elif self.timers[from_client] is None:
            self._schedule(from_client)

    # --- departures

    def _schedule(self, from_client: bool) -> None:
        line = self.lines[from_client]
        if line:
            self.timers[from_client] = self.loop.call_at(line[0][0], self._release, from_client)
        else:
            self.timers[from_client] = None

    def _release(self, from_client: bool) -> None:
        self.timers[from_client] = None
        target = self.upstream if from_client else self.client
        if target is None:  # upstream not connected yet: try again shortly
            self.timers[from_client] = self.loop.call_later(0.001, self._release, from_client)
            return
        line = self.lines[from_client]
        now = self.loop.time()
        while line and line[0][0] <= now + 0.0002:
            _, data = line.popleft()
            if data is None:
                self._end(target)
                line.clear()
                return
            if not target.is_closing():
                target.write(data)
                if not from_client:
                    self.heard = True
        self._schedule(from_client)

    def _end(self, target: asyncio.Transport) -> None:
        if target.can_write_eof() and not target.is_closing():
            try:
                target.write_eof()
            except OSError:  # the other side is already gone
                target.close()
        if all(self.ended.values()):
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in self.timers.values():
            if timer is not None:
                timer.cancel()
        self.client.close()
        if self.upstream is not None:
            self.upstream.close()
        with self.proxy.lock:
            self.proxy.counters.per_connection.append(self.turns)


class _Proxy:
    def __init__(self, loop: asyncio.AbstractEventLoop, upstream_host: str, upstream_port: int, rtt: float) -> None:
        self.loop = loop
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.delay = rtt / 2
        self.lock = threading.Lock()
        self.counters = Counters()


class LatencyProxy:
    """The relay in a thread of this process: ``with LatencyProxy(port, 0.02) as proxy: ... proxy.port``."""

    def __init__(self, upstream_port: int, rtt: float, *, upstream_host: str = "127.0.0.1",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self._proxy = _Proxy(self.loop, upstream_host, upstream_port, rtt)
        self._server = self.loop.run_until_complete(
            self.loop.create_server(lambda: _ClientSide(self._proxy), host, port))
        self.port: int = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self.loop.run_forever, name="latency-proxy", daemon=True)
        self._thread.start()

    @property
    def rtt(self) -> float:
        return self._proxy.delay * 2

    def stats(self) -> dict[str, object]:
        with self._proxy.lock:
            return self._proxy.counters.as_dict()

    def turns_between(self, first_ns: int, last_ns: int) -> int:
        """Turns that began in (first_ns, last_ns]: with the sink's first and last accepted message,
        the round trips of the steady part of a send, without connecting and closing."""
        with self._proxy.lock:
            return self._proxy.counters.between(first_ns, last_ns)

    def reset(self) -> None:
        with self._proxy.lock:
            self._proxy.counters = Counters()

    def close(self) -> None:
        if not self.loop.is_running():
            return

        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def __enter__(self) -> LatencyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", type=int, required=True, help="port of the server on 127.0.0.1")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="round trip to add, in milliseconds")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    proxy = LatencyProxy(args.upstream, args.rtt_ms / 1000, port=args.port)
    print(f"PORT {proxy.port}", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps(proxy.stats()), flush=True)
            elif command.startswith("between "):
                first, last = (int(x) for x in command.split()[1:3])
                print(proxy.turns_between(first, last), flush=True)
            elif command == "reset":
                proxy.reset()
                print("ok", flush=True)
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
    finally:
        proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
