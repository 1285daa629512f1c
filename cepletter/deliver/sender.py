"""The sending engine: parallel connections, one shared rate limit, retries, results.

``connections`` worker threads each own one reused connection and take the
next recipient straight from the list as it is read (one at a time, under a
lock: memory stays flat however long the list is, and no thread hands work to
another); each builds the message, waits for a token from the shared rate
limiter, sends, and journals the result before counting it. The caller's
thread only waits, so Ctrl-C reaches it.

4xx replies and dropped connections are retried after an exponential backoff
(a retry waits in a heap, so the worker goes on with other messages), bounded
by ``retries`` further attempts and ``retry_max_seconds``; then the message is
"deferred". 5xx replies are "failed" at once.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from cepletter.deliver.journal import DEFERRED, FAILED, SENT, Journal
from cepletter.deliver.transports import ConnectFailed, Connection, Outcome, Transport
from cepletter.errors import CepletterError
from cepletter.message.build import Built, MessageFactory
from cepletter.message.recipient import Recipient


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


@dataclass
class _Job:
    recipient: Recipient
    attempts: int = 0
    first: float = 0.0  # when the first attempt went out
    built: Built | None = None  # made ahead, while the previous message was with the server


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
        self._source: Iterator[Recipient] = iter(())
        self._retries: list[_Retry] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a result came in or a retry was scheduled
        self._pending = 0  # taken from the list but without a final result yet
        self._read_all = False
        self._fatal: CepletterError | None = None

    # ------------------------------------------------------------ public

    def run(self, recipients: Iterable[Recipient]) -> Summary:
        """Send to every recipient; KeyboardInterrupt stops after in-flight messages."""
        start = time.monotonic()
        first = self.transport.connect()  # fail fast on address, TLS or login problems
        self._source = iter(recipients)
        workers = [
            threading.Thread(target=self._work, args=(first if i == 0 else None,), name=f"send-{i}", daemon=True)
            for i in range(max(1, min(self.options.connections, self.transport.max_connections)))
        ]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.2)
        except KeyboardInterrupt:
            self.summary.interrupted = True
        finally:
            # Whatever ended the run, in-flight messages finish and are journaled.
            self._halt()
            for worker in workers:
                worker.join()
            self.summary.elapsed = time.monotonic() - start
        if self._fatal is not None:
            raise self._fatal
        return self.summary

    def _halt(self) -> None:
        self.stop.set()
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------ workers

    def _next(self, wait: bool = True) -> _Job | None:
        """A retry that is due, else the next recipient on the list; None when all are done
        (or, without ``wait``, when nothing is ready now)."""
        with self._changed:
            while not self.stop.is_set():
                now = time.monotonic()
                if self._retries and self._retries[0].due <= now:
                    r = heapq.heappop(self._retries)
                    return _Job(r.recipient, r.attempts, r.first)
                if not self._read_all:
                    recipient = next(self._source, None)
                    if recipient is not None:
                        self._pending += 1
                        return _Job(recipient)
                    self._read_all = True
                if self._pending == 0 or not wait:
                    return None
                # Wait for a retry to fall due, or for another worker's result.
                self._changed.wait(min(self._retries[0].due - now, 1.0) if self._retries else 1.0)
        return None

    def _work(self, connection: Connection | None) -> None:
        try:
            job = self._next()
            while job is not None:
                connection, job = self._one(connection, job)
                job = job or self._next()
        except CepletterError as exc:
            self._fatal = self._fatal or exc
            self._halt()
        except BaseException as exc:  # a bug must not leave the other workers waiting forever
            self._fatal = self._fatal or CepletterError(f"sending stopped: {type(exc).__name__}: {exc}")
            self._halt()
        finally:
            if connection is not None:
                connection.close()

    def _one(self, connection: Connection | None, job: _Job) -> tuple[Connection | None, _Job | None]:
        """Send one message; returns the connection to go on with and, when one was ready, the next job."""
        recipient = job.recipient
        built = job.built or self.factory.build(recipient)
        # Checked again after the wait: once the run is stopping (say the journal cannot be
        # written), no new message goes out.
        if not self._limiter.wait(self.stop) or self.stop.is_set():
            self._requeue_lost()
            return connection, None
        attempts = job.attempts + 1
        first = job.first or time.monotonic()
        if connection is None:
            try:
                connection = self.transport.connect()
            except ConnectFailed as exc:
                self._outcome(recipient, Outcome(0, exc.message), attempts, first, built.message_id)
                return None, None
        if built.eight_bit and not connection.eight_bit:
            # A server without 8BITMIME gets the same message as quoted-printable.
            built = self.factory.build(recipient, eight_bit=False)
        finish = connection.start(built.sender or self.factory.sender, recipient.email, built.data, eight_bit=built.eight_bit)
        # While the server reads this message, the next one is made ready.
        upcoming = self._next(wait=False)
        if upcoming is not None:
            upcoming.built = self.factory.build(upcoming.recipient)
        outcome = finish()
        self._outcome(recipient, outcome, attempts, first, built.message_id)
        return (None if outcome.dropped else connection), upcoming

    def _requeue_lost(self) -> None:
        # Stopped while waiting for a token: the message was never sent and is not journaled.
        with self._changed:
            self._pending -= 1
            self._changed.notify_all()

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
            with self._changed:
                heapq.heappush(
                    self._retries, _Retry(time.monotonic() + delay, next(self._seq), recipient, attempts, first)
                )
                self._changed.notify_all()

    def _final(self, recipient: Recipient, status: str, reply: str, attempts: int, message_id: str) -> None:
        # Journal first: a result that cannot be written stops the run before it is counted.
        if self.journal is not None:
            self.journal.record(recipient.email, status, reply, message_id=message_id, attempts=attempts)
        result = Result(recipient.email, status, reply, attempts)
        with self._changed:
            self._pending -= 1
            if self._pending == 0:
                self._changed.notify_all()
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
