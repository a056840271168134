"""One instance of a shard: a warm standby that follows the shard's log, and its leader once it holds the
lease (``manticore shard``).

Phase 1: a shard is one :class:`~manticore_matching.Exchange` (every market, the ledger) whose journal
is the shard's subject in the JetStream log (:class:`~manticore_cluster.log.JetStreamJournal`). Each
instance has its own data directory (its lock, local checkpoint and SQLite read model), so a standby
keeps a complete read model while it follows.

Life of an instance (:meth:`ShardInstance.run`):

1. lock the data directory (one instance per directory), connect to NATS, make sure the lease bucket
   exists;
2. **standby**: open the exchange on the log - restore the local checkpoint and replay the log after it
   (fingerprint-checked), then keep applying each new record as the leader writes it. This is the
   exchange's own replay loop: the journal's ``follow_until`` makes :meth:`Exchange.open` keep reading
   until promotion, in a worker thread, so every record takes exactly the path a restart takes (no
   change to the exchange). Meanwhile the instance campaigns for the lease ``<shard>`` every
   ``ttl / 6`` seconds;
3. **takeover** once the lease is won (a grant answered too late to lead on is confirmed first, see
   :mod:`.lease`): renew it every ``ttl / 3``; **claim** the log while still following it
   (:meth:`~manticore_cluster.log.JetStreamJournal.claim`: an empty message under the lease's term on
   top of the log's last message; late messages of a deposed leader - lower term - that land first are
   applied as a follower applies every record, and the claim is made again on top of them; a message of
   an equal or higher term, or of no term, means another leader: exit :data:`EXIT_FENCED`); apply the
   log to its end (so the instance holds every acknowledged command, and the deposed leader's in-flight
   message can no longer land: its expectation is stale), switch the journal to appending, fenced on
   the stream sequence of the claim, create the configured markets the log does not have yet, start
   the command server, log ``leader``;
4. **leader** until stopped. It exits at once, non-zero, when it loses the lease
   (:data:`EXIT_LEASE_LOST`: a renewal's compare-and-swap failed, or no renewal succeeded for a TTL -
   checked by a watchdog thread and on SIGCONT as well, so a paused process never answers after
   waking) or when its journal is fenced (:data:`EXIT_FENCED`: another instance wrote to the log after
   the claim - a writer that read the claim, i.e. another live leader or a stray process, never a late
   message of the leader it replaced) or fails (:data:`EXIT_JOURNAL_FAILED`). A zombie must not
   answer: the exit is ``os._exit``, with nothing flushed but the log line, and commands it had not
   made durable were never acknowledged.
5. **SIGTERM / SIGINT**: clean stop - stop the command server, write the checkpoint (the leader waits
   for its journal first), release the lease so that a standby takes over at once, exit 0.

Clock: the exchange's clock never goes below the last record's ``ts`` (it keeps ``max(clock, last)``),
so a leader whose host clock is behind the previous leader's still stamps increasing times.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from manticore_matching import (
    DEFAULT_MARKETS,
    DEFAULT_RISK_LIMITS,
    DataDirectoryLock,
    Exchange,
    MarketConfig,
    ServiceUnavailable,
)
from manticore_risk import RiskLimits

from . import protocol
from .account import AccountState
from .account_shard import AccountLedger
from .lease import Lease
from .log import JetStreamJournal, JournalFenced
from .natsconf import NatsOptions, check_shard, connect, ensure_lease_bucket
from .snapshots import SnapshotPublisher, open_snapshots

if TYPE_CHECKING:
    from nats.aio.client import Client

__all__ = [
    "EXIT_FENCED",
    "EXIT_JOURNAL_FAILED",
    "EXIT_LEASE_LOST",
    "ShardInstance",
    "ShardOptions",
    "run_shard",
]

log = logging.getLogger("manticore_cluster")

#: Exit status of a leader that lost its lease.
EXIT_LEASE_LOST = 3
#: Exit status of an instance whose journal was fenced off by another instance.
EXIT_FENCED = 4
#: A standby collects every generation once in this many campaign rounds (the young ones every round).
_FULL_COLLECTION_EVERY = 100
#: Exit status when the journal failed (NATS unreachable for every retry) or the log is corrupt.
EXIT_JOURNAL_FAILED = 5


@dataclass
class ShardOptions:
    """What ``manticore shard`` was asked for (see its ``--help``).

    Attributes:
        nats: connection and names (prefix) of the log stream and lease bucket.
        name: the shard's name (its log subject and lease key).
        data_dir: this instance's own directory (lock, checkpoint, SQLite read model).
        lease_ttl: seconds without renewal after which the lease expires (failover time ~ this plus the
            catch-up).
        markets: markets the leader creates when the log does not have them yet.
        risk_limits: pre-trade limits (every instance of a shard must use the same).
        storage_url: the read model's SQLAlchemy URL (default SQLite in ``data_dir``); one per instance.
        checkpoint_every: the leader writes a local checkpoint after this many records.
        instance_id: this instance's id in the lease (default ``host:pid:random``).
        snapshots_keep: snapshots of the shard kept in the Object Store (0: none are read or written;
            see :mod:`~manticore_cluster.snapshots`); an account shard has none yet (its checkpoints
            are local).
        log_retention: purge the shard's log below the oldest kept snapshot (needs snapshots; not for
            an account shard).
    """

    nats: NatsOptions
    name: str
    data_dir: Path
    lease_ttl: float = 5.0
    markets: tuple[MarketConfig, ...] = DEFAULT_MARKETS
    risk_limits: RiskLimits = DEFAULT_RISK_LIMITS
    storage_url: str | None = None
    checkpoint_every: int = 100_000
    instance_id: str = ""
    snapshots_keep: int = 3
    log_retention: bool = False
    #: ``whole`` (phase 1: every market and the ledger), ``market`` (phase 2: the books of ``markets``,
    #: funded by routed commands) or ``account`` (phase 2: balances; ``routing`` names the markets)
    role: str = "whole"
    #: the account role's markets: symbol -> (config, market shard owning it)
    routing: dict[str, tuple[MarketConfig, str]] | None = None

    def __post_init__(self) -> None:
        check_shard(self.name)
        if self.snapshots_keep < 0:
            raise ValueError("snapshots to keep: 0 or more")
        if self.log_retention and not self.snapshots_keep:
            raise ValueError("log retention needs snapshots (keep at least 1)")
        if self.role not in ("whole", "market", "account"):
            raise ValueError("role: whole, market or account")
        if self.role == "account" and not self.routing:
            raise ValueError("an account shard needs the routing of its markets")
        if self.role == "account" and self.log_retention:
            raise ValueError("log retention: not for an account shard (no snapshots of it yet)")
        if not self.lease_ttl > 0:
            raise ValueError("lease ttl: more than 0 seconds")
        if not self.instance_id:
            self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class CommandServing(Protocol):
    """The command server's life cycle as the shard uses it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


#: Builds the command server of a leader: ``(nc, exchange, shard name, prefix)``.
ServerFactory = Callable[["Client", Any, str, str], CommandServing]


def _default_server(nc: Client, exchange: Any, shard: str, prefix: str) -> CommandServing:
    if isinstance(exchange, AccountLedger):
        from .account_server import AccountServer

        return AccountServer(nc, exchange, shard, prefix)
    from .server import CommandServer

    server: CommandServing = CommandServer(nc, exchange, shard, prefix)
    return server


def _die(status: int, message: str) -> None:
    """Log ``message`` and end the process at once with ``status`` (no cleanup: a stale leader must
    not answer anything more, and what it had not made durable was never acknowledged)."""
    with contextlib.suppress(Exception):
        log.critical(message)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
    os._exit(status)


class ShardInstance:
    """One instance of a shard (see the module docstring). Use :meth:`run` once."""

    def __init__(self, options: ShardOptions, *, server_factory: ServerFactory = _default_server) -> None:
        self.options = options
        self.role = "starting"
        self._server_factory = server_factory
        self._stop = asyncio.Event()
        self._caught_up = threading.Event()
        self._lease: Lease | None = None
        self._leading = False
        self._watchdog: threading.Thread | None = None
        self._journal: JetStreamJournal | None = None
        self._snapshots: SnapshotPublisher | None = None

    # ------------------------------------------------------------------ the zombie guards

    def _lease_deadline_passed(self) -> bool:
        """True when this leader's last successful renewal is a TTL old (it may no longer lead)."""
        lease = self._lease
        if lease is None or not self._leading:
            return False
        if not lease.held:
            return True
        return time.monotonic() >= lease.expires_at

    def _check_lease(self) -> None:
        if self._lease_deadline_passed():
            _die(EXIT_LEASE_LOST, f"shard {self.options.name}: lease expired without renewal: exiting")

    def _watch(self) -> None:
        """Watchdog thread: exit as soon as the lease's deadline passes (a loop that is blocked or was
        paused does not get the chance to answer first)."""
        interval = min(0.05, self.options.lease_ttl / 20)
        while self._leading:
            self._check_lease()
            time.sleep(interval)

    def _on_sigcont(self, _signum: int, _frame: object) -> None:
        self._check_lease()

    def _on_lease_lost(self, reason: str) -> None:
        if self._leading:
            _die(EXIT_LEASE_LOST, f"shard {self.options.name}: lease lost ({reason}): exiting")

    def _on_fenced(self, exc: JournalFenced) -> None:
        _die(EXIT_FENCED, f"shard {self.options.name}: journal fenced ({exc}): exiting")

    # ------------------------------------------------------------------ life

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop cleanly (SIGTERM/SIGINT do this; call it on :meth:`run`'s loop)."""
        self._stop.set()
        if not self._leading:  # a standby stops following: it reads to the log's end and closes
            self._caught_up.set()  # (a leader taking over ends the follow itself, after its claim)

    async def run(self) -> int:
        """Run the instance until stopped; return the exit status (0 after a clean stop).

        Raises :class:`~manticore_matching.DataDirectoryLocked` when another process holds the data
        directory; lease loss and fencing end the process (see the module docstring)."""
        options = self.options
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
            # A plain handler, not the loop's: it runs as soon as the process continues, before the
            # loop dispatches anything it received while stopped.
            signal.signal(signal.SIGCONT, self._on_sigcont)
        lock = DataDirectoryLock.acquire(options.data_dir)
        try:
            nc = await connect(options.nats)
            try:
                # Restore the newest snapshot before the exchange opens. An account shard's checkpoint
                # (account_shard.CHECKPOINT) is not an exchange checkpoint: no snapshots for it yet.
                if options.snapshots_keep and options.role != "account":
                    self._snapshots = await asyncio.to_thread(
                        open_snapshots,
                        options.nats,
                        options.name,
                        options.data_dir,
                        keep=options.snapshots_keep,
                        retention=options.log_retention,
                    )
                return await self._run_connected(nc, lock)
            finally:
                if self._snapshots is not None:
                    await asyncio.to_thread(self._snapshots.close)
                with contextlib.suppress(Exception):
                    await nc.close()
        finally:
            lock.release()

    def _journal_factory(self, on_durable: Callable[[int], None]) -> JetStreamJournal:
        self._journal = JetStreamJournal(
            self.options.nats,
            self.options.name,
            on_durable=on_durable,
            on_fenced=self._on_fenced,
            follow_until=self._caught_up,
            on_checkpoint=self._snapshots.offer if self._snapshots is not None else None,
        )
        return self._journal

    async def _run_connected(self, nc: Client, lock: DataDirectoryLock) -> int:
        options = self.options
        kv = await ensure_lease_bucket(nc.jetstream(), options.nats, options.lease_ttl)
        exchange: Any
        if options.role == "account":
            assert options.routing is not None
            durable: list[Callable[[int], None]] = []
            exchange = AccountLedger(
                options.data_dir,
                AccountState(options.name, options.routing, options.risk_limits),
                self._journal_factory(lambda position: durable[0](position) if durable else None),
                checkpoint_every=options.checkpoint_every,
            )
            durable.append(exchange.on_durable)
        else:
            limits = options.risk_limits
            if options.role == "market":  # the account shard applies the per-user limits
                limits = replace(limits, max_open_orders=None, rate_limit_orders=None, rate_limit_window=None)
            exchange = Exchange(
                options.data_dir,
                storage_url=options.storage_url,
                risk_limits=limits,
                checkpoint_every=options.checkpoint_every,
                lock=lock,
                journal_factory=self._journal_factory,
                settle_as=options.name if options.role == "market" else None,
            )
        self.role = "standby"
        log.info("shard %s: instance %s following the log", options.name, options.instance_id)
        opening = asyncio.ensure_future(asyncio.to_thread(exchange.open))
        self._lease = Lease(
            kv, options.name, options.instance_id, options.lease_ttl, on_lost=self._on_lease_lost
        )
        campaign = asyncio.ensure_future(self._campaign())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait({opening, campaign, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if opening in done and opening.exception() is not None:
                return self._failed_open(opening.exception())
            won = campaign in done and campaign.result()
            if not won or self._stop.is_set():  # stopping as a standby: read to the end, checkpoint there
                campaign.cancel()
                self._caught_up.set()
                try:
                    await opening
                except Exception as exc:
                    return self._failed_open(exc)
                await asyncio.to_thread(exchange.close)
                with contextlib.suppress(Exception):
                    await self._lease.release()  # won while stopping, or a grant not confirmed yet
                log.info("shard %s: standby %s stopped", options.name, options.instance_id)
                return 0
            return await self._lead(nc, exchange, opening)
        finally:
            for task in (campaign, stopping):
                task.cancel()

    def _failed_open(self, exc: BaseException | None) -> int:
        log.critical("shard %s: the log cannot be followed: %r", self.options.name, exc)
        return EXIT_FENCED if isinstance(exc, JournalFenced) else EXIT_JOURNAL_FAILED

    async def _campaign(self) -> bool:
        """Try to take the lease until it is won (True)."""
        lease = self._lease
        assert lease is not None
        tick = 0
        while not self._stop.is_set():
            try:
                if await lease.acquire():
                    return True
            except Exception as exc:  # NATS unreachable for a moment: campaign on
                log.warning("shard %s: lease request failed (%r); trying again", self.options.name, exc)
            # Following is the exchange's replay, which turns the cyclic collector off for the whole
            # process until it returns: collect here instead, so that a long standby does not grow.
            tick += 1
            if tick % _FULL_COLLECTION_EVERY == 0:
                gc.collect()
            else:
                gc.collect(1)
            await asyncio.sleep(self.options.lease_ttl / 6)
        return False

    async def _lead(self, nc: Client, exchange: Any, opening: asyncio.Future[None]) -> int:
        options = self.options
        lease = self._lease
        assert lease is not None
        started = time.monotonic()
        self._leading = True
        lease.start()
        self._watchdog = threading.Thread(target=self._watch, name="manticore-lease-watchdog", daemon=True)
        self._watchdog.start()
        log.info(
            "shard %s: lease won by %s (term %s); claiming the log",
            options.name,
            options.instance_id,
            lease.term,
        )
        await self._claim_log(lease)
        log.info("shard %s: applying the log to its end", options.name)
        self._caught_up.set()
        server: CommandServing | None = None
        status = EXIT_JOURNAL_FAILED  # until the leader has served and stopped cleanly
        try:
            try:
                await opening
            except Exception as exc:
                status = self._failed_open(exc)
                return status
            await asyncio.to_thread(self._create_markets, exchange)
            server = self._server_factory(nc, exchange, options.name, options.nats.prefix)
            await server.start()
            await self._announce(nc, lease)
            self.role = "leader"
            journal = self._journal
            log.info(
                "shard %s: leader %s (log position %d, stream sequence %d, takeover %.3f s)",
                options.name,
                options.instance_id,
                exchange.journal.appended,
                journal.stream_sequence if journal is not None else 0,
                time.monotonic() - started,
            )
            status = await self._serve(exchange)
            return status
        finally:
            if server is not None:
                await server.stop()
            try:
                await asyncio.to_thread(exchange.close, checkpoint=status == 0)
            finally:
                self._leading = False
            with contextlib.suppress(Exception):
                await lease.release()
            log.info("shard %s: leader %s stopped (status %d)", options.name, options.instance_id, status)

    async def _announce(self, nc: Client, lease: Lease) -> None:
        """Tell the gateways (and the account shard) that this leader serves: they re-send what was
        in flight to its predecessor at once (:mod:`.leader_news`). A failed announcement only leaves
        them to their attempt timeouts."""
        options = self.options
        body = protocol.dumps({"shard": options.name, "instance": options.instance_id, "term": lease.term})
        try:
            await nc.publish(protocol.leader_subject(options.nats.prefix, options.name), body)
            await nc.flush()
        except Exception as exc:
            log.warning("shard %s: the leader announcement failed: %r", options.name, exc)

    async def _claim_log(self, lease: Lease) -> None:
        """The takeover's first write, while the exchange still follows the log (see the module
        docstring); the process exits if it is fenced by another leader or cannot be written."""
        journal = self._journal
        assert journal is not None and lease.term is not None
        try:
            await asyncio.to_thread(journal.claim, lease.term, self.options.instance_id)
        except JournalFenced as exc:
            _die(EXIT_FENCED, f"shard {self.options.name}: the log cannot be claimed ({exc}): exiting")
        except Exception as exc:
            _die(
                EXIT_JOURNAL_FAILED,
                f"shard {self.options.name}: the log cannot be claimed ({exc!r}): exiting",
            )

    def _create_markets(self, exchange: Any) -> None:
        if not isinstance(exchange, Exchange):
            return  # an account shard has no books
        created = [
            exchange.create_market(config).position
            for config in self.options.markets
            if config.symbol not in exchange.markets
        ]
        if created and not exchange.wait_durable(created[-1]):
            raise ServiceUnavailable("the configured markets could not be made durable")

    async def _serve(self, exchange: Any) -> int:
        """The leader's watch (the command server runs the expiry timer): 0 when stopped, non-zero when
        the journal failed."""
        journal = exchange.journal
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.25)
            self._check_lease()
            if not journal.healthy and not self._stop.is_set():
                if self._journal is not None and self._journal.fenced:
                    _die(EXIT_FENCED, f"shard {self.options.name}: journal fenced: exiting")
                log.critical("shard %s: the journal failed: exiting", self.options.name)
                return EXIT_JOURNAL_FAILED
        return 0


def run_shard(options: ShardOptions, *, server_factory: ServerFactory = _default_server) -> int:
    """Run one shard instance in this process until it stops; return its exit status."""
    instance = ShardInstance(options, server_factory=server_factory)
    return asyncio.run(instance.run())
