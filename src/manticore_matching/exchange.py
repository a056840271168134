"""The exchange: many markets behind one order-entry pipeline (risk -> book), journaled and restorable.

An :class:`Exchange` owns one :class:`~manticore_orderbook.OrderBook` per market, a
:class:`~manticore_risk.RiskManager` that holds and settles funds from the books' events, a
:class:`~manticore_matching.journal.Journal` of accepted commands, and a
:class:`~manticore_storage.StorageManager` that records orders and trades for queries.

Durability: every command that changed something is appended to the journal with its clock reading,
and is acknowledged (:meth:`Exchange.wait_durable`) once the journal's group commit has put it on disk.
On start the exchange loads its last checkpoint (every book's exported state, the risk ledger and the
journal position) and replays the journal after it through the same code, with the recorded clock
readings: the books are deterministic, so the replay reproduces every event, and each record carries
the book's resulting sequence so that a divergence is detected rather than silently accepted.

Checkpoints: every ``checkpoint_every`` journal records the exchange writes one **in the background**
(Linux; :mod:`.background`): the command that reaches the count forks the process under the exchange
lock (a few milliseconds) and goes on; the forked copy builds and writes the checkpoint of that
instant to a temporary file. A thread then waits for the journal and storage to be durable up to the
captured position; the next command (or the expiry timer) renames the file into place (microseconds),
and the thread syncs the directory and lets the journal drop the segments whose records are all
covered (:meth:`~.journal.Journal.rotate`). A crash at any moment leaves the previous checkpoint (or
the new one, once renamed) and a journal that still holds every record after it; a failed background
checkpoint is logged, leaves the previous one, and the next one retries. One is in flight at a time.
:meth:`Exchange.checkpoint` (explicit, and on close) writes one synchronously, as do platforms
without ``fork``.

What leaves the process follows the journal: stream messages and storage writes of a command are
released only after its journal record is durable, so nobody outside ever sees a command that a crash
could undo.

This module is the exchange's life cycle, market registry, command frame and commit, and replay; the
jobs around them have their own modules: :mod:`.commands` (arguments -> journal records), :mod:`.apply`
(records -> risk and book), :mod:`.checkpoints`, :mod:`.release` (what leaves after durability),
:mod:`.recent`, :mod:`.queries` and :mod:`.reads` (the read side).

Threading: commands are meant to be called from one thread (the server's event loop); a lock makes
other callers safe. Durability callbacks (storage hand-off, message listeners) run on the journal's
writer thread.
"""

from __future__ import annotations

import functools
import gc
import logging
import math
import operator
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from manticore_orderbook import ErrorPayload, EventManager, EventType
from manticore_risk import RiskLimits, RiskManager
from manticore_storage import StorageManager

from . import apply, background, commands
from .background import Flight
from .checkpoints import (
    CheckpointState,
    build_checkpoint,
    install_checkpoint,
    read_checkpoint,
    sync_directory,
    write_checkpoint,
)
from .command_ids import CommandResults, check_command_id
from .commands import GENERATED_PREFIX, ORDER_ID, Receipt
from .config import MarketConfig
from .demand import Wanted
from .errors import (
    ExchangeError,
    InvalidCommand,
    MarketExists,
    OrderNotFound,
    OrderRejected,
    ServiceUnavailable,
    UnknownMarket,
)
from .feed import CommandCapture, command_messages, fill_record, trade_record, users_of
from .journal import DEFAULT_COMMIT_INTERVAL, CommandLog, Journal, JournalClosed, JournalCorrupt, decoded_keys
from .lock import DataDirectoryLock
from .market import RECENT_TRADES, TRADE_KEYS, Market, new_book, owned
from .reads import ExchangeReads
from .recent import RecentOrders, ReplayFills
from .release import Listeners, RecordEntry, Release
from .routed import Outbox, ended_orders, settlement, sweep

__all__ = ["Exchange", "Receipt"]

log = logging.getLogger("manticore_matching")

TRADE_EXECUTED = EventType.TRADE_EXECUTED
ORDER_FILLED = EventType.ORDER_FILLED
#: The journal operations of one book that :func:`.apply.replay` replays.
_BOOK_OPS = frozenset({"place", "cancel", "modify", "expire"})
_PREFIX_LENGTH = len(GENERATED_PREFIX)
#: A recent trade's values out of its TRADE_EXECUTED payload, in :data:`TRADE_KEYS` order.
_trade_values = operator.itemgetter(*TRADE_KEYS)
#: What :meth:`Exchange._commit` returns for a replayed command without a command id (unread).
_REPLAYED = Receipt(0)
# The replayed records' keys that the restore loop and _replay_place read, as the journal's decoding holds
# them (lookups by identity: see decoded_keys; any other dict's lookups find what the names find).
_N, _OP, _SYMBOL, _TS, _DISPLAYED_QUANTITY, _ORDER_ID, _CLIENT_ORDER_ID, _EXPIRY_TIME = decoded_keys(
    "n", "op", "symbol", "ts", "displayed_quantity", "order_id", "client_order_id", "expiry_time"
)
_SIDES = commands.SIDES
_new_object = object.__new__
_set_fields = commands.set_receipt_fields
_copy_dict = dict.copy
#: The ``place`` record of a plain GTC limit order (what :func:`.commands.place_record` makes of
#: :func:`.commands.order_args`' arguments for one), its varying values None: ``place_order`` copies it
#: (one block copy of the key table) and stores the eight values that vary, in place (key order kept).
_PLAIN_PLACE: dict[str, Any] = {
    "op": "place",
    "ts": None,
    "order_id": None,
    "client_order_id": None,
    "user_id": None,
    **commands.PLAIN_LIMIT_ARGS,
}


class _CommandFrame:
    """The frame of one command (what :meth:`Exchange._command` returns): ``now`` on entry; on an
    exception, the command's captured events and storage units are dropped (a class rather than a
    generator-based context manager: it runs for every command)."""

    __slots__ = ("_before", "_exchange", "_market", "_now")

    def __init__(self, exchange: Exchange, market: Market | None, now: float) -> None:
        self._exchange = exchange
        self._market = market
        self._now = now
        self._before = market.book.sequence if market is not None else 0

    def __enter__(self) -> float:
        return self._now

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            return
        self._exchange._discard(self._market, self._before)


class Exchange(ExchangeReads, Listeners):
    """Many markets, one pipeline, a journal.

    Args:
        data_dir: where the journal and checkpoint live (created if missing), and the SQLite database
            when no ``storage_url`` is given.
        markets: markets to create if they do not exist yet (existing ones keep their stored config).
        storage_url: SQLAlchemy URL of the order/trade store (default ``sqlite:///<data_dir>/manticore.db``).
        risk_limits: pre-trade limits (see :class:`manticore_risk.RiskLimits`).
        clock: wall clock in seconds; readings never go backwards inside the exchange.
        fsync: fsync the journal (default). Off only for tests and benchmarks that accept losing
            acknowledged commands on a machine crash.
        checkpoint_every: write a checkpoint after this many journal records (0: only on close), in the
            background where the platform allows (see the module docstring).
        lock: the caller's held lock on ``data_dir`` (it stays the caller's to release). Without one,
            :meth:`open` takes the lock first and :meth:`close` releases it.
        journal_factory: builds the command log, given the callback it must call with each new durable
            position (:class:`~manticore_matching.journal.CommandLog`); default: the file
            :class:`~manticore_matching.journal.Journal` in ``data_dir/journal``. ``data_dir`` still
            holds the checkpoint and the lock either way.
        settle_as: makes this exchange a market shard named so (docs/scale-out.md, phase 2): it takes
            :meth:`routed` commands from an account shard, and after every command that touches users
            their available balances are swept back and reported in :attr:`outbox`
            (:mod:`manticore_matching.routed`). None (default): a whole exchange, as always.
        background_checkpoints: write the automatic checkpoints in the background (default, where
            :data:`~manticore_matching.background.AVAILABLE`); False: on the command path, as before.
        journal_commit_interval: seconds between the starts of two fsync rounds of the default
            journal at least (:class:`~manticore_matching.journal.Journal`'s ``commit_interval``;
            ignored with a ``journal_factory``).
        checkpoint_hook: for tests and monitoring: called from a background checkpoint's thread with
            ``(stage, position)`` at ``"forked"`` (the writer process runs), ``"written"`` (it wrote the
            file), ``"prepared"`` (journal and storage durable up to ``position``), ``"installed"``
            (renamed into place by the command thread), ``"retired"`` (directory synced, journal
            segments dropped) and ``"failed"``. An exception from the hook before
            ``"prepared"`` fails that checkpoint (and is logged).
        checkpoint_spacing: seconds at least between the end of a background checkpoint (its journal
            segments retired) and the fork of the next one, which waits that long when it falls due
            earlier (``manticore serve``: 0.5 s): the end of one (storage synced, the journal's new
            segment and directory synced, files removed) and the next one's fork each delay the
            commands of a few milliseconds, and back to back their delays add up (docs/performance.md,
            session 22). 0: the next one starts as soon as it is due.

    Call :meth:`open` before use and :meth:`close` at the end. One exchange owns a data directory at a
    time: :meth:`open` raises :class:`~manticore_matching.DataDirectoryLocked` while another holds it.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        markets: Iterable[MarketConfig] = (),
        storage_url: str | None = None,
        risk_limits: RiskLimits | None = None,
        clock: Callable[[], float] = time.time,
        fsync: bool = True,
        checkpoint_every: int = 100_000,
        lock: DataDirectoryLock | None = None,
        journal_factory: Callable[[Callable[[int], None]], CommandLog] | None = None,
        settle_as: str | None = None,
        background_checkpoints: bool = True,
        checkpoint_hook: Callable[[str, int], None] | None = None,
        journal_commit_interval: float = DEFAULT_COMMIT_INTERVAL,
        checkpoint_spacing: float = 0.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._initial_markets = tuple(markets)
        self._storage_url = storage_url or f"sqlite:///{self.data_dir / 'manticore.db'}"
        self._risk_limits = risk_limits if risk_limits is not None else RiskLimits()
        self._clock = clock
        self._fsync = fsync
        self._checkpoint_every = checkpoint_every
        self._background_checkpoints = background_checkpoints and background.AVAILABLE
        self._checkpoint_hook = checkpoint_hook
        if not checkpoint_spacing >= 0:  # NaN too
            raise ValueError(f"checkpoint_spacing must be >= 0, not {checkpoint_spacing!r}")
        self._checkpoint_spacing = checkpoint_spacing
        #: ``time.monotonic()`` when the last background checkpoint's thread finished (spacing).
        self._flight_ended = -math.inf
        #: The background checkpoint in flight (from the fork until its thread is done), if any.
        self._flight: Flight | None = None
        #: The thread that waits for the background checkpoints (started at the first one).
        self._checkpoint_worker: threading.Thread | None = None
        self._checkpoint_queue: queue.SimpleQueue[Flight | None] = queue.SimpleQueue()
        #: :meth:`_commit` calls :meth:`_checkpoint_step` once ``_since_checkpoint`` reaches this: the
        #: next checkpoint's count, or 0 when a background checkpoint's thread wants the command thread.
        self._checkpoint_due = checkpoint_every or sys.maxsize
        self._lock = threading.RLock()
        self._now = 0.0
        #: The books' clock: the clock reading of the command in progress (``_now``), read by a callable
        #: made of C parts (a book reads its clock in every command, and calling a Python method from
        #: the compiled book costs an interpreter frame each time).
        self._book_clock_reader: Callable[[], float] = functools.partial(getattr, self, "_now")
        self._markets: dict[str, Market] = {}
        self._next_order_no = 0
        self._replaying = False
        self._opened = False
        self._failed = False
        self._units: list[Any] = []
        self._release = Release()
        self._orders = RecentOrders()
        self._commands = CommandResults()
        # Aliases of the view's parts (the same objects), read by tests and debugging.
        self._recent = self._orders.recent
        self._live_client_ids = self._orders.live_names
        self._recent_client_ids = self._orders.recent_names
        self._since_checkpoint = 0
        self._checkpoint_position = 0
        self._stored_position = 0
        self._replayed_to = 0
        #: Per market, in a replay of a whole exchange: the fills its replay builds (:class:`ReplayFills`).
        self._replay_fills: dict[str, ReplayFills] = {}
        self._capture_stale = False
        #: What the stream listeners read (None: no listener, or a replay): :meth:`_refresh_wanted`.
        self._wanted: Wanted | None = None
        self.risk = RiskManager(limits=self._risk_limits)
        self._settle_as = settle_as
        #: A market shard's settlements not yet applied by the account shard (None: a whole exchange).
        self.outbox: Outbox | None = Outbox() if settle_as is not None else None
        self.storage: StorageManager | None = None
        self.journal: CommandLog
        if journal_factory is None:
            self.journal = Journal(
                self.data_dir / "journal",
                fsync=fsync,
                on_durable=self._on_durable,
                commit_interval=journal_commit_interval,
            )
        else:
            self.journal = journal_factory(self._on_durable)
        self.handler_errors = 0
        self.started_at = 0.0
        self.replayed_records = 0
        self.directory_lock = lock
        self._owns_directory_lock = lock is None

    # ------------------------------------------------------------------ life cycle

    def open(self) -> None:
        """Lock the data directory, restore the last checkpoint, replay the journal after it, create
        missing configured markets.

        Raises :class:`~manticore_matching.DataDirectoryLocked` if another exchange holds the
        directory (nothing there was read or written), and
        :class:`~manticore_matching.journal.JournalCorrupt` if the journal is damaged or the replay
        does not reproduce a recorded result. A failed open writes no checkpoint and releases the lock."""
        with self._lock:
            if self._opened:
                raise RuntimeError("the exchange is already open")
            if self._owns_directory_lock:
                self.directory_lock = DataDirectoryLock.acquire(self.data_dir)
            elif (
                self.directory_lock is None
                or not self.directory_lock.held
                or self.directory_lock.directory != self.data_dir.resolve()
            ):
                raise RuntimeError(f"the lock given to the exchange is not held on {self.data_dir}")
            try:
                self._restore()
            except BaseException:
                self._abandon()
                raise

    def _abandon(self) -> None:
        """After a failed open: stop the journal and storage without a checkpoint, drop the lock."""
        self._opened = False
        try:
            self._settle_flight(install=False)
            self._stop_checkpoint_worker()
            self.journal.close()
            if self.storage is not None:
                self.storage.close()
        finally:
            self._release_directory()

    def _release_directory(self) -> None:
        if self._owns_directory_lock and self.directory_lock is not None:
            self.directory_lock.release()
            self.directory_lock = None

    def _restore(self) -> None:
        with self._lock:
            started = time.perf_counter()
            self.storage = StorageManager(self._storage_url)
            self.storage.claim_ownership()
            for stale in self.data_dir.glob(f"{background.TEMPORARY_PREFIX}*{background.TEMPORARY_SUFFIX}"):
                stale.unlink(missing_ok=True)  # a background checkpoint that a crash interrupted
            # Loading and replay build the long-lived state (orders, levels, ledger) and little garbage:
            # the cyclic collector would traverse the growing heap again and again for nothing.
            collecting = gc.isenabled()
            gc.disable()
            try:
                position = self._load_checkpoint()
                self._stored_position = self._storage_position(position)
                self._replaying = True
                last: dict[str, Any] | None = None
                self._replayed_to = position
                self._storage_capture(self._stored_position <= position)
                stored_next = self._stored_position + 1
                for record in self.journal.read(after=position):
                    n = record[_N]
                    if n == stored_next:
                        self._storage_capture(True)
                    op = record.get(_OP)
                    if op == "place":  # almost every record: no dispatch frame
                        self._replay_place(record)
                    elif type(op) is str and op in _BOOK_OPS:
                        self._replay_book_record(record, op)
                    else:
                        self._apply_record(record)
                    self._replayed_to = n
                    self.replayed_records += 1
                    last = record
                if last is not None and last["n"] > self._stored_position and self._markets:
                    self.storage.submit_journal_position(last["n"], last["ts"])
            finally:
                self._replaying = False
                self._finish_replayed_trades()
                for fills in self._replay_fills.values():
                    fills.capture_fills(True)
                self._replay_fills.clear()
                self._storage_capture(True)
                if collecting:
                    gc.enable()
            self._refresh_wanted()
            self._release.released = self.journal.appended  # replayed: storage has their units
            self.storage.flush()
            self.journal.start()
            self._opened = True
            for config in self._initial_markets:
                if config.symbol not in self._markets:
                    self.create_market(config)
            self.wait_durable(self.journal.appended)
            self.started_at = time.time()
            log.info(
                "exchange open: %d markets, checkpoint at %d, %d journal records replayed in %.2f s",
                len(self._markets),
                position,
                self.replayed_records,
                time.perf_counter() - started,
            )

    def close(self, *, checkpoint: bool = True) -> None:
        """Write a checkpoint, then stop the journal and storage (flushing both) and release the data
        directory. ``checkpoint=False`` (a start that failed half-way) leaves checkpoint and journal
        segments as they are: the next open replays the journal."""
        with self._lock:
            if not self._opened:
                return
            try:
                self._settle_flight(install=checkpoint)
                self._stop_checkpoint_worker()
                if checkpoint:
                    self.checkpoint()
            finally:
                self._opened = False
                try:
                    self.journal.close()
                    if self.storage is not None:
                        self.storage.close()
                finally:
                    self._release_directory()

    def __enter__(self) -> Exchange:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ durability

    def wait_durable(self, position: int, timeout: float | None = 30.0) -> bool:
        """Block until the command at ``position`` is on disk (True) or ``timeout`` passes (False).

        Raises ServiceUnavailable if the journal can no longer write."""
        try:
            return self.journal.wait(position, timeout)
        except JournalClosed as exc:
            raise ServiceUnavailable("the command journal cannot write") from exc

    def _on_durable(self, position: int) -> None:
        self._release.on_durable(position, self.storage)

    # ------------------------------------------------------------------ markets

    @property
    def markets(self) -> dict[str, MarketConfig]:
        """Market configs by symbol, in creation order."""
        return {symbol: market.config for symbol, market in self._markets.items()}

    def command_receipt(self, command_id: object) -> Receipt | None:
        """The receipt of the command journaled recently under ``command_id`` (:mod:`.command_ids`),
        None if there is none."""
        if not isinstance(command_id, str):
            return None
        with self._lock:
            return self._commands.get(command_id)

    def create_market(self, config: MarketConfig, *, command_id: str | None = None) -> Receipt:
        """Add a market. Raises MarketExists if the symbol is taken."""
        with self._lock:
            if (repeated := self._commands.lookup(check_command_id(command_id), "market")) is not None:
                return repeated
            return self._create_market(config, command_id)

    def _create_market(self, config: MarketConfig, command_id: str | None) -> Receipt:
        with self._lock, self._command(None) as now:
            if config.symbol in self._markets:
                raise MarketExists(f"market {config.symbol} already exists")
            self._install_market(config)
            record: dict[str, Any] = {"op": "market", "ts": now, "market": config.to_dict()}
            if command_id is not None:
                record["cid"] = command_id
            return self._commit(record, None, now)

    def _install_market(
        self,
        config: MarketConfig,
        state: dict[str, Any] | None = None,
        trades: Iterable[dict[str, Any]] = (),
    ) -> Market:
        manager = EventManager()
        book = new_book(config, manager, self._book_clock_reader)
        if state is not None:
            book.restore_state(state)
        capture = CommandCapture()
        # Only what each handler reads: the book builds no payload that nobody takes.
        for event_type in RiskManager.EVENT_TYPES:
            manager.subscribe(event_type, self.risk.on_event)
        capture.attach(manager, self._wanted is not None and self._wanted.book(config.symbol))
        manager.subscribe(EventType.ERROR, self._on_handler_error)
        self.risk.register_market(
            symbol=config.symbol, base_asset=config.base_asset, quote_asset=config.quote_asset, book=book
        )
        assert self.storage is not None
        persister = self.storage.attach(book, deliver=self._units.append)
        if self._replaying and self._stored_position > self._replayed_to:
            persister.stop()  # storage holds this market's rows up to further on
        market = Market(config, book, capture, deque(trades, maxlen=RECENT_TRADES), persister=persister)
        self._markets[config.symbol] = market
        return market

    def _listeners_changed(self) -> None:
        # Applied by the next command's frame, which holds the exchange's lock: taking the lock here
        # could deadlock a listener removed from the journal's thread against a waiting checkpoint.
        self._capture_stale = True

    def _refresh_wanted(self) -> None:
        """Read what the stream listeners want now (never in replay: nothing is streamed then) and make
        each market's capture complete (every event, for its book diffs) only if they read its diffs."""
        self._capture_stale = False  # first: a change from another thread after this is seen next time
        wanted = None if self._replaying else self._release.wanted()
        self._wanted = wanted
        for symbol, market in self._markets.items():
            market.capture.listen(market.book.event_manager, wanted is not None and wanted.book(symbol))

    def _on_handler_error(self, _event_type: EventType, data: dict[str, Any]) -> None:
        error = cast(ErrorPayload, data)
        self.handler_errors += 1
        log.error("an event handler failed: %s", error["message"])

    # ------------------------------------------------------------------ commands

    def place_order(
        self,
        user_id: str,
        symbol: str,
        side: str,
        quantity: object,
        price: object = None,
        order_type: str = "limit",
        time_in_force: str | None = None,
        expiry_time: object = None,
        stop_price: object = None,
        displayed_quantity: object = None,
        trail_value: object = None,
        trail_is_percent: bool = False,
        self_trade_prevention: str | None = None,
        client_order_id: str | None = None,
        *,
        command_id: str | None = None,
    ) -> Receipt:
        """Check with risk, hold funds, send to the book. Returns the receipt with the order's id.

        The exchange names every order ``MC-<n>`` (``n`` rises by one per accepted order).
        ``client_order_id`` (1-64 characters of ``A-Z a-z 0-9 _ . : -``) is the user's own name for it,
        returned on the order, its events, stream frames, history and fills; it must not be the name of
        another of this user's live orders (InvalidCommand, code ``duplicate_client_order_id``), and
        may be reused once that order has ended. Other users' client order ids do not matter.
        Which fields each order type takes is :mod:`manticore_orderbook.rules`. Raises InvalidCommand
        for bad input, UnknownMarket, OrderRejected (``code`` from risk) when risk refuses,
        ServiceUnavailable if the journal cannot write; nothing changes then.

        ``command_id`` (every command takes one): the sender's id of this command; a command sent again
        under the id of one journaled recently gets that command's receipt and changes nothing
        (:mod:`.command_ids`).
        """
        with self._lock:
            if (
                command_id is not None
                and (repeated := self._commands.lookup(check_command_id(command_id), "place")) is not None
            ):
                return repeated
            market = self._markets.get(symbol) if type(symbol) is str else None  # self._market, inlined
            if market is None:
                market = self._market(symbol)  # raises UnknownMarket (or finds a str subclass's)
            # A plain GTC limit order given as strings (the most frequent order by far): its price and
            # quantity strings, whose record texts the market may remember (Market.prices).
            plain_price: str | None = None
            plain_quantity = ""
            price_text: str | None = None
            quantity_text: str | None = None
            if (
                type(price) is str
                and type(quantity) is str
                and type(side) is str
                and order_type == "limit"
                and time_in_force is None
                and expiry_time is None
                and stop_price is None
                and displayed_quantity is None
                and trail_value is None
                and trail_is_percent is False
                and self_trade_prevention is None
                and side in _SIDES
            ):
                plain_price = price
                plain_quantity = quantity
                price_text = market.prices.get(price)
                if price_text is not None:
                    quantity_text = market.quantities.get(quantity)
            args: dict[str, Any] | None = None
            if quantity_text is None:
                args = commands.order_args(
                    market.config,
                    side,
                    quantity,
                    price,
                    order_type,
                    time_in_force,
                    expiry_time,
                    stop_price,
                    displayed_quantity,
                    trail_value,
                    trail_is_percent,
                    self_trade_prevention,
                )
                if plain_price is not None:
                    market.remember_texts(plain_price, args["price"], plain_quantity, args["quantity"])
            if type(user_id) is not str or not user_id:  # check_user_id's test, without its call
                commands.check_user_id(user_id)
            client_id = (
                None
                if client_order_id is None
                else self._orders.free_client_order_id(user_id, client_order_id)
            )
            order_id = f"{GENERATED_PREFIX}{self._next_order_no + 1}"
            now = max(self._clock(), self._now)
            expiries = market.expiries
            if (
                (not expiries or expiries[0][0] > now)
                and self._opened
                and not self._failed
                and self.journal.healthy
                and not self._capture_stale
            ):
                # _command_now when no order of the market is due and the exchange accepts commands
                # (_check_accepting passes) with nothing to refresh: the clock reading, set.
                self._now = now
            else:
                now = self._command_now(market)
            # What the command frame (``with self._command_in(market)``) does, written out in the most
            # frequent command: no frame object and no calls of its __enter__ and __exit__.
            before = market.book.sequence
            try:
                if args is None:
                    # order_args' record of a plain limit order whose price and quantity strings this
                    # market has seen (their texts are the ones order_args gave them): written out.
                    # A copy of the plain record's template (its keys in order, the constant values
                    # set) with the eight varying values stored: a dict display inserts all 17 keys.
                    symbol = market.config.symbol
                    record = _copy_dict(_PLAIN_PLACE)
                    record["ts"] = now
                    record["order_id"] = order_id
                    record["client_order_id"] = client_id
                    record["user_id"] = user_id
                    record["symbol"] = symbol
                    record["side"] = side
                    record["price"] = price_text
                    record["quantity"] = quantity_text
                    if command_id is not None:
                        record["cid"] = command_id
                    apply.place_plain(
                        self.risk,
                        market.book,
                        order_id,
                        user_id,
                        symbol,
                        side,
                        # Both texts are set here (args is None only when both were remembered).
                        price_text,  # type: ignore[arg-type]
                        quantity_text,  # type: ignore[arg-type]
                        client_id,
                        now,
                    )
                else:
                    record = commands.place_record(now, order_id, client_id, user_id, args)
                    if command_id is not None:
                        record["cid"] = command_id
                    apply.place(self.risk, market.book, record, check=True)
                self._next_order_no += 1
                return self._commit(record, market, now, order_id)
            except BaseException:
                self._discard(market, before)
                raise

    def cancel_order(
        self, user_id: str | None, order_id: object, *, command_id: str | None = None
    ) -> Receipt:
        """Cancel a live order of ``user_id`` (any user's when ``user_id`` is None: admin).

        Raises OrderNotFound when no live order of this user has the id."""
        with self._lock:
            if (repeated := self._commands.lookup(check_command_id(command_id), "cancel")) is not None:
                return repeated
            market = owned(self._markets, user_id, order_id)
            with self._command_in(market) as now:
                if not market.book.cancel_order(order_id):
                    raise OrderNotFound(f"order {str(order_id)[:64]!r} not found")
                record = {"op": "cancel", "ts": now, "symbol": market.config.symbol, "order_id": order_id}
                if command_id is not None:
                    record["cid"] = command_id
                return self._commit(record, market, now, str(order_id))

    def cancel_order_by_client_id(
        self, user_id: str, client_order_id: object, *, command_id: str | None = None
    ) -> Receipt:
        """Cancel the live order that ``user_id`` named ``client_order_id``.

        Raises OrderNotFound when this user has no live order by that name (another user's names are
        never found)."""
        with self._lock:
            if (repeated := self._commands.lookup(check_command_id(command_id), "cancel")) is not None:
                return repeated
            order_id = self._orders.live_client_order(user_id, client_order_id)
            if order_id is None:
                raise OrderNotFound(f"no open order with client_order_id {str(client_order_id)[:64]!r}")
            return self.cancel_order(user_id, order_id, command_id=command_id)

    def modify_order(
        self,
        user_id: str | None,
        order_id: object,
        new_price: object = None,
        new_quantity: object = None,
        new_expiry_time: object = None,
        *,
        command_id: str | None = None,
    ) -> Receipt:
        """Change a live order's price, total quantity or expiry (see ``OrderBook.modify_order``).

        A larger quantity or a new price is checked by risk like a new order. Raises OrderNotFound,
        InvalidCommand, OrderRejected."""
        with self._lock:
            if (repeated := self._commands.lookup(check_command_id(command_id), "modify")) is not None:
                return repeated
            market = owned(self._markets, user_id, order_id)
            config = market.config
            price, quantity, expiry = commands.modify_args(config, new_price, new_quantity, new_expiry_time)
            ts = self._expire_due_in(market)[0]
            owned(self._markets, user_id, order_id)  # it may just have expired
            with self._command(market, ts) as now:
                decision = self.risk.check_modify(order_id, new_price=price, new_quantity=quantity, now=now)
                if not decision["approved"]:
                    raise OrderRejected.from_decision(decision)
                record = commands.modify_record(now, config.symbol, str(order_id), price, quantity, expiry)
                if command_id is not None:
                    record["cid"] = command_id
                apply.modify(market.book, record)
                return self._commit(record, market, now, str(order_id))

    def deposit(self, user_id: str, asset: str, amount: object, *, command_id: str | None = None) -> Receipt:
        """Credit ``amount`` of ``asset`` to ``user_id`` (admin operation)."""
        return self._transfer("deposit", user_id, asset, amount, command_id)

    def withdraw(self, user_id: str, asset: str, amount: object, *, command_id: str | None = None) -> Receipt:
        """Debit ``amount`` of ``asset`` from the user's available balance; OrderRejected
        (``insufficient_balance``) if it is not there."""
        return self._transfer("withdraw", user_id, asset, amount, command_id)

    def _transfer(self, op: str, user_id: str, asset: str, amount: object, command_id: str | None) -> Receipt:
        with self._lock:
            if (repeated := self._commands.lookup(check_command_id(command_id), op)) is not None:
                return repeated
            user_id, asset, value = commands.transfer_args(user_id, asset, amount)
            with self._command(None) as now:
                record = {"op": op, "ts": now, "user_id": user_id, "asset": asset, "amount": str(value)}
                if command_id is not None:
                    record["cid"] = command_id
                apply.transfer(self.risk, record)
                extra = None
                wanted = self._wanted
                if wanted is not None and (wanted.users is None or user_id in wanted.users):
                    extra = [{"type": "balances", "user_id": user_id, **self.balances(user_id)}]
                return self._commit(record, None, now, extra=extra)

    def routed(
        self,
        source: str,
        source_n: int,
        below: int,
        acked: int,
        user_id: str,
        funding: dict[str, str],
        action: dict[str, Any],
    ) -> dict[str, Any]:
        """Apply a command routed by the account shard ``source`` from its journal position
        ``source_n`` (a market shard only): credit ``funding`` ``{asset: amount}`` to ``user_id``, run
        ``action`` (``{"kind": "place", "order_id", "client_order_id", "symbol", <place_order's
        arguments>}``, ``{"kind": "cancel", "symbol", "order_id"}`` or ``{"kind": "modify", "symbol",
        "order_id", "new_price", "new_quantity", "new_expiry_time"}``), sweep, journal.

        Returns the command's settlement (:mod:`.routed`): its ``seq`` is the journal position to
        wait for; ``error`` (``{"type", "code", "message"}``) says why the action was refused (the
        funding then comes back whole). A command seen before returns its first settlement (or
        ``{"stale": True}`` once the account has applied it), journaling nothing. ``below``: every
        route of ``source`` at or below it is settled there; ``acked``: the account applied every
        settlement of this shard up to that position. InvalidCommand (nothing journaled) for a malformed
        user, funding or action object; ServiceUnavailable if the journal cannot write; RuntimeError on
        a whole exchange."""
        outbox = self.outbox
        if outbox is None:
            raise RuntimeError("routed commands go to a market shard (Exchange(settle_as=...))")
        with self._lock:
            found = outbox.lookup(source, source_n)
            if found is not None:
                return found
            commands.check_user_id(user_id)
            if not isinstance(funding, dict) or not isinstance(action, dict):
                raise InvalidCommand("a routed command has a funding object and an action object")
            for asset, amount in funding.items():
                commands.transfer_args(user_id, asset, amount)  # InvalidCommand before anything changes
            symbol = action.get("symbol")
            market = self._markets.get(symbol) if isinstance(symbol, str) else None
            ts = self._expire_due_in(market)[0] if market is not None else None
            with self._command(market, ts) as now:
                record: dict[str, Any] = {
                    "op": "routed",
                    "ts": now,
                    "source": source,
                    "source_n": source_n,
                    "below": below,
                    "acked": acked,
                    "user_id": user_id,
                    "funding": dict(funding),
                    "symbol": symbol if market is not None else None,
                    "action": dict(action),
                    "error": None,
                }
                order_id = self._apply_routed(record, market, live=True)
                self._commit(record, market, now, order_id)
                return outbox.pending[outbox.last]

    def settlements(self, after: int = 0) -> list[dict[str, Any]]:
        """A market shard's pending settlements after its position ``after``, oldest first (what the
        account shard has not confirmed yet); [] on a whole exchange."""
        with self._lock:
            return [] if self.outbox is None else self.outbox.after(after)

    def _apply_routed(self, record: dict[str, Any], market: Market | None, *, live: bool) -> str | None:
        """Credit a ``routed`` record's funding and apply its action (live: with the checks, writing
        ``error`` and the normalised action into the record; replay: as recorded). Returns the
        action's order id."""
        user = record["user_id"]
        for asset, amount in record["funding"].items():
            self.risk.deposit(user, asset, Decimal(amount))
        action = record["action"]
        order_id = action.get("order_id")
        order_id = order_id if isinstance(order_id, str) else None
        if record["error"] is not None:
            return order_id
        if not live:
            assert market is not None
            kind = action["kind"]
            if kind == "place":
                apply.place(self.risk, market.book, self._routed_place_record(record), check=False)
            elif kind == "cancel":
                if not market.book.cancel_order(action["order_id"]):
                    raise JournalCorrupt(f"replay of record {record['n']}: cancel found no order")
            else:
                apply.modify(market.book, action)
            return order_id
        try:
            if market is None:
                raise UnknownMarket(f"there is no market {str(record['symbol'])[:64]!r} on this shard")
            record["action"] = action = self._routed_action(record, market)
            if action["kind"] == "place":
                apply.place(self.risk, market.book, self._routed_place_record(record), check=True)
            elif action["kind"] == "cancel":
                owned({market.config.symbol: market}, user, action["order_id"])
                if not market.book.cancel_order(action["order_id"]):
                    raise OrderNotFound(f"order {action['order_id']!r} not found")
            else:
                owned({market.config.symbol: market}, user, action["order_id"])
                decision = self.risk.check_modify(
                    action["order_id"],
                    new_price=None if action["new_price"] is None else Decimal(action["new_price"]),
                    new_quantity=None if action["new_quantity"] is None else Decimal(action["new_quantity"]),
                    now=record["ts"],
                )
                if not decision["approved"]:
                    raise OrderRejected.from_decision(decision)
                apply.modify(market.book, action)
        except ExchangeError as exc:
            record["error"] = {"type": type(exc).__name__, "code": exc.code, "message": exc.message}
        return order_id

    def _routed_action(self, record: dict[str, Any], market: Market) -> dict[str, Any]:
        """A routed action validated and normalised into its journaled form; InvalidCommand,
        OrderNotFound for a bad one."""
        action = record["action"]
        kind = action.get("kind")
        order_id = action.get("order_id")
        if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
            raise InvalidCommand("a routed command names its order_id")
        symbol = market.config.symbol
        if kind == "place":
            args = commands.order_args(
                market.config,
                action.get("side"),
                action.get("quantity"),
                action.get("price"),
                action.get("order_type", "limit"),
                action.get("time_in_force"),
                action.get("expiry_time"),
                action.get("stop_price"),
                action.get("displayed_quantity"),
                action.get("trail_value"),
                action.get("trail_is_percent", False),
                action.get("self_trade_prevention"),
            )
            client_id = self._orders.free_client_order_id(record["user_id"], action.get("client_order_id"))
            return {"kind": "place", "order_id": order_id, "client_order_id": client_id, **args}
        if kind == "cancel":
            return {"kind": "cancel", "symbol": symbol, "order_id": order_id}
        if kind == "modify":
            price, quantity, expiry = commands.modify_args(
                market.config,
                action.get("new_price"),
                action.get("new_quantity"),
                action.get("new_expiry_time"),
            )
            return {
                "kind": "modify",
                **commands.modify_record(record["ts"], symbol, order_id, price, quantity, expiry),
            }
        raise InvalidCommand(f"unknown routed command {str(kind)[:32]!r}")

    @staticmethod
    def _routed_place_record(record: dict[str, Any]) -> dict[str, Any]:
        action = record["action"]
        args = {
            key: value for key, value in action.items() if key not in ("kind", "order_id", "client_order_id")
        }
        return commands.place_record(
            record["ts"], action["order_id"], action["client_order_id"], record["user_id"], args
        )

    def _settle(
        self,
        record: dict[str, Any],
        market: Market | None,
        events: list[tuple[EventType, Any]],
        order_id: str | None,
        order: dict[str, Any] | None,
    ) -> None:
        """A market shard's sweep after a command: the touched users' available balances go back to
        the account shard, reported as a settlement in the outbox (live and in replay alike)."""
        outbox = self.outbox
        assert outbox is not None
        position = record["n"] if self._replaying else self.journal.appended + 1
        users = users_of(events)
        routed = None
        if record["op"] == "routed":
            routed = [record["source"], record["source_n"]]
            if record["user_id"] not in users:
                users.append(record["user_id"])
            outbox.note_route(
                record["source"], record["source_n"], record["below"], record["acked"], position
            )
        elif not users:
            return
        report = sweep(self.risk, users)
        ended = [] if market is None else ended_orders(market.book, events)
        outbox.add(
            settlement(
                self._settle_as or "", position, routed, order_id, order, record.get("error"), report, ended
            )
        )

    def expire_due(self) -> int:
        """Expire the GTD orders whose time has come, in every market; return how many expired.

        The server calls this from a timer; commands also expire due orders before they run."""
        expired = 0
        with self._lock:
            for market in list(self._markets.values()):
                expired += self._expire_due_in(market)[1]
            if self._opened and self._since_checkpoint >= self._checkpoint_due:
                self._checkpoint_step()  # an idle exchange installs its background checkpoint here
        return expired

    def _expire_due_in(self, market: Market) -> tuple[float, int]:
        """Expire the market's due GTD orders as a command of their own; return its clock reading (for
        the command about to run, so it finds nothing more due) and how many expired.

        The book also expires due orders lazily inside a command; a command that then fails would have
        changed the book and lost those events, so each command runs this first. O(1) when no order
        of the market is due (:attr:`Market.expiries`)."""
        now = max(self._clock(), self._now)
        expiries = market.expiries  # market.next_expiry(), read here: this runs before every command
        if not expiries or expiries[0][0] > now:
            self._check_accepting()
            self._now = now
            return now, 0
        with self._command(market, now):
            count = market.book.clean_expired_orders()
            market.forget_expiries(now)
            if count:
                self._commit({"op": "expire", "ts": now, "symbol": market.config.symbol}, market, now)
            return now, count

    # ------------------------------------------------------------------ command frame

    def _check_accepting(self) -> None:
        """ServiceUnavailable unless the exchange is open (or replaying) and its journal can write."""
        if not self._opened and not self._replaying:
            raise ServiceUnavailable("the exchange is not open")
        if self._failed or not self.journal.healthy:
            self._failed = True
            raise ServiceUnavailable("the command journal cannot write: the exchange accepts no commands")

    def _command(self, market: Market | None, ts: float | None = None) -> _CommandFrame:
        """Set the clock for one command (``with self._command(...) as now``) and discard what a
        failed command captured."""
        self._check_accepting()
        if self._capture_stale:
            self._refresh_wanted()
        now = ts if ts is not None else max(self._clock(), self._now)
        self._now = now
        return _CommandFrame(self, market, now)

    def _discard(self, market: Market | None, before: int) -> None:
        """Drop what a failed command captured (its events and storage units); ``before`` is the
        book's sequence when it started (a failed command must not have changed the book)."""
        if market is not None:
            market.capture.take()
            if market.book.sequence != before:
                log.critical("a failed command changed book %s", market.config.symbol)
        self._units.clear()

    def _command_in(self, market: Market) -> _CommandFrame:
        """The frame of a command on ``market`` (``with self._command_in(market) as now``), after its
        due orders have expired as a command of their own (:meth:`_expire_due_in`, which also checked
        that the exchange accepts commands): ``self._command(market, self._expire_due_in(market)[0])``
        without checking twice."""
        return _CommandFrame(self, market, self._command_now(market))

    def _command_now(self, market: Market) -> float:
        """:meth:`_command_in` without the frame: the command's clock reading (set as ``_now``)."""
        now = self._expire_due_in(market)[0]
        if self._capture_stale:
            self._refresh_wanted()
        self._now = now
        return now

    def _commit(
        self,
        record: dict[str, Any],
        market: Market | None,
        now: float,
        order_id: str | None = None,
        extra: list[dict[str, Any]] | None = None,
    ) -> Receipt:
        """Journal a command that has been applied, and queue what it releases once durable."""
        replaying = self._replaying
        batch: list[dict[str, Any]] = extra if extra is not None else []
        order: dict[str, Any] | None = None
        fill_records: list[tuple[Any, ...]] | None = None
        trade_records: list[tuple[Any, ...]] | None = None
        if market is not None:
            capture = market.capture
            events = capture.events  # capture.take(), written out
            capture.events = []
            book = market.book
            sequence = book.sequence
            if not replaying:
                record["seq"] = sequence
                record["check"] = [len(book), book.counters()[1]]  # apply.fingerprint(book), inlined
            op = record["op"]
            if op == "place":
                if record["expiry_time"] is not None:  # market.expires' own test, without its call
                    market.expires(record["expiry_time"], record["order_id"])
            elif op == "modify":
                market.expires(record["new_expiry_time"], record["order_id"])
            elif op == "routed" and record["error"] is None:
                action = record["action"]
                if action["kind"] == "place":
                    market.expires(action["expiry_time"], action["order_id"])
                elif action["kind"] == "modify":
                    market.expires(action["new_expiry_time"], action["order_id"])
            # What every committed book command records from its events, live or replayed (here and in
            # _replay_book_record): the order's state in the recent-orders view (the receipt's), the
            # outbox's settlement (split mode) and the market's recent trades (oldest first).
            order = self._orders.track(events, order_id)
            if self.outbox is not None:
                self._settle(record, market, events, order_id, order)
            wanted = self._wanted
            if wanted is not None and not replaying:  # records only while a listener reads them
                if wanted.fill_records:
                    fill_records = []
                if wanted.trade_records:
                    trade_records = []
            trades = market.trades
            for event_type, data in events:
                if event_type is TRADE_EXECUTED:
                    # TRADE_KEYS' values, in its order (a display: no zip or iterator per trade).
                    trades.append(
                        {
                            "trade_id": data["trade_id"],
                            "price": data["price"],
                            "quantity": data["quantity"],
                            "taker_side": data["taker_side"],
                            "timestamp": data["timestamp"],
                            "sequence": data["sequence"],
                        }
                    )
                    if trade_records is not None:
                        trade_records.append(trade_record(data))
                elif event_type is ORDER_FILLED and fill_records is not None:
                    fill_records.append(fill_record(data))
            # Messages only while a listener reads some (the records are made above: command_messages
            # would make the same).
            if wanted is not None and not replaying and wanted.messages:
                config = market.config
                batch = command_messages(
                    wanted,
                    config.symbol,
                    config.quote_asset,
                    capture.complete,
                    sequence,
                    now,
                    events,
                    self.risk.balances,
                )
        elif self.outbox is not None and record["op"] == "routed":
            self._settle(record, None, [], order_id, None)
        units = self._units[:]
        self._units.clear()
        if replaying:
            # Storage committed the units of the records up to _stored_position before the restart.
            if units and record.get("n", 0) > self._stored_position:
                assert self.storage is not None
                submit = self.storage.submit
                for unit in units:
                    submit(unit)
            if "cid" not in record:
                return _REPLAYED  # nobody reads a replayed command's receipt but its command id's
            receipt = Receipt(record.get("n", 0), order_id, order)
            self._commands.remember(record["cid"], record["op"], now, receipt)
            return receipt
        # Queued before the append: the writer may make the record durable before append() returns.
        entry = (self.journal.appended + 1, units, batch, now)
        self._release.unreleased.append(entry)
        records: RecordEntry | None = None
        if fill_records or trade_records:
            records = (entry[0], fill_records or [], trade_records or [])
            self._release.records.append(records)
        try:
            position = self.journal.append(record)
        except JournalClosed as exc:
            self._release.unreleased.remove(entry)
            if records is not None:
                self._release.records.remove(records)
            self._failed = True
            raise ServiceUnavailable("the command journal cannot write") from exc
        # commands.receipt(position, order_id, order), without its call.
        made: Receipt = _new_object(Receipt)
        _set_fields(made, {"position": position, "order_id": order_id, "order": order, "result": {}})
        if "cid" in record:
            self._commands.remember(record["cid"], record["op"], now, made)
        self._since_checkpoint += 1
        if self._since_checkpoint >= self._checkpoint_due:
            self._checkpoint_step()
        return made

    # ------------------------------------------------------------------ replay

    def _apply_record(self, record: dict[str, Any]) -> None:
        op = record.get("op")
        if type(op) is str and op in _BOOK_OPS:  # almost every record: the book's own commands first
            self._replay_book_record(record, op)
            return
        ts = float(record["ts"])
        if op == "market":
            config = MarketConfig.from_dict(record["market"])
            with self._command(None, ts):
                self._install_market(config)
            self._remember_replayed(record, ts)
            return
        if op in ("deposit", "withdraw"):
            with self._command(None, ts):
                apply.transfer(self.risk, record)
            self._remember_replayed(record, ts)
            return
        if op == "routed":
            symbol = record["symbol"]
            routed_market = None if symbol is None else self._market(symbol)
            stale = self._replay_fills.pop(symbol, None)  # replayed from here on with every fill
            if stale is not None:
                stale.capture_fills(True)
            with self._command(routed_market, ts) as now:
                order_id = self._apply_routed(record, routed_market, live=False)
                if routed_market is not None:
                    apply.check_replayed(routed_market.book, record)
                self._commit(record, routed_market, now, order_id)
            return
        market = self._market(record["symbol"])
        self._now = ts
        apply.replay(self.risk, market.book, record)  # an unknown operation: JournalCorrupt

    def _replay_book_record(self, record: dict[str, Any], op: str) -> None:
        """Replay a ``place``, ``cancel``, ``modify`` or ``expire`` record: apply it to its book (see
        :mod:`.apply`), then :meth:`_commit`'s steps of a replayed command (no fingerprint to record, no
        stream message, no journal append), written out in one frame: it runs for almost every record.

        ``ReplayFills`` follows the market's book unless the record's events must hold every fill
        (:meth:`ReplayFills.exact`): it adds the fills the recent-orders view keeps. A recent trade is
        kept as its TRADE_EXECUTED payload until the replay ends (:meth:`_finish_replayed_trades`):
        most are pushed out of the market's last :data:`RECENT_TRADES` before anyone reads them."""
        symbol = record["symbol"]
        market = self._markets.get(symbol) if type(symbol) is str else None
        if market is None:
            market = self._market(symbol)  # UnknownMarket
        # No command frame: a replayed record that fails fails the whole open, which drops the state.
        now = self._now = float(record["ts"])
        book = market.book
        fills = self._replay_fills.get(symbol)
        if fills is None and self.outbox is None:  # a market shard's settlements read every fill
            fills = self._replay_fills[symbol] = ReplayFills(book, market.capture.handler)
        complete = fills is None or fills.exact(record)
        if fills is not None and complete:
            fills.capture_fills(True)
        if op == "place":
            self._place_replayed(record, market)
        else:
            apply.replay(self.risk, book, record)
            if op == "modify":
                market.expires(record["new_expiry_time"], record["order_id"])
        capture = market.capture
        events = capture.events  # capture.take(), written out
        capture.events = []
        if fills is not None:
            events = fills.follow(events, book, complete)
            if complete:
                fills.capture_fills(False)
        cid = "cid" in record
        # A command id's receipt names the order the command was about (placed, cancelled, modified).
        order_id = record.get("order_id") if cid else None
        # _commit's tracking, with the recent trades kept as their payloads
        order = self._orders.track(events, order_id)
        if self.outbox is not None:
            self._settle(record, market, events, order_id, order)
        trades = market.trades
        for event_type, data in events:
            if event_type is TRADE_EXECUTED:
                trades.append(data)
        if self._units:
            self._submit_replayed_units(record)
        if cid:
            self._commands.remember(record["cid"], op, now, Receipt(record.get("n", 0), order_id, order))

    def _replay_place(self, record: dict[str, Any]) -> None:
        """Replay a ``place`` record: :meth:`_replay_book_record`'s steps for the common case, a record
        without a command id of a market whose fills are followed and whose book holds no iceberg, and
        that places none (:meth:`ReplayFills.exact` is False): its events go to
        :meth:`ReplayFills.absorb` (the fills the view keeps, the view, the recent trades) in one call.
        Any other record goes to :meth:`_replay_book_record`."""
        symbol: str = record[_SYMBOL]
        fills = self._replay_fills.get(symbol) if type(symbol) is str else None
        if (
            fills is None  # the market's first record, a market shard, an unknown market
            or fills.icebergs
            or "cid" in record
            or record[_DISPLAYED_QUANTITY] is not None
        ):
            self._replay_book_record(record, "place")
            return
        market = self._markets[symbol]  # followed fills are a known market's
        self._now = float(record[_TS])
        self._place_replayed(record, market)
        capture = market.capture
        events = capture.events  # capture.take(), written out
        capture.events = []
        fills.absorb(events, market.book, self._orders, market.trades)
        if self._units:
            self._submit_replayed_units(record)

    def _submit_replayed_units(self, record: dict[str, Any]) -> None:
        """Take the storage units the replayed ``record`` made, and submit them unless storage holds
        them already (it committed the units of the records up to its position before the restart)."""
        units = self._units[:]
        self._units.clear()
        if record.get("n", 0) > self._stored_position:
            assert self.storage is not None
            submit = self.storage.submit
            for unit in units:
                submit(unit)

    def _place_replayed(self, record: dict[str, Any], market: Market) -> None:
        """A replayed ``place`` record's own steps: :func:`.apply.replay_place` (an older record gets
        its legacy client order id first), then the order number it used and its expiry."""
        order_id = record[_ORDER_ID]
        if _CLIENT_ORDER_ID not in record:  # before ids were always MC-<n>
            record["client_order_id"] = commands.legacy_client_id(order_id)
        apply.replay_place(self.risk, market.book, record)
        if order_id.startswith(GENERATED_PREFIX):
            number = int(order_id[_PREFIX_LENGTH:])
            if number > self._next_order_no:
                self._next_order_no = number
        expiry_time = record[_EXPIRY_TIME]
        if expiry_time is not None:
            market.expires(expiry_time, order_id)

    def _finish_replayed_trades(self) -> None:
        """Turn the recent trades that the replay kept as TRADE_EXECUTED payloads into the view's
        trades (:data:`TRADE_KEYS`, as :meth:`_commit` keeps them), in place."""
        for market in self._markets.values():
            trades = market.trades
            for index, trade in enumerate(list(trades)):
                if "maker_order_id" in trade:  # a payload: a recent trade has no such key
                    trades[index] = dict(zip(TRADE_KEYS, _trade_values(trade), strict=True))

    def _remember_replayed(self, record: dict[str, Any], ts: float) -> None:
        """Remember the command id of a replayed record that does not pass through :meth:`_commit`."""
        if "cid" in record:
            self._commands.remember(record["cid"], record["op"], ts, Receipt(record["n"]))

    def _storage_capture(self, on: bool) -> None:
        """Start (``on``) or stop every market's storage persister: a replay stops them while it
        replays the commands whose rows storage holds, so that the books keep no change log for them."""
        for market in self._markets.values():
            if market.persister is not None:
                if on:
                    market.persister.start()
                else:
                    market.persister.stop()

    def _storage_position(self, checkpoint: int) -> int:
        """The journal position up to which storage has committed the rows of every command, if the
        replay after ``checkpoint`` reaches it (0 otherwise: every replayed command's rows are
        submitted again, which changes nothing where they are stored already).

        Storage names the position and the clock reading of the command there; a journal that has no
        such command (storage ahead of it, a fresh journal beside an old database) or another one
        there (a database of another history) is not trusted to match storage."""
        assert self.storage is not None
        position, stamp = self.storage.journal_position()
        if position <= checkpoint:
            return 0
        record = self.journal.record_at(position)
        if record is None or record.get("ts") != stamp:
            log.warning(
                "storage holds rows up to journal position %d, which this journal does not match: "
                "replay submits every command's rows again",
                position,
            )
            return 0
        return position

    # ------------------------------------------------------------------ checkpoints

    @property
    def checkpoint_in_flight(self) -> bool:
        """A background checkpoint has started and its thread has not finished yet."""
        flight = self._flight
        return flight is not None and not flight.done.is_set()

    def finish_checkpoint(self) -> int:
        """Wait for the background checkpoint in flight, if any, to be written, install it and wait
        for its journal segments to be retired; return the position of the checkpoint on disk. Holds
        the exchange lock meanwhile (commands wait): for tests and tools, not the command path."""
        with self._lock:
            self._settle_flight(install=True, stop_writer=False)
            return self._checkpoint_position

    def checkpoint(self) -> int:
        """Write every book's state and the ledger at the current journal position, synchronously;
        return the position.

        Waits for the journal and storage to catch up first (storage's commits synced to disk), then
        lets the journal drop the segments the checkpoint covers. If storage cannot sync now (SQLite
        readers holding its write-ahead log), no checkpoint is written and the previous checkpoint's
        position is returned: the journal keeps the records, so a restart replays them, into storage
        too. A background checkpoint in flight is settled first: installed if it is ready, else its
        writer is stopped (this checkpoint supersedes it)."""
        with self._lock:
            self._settle_flight(install=True)
            position = self.journal.appended
            self.wait_durable(position, None)
            if not self._storage_holds(position):
                log.warning(
                    "checkpoint at %d postponed: storage does not hold every command's rows on disk yet",
                    position,
                )
                return self._checkpoint_position
            write_checkpoint(self.data_dir, self._checkpoint_state(position), fsync=self._fsync)
            self.journal.rotate(position)
            self._since_checkpoint = 0
            self._checkpoint_due = self._checkpoint_every or sys.maxsize
            self._checkpoint_position = position
            return position

    def _storage_holds(self, position: int) -> bool:
        """Wait until storage holds the rows of every command up to ``position`` on disk; False if it
        cannot now. The journal's thread hands the units on just after it marks them durable, and
        storage must hold their rows on disk before a checkpoint ends their replay."""
        if not self._release.wait_released(position, 30.0):
            return False
        return self.storage is None or self.storage.make_durable() or not self._fsync

    def _checkpoint_state(self, position: int) -> CheckpointState:
        """The checkpoint of the exchange as it is now, at journal ``position`` (lock held, or in a
        background checkpoint's forked writer)."""
        state = build_checkpoint(
            position,
            self._now,
            self._next_order_no,
            self._markets,
            self.risk.export_state(),
            commands=self._commands.export_state(),
        )
        if self.outbox is not None:
            cast(dict[str, Any], state)["routing"] = self.outbox.export()
        return state

    # ------------------------------------------------------------------ background checkpoints

    def _checkpoint_step(self) -> None:
        """The command thread's part of the automatic checkpoints (lock held): install a background
        checkpoint that is ready, forget one whose thread is done, start the next one when due."""
        # Reset first: a wake-up (``_checkpoint_due = 0``) from the flight's thread after this line is
        # not lost, and one before it is seen in the flight's events below.
        self._checkpoint_due = sys.maxsize
        flight = self._flight
        if flight is not None:
            if flight.prepared.is_set() and not flight.landed.is_set():
                self._land(flight, install=True)
            if not flight.done.is_set():
                return  # its thread wakes this step again when it is done
            self._flight = None
        every = self._checkpoint_every
        if not every:
            return
        if self._since_checkpoint < every:
            self._checkpoint_due = every
        elif self._background_checkpoints and self._opened:
            if time.monotonic() - self._flight_ended < self._checkpoint_spacing:
                # Too soon after the last one's end: look again at the next command or timer tick
                # (expire_due), so that an idle exchange starts it too once the spacing has passed.
                self._checkpoint_due = self._since_checkpoint
                return
            self._launch()
        else:
            self._checkpoint_due = every
            self.checkpoint()

    def _launch(self) -> None:
        """Start a background checkpoint at the current journal position (lock held), forking the writer
        before this returns, so that the writer sees the state of this instant.

        On the main thread (the server's event loop) the fork happens right here; on another thread the
        checkpoint worker forks while this thread waits: the kernel kills the writer when the thread
        that forked it ends (``PR_SET_PDEATHSIG``), and the worker lives as long as the exchange."""
        position = self.journal.appended
        flight = Flight(position, self.data_dir / background.temporary_name(position))
        self._since_checkpoint = 0
        worker = self._checkpoint_worker
        if worker is None or not worker.is_alive():
            worker = threading.Thread(target=self._work_checkpoints, name="manticore-checkpoint", daemon=True)
            worker.start()
            self._checkpoint_worker = worker
        if threading.current_thread() is threading.main_thread():
            self._fork(flight)
        self._checkpoint_queue.put(flight)
        flight.forked.wait()
        if flight.pid is None:  # the fork failed (logged; no memory for it?): write it here instead
            self._checkpoint_due = self._checkpoint_every
            self.checkpoint()
            return
        self._flight = flight

    def _work_checkpoints(self) -> None:
        """The checkpoint worker thread: one flight after the other, until a None in the queue."""
        while True:
            flight = self._checkpoint_queue.get()
            if flight is None:
                return
            if not flight.forked.is_set():
                self._fork(flight)
            self._fly(flight)

    def _stop_checkpoint_worker(self) -> None:
        if self._checkpoint_worker is not None:
            self._checkpoint_queue.put(None)
            self._checkpoint_worker = None

    def _fork(self, flight: Flight) -> None:
        """Fork the writer of ``flight`` (while the command thread holds the lock)."""
        position = flight.position
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            flight.pid = background.spawn_writer(
                lambda: self._checkpoint_state(position), flight.temporary, fsync=self._fsync
            )
        except Exception:
            log.exception(
                "background checkpoint at %d: the writer could not be forked; writing it synchronously",
                position,
            )
        finally:
            flight.fork_seconds = time.perf_counter() - started
            flight.fork_cpu_seconds = time.thread_time() - cpu
            flight.forked.set()

    def _fly(self, flight: Flight) -> None:
        """A background checkpoint's part on the worker thread: wait for the writer and for the journal
        and storage to be durable up to the position, have the command thread install the file, then
        sync the directory and retire the journal segments the checkpoint covers."""
        position = flight.position
        if flight.pid is None:
            flight.prepared.set()
            flight.landed.set()
            flight.done.set()
            return
        try:
            self._hook("forked", position)
            status = flight.wait_writer()
            if status != 0:
                raise RuntimeError(f"the checkpoint writer exited with status {status}")
            self._hook("written", position)
            if not self.wait_durable(position, None):
                raise RuntimeError("the journal closed before the checkpoint's position was durable")
            if self._storage_holds(position):
                self._hook("prepared", position)
                flight.ok = True
            else:
                log.warning(
                    "background checkpoint at %d dropped: storage does not hold every command's rows on "
                    "disk yet (the next one retries)",
                    position,
                )
        except Exception:
            log.exception(
                "background checkpoint at %d failed; the previous checkpoint stays (the next one retries)",
                position,
            )
        flight.prepared.set()
        self._checkpoint_due = 0  # the command thread installs (or drops) the file: _checkpoint_step
        flight.landed.wait()
        try:
            if flight.installed:
                self._hook("installed", position)
                if self._fsync:
                    sync_directory(self.data_dir)  # the rename is durable before any segment goes
                self.journal.rotate(position)
                if flight.replaced is not None:  # the replaced file's blocks are freed here, not at install
                    flight.replaced.unlink(missing_ok=True)
                usage = flight.writer_usage
                log.info(
                    "checkpoint at %d written in the background in %.2f s (the command path waited %.1f ms "
                    "for the fork; the writer used %.0f ms of CPU, %d page faults)",
                    position,
                    time.perf_counter() - flight.started,
                    flight.fork_seconds * 1000,
                    (usage.ru_utime + usage.ru_stime) * 1000 if usage is not None else 0.0,
                    usage.ru_minflt if usage is not None else 0,
                )
                self._hook("retired", position)
            else:
                flight.temporary.unlink(missing_ok=True)
                self._hook("failed", position)
        except Exception:
            log.exception("background checkpoint at %d: retiring the journal failed", position)
        finally:
            self._flight_ended = time.monotonic()
            flight.done.set()
            self._checkpoint_due = 0  # the command thread forgets the flight and may start the next

    def _land(self, flight: Flight, *, install: bool) -> None:
        """Install a prepared background checkpoint (``install`` and it succeeded) or drop it (lock held:
        the checkpoint position changes only on the command thread)."""
        if install and flight.ok:
            try:
                flight.replaced = install_checkpoint(self.data_dir, flight.temporary)
            except OSError:
                log.exception("background checkpoint at %d could not be installed", flight.position)
            else:
                flight.installed = True
                self._checkpoint_position = flight.position
        flight.landed.set()

    def _settle_flight(self, *, install: bool, stop_writer: bool = True) -> None:
        """End the background checkpoint in flight, if any (lock held): stop its writer (if
        ``stop_writer``) unless it is prepared already, install it if ``install`` and it is ready, and
        wait for its thread."""
        flight = self._flight
        if flight is None:
            return
        if stop_writer and not flight.prepared.is_set():
            flight.kill()
        flight.prepared.wait()
        if not flight.landed.is_set():
            self._land(flight, install=install)
        flight.done.wait()
        self._flight = None
        self._checkpoint_due = (
            0
            if self._checkpoint_every and self._since_checkpoint >= self._checkpoint_every
            else self._checkpoint_every or sys.maxsize
        )

    def _hook(self, stage: str, position: int) -> None:
        if self._checkpoint_hook is not None:
            self._checkpoint_hook(stage, position)

    def _load_checkpoint(self) -> int:
        state = read_checkpoint(self.data_dir)
        if state is None:
            return 0
        self._now = float(state["time"])
        self._next_order_no = int(state["next_order_no"])
        self._replaying = True
        try:
            for entry in state["markets"]:
                config = MarketConfig.from_dict(entry)
                trades = state.get("trades", {}).get(config.symbol, ())
                self._install_market(config, state["books"][config.symbol], trades)
        finally:
            self._replaying = False
        self._orders.index_live(self._markets.values())
        for market in self._markets.values():
            market.index_expiries()
        self.risk.restore_state(state["risk"])
        self._commands.restore_state(state.get("commands", []))
        if self.outbox is not None:
            self.outbox.load(cast(dict[str, Any], state).get("routing", {}))
        self._checkpoint_position = int(state["position"])
        return self._checkpoint_position
