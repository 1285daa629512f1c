"""The sending engine: parallel connections, one shared rate limit, retries, results.

The caller's thread reads the list and feeds a small bounded queue (memory
stays flat however long the list is); ``connections`` worker threads each own
one reused connection, build each message, wait for a token from the shared
rate limiter, send, and journal the result before counting it.

4xx replies and dropped connections are retried after an exponential backoff
(a retry waits in a heap, so the worker goes on with other messages), bounded
by ``retries`` further attempts and ``retry_max_seconds``; then the message is
"deferred". 5xx replies are "failed" at once.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cepletter.errors import CepletterError
from cepletter.journal import DEFERRED, FAILED, SENT, Journal
from cepletter.message import MessageFactory
from cepletter.recipient import Recipient
from cepletter.transports import ConnectFailed, Connection, Outcome, Transport


class RateLimiter:
    """One token bucket shared by every connection: ``rate`` messages per second."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.burst = max(burst, 1.0) * self.interval
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> bool:
        """Take a token, sleeping until it is due; False when stopped while waiting."""
        if self.interval == 0.0:
            return True
        with self._lock:
            now = time.monotonic()
            # A bucket never holds more than `burst` seconds of unused tokens.
            slot = max(self._next, now - self.burst + self.interval)
            self._next = slot + self.interval
        delay = slot - time.monotonic()
        return not (delay > 0 and stop.wait(delay))


@dataclass
class Result:
    email: str
    status: str
    reply: str
    attempts: int


@dataclass
class Summary:
    """What a run did. ``failures`` names every failed or deferred address."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    failures: list[Result] = field(default_factory=list)
    interrupted: bool = False
    elapsed: float = 0.0

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.deferred


@dataclass(order=True)
class _Retry:
    due: float
    seq: int
    recipient: Recipient = field(compare=False)
    attempts: int = field(compare=False)
    first: float = field(compare=False)


@dataclass
class Options:
    connections: int = 1
    rate: float = 10.0
    retries: int = 5
    retry_max_seconds: float = 600.0
    backoff_base: float = 2.0  # seconds before the first retry; doubles each time
    backoff_max: float = 300.0


Progress = Callable[[Result], None]


class Sender:
    """Send one issue to many recipients through one transport."""

    def __init__(
        self,
        transport: Transport,
        factory: MessageFactory,
        options: Options,
        *,
        journal: Journal | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.transport = transport
        self.factory = factory
        self.options = options
        self.journal = journal
        self.progress = progress
        self.summary = Summary()
        self.stop = threading.Event()
        self._limiter = RateLimiter(options.rate)
        self._queue: queue.Queue[Recipient] = queue.Queue(maxsize=max(8, options.connections * 4))
        self._retries: list[_Retry] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._pending = 0  # fed but without a final result yet
        self._fed_all = False
        self._fatal: CepletterError | None = None

    # ------------------------------------------------------------ public

    def run(self, recipients: Iterable[Recipient]) -> Summary:
        """Send to every recipient; KeyboardInterrupt stops after in-flight messages."""
        start = time.monotonic()
        first = self.transport.connect()  # fail fast on address, TLS or login problems
        workers = [
            threading.Thread(target=self._work, args=(first if i == 0 else None,), name=f"send-{i}", daemon=True)
            for i in range(max(1, min(self.options.connections, self.transport.max_connections)))
        ]
        for worker in workers:
            worker.start()
        try:
            for recipient in recipients:
                with self._lock:
                    self._pending += 1
                while not self.stop.is_set():
                    try:
                        self._queue.put(recipient, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    break
            with self._lock:
                self._fed_all = True
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.2)
        except KeyboardInterrupt:
            self.summary.interrupted = True
        finally:
            # Whatever ended the feeding, in-flight messages finish and are journaled.
            self.stop.set()
            for worker in workers:
                worker.join()
            self.summary.elapsed = time.monotonic() - start
        if self._fatal is not None:
            raise self._fatal
        return self.summary

    # ------------------------------------------------------------ workers

    def _next(self) -> tuple[Recipient, int, float] | None:
        while not self.stop.is_set():
            with self._lock:
                now = time.monotonic()
                if self._retries and self._retries[0].due <= now:
                    r = heapq.heappop(self._retries)
                    return r.recipient, r.attempts, r.first
                if self._fed_all and self._pending == 0:
                    return None
                wait = min(self._retries[0].due - now, 0.2) if self._retries else 0.2
            try:
                return self._queue.get(timeout=max(wait, 0.001)), 0, 0.0
            except queue.Empty:
                continue
        return None

    def _work(self, connection: Connection | None) -> None:
        try:
            while (job := self._next()) is not None:
                recipient, attempts, first = job
                connection = self._one(connection, recipient, attempts, first)
        except CepletterError as exc:
            self._fatal = self._fatal or exc
            self.stop.set()
        except BaseException as exc:  # a bug must not leave the other workers waiting forever
            self._fatal = self._fatal or CepletterError(f"sending stopped: {type(exc).__name__}: {exc}")
            self.stop.set()
        finally:
            if connection is not None:
                connection.close()

    def _one(self, connection: Connection | None, recipient: Recipient, attempts: int, first: float) -> Connection | None:
        built = self.factory.build(recipient)
        # Checked again after the wait: once the run is stopping (say the journal cannot be
        # written), no new message goes out.
        if not self._limiter.wait(self.stop) or self.stop.is_set():
            self._requeue_lost()
            return connection
        attempts += 1
        first = first or time.monotonic()
        if connection is None:
            try:
                connection = self.transport.connect()
            except ConnectFailed as exc:
                self._outcome(recipient, Outcome(0, exc.message), attempts, first, built.message_id)
                return None
        if built.eight_bit and not connection.eight_bit:
            # A server without 8BITMIME gets the same message as quoted-printable.
            built = self.factory.build(recipient, eight_bit=False)
        outcome = connection.send(self.factory.sender, recipient.email, built.data, eight_bit=built.eight_bit)
        self._outcome(recipient, outcome, attempts, first, built.message_id)
        return None if outcome.dropped else connection

    def _requeue_lost(self) -> None:
        # Stopped while waiting for a token: the message was never sent and is not journaled.
        with self._lock:
            self._pending -= 1

    def _outcome(self, recipient: Recipient, outcome: Outcome, attempts: int, first: float, message_id: str) -> None:
        if outcome.ok:
            self._final(recipient, SENT, outcome.reply, attempts, message_id)
        elif outcome.permanent:
            self._final(recipient, FAILED, outcome.reply, attempts, message_id)
        else:
            opts = self.options
            delay = min(opts.backoff_base * 2 ** (attempts - 1), opts.backoff_max)
            delay *= random.uniform(0.8, 1.2)  # spread retries so connections do not move in step
            elapsed = time.monotonic() - first
            if attempts > opts.retries or elapsed + delay > opts.retry_max_seconds or self.stop.is_set():
                self._final(recipient, DEFERRED, outcome.reply, attempts, message_id)
                return
            with self._lock:
                heapq.heappush(
                    self._retries, _Retry(time.monotonic() + delay, next(self._seq), recipient, attempts, first)
                )

    def _final(self, recipient: Recipient, status: str, reply: str, attempts: int, message_id: str) -> None:
        # Journal first: a result that cannot be written stops the run before it is counted.
        if self.journal is not None:
            self.journal.record(recipient.email, status, reply, message_id=message_id, attempts=attempts)
        result = Result(recipient.email, status, reply, attempts)
        with self._lock:
            self._pending -= 1
            s = self.summary
            if status == SENT:
                s.sent += 1
            else:
                if status == FAILED:
                    s.failed += 1
                else:
                    s.deferred += 1
                s.failures.append(result)
        if self.progress is not None:
            self.progress(result)


def dry_run(factory: MessageFactory, recipients: Iterable[Recipient]) -> tuple[int, int]:
    """Build every message without sending: (messages, total bytes)."""
    count = size = 0
    for recipient in recipients:
        size += len(factory.build(recipient).data)
        count += 1
    return count, size
