"""The sending engine: parallel connections, one shared rate limit, retries, results.

``connections`` worker threads each own one reused connection and take the
next recipient straight from the list as it is read (one at a time, under a
lock: memory stays flat however long the list is, and no thread hands work to
another); each builds the message, waits for a token from the shared rate
limiter, sends, and journals the result before counting it. The caller's
thread only waits.

4xx replies and dropped connections are retried after an exponential backoff
(a retry waits in a heap, so the worker goes on with other messages), bounded
by ``retries`` further attempts and ``retry_max_seconds``; then the message is
"deferred". 5xx replies and protocol errors are "failed" at once. A message
whose verdict never came back (the connection lost after the final dot) is
journaled "uncertain" at once and sent once more at most (never, with
``retry_uncertain`` off): each such attempt may be a copy.

Stopping: the first stop request (``request_stop``, from a signal handler, or
a KeyboardInterrupt) lets every message in flight finish and be journaled,
and starts no new one; the second stops waiting for replies (one already
received is still read), journaling a message whose verdict is missing as
"uncertain". The run returns only when every worker is done, so the journal
is never closed under a message in flight.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import math
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from cepletter.deliver.journal import DEFERRED, FAILED, SENT, UNCERTAIN, Journal
from cepletter.deliver.transports import (
    ConnectFailed,
    Connection,
    Envelope,
    Outcome,
    SmtpConnection,
    Transport,
    Verdict,
)
from cepletter.errors import CepletterError
from cepletter.message.build import Built, MessageFactory, NeedsSmtpUtf8
from cepletter.message.recipient import Recipient


class RateLimiter:
    """One token bucket shared by every connection: ``rate`` messages per second."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self._burst = max(burst, 1.0)
        self._next = time.monotonic()
        self._lock = threading.Lock()
        self.set_rate(rate)

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self.interval = 1.0 / rate if rate > 0 else 0.0
            self.burst = self._burst * self.interval

    def wait(self, stop: threading.Event, within: float | None = None) -> bool | None:
        """Take a token, sleeping until it is due; False when stopped while waiting.

        With ``within``, a token due later than that many seconds from now is not
        taken: None.
        """
        with self._lock:
            if self.interval == 0.0:
                return True
            now = time.monotonic()
            # A bucket never holds more than `burst` seconds of unused tokens.
            slot = max(self._next, now - self.burst + self.interval)
            if within is not None and slot - now > within:
                return None
            self._next = slot + self.interval
        delay = slot - time.monotonic()
        return not (delay > 0 and stop.wait(delay))


# A relay asking to slow down: a 4xx whose text says so ("421 4.7.0 Too many connections",
# "451 4.7.1 Rate limited, try later", "454 Throttling failure: Maximum sending rate exceeded",
# "432 4.3.2 ... sender thread limit exceeded").
_SLOW_DOWN = re.compile(r"\brate\b|too many|throttl|slow(?:ing)? down|limit exceeded", re.IGNORECASE)
_TEMPORARY_CODE = re.compile(r"\b4[0-9][0-9]\b")
PACE_FLOOR = 0.2  # messages per second: the pace is never lowered below this
CUT_GAP = 2.0  # seconds: requests to slow down that come this soon after a cut are the same one
REGROW_SECONDS = 10.0  # without a request to slow down for this long, one more connection


def asks_to_slow_down(outcome: Outcome) -> bool:
    """Whether a temporary refusal is the relay's rate limit speaking (421/451 "rate", "too many"...)."""
    if outcome.verdict is not Verdict.TEMPORARY or not _SLOW_DOWN.search(outcome.reply):
        return False
    return 400 <= outcome.code < 500 or _TEMPORARY_CODE.search(outcome.reply) is not None


@dataclass
class Throttling:
    """How the run followed the relay's requests to slow down, for the final report."""

    times: int = 0  # the pace was cut this many times
    reply: str = ""  # the first request
    lowest_rate: float = 0.0  # messages per second
    lowest_connections: int = 0
    rate: float = 0.0  # at the end of the run
    connections: int = 0
    full_rate: float = 0.0  # [delivery] rate and connections (or the command line's)
    full_connections: int = 0


class _Pace:
    """AIMD under ``[delivery] rate``: a request to slow down halves the pace (from what was
    really sent) and the connections; each accepted message then adds a little back, so the
    pace regains in about ten seconds what a cut took, and one connection comes back every
    ``REGROW_SECONDS`` without another request. ``rate`` stays the cap: the relay's quota."""

    def __init__(self, limiter: RateLimiter, rate: float, connections: int) -> None:
        self.limiter = limiter
        self.cap = rate
        self.rate = rate
        self.cap_connections = connections
        self.connections = connections
        self.report = Throttling(full_rate=rate, full_connections=connections)
        self._recent: collections.deque[float] = collections.deque(maxlen=64)  # when messages went out
        self._step = 1.0  # messages per second regained per second
        self._last_cut = -math.inf
        self._last_change = -math.inf
        self._lock = threading.Lock()

    def went_out(self) -> None:
        self._recent.append(time.monotonic())

    def slow_down(self, reply: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last_cut < CUT_GAP:
                return
            recent = list(self._recent)
            sent = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0
            before = min(self.rate, sent) if sent > 0 else self.rate
            self.rate = max(PACE_FLOOR, before / 2)
            self._step = max(1.0, before / 20)
            self.connections = max(1, self.connections // 2)
            self._last_cut = self._last_change = now
            r = self.report
            r.times += 1
            r.reply = r.reply or reply
            r.lowest_rate = self.rate if r.times == 1 else min(r.lowest_rate, self.rate)
            r.lowest_connections = self.connections if r.times == 1 else min(r.lowest_connections, self.connections)
            self.limiter.set_rate(self.rate)

    def accepted(self) -> None:
        if self.rate >= self.cap and self.connections >= self.cap_connections:
            return
        with self._lock:
            self.rate = min(self.cap, self.rate + self._step / self.rate)
            self.limiter.set_rate(self.rate)
            now = time.monotonic()
            if self.connections < self.cap_connections and now - self._last_change >= REGROW_SECONDS:
                self.connections += 1
                self._last_change = now

    def finish(self) -> Throttling | None:
        if not self.report.times:
            return None
        self.report.rate, self.report.connections = self.rate, self.connections
        return self.report


@dataclass
class Result:
    email: str
    status: str
    reply: str
    attempts: int


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Summary:
    """What a run did.

    ``failures`` names every failed or deferred address; ``uncertain_results``
    every address that had an uncertain attempt in this run, with how it ended
    ("sent" on its second try, or still "uncertain"). ``stopped_by`` is the
    first stop signal, if any.
    """

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    uncertain: int = 0  # ended uncertain
    failures: list[Result] = field(default_factory=list)
    uncertain_results: list[Result] = field(default_factory=list)
    interrupted: bool = False
    stopped_by: int | None = None
    elapsed: float = 0.0
    throttling: Throttling | None = None  # the relay asked to slow down

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.deferred + self.uncertain


@dataclass
class _Pending:
    recipient: Recipient
    attempts: int = 0
    first: float = 0.0  # when the first attempt went out
    built: Built | None = None  # made ahead, while the previous message was with the server
    uncertain: int = 0  # uncertain attempts so far, earlier runs included


class _Opening:
    """A connection being made in the background; None when that failed (the worker that
    takes it connects again itself, and that attempt says what is wrong)."""

    def __init__(self, transport: Transport) -> None:
        self._connection: Connection | None = None
        self._done = threading.Event()
        self._discarded = False
        self._lock = threading.Lock()
        threading.Thread(target=self._open, args=(transport,), name="connect", daemon=True).start()

    def _open(self, transport: Transport) -> None:
        connection: Connection | None
        try:
            connection = transport.connect()
        except Exception:  # whatever it was, the worker's own attempt meets it again and reports it
            connection = None
        with self._lock:
            if self._discarded and connection is not None:
                connection.close(quick=True)
                connection = None
            self._connection = connection
        self._done.set()

    def take(self) -> Connection | None:
        """The connection (once: whoever takes it owns it), when it is made."""
        self._done.wait()
        with self._lock:
            connection, self._connection = self._connection, None
        return connection

    def discard(self) -> None:
        """Not needed after all: closed as soon as it is made."""
        with self._lock:
            self._discarded = True
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close(quick=True)


@dataclass(order=True)
class _Retry:
    due: float
    seq: int
    recipient: Recipient = field(compare=False)
    attempts: int = field(compare=False)
    first: float = field(compare=False)
    uncertain: int = field(compare=False, default=0)


@dataclass
class Options:
    connections: int = 1
    rate: float = 10.0
    retries: int = 5
    retry_max_seconds: float = 600.0
    backoff_base: float = 2.0  # seconds before the first retry; doubles each time
    backoff_max: float = 300.0
    retry_uncertain: bool = True  # one more attempt after an uncertain one


Progress = Callable[[Result], None]
REQUEST_POLL = 0.1  # seconds between looks at stop requests while the workers send
CHAIN_WAIT = 1.0  # seconds a message's content may wait for the pace to let the next one ride along


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
        uncertain_before: Mapping[str, int] | None = None,
        before_first: Callable[[], None] | None = None,
    ) -> None:
        self.transport = transport
        self.factory = factory
        self.options = options
        self.journal = journal
        self.progress = progress
        self.uncertain_before = uncertain_before or {}  # lower-cased address -> uncertain attempts
        self.before_first = before_first  # called once connected, before the first message goes out
        self.summary = Summary()
        self.stop = threading.Event()  # no new message goes out
        self.abandon = threading.Event()  # nobody waits for a reply any longer
        self._requests: list[int] = []  # stop signals not yet acted on
        self._idle = threading.Event()  # every worker has finished
        self._running = 0
        self._limiter = RateLimiter(options.rate)
        self._pace = _Pace(self._limiter, options.rate, max(1, min(options.connections, transport.max_connections)))
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
        """Send to every recipient; a stop request or KeyboardInterrupt ends the run gracefully."""
        start = time.monotonic()
        count = max(1, min(self.options.connections, self.transport.max_connections))
        # The other connections are made while the first is (each costs several round trips:
        # TCP, EHLO, STARTTLS, the TLS handshake, EHLO, AUTH); none sends before the first is made.
        openings = [_Opening(self.transport) for _ in range(count - 1)]
        try:
            try:
                first = self.transport.connect()  # fail fast on address, TLS or login problems
            except ConnectFailed:
                # A server that refused this one but took another is not unreachable.
                made = next((c for c in (o.take() for o in openings) if c is not None), None)
                if made is None:
                    raise
                first = made
            if self.before_first is not None:
                try:
                    self.before_first()
                except BaseException:
                    first.close(quick=True)
                    raise
        except BaseException:
            for opening in openings:
                opening.discard()
            raise
        self._source = iter(recipients)
        workers = [
            threading.Thread(target=self._work, args=(i, first if i == 0 else openings[i - 1]), name=f"send-{i}",
                             daemon=True)
            for i in range(count)
        ]
        self._running = count
        self._take_requests()  # stopped while connecting: the workers start, and stop at once
        for worker in workers:
            worker.start()
        self._wait_for_workers()
        self._take_requests()  # a signal that came as the last worker finished still counts
        self.summary.elapsed = time.monotonic() - start
        self.summary.throttling = self._pace.finish()
        if self._fatal is not None:
            raise self._fatal
        return self.summary

    def request_stop(self, signum: int) -> None:
        """Ask the run to stop; safe to call from a signal handler (it only notes the request)."""
        self._requests.append(signum)

    def _wait_for_workers(self) -> None:
        # Not Thread.join(timeout): on CPython up to 3.11, a KeyboardInterrupt during it marks
        # a thread that is still running as finished (python/cpython#90882), and the journal
        # would be closed under a message in flight, which the next run then sends again.
        while True:
            try:
                while not self._idle.wait(REQUEST_POLL):
                    self._take_requests()
                return
            except KeyboardInterrupt:
                self.request_stop(signal.SIGINT)

    def _take_requests(self) -> None:
        while self._requests:
            signum = self._requests.pop(0)
            if self.summary.stopped_by is None:
                # The first: in-flight messages finish and are journaled, no new one starts.
                self.summary.stopped_by = signum
                self.summary.interrupted = True
                self._halt()
            else:
                # The second: stop waiting for replies; a verdict already received is still journaled.
                self.abandon.set()

    def _halt(self) -> None:
        self.stop.set()
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------ workers

    def _next(self, wait: bool = True) -> _Pending | None:
        """A retry that is due, else the next recipient on the list; None when all are done
        (or, without ``wait``, when nothing is ready now)."""
        with self._changed:
            while not self.stop.is_set():
                now = time.monotonic()
                if self._retries and self._retries[0].due <= now:
                    r = heapq.heappop(self._retries)
                    return _Pending(r.recipient, r.attempts, r.first, uncertain=r.uncertain)
                if not self._read_all:
                    recipient = next(self._source, None)
                    if recipient is not None:
                        self._pending += 1
                        return _Pending(recipient, uncertain=self.uncertain_before.get(recipient.email.lower(), 0))
                    self._read_all = True
                if self._pending == 0 or not wait:
                    return None
                # Wait for a retry to fall due, or for another worker's result.
                self._changed.wait(min(self._retries[0].due - now, 1.0) if self._retries else 1.0)
        return None

    def _work(self, index: int, start: Connection | _Opening) -> None:
        connection: Connection | None = None
        try:
            connection = start.take() if isinstance(start, _Opening) else start
            job: _Pending | None = None
            while True:
                if job is None:
                    connection = self._park(index, connection)
                    job = self._next()
                    if job is None:
                        break
                connection, job = self._one(connection, job)
        except CepletterError as exc:
            self._fatal = self._fatal or exc
            self._halt()
        except BaseException as exc:  # a bug must not leave the other workers waiting forever
            self._fatal = self._fatal or CepletterError(f"sending stopped: {type(exc).__name__}: {exc}")
            self._halt()
        finally:
            try:
                if connection is not None:
                    connection.close(quick=self.abandon.is_set())
            finally:
                with self._changed:
                    self._running -= 1
                    if self._running == 0:
                        self._idle.set()

    def _park(self, index: int, connection: Connection | None) -> Connection | None:
        """While the relay wants fewer connections than this worker's number, it closes its own and waits."""
        if index < self._pace.connections:
            return connection
        if connection is not None:
            connection.close()
        with self._changed:
            while (index >= self._pace.connections and not self.stop.is_set()
                   and not (self._read_all and self._pending == 0)):
                self._changed.wait(1.0)
        return None

    def _one(self, connection: Connection | None, job: _Pending) -> tuple[Connection | None, _Pending | None]:
        """Send one message; returns the connection to go on with and, when one was ready, the next job."""
        recipient = job.recipient
        built = job.built or self.factory.build(recipient)
        # Checked again after the wait: once the run is stopping (say the journal cannot be
        # written, or a signal came), no new message goes out.
        if not self._limiter.wait(self.stop) or self.stop.is_set():
            self._requeue_lost()
            return connection, None
        job.attempts += 1
        job.first = job.first or time.monotonic()
        if connection is None:
            try:
                connection = self.transport.connect()
            except ConnectFailed as exc:
                self._outcome(job, Outcome(0, exc.message, Verdict.TEMPORARY, True), built.message_id)
                return None, None
            if self.stop.is_set():  # the stop came while connecting
                self._requeue_lost()
                return connection, None
        self._pace.went_out()
        try:
            built = self._for(connection, job, built)
        except NeedsSmtpUtf8 as exc:
            self._outcome(job, _not_sendable(exc), built.message_id)
            return connection, None
        if isinstance(connection, SmtpConnection) and connection.pipelining:
            return self._pipelined(connection, job, built)
        finish = connection.start(built.sender or self.factory.sender, recipient.email, built.data, eight_bit=built.eight_bit,
                                  utf8=built.utf8, abandon=self.abandon)
        # While the server reads this message, the next one is made ready.
        upcoming = self._next(wait=False)
        if upcoming is not None:
            upcoming.built = self.factory.build(upcoming.recipient)
        outcome = finish()
        self._outcome(job, outcome, built.message_id)
        return (None if outcome.closed else connection), upcoming

    def _for(self, connection: Connection, job: _Pending, built: Built) -> Built:
        """The message as this connection can take it. A server without SMTPUTF8 cannot take
        one that needs it: NeedsSmtpUtf8 for the recipient's address, ConfigError (which stops
        the run) for the newsletter's own."""
        if (built.eight_bit and not connection.eight_bit) or (self._utf8(built, job) and not connection.smtputf8):
            # A server without 8BITMIME gets the same message as quoted-printable.
            built = self.factory.build(job.recipient, eight_bit=built.eight_bit and connection.eight_bit,
                                       utf8=connection.smtputf8)
        job.built = built
        return built

    def _utf8(self, built: Built, job: _Pending) -> bool:
        return built.utf8 or not job.recipient.email.isascii() or not (built.sender or self.factory.sender).isascii()

    def _envelope(self, built: Built, job: _Pending) -> Envelope:
        return Envelope(built.sender or self.factory.sender, job.recipient.email, built.eight_bit,
                        self._utf8(built, job))

    def _pipelined(self, connection: SmtpConnection, job: _Pending,
                   built: Built) -> tuple[Connection | None, _Pending | None]:
        """Send on a session with PIPELINING: each message's content goes out with the next
        message's MAIL, RCPT and DATA behind its final dot, so a steady send waits for the
        server once per message. Returns like ``_one``."""
        refused = connection.begin(self._envelope(built, job), self.abandon)
        if refused is not None:
            self._outcome(job, refused, built.message_id)
            return (None if refused.closed else connection), None
        ahead: _Pending | None = None  # taken and made, its commands not yet written
        while True:
            # The server waits for job's content. The next message rides along when one is
            # ready and the pace allows it now (or within CHAIN_WAIT: holding the content back
            # that long costs less than a round trip of its own).
            upcoming, ahead = ahead or self._next(wait=False), None
            chained: Envelope | None = None
            if upcoming is not None:
                made = upcoming.built or self.factory.build(upcoming.recipient)
                try:
                    made = self._for(connection, upcoming, made)
                except NeedsSmtpUtf8 as exc:
                    upcoming.attempts += 1
                    self._outcome(upcoming, _not_sendable(exc), made.message_id)
                    upcoming = None
            if upcoming is not None and not self.stop.is_set() \
                    and self._limiter.wait(self.stop, within=CHAIN_WAIT) and not self.stop.is_set():
                upcoming.attempts += 1
                upcoming.first = upcoming.first or time.monotonic()
                self._pace.went_out()
                chained = self._envelope(made, upcoming)
            replies = connection.content(built.data, chained, self.abandon)
            if chained is not None:
                # While the server reads, the message after is made ready.
                ahead = self._next(wait=False)
                if ahead is not None:
                    ahead.built = self.factory.build(ahead.recipient)
            outcome, answer = replies()
            self._outcome(job, outcome, built.message_id)
            if chained is None or upcoming is None:
                return (None if outcome.closed else connection), upcoming
            if answer is not None:
                # Its commands were refused, or never answered: its outcome, like any other.
                assert upcoming.built is not None
                self._outcome(upcoming, answer, upcoming.built.message_id)
                return (None if answer.closed else connection), ahead
            if self.stop.is_set():
                # The server waits for content that the stopping run no longer sends: hanging up
                # drops the message there, and nothing is journaled, like any message not begun.
                connection.close(quick=True)
                self._requeue_lost()
                return None, ahead
            job = upcoming
            assert job.built is not None
            built = job.built

    def _requeue_lost(self) -> None:
        # Stopped before the message went out (or while it was not yet complete): the server
        # has nothing, so nothing is journaled and the next run sends it.
        with self._changed:
            self._pending -= 1
            self._changed.notify_all()

    def _outcome(self, job: _Pending, outcome: Outcome, message_id: str) -> None:
        recipient, attempts = job.recipient, job.attempts
        if outcome.verdict is Verdict.ACCEPTED:
            self._pace.accepted()
            self._final(job, SENT, outcome.reply, message_id)
        elif outcome.verdict is Verdict.PERMANENT:
            self._final(job, FAILED, outcome.reply, message_id)
        elif outcome.verdict is Verdict.ABANDONED:
            self._requeue_lost()
        else:
            if asks_to_slow_down(outcome):
                self._pace.slow_down(outcome.reply)
            uncertain = outcome.verdict is Verdict.UNCERTAIN
            if uncertain:
                job.uncertain += 1
                if self.journal is not None:
                    # Written at once: whatever happens next, the journal says this one may have arrived.
                    self.journal.record(recipient.email, UNCERTAIN, outcome.reply, message_id=message_id,
                                        attempts=attempts)
            opts = self.options
            delay = min(opts.backoff_base * 2 ** (attempts - 1), opts.backoff_max)
            delay *= random.uniform(0.8, 1.2)  # spread retries so connections do not move in step
            elapsed = time.monotonic() - job.first
            if (attempts > opts.retries or elapsed + delay > opts.retry_max_seconds or self.stop.is_set()
                    or (uncertain and not (opts.retry_uncertain and job.uncertain == 1))):
                self._final(job, UNCERTAIN if uncertain else DEFERRED, outcome.reply, message_id,
                            journaled=uncertain)
                return
            with self._changed:
                heapq.heappush(self._retries, _Retry(time.monotonic() + delay, next(self._seq), recipient,
                                                     attempts, job.first, job.uncertain))
                self._changed.notify_all()

    def _final(self, job: _Pending, status: str, reply: str, message_id: str, *, journaled: bool = False) -> None:
        recipient, attempts = job.recipient, job.attempts
        # Journal first: a result that cannot be written stops the run before it is counted.
        if self.journal is not None and not journaled:
            self.journal.record(recipient.email, status, reply, message_id=message_id, attempts=attempts)
        result = Result(recipient.email, status, reply, attempts)
        with self._changed:
            self._pending -= 1
            if self._pending == 0:
                self._changed.notify_all()
            s = self.summary
            if status == SENT:
                s.sent += 1
            elif status == UNCERTAIN:
                s.uncertain += 1
            else:
                if status == FAILED:
                    s.failed += 1
                else:
                    s.deferred += 1
                s.failures.append(result)
            if job.uncertain > self.uncertain_before.get(recipient.email.lower(), 0):
                s.uncertain_results.append(result)
        if self.progress is not None:
            self.progress(result)


def _not_sendable(exc: NeedsSmtpUtf8) -> Outcome:
    return Outcome(0, f"not sent: {exc.message}", Verdict.PERMANENT)


@contextlib.contextmanager
def stop_on_signals(sender: Sender) -> Iterator[None]:
    """While sending, SIGINT, SIGTERM and SIGHUP ask ``sender`` to stop instead of ending the process.

    Only the main thread can set signal handlers; elsewhere this does nothing
    (Ctrl-C still reaches the run as a KeyboardInterrupt in the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        sender.request_stop(signum)

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
        # A signal that came as the run ended still says how the run ended (its exit status).
        sender._take_requests()


def dry_run(factory: MessageFactory, recipients: Iterable[Recipient]) -> tuple[int, int]:
    """Build every message without sending: (messages, total bytes)."""
    count = size = 0
    for recipient in recipients:
        size += len(factory.build(recipient).data)
        count += 1
    return count, size
