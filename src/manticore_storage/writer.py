"""The write-behind writer: a background thread that group-commits queued units of events.

Producers (book threads) call :meth:`WriteBehindWriter.submit`; it blocks while the queue holds
``max_pending_units`` units or more (back-pressure instead of unbounded memory). The thread takes
what is queued, up to ``max_batch_events``, and writes it in one transaction, so a crash leaves the
database at a unit boundary: a prefix of the event stream made of whole commands. Transient database
errors (a lost connection, a locked database) are retried with exponential backoff on a fresh
connection, for as long as it takes; any other error is isolated to the unit that causes it, whose
events are then recorded in the failed-events table and skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from .apply import UnitTuple, unit_size

__all__ = [
    "DEFAULT_MAX_BATCH_EVENTS",
    "PROCESS_MAX_BATCH_EVENTS",
    "WriteBehindWriter",
    "WriteStats",
    "is_transient",
    "write_with_retry",
]

_LOG = logging.getLogger("manticore_storage.writer")

#: Writes ``units`` in one transaction; raises on failure (nothing written then).
WriteUnits = Callable[[list[UnitTuple]], None]
#: Records a unit that cannot be written, with the error.
RecordFailure = Callable[[UnitTuple, BaseException], None]


#: A producer that submits at least this many units within ``_LINGER`` seconds is busy.
_BUSY_UNITS = 40
_LINGER = 0.01
#: The writer stops gathering a batch early once this many units are queued.
_GATHER_UNITS = 2_000
#: The default bound of one transaction, in events (:func:`~.apply.unit_size`: a one-order command's
#: unit counts 1). Building a transaction's rows is Python work that holds the GIL (in the serving
#: process when the writer is a thread; its hand-off to a writer process likewise): 250 one-order units
#: are ~2.5 ms of it on the development machine, where 20,000 (the earlier bound) held the event loop
#: off for 20-30 ms, in 5 ms slices, each time a steady load's 0.5 s batch was written.
DEFAULT_MAX_BATCH_EVENTS = 250
#: The bound ``StorageManager`` gives a writer whose transactions run in the writer process (off the
#: serving process's GIL; its thread here only hands batches over): the earlier bound, since smaller
#: batches there cost more CPU per command (frames, round trips, commits) and session 25 measured no
#: gain for it.
PROCESS_MAX_BATCH_EVENTS = 20_000
#: How long the writer sleeps between two transactions while more units are queued: it gives the GIL
#: to a thread that wants it (the event loop) instead of taking it back at once.
_BETWEEN_BATCHES = 0.0005

#: SQLite raises OperationalError for missing tables too; only these messages mean "try again later".
_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o", "unable to open")
#: The MySQL/MariaDB error codes that mean "try again later". The drivers raise OperationalError for
#: every server error without a class of its own (an unknown column too), so the code decides.
_MYSQL_TRANSIENT = frozenset(
    {
        1040,  # too many connections
        1047,  # unknown command: a Galera node that is not ready
        1053,  # server shutdown in progress
        1077,  # normal shutdown
        1078,  # got signal, aborting
        1079,  # shutdown complete
        1080,  # forcing close of a thread
        1152,  # aborted connection
        1158,  # network read error
        1159,  # network read timeout
        1160,  # network write error
        1161,  # network write timeout
        1205,  # lock wait timeout
        1213,  # deadlock (rolled back)
        1927,  # MariaDB: connection was killed
        2002,  # cannot connect through the socket
        2003,  # cannot connect to the server
        2006,  # server has gone away
        2013,  # lost connection during a query
        2055,  # lost connection (extended)
        4031,  # MySQL: the server closed an idle connection
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means "try again later" (connection lost, server gone, database locked).

    A missing table or a syntax error is not transient, even where the driver calls it operational.
    MySQL/MariaDB errors are judged by their code (``_MYSQL_TRANSIENT``).
    """
    if isinstance(exc, DisconnectionError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError) and type(exc.orig).__module__.startswith(("pymysql", "MySQLdb")):
        args: tuple[Any, ...] = getattr(exc.orig, "args", ())
        return bool(args) and args[0] in _MYSQL_TRANSIENT
    if isinstance(exc, OperationalError):
        message = str(exc.orig).lower()
        if "no such table" in message or "syntax error" in message:
            return False
        module = type(exc.orig).__module__
        return not module.startswith("sqlite3") or any(word in message for word in _SQLITE_TRANSIENT)
    return False


class WriteBehindWriter:
    """A bounded queue of units and the thread that writes them.

    Args:
        write: writes a list of units in one transaction.
        record_failure: called for a unit that fails on its own with a non-transient error.
        max_pending_units: queue bound, in units (one unit holds one command's changes).
        max_batch_events: the most events one transaction takes (a unit larger than that is written
            alone). More queued than one transaction takes is written in several, back to back, with a
            pause of ``_BETWEEN_BATCHES`` between them in which other threads can take the GIL.
        backoff: first retry delay in seconds (doubling up to ``max_backoff``).
        max_delay: the longest the writer holds off while a producer is busy (see below).
        gather_delay: how long the writer lets a batch gather after its first unit arrived (capped
            by ``max_delay``): under a steady trickle of commands (an HTTP server's), one transaction
            then takes many commands instead of one or two, which costs far less CPU per command.
            It bounds how much later than the journal the tables show a command when idle.

    The writer first lets units gather: it takes nothing until the oldest queued unit is
    ``gather_delay`` seconds old, ``_GATHER_UNITS`` units are queued, or someone flushes or closes.
    Then it yields to a busy producer: while units keep arriving quickly (at least
    ``_BUSY_UNITS`` within ``_LINGER`` seconds), it waits instead of competing for the GIL with the
    book, until the producer pauses, ``max_delay`` seconds have passed since the oldest queued unit
    arrived, half of ``max_pending_units`` is queued, or someone flushes or closes. A burst is then
    absorbed at the book's own speed and written right after it.

    Both waits also end once a whole transaction is queued (``max_batch_events`` units: each holds
    at least one event): under a steady load the writer then writes one transaction at a time as
    the units arrive, instead of holding off until ``max_delay`` and writing the backlog back to back
    (session 28: at ~5,000 commands/s a thread writer held the GIL for ~25 ms of every 0.5 s, in
    2.5 ms transactions 0.5 ms apart, and the server's requests queued behind it). A transaction
    that leaves less than a whole one queued restarts the wait of what remains (its age is counted
    from that transaction): the storage lag of a command stays within ``max_delay`` of the
    transaction before it.
    """

    def __init__(
        self,
        write: WriteUnits,
        record_failure: RecordFailure,
        *,
        name: str = "manticore-storage-writer",
        max_pending_units: int = 100_000,
        max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS,
        backoff: float = 0.05,
        max_backoff: float = 2.0,
        max_delay: float = 0.5,
        gather_delay: float = 0.1,
    ) -> None:
        self._write = write
        self._record_failure = record_failure
        self._max_pending = max_pending_units
        self._max_batch = max_batch_events
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_delay = max_delay
        self._gather = min(gather_delay, max_delay)
        # Gathering also ends at a whole transaction (each unit holds at least one event).
        self._gather_units = max(1, min(_GATHER_UNITS, max_pending_units // 2, max_batch_events))
        self._queue: deque[UnitTuple] = deque()
        # Producers only append (deque appends are atomic) and the writer thread alone takes, so
        # submitting needs no lock: locks cost several hundred ns per command on these machines.
        self._oldest = 0.0  # when the oldest queued unit arrived
        self._idle = False  # the writer may be waiting for work: a submit must wake it
        self._flushing = 0  # callers waiting in flush()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._closing = False
        self._abandon = False
        self.retries = 0
        self.batches = 0
        self.events_written = 0
        self.cpu_seconds = 0.0  # the writer thread's CPU time spent writing batches
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ producers

    def submit(self, unit: UnitTuple) -> None:
        """Queue ``unit``; block while the queue is full. Raises RuntimeError after :meth:`close`.

        The common case takes no lock: a length check, a deque append and, only when the writer
        sleeps, a wake-up. A unit submitted while :meth:`close` runs may be dropped.
        """
        queue = self._queue
        if len(queue) >= self._max_pending or self._closing:
            self._wait_for_room()
        if not queue:
            self._oldest = time.monotonic()
        queue.append(unit)
        if self._idle:
            with self._cond:
                self._cond.notify_all()

    def submit_many(self, units: list[UnitTuple]) -> None:
        """Queue ``units`` in order, like :meth:`submit` of each (one call for a round of commands).

        Blocks while the queue is full, then queues them all: the queue may exceed its bound by at
        most one call's units. Raises RuntimeError after :meth:`close`."""
        if not units:
            return
        queue = self._queue
        if len(queue) >= self._max_pending or self._closing:
            self._wait_for_room()
        if not queue:
            self._oldest = time.monotonic()
        queue.extend(units)
        if self._idle:
            with self._cond:
                self._cond.notify_all()

    def _wait_for_room(self) -> None:
        with self._cond:
            while len(self._queue) >= self._max_pending and not self._closing:
                self._cond.notify_all()
                self._cond.wait()
            if self._closing:
                raise RuntimeError("the storage writer is closed")

    @property
    def pending_events(self) -> int:
        """Events queued or being written (the writer's count: captured records plus events).

        Counts the queue from a copy taken without the writer's lock (O(queued units)), so a status
        request never holds up the writer; while the writer takes a batch it may miss one unit."""
        queued = tuple(self._queue)  # one C call: atomic under the GIL
        return sum(map(unit_size, queued)) + self._in_flight

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is written; return False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queue or self._in_flight:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write what is queued (waiting up to ``timeout``), then stop; return whether all was written."""
        done = self.flush(timeout)
        with self._cond:
            self._closing = True
            if not done:
                self._abandon = True
            self._cond.notify_all()
        self._thread.join(5.0 if not done else None)
        return done

    @property
    def abandoning(self) -> bool:
        """Whether :meth:`close` timed out and the writer is giving up on what it holds."""
        return self._abandon

    # ------------------------------------------------------------------ the thread

    def _take(self) -> list[UnitTuple] | None:
        with self._cond:
            while True:
                self._idle = True  # before looking at the queue: a submit after the look sees it
                if self._queue:
                    break
                if self._closing:
                    self._idle = False
                    return None
                self._cond.wait()
            self._idle = False
            queue = self._queue
            limit = self._max_batch
            while not self._closing and not self._flushing and len(queue) < self._gather_units:
                remaining = self._oldest + self._gather - time.monotonic()
                if remaining <= 0:
                    break
                # A flush or close wakes it; submits do not (not idle): it looks at the queue again
                # every _LINGER, so that a whole transaction queued meanwhile is taken then.
                self._cond.wait(min(remaining, _LINGER))
            while len(queue) < limit and self._producer_busy():
                seen = len(queue)  # only this thread takes, so the growth is what arrived
                self._cond.wait(_LINGER)
                if len(queue) - seen < _BUSY_UNITS:
                    break
            taken: list[UnitTuple] = []
            self._in_flight = in_flight = 0  # counted unit by unit, so pending_events (lock-free) stays close
            while queue:
                unit = queue[0]
                events = unit[1]  # unit_size, inlined
                size = 1 if events.__class__ is int else len(events) + len(unit[6])
                if taken and in_flight + size > limit:
                    break
                queue.popleft()
                taken.append(unit)
                in_flight += size
                self._in_flight = in_flight
            if 0 < len(queue) < limit:
                self._oldest = time.monotonic()  # the remainder waits again, from this transaction on
            self._cond.notify_all()
            return taken

    def _producer_busy(self) -> bool:
        """Whether to hold off (called with the lock held and units queued)."""
        return (
            not self._closing
            and not self._flushing
            and len(self._queue) < self._max_pending // 2
            and time.monotonic() - self._oldest < self._max_delay
        )

    def _done(self) -> None:
        with self._cond:
            self.events_written += self._in_flight  # the batch's events, counted by _take
            self._in_flight = 0
            self.batches += 1
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            units = self._take()
            if units is None:
                return
            started = time.thread_time()
            self._write_with_retry(units)
            self.cpu_seconds += time.thread_time() - started
            self._done()
            if self._queue and not self._closing:
                time.sleep(_BETWEEN_BATCHES)

    def _write_with_retry(self, units: list[UnitTuple]) -> None:
        write_with_retry(
            self._write,
            self._record_failure,
            units,
            self,
            backoff=self._backoff,
            max_backoff=self._max_backoff,
            abandoned=lambda: self._abandon,
        )


class WriteStats(Protocol):
    """Where :func:`write_with_retry` counts retries and keeps the last error."""

    retries: int
    last_error: str | None


def write_with_retry(
    write: WriteUnits,
    record_failure: RecordFailure,
    units: list[UnitTuple],
    stats: WriteStats,
    *,
    backoff: float = 0.05,
    max_backoff: float = 2.0,
    abandoned: Callable[[], bool] = lambda: False,
) -> None:
    """Write ``units`` in one transaction, the way the write-behind writer does, in whichever process.

    A transient error (:func:`is_transient`) is retried with exponential backoff (from ``backoff``,
    doubling up to ``max_backoff``) for as long as it takes, unless ``abandoned()`` says to give up
    (the units are then left unwritten, and logged). Any other error is isolated to the unit that
    causes it: a batch is retried unit by unit, and a unit that fails on its own is passed to
    ``record_failure`` (whose own failure is logged) and skipped. Never raises ``Exception``.
    """
    delay = backoff
    while True:
        try:
            write(units)
            return
        except Exception as exc:
            stats.last_error = f"{type(exc).__name__}: {exc}"
            if is_transient(exc):
                if abandoned():
                    _LOG.error("storage writer gave up on %d unwritten units: %s", len(units), exc)
                    return
                stats.retries += 1
                _LOG.warning("storage write failed (%s); retrying in %.2fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, max_backoff)
                continue
            if len(units) > 1:
                for unit in units:  # isolate the unit that fails
                    write_with_retry(
                        write,
                        record_failure,
                        [unit],
                        stats,
                        backoff=backoff,
                        max_backoff=max_backoff,
                        abandoned=abandoned,
                    )
                return
            _LOG.error("storage write failed for good; recording the events as failed: %s", exc)
            try:
                record_failure(units[0], exc)
            except Exception:
                _LOG.exception("could not record failed events either")
            return
