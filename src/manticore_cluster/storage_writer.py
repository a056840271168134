"""The storage writer: a follower of one shard's log that keeps the SQL read model
(``manticore storage-writer``).

It is a warm standby that never campaigns: an :class:`~manticore_matching.Exchange` whose journal follows
the shard's log (``JetStreamJournal(follow_until=...)``, so :meth:`Exchange.open` applies each record
as the leader writes it, through the same deterministic, fingerprint-checked replay), with its storage
on the read model's database (SQLite, PostgreSQL, MySQL/MariaDB). The rows are the ones an embedded
exchange writes for the same commands, because they come from the same code: the replay submits each
command's storage unit exactly as a restart does.

Position: after each record is applied, the writer queues a journal-position marker behind its rows;
the storage writer thread commits rows and marker in one transaction (table
``manticore_journal_positions``, with the record's clock reading as its stamp). After a restart or a
``kill -9`` the exchange restores the writer's local checkpoint (or the newest snapshot at or below the
database's position), replays from there without storage up to the database's position and with
storage after it: no row is lost and none is written twice. The database's position, not a JetStream
consumer's acknowledgement, is the durable consumer state, because only it commits atomically with the
rows.

It never writes to the log: :meth:`FollowingJournal.append` refuses.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manticore_matching import Exchange
from manticore_matching.checkpoints import CHECKPOINT
from manticore_matching.journal import JournalClosed
from manticore_risk import RiskLimits
from manticore_storage import StorageError, StorageManager

from .log import JetStreamJournal
from .natsconf import NatsOptions, check_shard
from .snapshots import SnapshotStore, local_checkpoint_position, restore_newest

__all__ = ["FollowingJournal", "StorageWriter", "StorageWriterOptions", "run_storage_writer"]

log = logging.getLogger("manticore_cluster")

#: Exit status when the log cannot be followed (corrupt, unreachable, a replay that diverges).
EXIT_LOG_FAILED = 5


class FollowingJournal(JetStreamJournal):
    """A shard's log for a reader that never writes: :meth:`read` calls ``on_applied(record)`` once
    the exchange has applied each record (when it asks for the next one); :meth:`append` raises
    JournalClosed."""

    def __init__(
        self,
        options: NatsOptions,
        shard: str,
        *,
        on_applied: Callable[[dict[str, Any]], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(options, shard, **kwargs)
        self._on_applied = on_applied

    def read(self, after: int = 0, *, start_sequence: int | None = None) -> Iterator[dict[str, Any]]:
        for record in super().read(after, start_sequence=start_sequence):
            yield record
            self._on_applied(record)

    def append(self, record: dict[str, Any]) -> int:
        raise JournalClosed("a storage writer never writes to the log")


@dataclass
class StorageWriterOptions:
    """What ``manticore storage-writer`` was asked for.

    Attributes:
        nats: connection and names.
        shard: the shard whose log is followed.
        database_url: the read model's SQLAlchemy URL.
        data_dir: the writer's own directory (its lock and local checkpoint).
        snapshots: restore the newest snapshot at or below the database's position when it is newer
            than the local checkpoint (shortens the replay after a restart).
        risk_limits: the shard's risk limits (as its instances use them).
        name: the writer's name among the shard's followers: it reports its database's position as
            ``<shard>.<name>`` in the KV bucket ``<prefix>_followers`` so that log retention keeps what
            it still needs (two writers of one shard need two names).
        report_every: seconds between two reports.
    """

    nats: NatsOptions
    shard: str
    database_url: str
    data_dir: Path
    snapshots: bool = True
    risk_limits: RiskLimits = field(default_factory=RiskLimits)
    name: str = "storage"
    report_every: float = 1.0

    def __post_init__(self) -> None:
        check_shard(self.shard)
        try:
            check_shard(self.name)
        except ValueError:
            raise ValueError(f"follower name {self.name!r}: 1-64 characters of A-Z a-z 0-9 _ -") from None


class StorageWriter:
    """Follows a shard's log into the read model until :meth:`request_stop` (see the module docstring).

    :meth:`run` blocks; :attr:`position` is the last journal position queued behind its rows (the
    database commits it with them, shortly after)."""

    def __init__(self, options: StorageWriterOptions) -> None:
        self.options = options
        self._stop = threading.Event()
        self._marked = -1
        self.position = 0
        self.exchange: Exchange | None = None
        self.journal: FollowingJournal | None = None
        self._store: SnapshotStore | None = None
        self._reported = -1

    def request_stop(self) -> None:
        """Stop following: the writer reads to the log's end, writes its checkpoint and returns."""
        self._stop.set()

    def _journal_factory(self, on_durable: Callable[[int], None]) -> FollowingJournal:
        self.journal = FollowingJournal(
            self.options.nats,
            self.options.shard,
            on_applied=self._applied,
            on_durable=on_durable,
            follow_until=self._stop,
        )
        return self.journal

    def _applied(self, record: dict[str, Any]) -> None:
        exchange = self.exchange
        storage = exchange.storage if exchange is not None else None
        if storage is None:
            return
        if self._marked < 0:
            self._marked = storage.journal_position()[0]
        position = int(record["n"])
        self.position = position
        if position <= self._marked:
            return
        try:
            storage.submit_journal_position(position, record["ts"])
        except StorageError:  # no market yet: nothing to write, the next marker covers it
            return
        self._marked = position

    def _prepare(self) -> None:
        """Keep the local checkpoint only if the database holds every row up to it; restore a snapshot
        at or below the database's position if it is newer."""
        options = self.options
        options.data_dir.mkdir(parents=True, exist_ok=True)
        probe = StorageManager(options.database_url)
        try:
            stored, _ = probe.journal_position()
        finally:
            probe.close()
        local = local_checkpoint_position(options.data_dir)
        if local > stored:
            log.warning(
                "storage writer %s: the local checkpoint (%d) is ahead of the database (%d): replaying "
                "from an older state instead",
                options.shard,
                local,
                stored,
            )
            (options.data_dir / CHECKPOINT).unlink()
        self._report(stored)
        if options.snapshots and self._store is not None:
            reader = JetStreamJournal(options.nats, options.shard)
            try:
                restore_newest(options.data_dir, self._store, at_most=stored, log_reader=reader)
            finally:
                reader.close()

    def _report(self, position: int) -> None:
        """Tell retention that this writer still needs the log after ``position`` (logged on failure:
        the next report tries again)."""
        if self._store is None or position == self._reported:
            return
        try:
            self._store.report_follower(self.options.name, position)
            self._reported = position
        except Exception as exc:
            log.warning("storage writer %s: position %d not reported (%r)", self.options.shard, position, exc)

    def run(self) -> int:
        """Follow until stopped; return 0 after a clean stop, :data:`EXIT_LOG_FAILED` when the log
        cannot be followed. Raises DataDirectoryLocked when another process holds the directory."""
        from manticore_matching import DataDirectoryLock

        options = self.options
        lock = DataDirectoryLock.acquire(options.data_dir)
        self._store = SnapshotStore(options.nats, options.shard)
        try:
            self._prepare()
            self.exchange = Exchange(
                options.data_dir,
                storage_url=options.database_url,
                risk_limits=options.risk_limits,
                checkpoint_every=0,
                lock=lock,
                journal_factory=self._journal_factory,
            )
            failure: list[BaseException] = []

            def follow() -> None:
                assert self.exchange is not None
                try:
                    self.exchange.open()
                except BaseException as exc:
                    failure.append(exc)

            log.info("storage writer %s: following the log into %s", options.shard, _shown(options))
            follower = threading.Thread(target=follow, name=f"manticore-storage-writer-{options.shard}")
            follower.start()
            tick = 0
            reported = time.monotonic()
            while follower.is_alive():
                follower.join(0.5)
                # The replay turns the cyclic collector off until it returns: collect here.
                tick += 1
                gc.collect(2 if tick % 100 == 0 else 1)
                storage = self.exchange.storage
                if storage is not None and time.monotonic() - reported >= options.report_every:
                    reported = time.monotonic()
                    with contextlib.suppress(Exception):
                        self._report(storage.journal_position()[0])
            if failure:
                log.critical("storage writer %s: the log cannot be followed: %r", options.shard, failure[0])
                return EXIT_LOG_FAILED
            self.exchange.close()
            self._report(self.position)  # the database holds every row up to here now
            log.info("storage writer %s: stopped at log position %d", options.shard, self.position)
            return 0
        finally:
            self._store.close()
            lock.release()


def _shown(options: StorageWriterOptions) -> str:
    from manticore_storage.engines import parse_url, shown_url

    return shown_url(parse_url(options.database_url))


def run_storage_writer(options: StorageWriterOptions) -> int:
    """Run a storage writer in this process until SIGTERM/SIGINT; return its exit status."""
    import signal

    writer = StorageWriter(options)

    def stop(_signum: int, _frame: object) -> None:
        writer.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    status = writer.run()
    log.info("storage writer %s: ran %.1f s", options.shard, time.monotonic() - started)
    return status
