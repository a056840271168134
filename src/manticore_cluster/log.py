"""A shard's command journal in a JetStream stream: :class:`JetStreamJournal`.

It is a :class:`~manticore_matching.journal.CommandLog` (what :class:`~manticore_matching.Exchange`
needs), so an exchange runs on it unchanged: ``Exchange(..., journal_factory=lambda on_durable:
JetStreamJournal(options, "main", on_durable=on_durable))``. The records are the file journal's
records (op, ts, order ids, args, seq, check, position ``n``); replay is the exchange's own
fingerprint-checked replay.

Wire format: one message on ``<prefix>.log.<shard>`` holds one or more consecutive records as a JSON
list (group commit: whatever was appended while the previous message was in flight goes out together,
up to ``max_message_bytes``). Headers:

* ``Nats-Msg-Id: <shard>:<first position>`` - a publish retried after a timeout is stored once;
* ``Nats-Expected-Last-Subject-Sequence: <stream sequence of this shard's previous message>`` (0 for the
  first) - the fence: if any other instance has written to the shard since this one last read or wrote
  it, the server refuses (err_code 10071); the journal is then *fenced*: unhealthy for good, every
  :meth:`~JetStreamJournal.wait` raises :class:`JournalFenced`, and ``on_fenced`` is called; the owning
  process must stop (its state may include commands that are not in the log).

Because the fence names the stream sequence of the previous message, which is known only from its
acknowledgement, at most one message per shard is in flight (the group commit's batch grows instead).

Terms and the takeover claim. A shard leader's journal carries its lease's term (the KV revision at
which its holding began, :attr:`~manticore_cluster.lease.Lease.term`; a later holder always has a
higher one) on every message, ``Manticore-Term: <term>`` (and ``Manticore-Writer: <instance id>``).
A successor must not be fenced by the deposed leader's last message: that leader, frozen with a
publish in flight, may wake after the lease passed on and its message land on top of the log the
successor read. It can land only while the shard's last message is still the one that leader
expected, i.e. before the successor's first write. So a new leader's first write is a **claim**
(:meth:`JetStreamJournal.claim`), made while it still follows the log, before any command of its own:
an empty message (payload ``[]``, ``Nats-Msg-Id: <shard>:term<term>:<next position>``, no record) on
top of the log's last message. If the claim is fenced, the messages that landed meanwhile are
inspected: each of a **lower term** is a late message of a deposed leader, a valid command of its term;
the follower applies it as it applies every record, and the claim is made again on top of it. A
message without a term, or of an equal or higher term, means another leader is writing: the claim
fails with :class:`JournalFenced` (the process exits). Once the claim is stored no message written
with an older expectation can land any more, so the successor's own commands are never fenced by
its predecessor, and a fence after the claim always means another live writer (exit). The claim holds
no record, so positions and replays are unchanged; readers skip it.

Durability: a position is durable when the server acknowledged its message (PubAck). On one
nats-server 2.9 (R1) that survives ``kill -9`` of any process but not a power loss (the server does not
fsync per message); R3 survives the loss of one machine. See docs/scale-out.md.

Threading: the journal runs nats-py on its own asyncio loop in its own thread (started on first use).
:meth:`~JetStreamJournal.append` and :meth:`~JetStreamJournal.wait` are called from the exchange's
threads; ``on_durable`` and ``on_fenced`` are called from the journal's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from manticore_matching.journal import JournalClosed, JournalCorrupt

from .natsconf import NatsOptions, check_shard, connect, ensure_log_stream, start_loop_thread

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from nats.js.api import PubAck

__all__ = [
    "FENCE_ERROR",
    "TERM_HEADER",
    "WRITER_HEADER",
    "JetStreamJournal",
    "JournalFenced",
    "decode_batch",
    "encode_record",
    "message_term",
]

log = logging.getLogger("manticore_cluster")

#: JetStream's err_code for a failed ``Nats-Expected-Last-(Subject-)Sequence``: "wrong last sequence".
FENCE_ERROR = 10071

#: Header of a leader's messages: the term (lease revision) under which it wrote them.
TERM_HEADER = "Manticore-Term"
#: Header of a leader's messages: its instance id (diagnostics only).
WRITER_HEADER = "Manticore-Writer"
#: Times a takeover claim is made again on top of late messages of deposed leaders before giving up.
CLAIM_ATTEMPTS = 20

_T = TypeVar("_T")


def message_term(headers: dict[str, str] | None) -> int | None:
    """The term a log message was written under (its ``Manticore-Term`` header), None if it has none."""
    value = (headers or {}).get(TERM_HEADER, "")
    return int(value) if value.isdigit() else None


class JournalFenced(JournalClosed):
    """Another instance wrote to this shard's log since this one last read or wrote it: this instance
    is stale and must stop (nothing it appends can become durable)."""


def encode_record(record: dict[str, Any]) -> bytes:
    """Compact JSON of one record (orjson; the standard library for what orjson refuses, as the file
    journal does). TypeError if JSON cannot hold a value."""
    try:
        return orjson.dumps(record)
    except TypeError:
        return json.dumps(record, separators=(",", ":")).encode()


def decode_batch(payload: bytes) -> list[dict[str, Any]]:
    """The records of one log message. JournalCorrupt unless it is a JSON list of objects that each
    have an integer position ``n``."""
    try:
        try:
            batch = orjson.loads(payload)
        except orjson.JSONDecodeError:
            batch = json.loads(payload)
    except ValueError as exc:
        raise JournalCorrupt(f"a log message is not JSON: {exc}") from exc
    if type(batch) is not list or not all(
        type(record) is dict and type(record.get("n")) is int for record in batch
    ):
        raise JournalCorrupt("a log message is not a list of records with positions")
    return batch


class JetStreamJournal:
    """One shard's command log in the JetStream stream ``<PREFIX>_LOG``, subject ``<prefix>.log.<shard>``.

    Args:
        options: connection and naming (the stream is created if missing, see
            :func:`~manticore_cluster.natsconf.ensure_log_stream`).
        shard: the shard's name (``[A-Za-z0-9_-]``, 1-64 characters).
        on_durable: called from the journal's thread with each new durable position.
        on_fenced: called once, from the journal's thread, when the journal is fenced off (after
            :attr:`fenced` turned True, before any :meth:`wait` raises JournalFenced).
        follow_until: warm standby: :meth:`read` does not stop at the end of the log but keeps
            yielding records as they are written, until this event is set; then it reads to the end
            of the log as it is at that moment and returns (the caller must hold the shard's lease by
            then). Without it, :meth:`read` stops at the end of the log as it was when it started.
        publish_timeout: seconds to wait for one acknowledgement (default ``options.request_timeout``).
        publish_attempts: sends of one message (the same ``Nats-Msg-Id``) before the journal gives up
            and fails (unhealthy, not fenced).
        max_message_bytes: upper bound of one message's payload (a single larger record still goes
            alone; the server's ``max_payload`` is the hard limit).
        on_checkpoint: called from :meth:`rotate` (the exchange's checkpoint step: on the exchange's
            background checkpoint thread, or on its command thread for a synchronous one) with
            the position of the checkpoint just written: the hook of
            :class:`~manticore_cluster.snapshots.SnapshotPublisher`.

    Life cycle as the file journal: :meth:`read` (once), :meth:`start`, :meth:`append` /
    :meth:`wait`, :meth:`close`. :meth:`start` without :meth:`read` continues after the last record
    in the log without yielding anything.
    """

    def __init__(
        self,
        options: NatsOptions,
        shard: str,
        *,
        on_durable: Callable[[int], None] | None = None,
        on_fenced: Callable[[JournalFenced], None] | None = None,
        follow_until: threading.Event | None = None,
        publish_timeout: float | None = None,
        publish_attempts: int = 5,
        max_message_bytes: int = 512 * 1024,
        on_checkpoint: Callable[[int], None] | None = None,
    ) -> None:
        if publish_attempts < 1:
            raise ValueError("publish_attempts: at least 1")
        self.options = options
        self.shard = check_shard(shard)
        self.subject = options.log_subject(shard)
        self.stream = options.log_stream
        self._on_durable = on_durable
        self._on_fenced = on_fenced
        self._follow_until = follow_until
        self._publish_timeout = publish_timeout if publish_timeout is not None else options.request_timeout
        self._publish_attempts = publish_attempts
        self._max_message_bytes = max_message_bytes
        self._on_checkpoint = on_checkpoint
        self._append_lock = threading.Lock()
        #: Held by :meth:`rotate` (its ``on_checkpoint`` call) and by :meth:`close`.
        self._rotate_lock = threading.Lock()
        self._done = threading.Condition(threading.Lock())
        self._pending: deque[bytes] = deque()
        self._appended = 0
        self._durable = 0
        #: Stream sequence of this shard's last message as this instance knows it: the fence value.
        self._last_sequence = 0
        self._read_done = False
        self._started = False
        self._closing = False
        self._failure: BaseException | None = None
        self._fence: JournalFenced | None = None
        self._writer_idle = False
        #: headers of every message (a leader's term and id, from :meth:`claim`)
        self._headers: dict[str, str] = {}
        self._lifecycle = threading.Lock()  # creating and stopping the loop
        self._connecting = threading.Event()  # set once the loop's connection is made (or failed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._wake: asyncio.Event | None = None
        self._writer: concurrent.futures.Future[None] | None = None
        self.batches = 0
        self.records_written = 0
        self.publish_retries = 0
        self.messages_read = 0

    # ------------------------------------------------------------------ state

    @property
    def healthy(self) -> bool:
        """False once the journal has failed, been fenced off, or is closed."""
        return self._failure is None and self._fence is None and not self._closing

    @property
    def fenced(self) -> bool:
        """True once another instance has written to this shard: this one must stop."""
        return self._fence is not None

    @property
    def appended(self) -> int:
        """Position of the last appended record."""
        return self._appended

    @property
    def durable(self) -> int:
        """Position up to which every record is acknowledged by the stream."""
        return self._durable

    @property
    def stream_sequence(self) -> int:
        """Stream sequence of this shard's last message as this instance knows it (read or written);
        0 when the shard has none. It is the next message's expected last subject sequence. It rises
        while :meth:`read` runs, so a standby's lag is ``last_stream_sequence() - stream_sequence``
        (in stream sequences, which other shards' messages also advance)."""
        return self._last_sequence

    def last_stream_sequence(self) -> int:
        """Ask the server: stream sequence of the shard's last message now (0 if none)."""
        return self._call(self._last_subject_sequence())

    # ------------------------------------------------------------------ the loop thread

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        """The journal's loop, connected: started and connected by the first caller; a caller from
        another thread meanwhile waits for that connection (JournalClosed if it failed)."""
        options = self.options
        bound = 3 * options.connect_timeout + 2 * options.request_timeout + 1
        with self._lifecycle:
            loop, connecting = self._loop, self._connecting
            if loop is None:
                if self._closing:
                    raise JournalClosed("the journal is closed")
                loop, thread = start_loop_thread(f"manticore-jetstream-{self.shard}")
                self._loop, self._thread = loop, thread
                connecting = self._connecting = threading.Event()
            elif connecting.is_set():
                return loop
            else:
                loop = None  # another thread connects: wait for it below
        if loop is None:
            connecting.wait(bound + 1)
            if self._js is None or self._loop is None:
                raise JournalClosed("the journal could not connect")
            return self._loop
        try:
            self._call(self._connect(), bound)
        except BaseException:
            self._stop_loop()
            raise
        finally:
            connecting.set()
        return loop

    def _call(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run ``coroutine`` on the journal's loop and return its result (from another thread, never
        the loop's own). ``timeout`` defaults to a bound above every request's own timeout;
        JournalClosed if the journal is closed meanwhile."""
        loop = self._loop
        if loop is None:
            try:
                loop = self._ensure_loop()
            except BaseException:
                coroutine.close()
                raise
        if timeout is None:
            timeout = 4 * self.options.request_timeout + 5
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # the loop is closed: the journal was closed meanwhile
            coroutine.close()
            raise JournalClosed("the journal was closed") from None
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            if self._closing:
                raise JournalClosed("the journal was closed") from None
            raise
        except (concurrent.futures.CancelledError, asyncio.CancelledError):
            raise JournalClosed("the journal was closed") from None
        except Exception as exc:
            if self._closing:  # e.g. the connection closed under a read
                raise JournalClosed("the journal was closed") from exc
            raise

    async def _connect(self) -> None:
        self._nc = await connect(self.options)
        self._js = self._nc.jetstream(timeout=self.options.request_timeout)
        self._wake = asyncio.Event()
        await ensure_log_stream(self._js, self.options)

    def _stop_loop(self) -> None:
        """Close the connection and stop the loop (once, whichever thread comes first)."""
        with self._lifecycle:
            loop, thread = self._loop, self._thread
            if loop is None:
                return
            self._loop = self._thread = None
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shut_down(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        if not loop.is_running():
            loop.close()
        self._nc = self._js = None

    async def _shut_down(self) -> None:
        """Close the connection, then cancel whatever still runs on the loop."""
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 5)
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    @property
    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise JournalClosed("the journal is not connected")
        return self._js

    # ------------------------------------------------------------------ reading

    async def _last_subject_sequence(self) -> int:
        from nats.js.errors import NotFoundError

        try:
            message = await self._jetstream.get_last_msg(self.stream, self.subject)
        except NotFoundError:
            return 0
        return int(message.seq or 0)

    def read(self, after: int = 0, *, start_sequence: int | None = None) -> Iterator[dict[str, Any]]:
        """Recovery before :meth:`start`: yield the shard's records with position ``> after``, oldest
        first (with ``follow_until``: until that event is set, see the class).

        ``start_sequence`` is the stream sequence to start scanning at; by default the message that
        holds position ``after + 1`` (:meth:`sequence_of`, a binary search), so a restart from a
        checkpoint reads only the log after it. Afterwards :attr:`appended` and
        :attr:`durable` are the last position found (at least ``after``) and
        :attr:`stream_sequence` is the fence for the next message.

        JournalCorrupt if positions do not rise by one, a message is not a list of records, or the log
        ends before ``after`` (it lost acknowledged records, or it is not this shard's log; an empty
        log is accepted only when ``options.max_age`` lets messages expire)."""
        if self._started:
            raise RuntimeError("read() recovers the journal before start(); use durable_records() now")
        self._ensure_loop()
        if start_sequence is None:
            start_sequence = self.sequence_of(after + 1) if after else 1
        last = after
        last_sequence = 0
        highest = 0
        for sequence, batch, end in self._messages(start_sequence, None, self._follow_until):
            highest = max(highest, end)  # a claim holds no record, but marks where the log was
            for record in batch:
                position = record["n"]
                highest = max(highest, position)
                if position <= last:
                    if position <= after:
                        continue
                    raise JournalCorrupt(f"{self.subject}: position {position} repeats (seq {sequence})")
                if position != last + 1:
                    raise JournalCorrupt(f"{self.subject}: position {last + 1} is missing (seq {sequence})")
                last = position
                yield record
            last_sequence = self._last_sequence = sequence  # progress, for a standby's lag
        if last_sequence == 0:  # nothing scanned: an empty log, or start_sequence past its end
            last_sequence = self._call(self._last_subject_sequence())
            if last_sequence:
                tail = self._call(self._last_position_at(last_sequence))
                if tail != after:
                    raise JournalCorrupt(
                        f"{self.subject} ends at position {tail}, not at {after} where reading started "
                        f"(start_sequence {start_sequence})"
                    )
            elif after and self.options.max_age == 0:
                raise JournalCorrupt(
                    f"{self.subject} is empty but the checkpoint is at position {after}: the stream lost "
                    "acknowledged records or is not this shard's log"
                )
        elif highest < after:
            raise JournalCorrupt(f"{self.subject} ends at position {highest} before the checkpoint's {after}")
        self._appended = self._durable = max(last, after)
        self._last_sequence = last_sequence
        self._read_done = True

    def durable_records(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Yield the durable records with position ``> after``, oldest first (safe while the journal
        runs; reads the stream up to the message of the current :attr:`durable` position)."""
        self._ensure_loop()
        with self._done:
            durable, end = self._durable, self._last_sequence
        if end == 0 or durable <= after:
            return
        for _sequence, batch, _end in self._messages(self.sequence_of(after + 1), end, None):
            for record in batch:
                if record["n"] > durable:
                    return
                if record["n"] > after:
                    yield record

    def sequence_of(self, position: int) -> int:
        """Stream sequence of the shard's message that holds record ``position``: the last message whose
        first position is ``<= position`` (1 if there is none). A binary search with direct gets:
        O(log(messages)) requests. Reading from there yields ``position`` first if the log has it."""
        return self._call(self._sequence_of(position))

    async def _sequence_of(self, position: int) -> int:
        from nats.js.errors import NotFoundError

        last = await self._last_subject_sequence()
        low, high, found = 1, last, 1
        while low <= high:
            middle = (low + high) // 2
            try:
                message = await self._jetstream.get_msg(self.stream, middle, subject=self.subject, next=True)
            except NotFoundError:  # nothing of this shard at or after middle
                high = middle - 1
                continue
            sequence = int(message.seq or middle)
            if _first_position(message.headers, message.data) <= position:
                found, low = sequence, sequence + 1
            else:
                high = middle - 1
        return found

    def _messages(
        self, start: int, end: int | None, follow: threading.Event | None
    ) -> Iterator[tuple[int, list[dict[str, Any]], int]]:
        """(stream sequence, records, last position) of the shard's messages from stream sequence
        ``start`` (the last position of a claim is the one before its first), up to
        ``end`` (None: the last message when reading starts; with ``follow``: keep reading until the
        event is set, then up to the last message at that moment)."""
        if end is None:
            end = self._call(self._last_subject_sequence())
        if end < start and follow is None:
            return
        reader = self._call(self._open_reader(start))
        try:
            position = start - 1
            empty = 0
            while True:
                waiting = position >= end
                if waiting:
                    if follow is None:
                        return
                    if follow.is_set():
                        end = self._call(self._last_subject_sequence())
                        if position >= end:
                            return
                        waiting = False
                fetched = self._call(self._fetch(reader, 0.25 if waiting else self.options.request_timeout))
                for sequence, payload, headers in fetched:
                    self.messages_read += 1
                    position = sequence
                    end = max(end, sequence)
                    batch = decode_batch(payload)
                    last = int(batch[-1]["n"]) if batch else _first_position(headers, payload) - 1
                    yield sequence, batch, last
                if fetched or waiting:
                    empty = 0
                    continue
                empty += 1
                if empty >= 3:
                    raise JournalClosed(f"{self.subject}: sequence {end} cannot be read (at {position})")
        finally:
            with contextlib.suppress(Exception):
                self._call(self._close_reader(reader), self.options.request_timeout * 2)

    async def _open_reader(self, start: int) -> Any:
        from nats.js import api

        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start),
            ack_policy=api.AckPolicy.NONE,
            inactive_threshold=30.0,
            mem_storage=True,
            num_replicas=1,
        )
        return await self._jetstream.pull_subscribe(self.subject, stream=self.stream, config=config)

    async def _fetch(self, reader: Any, timeout: float) -> list[tuple[int, bytes, dict[str, str]]]:
        from nats.errors import TimeoutError as NatsTimeout

        try:
            messages = await reader.fetch(64, timeout=timeout)
        except (NatsTimeout, asyncio.TimeoutError):
            return []
        return [(int(m.metadata.sequence.stream), bytes(m.data), dict(m.headers or {})) for m in messages]

    async def _close_reader(self, reader: Any) -> None:
        with contextlib.suppress(Exception):
            info = await reader.consumer_info()
            await self._jetstream.delete_consumer(self.stream, info.name)
        await reader.unsubscribe()

    def record_at(self, position: int) -> dict[str, Any] | None:
        """The shard's record at ``position``, or None if its log holds none there (a binary search
        for the message that would hold it, then one direct get; safe before :meth:`read`)."""
        if position < 1:
            return None
        self._ensure_loop()
        if not self._call(self._last_subject_sequence()):
            return None
        message = self._call(self._shard_message_at(self.sequence_of(position)))
        if message is None:
            return None
        for record in message:
            if record["n"] == position:
                return record
        return None

    async def _shard_message_at(self, sequence: int) -> list[dict[str, Any]] | None:
        """The records of the shard's message at stream ``sequence``, None if that one is another's."""
        message = await self._jetstream.get_msg(self.stream, sequence)
        if message.subject != self.subject:
            return None
        return decode_batch(message.data or b"")

    async def _last_position_at(self, sequence: int) -> int:
        """The last record position of the shard's message at stream ``sequence`` (0 for sequence 0);
        for a claim, which holds no record, the position before its first."""
        if not sequence:
            return 0
        message = await self._jetstream.get_msg(self.stream, sequence)
        records = decode_batch(message.data or b"")
        if records:
            return int(records[-1]["n"])
        return _first_position(message.headers, message.data) - 1

    async def _messages_after(self, sequence: int) -> list[tuple[int, dict[str, str]]]:
        """(stream sequence, headers) of the shard's messages after stream ``sequence``, in order."""
        from nats.js.errors import NotFoundError

        found: list[tuple[int, dict[str, str]]] = []
        while True:
            try:
                message = await self._jetstream.get_msg(
                    self.stream, sequence + 1, subject=self.subject, next=True
                )
            except NotFoundError:
                return found
            sequence = int(message.seq or sequence + 1)
            found.append((sequence, dict(message.headers or {})))

    # ------------------------------------------------------------------ writing

    def claim(self, term: int, writer: str, *, expected: int | None = None) -> int:
        """A new leader's first write (see the module docstring): store an empty claim message under
        ``term`` on top of the shard's log, absorbing late messages of lower terms; from then on every
        message carries ``term`` and ``writer``. Returns the claim's stream sequence.

        Call it while :meth:`read` still follows the log (before ``follow_until`` is set: a late message
        that lands before the claim is then applied by the follower, and :meth:`read` ends after the
        claim), or before :meth:`read`. ``expected`` is the stream sequence the claim goes on top of
        (default: the shard's last message now); the messages after it that land first are
        inspected. JournalFenced if one has no term or a term ``>= term`` (another leader writes), or
        after :data:`CLAIM_ATTEMPTS` claims; JournalClosed if it cannot be published."""
        if self._started or self._read_done:
            raise RuntimeError("claim() comes before the follower stops reading and before start()")
        self._ensure_loop()  # (the follower may be connecting it right now)
        timeout = CLAIM_ATTEMPTS * (self._publish_attempts * (self._publish_timeout + 1) + 4)
        return self._call(self._claim(term, writer, expected), timeout)

    async def _claim(self, term: int, writer: str, expected: int | None) -> int:
        headers = {TERM_HEADER: str(term), WRITER_HEADER: writer}
        if expected is None:
            expected = await self._last_subject_sequence()
        for _ in range(CLAIM_ATTEMPTS):
            first = await self._last_position_at(expected) + 1
            msg_id = f"{self.shard}:term{term}:{first}"
            try:
                sequence = await self._publish(
                    b"[]", first, msg_id=msg_id, expected=expected, headers=headers
                )
            except JournalFenced as exc:
                later = await self._messages_after(expected)
                if not later:
                    raise
                for their_sequence, their_headers in later:
                    theirs = message_term(their_headers)
                    if theirs is None or theirs >= term:
                        raise JournalFenced(
                            f"{self.subject}: message {their_sequence} was written under term {theirs} "
                            f"(this leader's is {term}): another leader writes to the shard"
                        ) from exc
                log.warning(
                    "shard %s: %d late message(s) of a deposed leader (terms %s) landed on the log after "
                    "sequence %d; they are applied as every record is, and term %d claims the log on top",
                    self.shard,
                    len(later),
                    sorted({message_term(their_headers) or 0 for _, their_headers in later}),
                    expected,
                    term,
                )
                expected = later[-1][0]
                continue
            self._headers = headers
            log.info("shard %s: term %d claims the log at stream sequence %d", self.shard, term, sequence)
            return sequence
        raise JournalFenced(f"{self.subject}: {CLAIM_ATTEMPTS} claims of term {term} were fenced")

    def start(self) -> None:
        """Start the writer. Without a :meth:`read` before, continue after the log's last record."""
        loop = self._ensure_loop()
        if self._started:
            raise RuntimeError("the journal is already started")
        if not self._read_done:
            sequence = self._call(self._last_subject_sequence())
            if sequence:
                last = self._call(self._last_position_at(sequence))
                self._appended = self._durable = last
            self._last_sequence = sequence
        self._started = True
        self._writer = asyncio.run_coroutine_threadsafe(self._write_loop(), loop)

    def append(self, record: dict[str, Any]) -> int:
        """Give ``record`` its position (``record["n"]``), encode it and queue it for the writer; return
        the position (it does not wait). TypeError, with nothing queued, if the record is not
        JSON-serialisable; JournalClosed (JournalFenced once fenced) when it cannot be written."""
        with self._append_lock:
            if self._fence is not None:
                raise JournalFenced("the journal was fenced off by another instance") from self._fence
            if self._failure is not None:
                raise JournalClosed("the journal writer failed") from self._failure
            if self._closing or not self._started:
                raise JournalClosed("the journal is " + ("closed" if self._closing else "not started"))
            position = self._appended + 1
            record["n"] = position
            line = encode_record(record)
            self._pending.append(line)
            self._appended = position
        if self._writer_idle:
            loop, wake = self._loop, self._wake
            if loop is not None and wake is not None:
                loop.call_soon_threadsafe(wake.set)
        return position

    def wait(self, position: int, timeout: float | None = None) -> bool:
        """Block until ``position`` is durable (True) or ``timeout`` passes (False). Raises
        JournalFenced once fenced off, JournalClosed if writing failed; False once closed."""
        with self._done:
            if self._durable >= position:
                return True
            self._done.wait_for(
                lambda: self._durable >= position or self._failure is not None or self._closed(), timeout
            )
            if self._durable >= position:
                return True
            if self._failure is not None:
                if isinstance(self._failure, JournalFenced):
                    raise JournalFenced(str(self._failure)) from self._failure
                raise JournalClosed("the journal writer failed") from self._failure
            return False

    def _closed(self) -> bool:
        return self._closing and (self._writer is None or self._writer.done())

    def rotate(self, checkpoint: int) -> None:
        """The exchange wrote its checkpoint at ``checkpoint``: tell ``on_checkpoint`` (the log itself
        is purged by the snapshot publisher's retention, or expires by ``max_age``). Called from the
        exchange's background checkpoint thread while records go on being appended; nothing happens
        once the journal is closed (:meth:`close` waits for a call in progress)."""
        if self._on_checkpoint is None:
            return
        with self._rotate_lock:
            if self._closing:
                return
            try:
                self._on_checkpoint(checkpoint)
            except Exception:
                log.exception("the journal's on_checkpoint callback failed")

    def close(self, timeout: float | None = 30.0) -> None:
        """Publish what is pending (unless failed), stop the writer, close the connection."""
        with self._rotate_lock, self._append_lock:
            self._closing = True
        loop, wake, writer = self._loop, self._wake, self._writer
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.result(timeout)
            writer.cancel()
        with self._done:
            self._done.notify_all()
        self._stop_loop()

    async def _write_loop(self) -> None:
        """Group commit: one message at a time, holding every record appended since the last one.
        ``on_durable`` for a message runs while the next message is in flight."""
        pending = self._pending
        wake = self._wake
        assert wake is not None
        told = 0  # the last position on_durable was called with
        try:
            while True:
                if not pending:
                    if told < self._durable:
                        told = self._tell_durable(self._durable)
                        continue
                    if self._closing:
                        return
                    wake.clear()
                    self._writer_idle = True
                    if not pending and not self._closing:
                        await wake.wait()
                    self._writer_idle = False
                    continue
                parts = [pending.popleft()]
                size = len(parts[0]) + 2  # the brackets of the list
                limit = self._message_limit()
                while pending and size + len(pending[0]) + 1 <= limit:
                    part = pending.popleft()
                    parts.append(part)
                    size += len(part) + 1
                first = self._durable + 1
                payload = b"[" + b",".join(parts) + b"]"
                publish = asyncio.ensure_future(self._publish(payload, first))
                if told < self._durable:
                    told = self._tell_durable(self._durable)
                ack = await publish
                with self._done:
                    self._last_sequence = ack
                    self._durable = first + len(parts) - 1
                    self.batches += 1
                    self.records_written += len(parts)
                    self._done.notify_all()
        except (asyncio.CancelledError, GeneratorExit):
            with self._done:
                self._failure = JournalClosed("the journal's writer was stopped")
                self._done.notify_all()
            raise
        except BaseException as exc:
            if isinstance(exc, JournalFenced):
                self._fence = exc  # unhealthy and refusing appends now; waiters learn it below
                log.critical(
                    "journal of shard %s FENCED: another instance wrote to %s; this instance accepts "
                    "no more commands and must exit (%s)",
                    self.shard,
                    self.subject,
                    exc,
                )
                if self._on_fenced is not None:
                    try:
                        self._on_fenced(exc)
                    except Exception:
                        log.exception("the journal's on_fenced callback failed")
            else:
                log.critical("journal of shard %s failed, no more commands: %r", self.shard, exc)
            with self._done:
                self._failure = exc
                self._done.notify_all()
            if not isinstance(exc, Exception):
                raise

    def _tell_durable(self, position: int) -> int:
        if self._on_durable is not None:
            try:
                self._on_durable(position)
            except Exception:
                log.exception("the journal's on_durable callback failed")
        return position

    def _message_limit(self) -> int:
        server = self._nc.max_payload if self._nc is not None else 1024 * 1024
        return max(1, min(self._max_message_bytes, server - 4096))

    async def _publish(
        self,
        payload: bytes,
        first: int,
        *,
        msg_id: str | None = None,
        expected: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> int:
        """Store one message, retrying timeouts with the same ``Nats-Msg-Id``; return its stream sequence.

        ``msg_id`` defaults to ``<shard>:<first>``, ``expected`` to :attr:`stream_sequence`, ``headers``
        (more headers) to the term's. JournalFenced when another instance has written to the shard
        since ``expected``; JournalClosed when every attempt failed."""
        from nats.errors import ConnectionClosedError, NoRespondersError
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.errors import APIError, NoStreamResponseError

        js = self._jetstream
        if msg_id is None:
            msg_id = f"{self.shard}:{first}"
        if expected is None:
            expected = self._last_sequence
        extra = self._headers if headers is None else headers
        problem: BaseException | None = None
        for attempt in range(self._publish_attempts):
            if attempt:
                self.publish_retries += 1
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
            sent = {"Nats-Msg-Id": msg_id, "Nats-Expected-Last-Subject-Sequence": str(expected), **extra}
            try:
                ack: PubAck = await js.publish(
                    self.subject, payload, timeout=self._publish_timeout, headers=sent
                )
            except APIError as exc:
                if exc.err_code == FENCE_ERROR:
                    # A retry whose first send was stored meets its own message: that is success.
                    mine = await self._stored_last(payload, msg_id)
                    if mine:
                        return mine
                    raise JournalFenced(
                        f"{self.subject}: expected last stream sequence {expected}, the server has a later "
                        f"message ({exc.description})"
                    ) from exc
                if exc.code is not None and 400 <= exc.code < 500 and exc.code != 408:
                    raise JournalClosed(f"{self.subject}: the server refused the message: {exc}") from exc
                problem = exc
            except (NatsTimeout, asyncio.TimeoutError, NoStreamResponseError, NoRespondersError) as exc:
                problem = exc
            except ConnectionClosedError as exc:
                raise JournalClosed("the NATS connection is closed") from exc
            else:
                if ack.duplicate and not await self._stored_at(ack.seq, payload):
                    raise JournalFenced(f"{self.subject}: another instance wrote message id {msg_id}")
                return int(ack.seq)
            log.warning("publish of %s failed (attempt %d): %r", msg_id, attempt + 1, problem)
        attempts = self._publish_attempts
        raise JournalClosed(f"{self.subject}: {attempts} attempts to publish {msg_id} failed") from problem

    async def _stored_at(self, sequence: int, payload: bytes) -> bool:
        message = await self._jetstream.get_msg(self.stream, sequence)
        return message.data == payload

    async def _stored_last(self, payload: bytes, msg_id: str) -> int:
        """Stream sequence of the shard's last message if it is ``payload`` under ``msg_id``, else 0."""
        from nats.js.errors import NotFoundError

        try:
            message = await self._jetstream.get_last_msg(self.stream, self.subject)
        except NotFoundError:
            return 0
        headers = message.headers or {}
        if headers.get("Nats-Msg-Id") == msg_id and message.data == payload:
            return int(message.seq or 0)
        return 0


def _first_position(headers: dict[str, str] | None, payload: bytes | None) -> int:
    """The first record position of a log message: from its ``Nats-Msg-Id`` (``<shard>:<first>``, or
    ``<shard>:term<term>:<first>`` for a claim, whose first is the position after the log's last),
    else from its records."""
    msg_id = (headers or {}).get("Nats-Msg-Id", "")
    _, _, first = msg_id.rpartition(":")
    if first.isdigit():
        return int(first)
    return int(decode_batch(payload or b"")[0]["n"])
