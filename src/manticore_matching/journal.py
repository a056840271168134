"""The command journal: an append-only file of accepted commands, made durable by group commit.

Every command that changed the exchange is appended as one line ``<crc32 hex> <json>\\n`` and gets a
position (1, 2, 3, ...). The line is encoded (orjson) by :meth:`Journal.append`, in the caller's thread,
so the record may change afterwards and the writer thread only joins bytes. A background thread writes
whatever has been appended since its last round in one synchronous write (``O_DSYNC``; elsewhere a
write and ``fsync``) for the whole batch (group commit), then advances :attr:`Journal.durable`. By
default the next round starts as soon as the last one ends; with ``commit_interval`` > 0 rounds begin
at least that many seconds apart (PostgreSQL's
``commit_delay`` idea): under a steady flow of commands the writer gathers the records of that
interval into one round, which on a disk with an IOPS throttle (a cloud volume's token bucket) can
keep the rate of ``fsync`` under the throttle, whose stalls of tens of milliseconds would otherwise
hold every command in flight. The interval applies only while commands arrive concurrently: a round
waits for it only if records were already waiting when the last round ended (appended during its
write); otherwise (a quiet interval, or a client that sends its next command once the last is
answered) the next record is written at once.
A client is acknowledged only when its command's position is durable, so an acknowledged command
survives ``kill -9`` and power loss (with ``fsync=True``).

The journal lives in segment files ``journal-<first position>.log`` under one directory. Once a
checkpoint at position ``p`` is durably on disk, :meth:`Journal.rotate` starts a new segment at the next
record written (so that the current one can go at a later checkpoint) and deletes every segment whose
records are all ``<= p``. Records after ``p`` may have been appended meanwhile (the exchange writes its
automatic checkpoints in the background while commands go on): they stay, and a replay from the
checkpoint skips the records ``<= p`` that share a segment with them.

Recovery (:meth:`Journal.read`): a last line that is incomplete or fails its checksum is the tail of a
batch whose ``fsync`` never finished; it was never acknowledged and is cut off. A bad line anywhere
else is corruption and raises :class:`JournalCorrupt`.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson

__all__ = [
    "DEFAULT_COMMIT_INTERVAL",
    "SERVING_COMMIT_INTERVAL",
    "CommandLog",
    "Journal",
    "JournalClosed",
    "JournalCorrupt",
]

_PREFIX = "journal-"
_SUFFIX = ".log"

#: Seconds between the starts of two group-commit rounds of a :class:`Journal`, by default: none (the
#: next round starts when the last ends). 1 ms made no measurable difference to the server's p99 on
#: this project's machines, whose journal ran ~1,000 rounds/s at half load (docs/performance.md,
#: "Session 20: the commit interval measured"); it is an operator's option for a throttled disk.
DEFAULT_COMMIT_INTERVAL = 0.0
#: ``manticore serve``'s commit interval (its ``--journal-commit-interval`` default): at moderate load
#: it halves the rounds, and with them the serving process's CPU per request and the p99 latency
#: (docs/performance.md, "Session 23: the commit interval while commands arrive concurrently").
SERVING_COMMIT_INTERVAL = 0.002


class JournalCorrupt(Exception):
    """A journal line other than the last one is damaged: the journal cannot be trusted."""


class JournalClosed(RuntimeError):
    """The journal is closed, or its writer failed; no command can be acknowledged."""


class CommandLog(Protocol):
    """What :class:`~manticore_matching.exchange.Exchange` needs of its command log.

    Implemented by the file :class:`Journal` (the default) and by
    ``manticore_cluster.log.JetStreamJournal`` (a JetStream stream). The contract, for any backend:

    * Positions are 1, 2, 3, ... with no gaps; :meth:`append` stores the position in ``record["n"]``.
    * Life cycle: :meth:`read` (recovery, once, before :meth:`start`), :meth:`start`, then
      :meth:`append` / :meth:`wait` from the exchange's threads, :meth:`close` at the end.
    * ``on_durable`` (given to the log's factory) is called from the log's own thread with the new
      :attr:`durable` position each time it advances, in increasing order.
    * A log that can no longer make records durable turns :attr:`healthy` False; :meth:`wait` and
      :meth:`append` then raise :class:`JournalClosed` (or a subclass).
    """

    batches: int

    def read(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Recovery before :meth:`start`: yield every record with position ``> after``, oldest first;
        afterwards :attr:`appended` and :attr:`durable` are the last position found (at least ``after``).
        JournalCorrupt if positions do not rise by one."""
        ...

    def durable_records(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """The durable records with position ``> after``, oldest first, while the log runs."""
        ...

    def start(self) -> None:
        """Start accepting appends (after :meth:`read`)."""
        ...

    @property
    def healthy(self) -> bool:
        """False once the log has failed (or was fenced off) or is closed."""
        ...

    @property
    def appended(self) -> int:
        """Position of the last appended record."""
        ...

    @property
    def durable(self) -> int:
        """Position up to which every record is durable."""
        ...

    def append(self, record: dict[str, Any]) -> int:
        """Give ``record`` the next position (``record["n"]``), queue it, return the position without
        waiting. TypeError (nothing queued) if it is not JSON-serialisable; JournalClosed when closed."""
        ...

    def wait(self, position: int, timeout: float | None = None) -> bool:
        """Block until ``position`` is durable (True) or ``timeout`` seconds pass (False); JournalClosed
        if the log failed."""
        ...

    def record_at(self, position: int) -> dict[str, Any] | None:
        """The record at ``position``, or None if the log holds none there (safe before :meth:`read`)."""
        ...

    def rotate(self, checkpoint: int) -> None:
        """A checkpoint at ``checkpoint`` (``<=`` :attr:`durable`) is durably on disk: drop the records it
        makes unnecessary, i.e. only records ``<= checkpoint`` (a no-op where retention is the log's own
        business). Newer records may have been appended meanwhile and may be appended concurrently
        (from another thread than the appender's); they are kept. Nothing happens once the log is
        closed, and :meth:`close` waits for a rotation in progress."""
        ...

    def close(self, timeout: float | None = 30.0) -> None:
        """Make what is pending durable if possible, then stop."""
        ...


def _segment_name(first: int) -> str:
    return f"{_PREFIX}{first:016d}{_SUFFIX}"


def _first_position(path: Path) -> int:
    """The position of the first record of the segment file ``path`` (from its name)."""
    return int(path.name[len(_PREFIX) : -len(_SUFFIX)])


#: Opened with this flag, a segment's ``write`` returns only once the data and the file's size are on
#: stable storage (as ``write`` + ``fdatasync``): one system call per round instead of two, so the
#: writer thread gives up and takes back the GIL once, not twice (0 where the platform has none:
#: ``os.fsync`` after the write then).
_O_DSYNC: int = getattr(os, "O_DSYNC", 0)

_dumps = orjson.dumps
_loads = orjson.loads
_crc32 = zlib.crc32


def _encode(record: dict[str, Any]) -> bytes:
    """One journal line: ``<crc32 of the JSON, 8 hex digits> <JSON>\\n`` (compact JSON, keys in the
    record's order). What orjson refuses but JSON can hold (a lone surrogate in a string, an integer
    beyond 64 bits) is written by the standard library, as before; TypeError for a value JSON cannot
    hold."""
    try:
        body = _dumps(record)
    except TypeError:
        body = json.dumps(record, separators=(",", ":")).encode()
    return b"%08x %b\n" % (_crc32(body), body)


def _decode(line: bytes) -> dict[str, Any] | None:
    """The record of one complete line, or None if the line is damaged. Reads every line the journal
    ever wrote (older ones: ``json.dumps`` with sorted keys, which orjson reads too, except the
    non-standard ``NaN``/``Infinity`` that only the standard library reads)."""
    if len(line) < 10 or line[8] != 0x20 or line[-1] != 0x0A:
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != _crc32(body):
            return None
        try:
            record = _loads(body)
        except ValueError:
            record = json.loads(body)
    except ValueError:
        return None
    return record if type(record) is dict and type(record.get("n")) is int else None


def decoded_keys(*names: str) -> tuple[str, ...]:
    """``names`` (distinct), as the very string objects that a decoded journal line holds as those keys.

    orjson keeps one string object per short key it has decoded (its key cache) and puts that object in
    every dict it decodes later with the key. A dict lookup with the very object the dict holds finds it
    without comparing characters: about 160 instructions fewer per lookup (CPython 3.11, a replayed
    ``place`` record's fields), and a replay looks up two dozen fields of every record. The objects are
    equal to ``names``, so a lookup with them finds what a lookup with the names finds in any dict (in
    a record built otherwise, or once the cache has replaced a key's object, by comparing characters,
    as any lookup does)."""
    keys = tuple(_loads(_dumps(dict.fromkeys(names, 0))))
    if keys != names:
        raise ValueError(f"decoded_keys: the names must be distinct strings: {names!r}")
    return keys


#: A record's position key, as decoded (:func:`decoded_keys`).
(_N,) = decoded_keys("n")


class Journal:
    """Append-only, group-committed command log.

    Args:
        directory: where the segment files live (created if missing).
        fsync: make each batch durable on disk before it counts (default): the segments are written
            with ``O_DSYNC`` (the write returns once the data is on stable storage), or with
            ``os.fsync`` after the write where the platform has no ``O_DSYNC``. Without it a batch is
            durable against a crash of the process but not of the machine.
        on_durable: called from the writer thread with the new durable position after each batch.
        commit_interval: seconds between the starts of two rounds at least (>= 0; 0: the next round
            starts as soon as the last one ends). A round that would start sooner waits until then,
            gathering what is appended meanwhile, but only if records were already waiting when the
            last round ended (otherwise it starts at once: no wait for a client that sends one command
            at a time, or after a quiet interval); :meth:`close` ends the wait. What a round makes
            durable is acknowledged only after its synced write, as always.

    Use: :meth:`read` the existing records once, then :meth:`start`, then :meth:`append` (returns the
    position, does not wait) and :meth:`wait` (blocks until a position is durable).
    """

    def __init__(
        self,
        directory: Path,
        *,
        fsync: bool = True,
        on_durable: Callable[[int], None] | None = None,
        commit_interval: float = DEFAULT_COMMIT_INTERVAL,
    ) -> None:
        if not commit_interval >= 0:
            raise ValueError(f"commit_interval must be >= 0 seconds, not {commit_interval!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        #: Segments are opened with ``O_DSYNC``: a write is durable when it returns.
        self._write_syncs = fsync and _O_DSYNC != 0
        self._on_durable = on_durable
        self.commit_interval = float(commit_interval)
        # Hand-off to the writer without a lock the writer takes: appenders (serialised by
        # ``_append_lock``) push encoded lines on ``_pending`` (a deque: atomic appends and pops); the
        # writer drains it. The writer sleeps on ``_work`` only after announcing it in
        # ``_writer_idle`` and finding ``_pending`` empty, and an appender that sees the flag set
        # takes ``_work``'s lock to notify it, so no line waits for a later append.
        self._append_lock = threading.Lock()
        lock = threading.Lock()
        #: The writer waits on ``_work`` for lines; :meth:`wait` waits on ``_done`` for durability.
        self._work = threading.Condition(lock)
        self._done = threading.Condition(lock)
        self._pending: deque[bytes] = deque()
        self._writer_idle = False
        # Plain attributes, not properties (read on every command: a property is a Python call each
        # time); only the journal sets them.
        #: Position of the last appended record.
        self.appended = 0
        #: Position up to which every record is on disk.
        self.durable = 0
        #: False once the writer has failed or the journal is closed.
        self.healthy = True
        self._file: Any = None
        #: Position of the first record of the segment ``_file`` appends to.
        self._file_first = 0
        #: Held by the writer while it writes a batch and advances ``durable``, and by :meth:`rotate`
        #: while it switches segments: a segment switch falls between two batches.
        self._file_lock = threading.Lock()
        #: The next segment (its first position, its open file), created by :meth:`rotate`; the
        #: writer switches to it in the round that reaches that position (set and taken under
        #: ``_file_lock``).
        self._switch: tuple[int, Any] | None = None
        #: How far beyond the next position :meth:`rotate` names the next segment (learnt from the
        #: records appended during the last rotation's file creation).
        self._switch_ahead = 0
        #: Held by :meth:`rotate` throughout and by :meth:`close`: no segment is deleted once closed.
        self._rotate_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._error: BaseException | None = None
        self.batches = 0
        self.records_written = 0

    # ------------------------------------------------------------------ recovery

    def segments(self) -> list[Path]:
        """The segment files, oldest first."""
        return sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}"))

    def read(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Yield every record with position ``> after``, oldest first, repairing a torn tail.

        Positions must rise by exactly one; a gap or a damaged line before the last raises
        :class:`JournalCorrupt`. Afterwards :attr:`appended` and :attr:`durable` are the last
        position found (at least ``after``). This is recovery: it may cut the last segment, so it
        raises RuntimeError once :meth:`start` has run (use :meth:`durable_records` on a running
        journal).
        """
        if self._thread is not None or self._file is not None:
            raise RuntimeError("read() recovers a journal before start(); use durable_records() now")
        last = after
        segments = self.segments()
        # The segment whose tail may be torn: the newest, or the newest with lines if only empty ones
        # follow it (a segment :meth:`rotate` created before the writer reached it).
        tail = len(segments) - 1
        while tail > 0 and segments[tail].stat().st_size == 0:
            tail -= 1
        for index, path in enumerate(segments):
            final_segment = index >= tail
            torn = False
            with path.open("rb") as handle:
                lines = handle.readlines()
            for number, line in enumerate(lines):
                # _decode's common case written out (it runs for every replayed record): a line that
                # is framed, whose checksum matches and that orjson reads as a record with a position;
                # any other line goes to _decode, which decides exactly as before.
                body = line[9:-1]
                try:
                    record = (
                        _loads(body)
                        if line[8] == 0x20 and line[-1] == 0x0A and int(line[:8], 16) == _crc32(body)
                        else None
                    )
                except (IndexError, ValueError):
                    record = None
                if type(record) is not dict or type(position := record.get(_N)) is not int:
                    record = _decode(line)
                    if record is None:
                        if final_segment and number == len(lines) - 1:
                            torn = True
                            break  # a torn tail: never acknowledged
                        raise JournalCorrupt(f"{path.name}: line {number + 1} is damaged")
                    position = record["n"]
                if position != last + 1:  # one test for the next position (every line but a skipped one)
                    if position <= last:
                        if position <= after:
                            continue
                        raise JournalCorrupt(f"{path.name}: position {position} repeats")
                    raise JournalCorrupt(f"{path.name}: position {last + 1} is missing")
                last = position
                yield record
            # The intact lines' bytes: every line's but a torn last one's (counted here, not per line).
            good_bytes = sum(map(len, lines[:-1] if torn else lines))
            if final_segment and good_bytes < path.stat().st_size:
                with path.open("r+b") as handle:
                    handle.truncate(good_bytes)
                    handle.flush()
                    os.fsync(handle.fileno())
        self.appended = self.durable = last

    def record_at(self, position: int) -> dict[str, Any] | None:
        """The intact record at ``position``, or None if the journal has none there (read-only: safe
        before :meth:`read`). Reads only the segment that would hold it."""
        if position < 1:
            return None
        holder: Path | None = None
        for path in self.segments():
            if _first_position(path) > position:
                break
            holder = path
        if holder is None:
            return None
        first = _first_position(holder)
        with holder.open("rb") as handle:
            lines = handle.readlines()
        index = position - first
        if 0 <= index < len(lines):
            record = _decode(lines[index])
            if record is not None and record["n"] == position:
                return record
        for line in lines:  # not where positions rising by one put it: look at every line
            record = _decode(line)
            if record is not None and record["n"] == position:
                return record
        return None

    def durable_records(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Yield the durable records with position ``> after``, oldest first, without changing anything
        (safe while the writer runs: a line past :attr:`durable` may still be being written)."""
        durable = self.durable
        for path in self.segments():
            with path.open("rb") as handle:
                for line in handle:
                    record = _decode(line)
                    if record is None or record["n"] > durable:
                        return
                    if record["n"] > after:
                        yield record

    # ------------------------------------------------------------------ writing

    def start(self) -> None:
        """Open the newest segment for appending (a new one if none) and start the writer thread."""
        segments = self.segments()
        # An empty newest segment that does not begin at the next position was created by a rotation
        # whose first record was never written (a crash): it goes, its records go to the last one.
        while (
            segments
            and segments[-1].stat().st_size == 0
            and _first_position(segments[-1]) != self.appended + 1
        ):
            segments.pop().unlink()
        path = segments[-1] if segments else self.directory / _segment_name(self.appended + 1)
        self._file = self._open_segment(path)
        self._file_first = _first_position(path)
        self._sync_directory()
        self._thread = threading.Thread(target=self._run, name="manticore-journal", daemon=True)
        self._thread.start()

    @property
    def _failure(self) -> BaseException | None:
        """What made the writer fail (None while it works). Setting it sets :attr:`healthy` too."""
        return self._error

    @_failure.setter
    def _failure(self, error: BaseException | None) -> None:
        self._error = error
        self.healthy = error is None and not self._closing

    def append(self, record: dict[str, Any]) -> int:
        """Give ``record`` its position (``record["n"]``), encode it and queue the line for the writer;
        return the position (it does not wait). TypeError, with nothing queued, if the record is not
        JSON-serialisable; JournalClosed once the journal is closed or its writer failed."""
        with self._append_lock:
            if not self.healthy:  # closing, or the writer failed
                raise JournalClosed("the journal is closed") from self._error
            position = self.appended + 1
            record["n"] = position
            # _encode(record), without its call where orjson takes the record (every record but a
            # rare one, which _encode writes as before).
            try:
                body = _dumps(record)
            except TypeError:
                line = _encode(record)
            else:
                line = b"%08x %b\n" % (_crc32(body), body)
            self._pending.append(line)
            self.appended = position
        if self._writer_idle:
            with self._work:
                self._work.notify()
        return position

    def wait(self, position: int, timeout: float | None = None) -> bool:
        """Block until ``position`` is durable; False on timeout. Raises JournalClosed if writing failed."""
        with self._done:
            if self.durable >= position:
                return True
            ok = self._done.wait_for(
                lambda: self.durable >= position or self._failure is not None or self._thread is None,
                timeout,
            )
            if self.durable >= position:
                return True
            if self._failure is not None:
                raise JournalClosed("the journal writer failed") from self._failure
            return ok and self.durable >= position

    def rotate(self, checkpoint: int) -> None:
        """A checkpoint at ``checkpoint`` is durably on disk: start a new segment at a record not yet
        written (unless the current segment is still empty), then delete every segment whose records
        are all ``<= checkpoint`` (the newest segment is never deleted). Safe while records are
        appended and written. Nothing happens once the journal is closed (:meth:`close` waits for a
        rotation in progress). ValueError if ``checkpoint`` is beyond :attr:`durable`.

        The new segment is created, and its directory entry synced, before the writer is told to
        switch and without the writer's lock: the writer's rounds go on meanwhile. Its name fixes its
        first position ``P`` in advance (the next position not yet appended, or further ahead if the
        writer passed that one meanwhile); the writer's round that reaches ``P`` writes the records
        before it to the old segment and the rest to the new one, and syncs both before they count
        as durable. A crash before ``P`` is written leaves an empty newest segment, which
        :meth:`read` and :meth:`start` handle."""
        with self._rotate_lock:
            if self._closing or self._file is None:
                return
            if checkpoint > self.durable:
                raise ValueError(f"checkpoint {checkpoint} is beyond the durable position {self.durable}")
            self._prepare_switch()
            segments = self.segments()
            retired = False
            for older, newer in itertools.pairwise(segments):
                if _first_position(newer) - 1 > checkpoint:
                    break
                older.unlink()
                retired = True
            if retired:
                self._sync_directory()

    def _prepare_switch(self) -> None:
        """Create the next segment and hand it to the writer (under the rotation lock). Nothing to do
        while a switch is pending or nothing was appended since the current segment began."""
        while True:
            with self._file_lock:
                if self._failure is not None or self._switch is not None:
                    return
                if self._file_first == self.appended + 1:
                    return
            chosen = self.appended + 1
            first = chosen + self._switch_ahead
            fresh = self.directory / _segment_name(first)
            handle = self._open_segment(fresh)
            self._sync_directory()
            # Records appended while the segment was being created: the next rotation starts that
            # far ahead (twice), so that the writer seldom reaches the chosen position first.
            self._switch_ahead = 2 * (self.appended + 1 - chosen)
            with self._file_lock:
                if self._failure is None and self.durable < first:
                    self._switch = (first, handle)
                    return
            # The writer wrote position ``first`` meanwhile: try again further ahead.
            handle.close()
            fresh.unlink()

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is pending, then stop the writer and close the file."""
        with self._rotate_lock, self._append_lock, self._done:
            self._closing = True
            self.healthy = False
            self._work.notify_all()
            self._done.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._switch is not None:  # never reached: the empty segment stays (start() sorts it out)
            self._switch[1].close()
            self._switch = None

    def _switch_segment(self, batch: list[bytes], switch: tuple[int, Any]) -> list[bytes]:
        """The writer's round reaches the next segment's first position (under ``_file_lock``):
        write and sync the round's lines before it to the current segment, make the next one
        current, and return the lines that go there. The old segment is synced even without
        ``fsync`` (a segment that is no longer the last must never have a torn tail)."""
        first, fresh = switch
        before = first - 1 - self.durable
        old = self._file
        if before:
            self._write(old, b"".join(batch[:before]))
        if not self._fsync:
            os.fsync(old.fileno())
        old.close()
        self._file = fresh
        self._file_first = first
        self._switch = None
        return batch[before:]

    def _open_segment(self, path: Path) -> Any:
        """Open the segment ``path`` for appending, unbuffered (one ``write`` per round); with
        ``fsync`` and ``O_DSYNC`` every write is durable when it returns."""
        return open(path, "ab", buffering=0, opener=self._opener if self._write_syncs else None)

    @staticmethod
    def _opener(path: str, flags: int) -> int:
        return os.open(path, flags | _O_DSYNC, 0o666)

    def _write(self, handle: Any, data: bytes) -> None:
        """Write ``data`` to the segment ``handle`` and make it durable as ``fsync`` asks (a short
        write is continued)."""
        done = handle.write(data)
        while done is not None and done < len(data):
            done += handle.write(data[done:])
        handle.flush()
        if self._fsync and not self._write_syncs:
            os.fsync(handle.fileno())

    def _sync_directory(self) -> None:
        if not self._fsync:
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _run(self) -> None:
        work = self._work
        pending = self._pending
        take = pending.popleft
        interval = self.commit_interval
        clock = time.monotonic
        started = -interval  # when the last round started (none yet: the first starts at once)
        # Commands arrive concurrently: the last round carried more than one record, or records were
        # waiting when it ended. Only then does the next round wait out the interval.
        gather = False
        while True:
            if not pending:
                with work:
                    while True:
                        closing = self._closing  # read before the queue: a closed journal gets no more
                        if pending:
                            break
                        if closing:
                            return
                        self._writer_idle = True
                        if pending:  # appended before the flag was seen
                            self._writer_idle = False
                            break
                        work.wait()
                        self._writer_idle = False
            if interval:
                # Group commit over an interval: while commands arrive concurrently (``gather``) and
                # the last round started less than ``interval`` ago, gather what the appenders add
                # until then (close() wakes the wait: it notifies ``work`` after setting ``_closing``).
                due = started + interval
                now = clock()
                if gather and now < due:
                    with work:
                        while not self._closing:
                            left = due - clock()
                            if left <= 0:
                                break
                            work.wait(left)
                    now = clock()
                started = now
            batch = [take() for _ in range(len(pending))]
            with self._file_lock:  # rotate() switches segments only between batches
                count = len(batch)
                position = self.durable + count
                try:
                    switch = self._switch
                    if switch is not None and position >= switch[0]:
                        batch = self._switch_segment(batch, switch)
                    self._write(self._file, b"".join(batch))
                except BaseException as exc:  # a disk that refuses writes: nothing more can be acknowledged
                    with work:
                        self._failure = exc  # healthy turns False
                        self._done.notify_all()
                    return
                with work:
                    self.durable = position
                    self.batches += 1
                    self.records_written += count
                    self._done.notify_all()
                gather = count > 1 or bool(pending)
            if self._on_durable is not None:
                self._on_durable(position)
