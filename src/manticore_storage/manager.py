"""StorageManager: the integration guide's storage API over SQL, plus attach / restore / reconcile."""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import URL, Connection, Engine, and_, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from manticore_orderbook import EventType, InvalidOrderError, OrderBook

from . import process as process_module
from . import schema
from .apply import Unit, UnitTuple, apply_units, as_unit, insert_ignore, upsert_orders
from .direct import direct
from .engines import SQLITE_BUSY_TIMEOUT_MS, WAL_SYNC_WAIT_MS, first_line, open_engine, parse_url, shown_url
from .errors import PersistenceError, StorageError
from .migrations import upgrade
from .owner import DatabaseOwner
from .persister import BookPersister, Mode
from .process import WriterProcess
from .process import supported as process_supported
from .reads import StorageReads, live_orders
from .reconcile import ReconcileReport, compare
from .records import (
    Market,
    StoredTradePayload,
    exact,
    order_row,
    row_to_order,
    trade_row,
)
from .restore import restore_book
from .writer import DEFAULT_MAX_BATCH_EVENTS, PROCESS_MAX_BATCH_EVENTS, WriteBehindWriter, is_transient

__all__ = ["WRITER_ENV", "BatchSink", "PersistenceError", "StorageError", "StorageManager"]

_LOG = logging.getLogger("manticore_storage")
#: The name of the exchange's journal in ``manticore_journal_positions``.
JOURNAL = "journal"


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, EventType):
        return value.value
    return str(value)


class StorageManager(StorageReads):
    """Orders, trades and markets in a SQL database (SQLite by default; PostgreSQL and MySQL/MariaDB
    with the same code).

    Args:
        connection_string: a SQLAlchemy URL: ``sqlite:///path/to/file.db`` (the default is
            ``sqlite:///manticore.db``; SQLite runs in WAL mode), ``postgresql+psycopg://user@host/db``
            or ``mysql+pymysql://user@host/db`` (``mariadb+pymysql://`` too).
        sqlite_synchronous: SQLite's ``synchronous`` pragma. ``"NORMAL"`` (default) survives a killed
            process; ``"FULL"`` also survives a power cut, at a cost per commit.
        max_pending_units: the write-behind queue bound, in commands (each command's changes form
            one unit); book calls wait while it is reached.
        max_batch_events: the most events (captured order and trade records) one write-behind
            transaction takes. None (the default): with the writer a thread,
            :data:`~manticore_storage.writer.DEFAULT_MAX_BATCH_EVENTS` (small, so that building one
            transaction's rows never holds this process's GIL for long); with the writer process, whose
            transactions run off this process's GIL,
            :data:`~manticore_storage.writer.PROCESS_MAX_BATCH_EVENTS`.
        sync_timeout: how long a synchronous write retries a lost connection before giving up.
        gather_delay: how long the write-behind writer lets a batch gather after its first command
            arrived (see :class:`~manticore_storage.writer.WriteBehindWriter`): the most the tables
            trail an idle book by, plus the write itself. Larger batches cost less CPU per command.
        writer: where the write-behind writer writes: ``"process"`` (a child process of its own, so
            that building rows, binding and committing do not hold this process's GIL; see
            :mod:`~manticore_storage.process`), ``"thread"`` (a thread of this process) or ``"auto"``
            (the default; the environment variable ``MANTICORE_STORAGE_WRITER`` overrides it): the
            process for a SQLite file on a platform that has one (not Windows) when this process may
            run on two or more CPUs (its affinity mask), else the thread.
            PostgreSQL and MySQL/MariaDB keep the thread under ``"auto"``.

    The schema is created or upgraded on first use. Numbers are stored exactly (see ``schema``); the
    query methods return them as :class:`~decimal.Decimal`. All methods are thread-safe.
    """

    def __init__(
        self,
        connection_string: str = "sqlite:///manticore.db",
        *,
        sqlite_synchronous: str = "NORMAL",
        max_pending_units: int = 100_000,
        max_batch_events: int | None = None,
        sync_timeout: float = 30.0,
        gather_delay: float = 0.1,
        echo: bool = False,
        writer: str | None = None,
    ) -> None:
        url = parse_url(connection_string)
        writer_kind = _writer_kind(writer, url)
        self.dialect = url.get_backend_name()
        self.engine: Engine = open_engine(url, sqlite_synchronous=sqlite_synchronous, echo=echo)
        self.sync_timeout = sync_timeout
        try:
            self.schema_version = upgrade(self.engine)
        except (SQLAlchemyError, ValueError) as exc:
            self.engine.dispose()
            raise StorageError(f"cannot open the database {shown_url(url)}: {first_line(exc)}") from exc
        self._lock = threading.RLock()
        self._owner: DatabaseOwner | None = None
        self._markets: dict[str, Market] = {}
        self._persisters: dict[int, BookPersister] = {}
        self._max_pending_units = max_pending_units
        self._max_batch_events = max_batch_events
        self._gather_delay = gather_delay
        self._sink = BatchSink(self.engine, self._markets)
        self._markets_version = 0
        self.writer_kind = writer_kind
        self._sqlite_synchronous = sqlite_synchronous
        self._process: WriterProcess | None = None
        self._writer: WriteBehindWriter | None = None
        self._closed = False
        self._load_markets()
        _OPEN.add(self)

    # ------------------------------------------------------------------ markets

    def _load_markets(self) -> None:
        with self.engine.connect() as connection:
            for row in connection.execute(select(schema.markets)).mappings():
                self._markets[row["symbol"]] = Market(
                    row["symbol"],
                    row["tick_size"],
                    row["lot_size"],
                    row["maker_fee_rate"],
                    row["taker_fee_rate"],
                    row["order_id_prefix"],
                )

    def save_market(
        self,
        symbol: str,
        tick_size: object = "0.00000001",
        lot_size: object = "0.00000001",
        maker_fee_rate: object = 0,
        taker_fee_rate: object = 0,
        order_id_prefix: str | None = None,
    ) -> dict[str, Any]:
        """Create or update a market's configuration; return it as :meth:`get_market_configs` shows it."""
        if not isinstance(symbol, str) or not symbol:
            raise StorageError("symbol must be a non-empty string")
        try:
            market = Market(
                symbol,
                _positive(tick_size, "tick_size"),
                _positive(lot_size, "lot_size"),
                exact(maker_fee_rate, None, "maker_fee_rate") or Decimal(0),
                exact(taker_fee_rate, None, "taker_fee_rate") or Decimal(0),
                order_id_prefix,
            )
        except InvalidOrderError as exc:
            raise StorageError(str(exc)) from None
        self._save_market(market)
        return market.as_dict()

    def _save_market(self, market: Market) -> None:
        values = {**market.as_dict(), "order_id_prefix": market.order_id_prefix, "updated_at": time.time()}
        with self.engine.begin() as connection:
            found = connection.execute(
                select(schema.markets.c.symbol).where(schema.markets.c.symbol == market.symbol)
            ).first()
            if found is None:
                connection.execute(schema.markets.insert().values(**values, last_sequence=0))
            else:
                connection.execute(
                    update(schema.markets).where(schema.markets.c.symbol == market.symbol).values(**values)
                )
        with self._lock:
            self._markets[market.symbol] = market
            self._markets_version += 1

    def get_market_configs(self) -> dict[str, dict[str, Any]]:
        """Every stored market: ``{symbol: {"symbol", "tick_size", "lot_size", "maker_fee_rate",
        "taker_fee_rate", "last_sequence", "last_trade_price", "trade_count"}}`` (Decimals)."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(schema.markets).order_by(schema.markets.c.symbol)).mappings()
            return {
                row["symbol"]: {
                    "symbol": row["symbol"],
                    "tick_size": row["tick_size"],
                    "lot_size": row["lot_size"],
                    "maker_fee_rate": row["maker_fee_rate"],
                    "taker_fee_rate": row["taker_fee_rate"],
                    "last_sequence": row["last_sequence"],
                    "last_trade_price": row["last_trade_price"],
                    "trade_count": row["trade_count"],
                }
                for row in rows
            }

    def _market(self, symbol: str | None) -> Market | None:
        return None if symbol is None else self._markets.get(symbol)

    # ------------------------------------------------------------------ the guide's write methods

    def save_order(self, order_data: Mapping[str, Any]) -> None:
        """Insert or replace an order (a dict like ORDER_ADDED's data or ``get_order``'s; with
        ``original_quantity`` present that is the total, else ``quantity`` is).

        Keyed by ``(symbol, order_id)``: saving the same order twice leaves one row. Raises
        :class:`StorageError` for a dict that is not an order (nothing is written then).
        """
        self.batch_save_orders([order_data])

    def batch_save_orders(self, orders: Iterable[Mapping[str, Any]]) -> int:
        """Save several orders in one transaction (all or none); return how many."""
        rows = [self._order_row(data) for data in _items(orders, "orders")]
        with self.engine.begin() as connection:
            upsert_orders(connection, rows, guarded=False)
        return len(rows)

    def _order_row(self, data: object) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise StorageError("an order must be a dict")
        try:
            return order_row(
                data, self._market(data.get("symbol")), int(data.get("sequence") or 0), time.time()
            )
        except (InvalidOrderError, TypeError, ValueError) as exc:
            raise StorageError(f"invalid order: {exc}") from None

    def save_trade(self, trade_data: Mapping[str, Any]) -> None:
        """Store a trade (a dict like TRADE_EXECUTED's data); a trade id already stored is left alone."""
        self.batch_save_trades([trade_data])

    def batch_save_trades(self, trades: Iterable[Mapping[str, Any]]) -> int:
        """Store several trades in one transaction (all or none); return how many were given."""
        rows = []
        for data in _items(trades, "trades"):
            if not isinstance(data, Mapping):
                raise StorageError("a trade must be a dict")
            try:
                trade = cast(StoredTradePayload, data)  # a user's dict: trade_row checks it
                rows.append(trade_row(trade, self._market(trade.get("symbol"))))
            except (InvalidOrderError, TypeError, ValueError) as exc:
                raise StorageError(f"invalid trade: {exc}") from None
        with self.engine.begin() as connection:
            insert_ignore(connection, schema.trades, rows)
        return len(rows)

    def update_order(self, order_id: str, order_data: Mapping[str, Any], symbol: str | None = None) -> bool:
        """Apply a change (ORDER_MODIFIED's data, or any dict of order fields) to a stored order.

        ``new_price`` / ``new_quantity`` / ``new_expiry_time`` are understood as well as plain field
        names. Returns False if no such order is stored.
        """
        if not isinstance(order_data, Mapping):
            raise StorageError("order_data must be a dict")
        with self.engine.begin() as connection:
            row = self._find(connection, order_id, symbol or order_data.get("symbol"))
            if row is None:
                return False
            merged = row_to_order(row)
            merged.update({k: v for k, v in order_data.items() if k in merged and k != "order_id"})
            if order_data.get("original_quantity") is not None:  # a read's shape: the total is here
                merged["quantity"] = order_data["original_quantity"]
            for key in ("price", "quantity", "expiry_time"):
                if f"new_{key}" in order_data:
                    merged[key] = order_data[f"new_{key}"]
            if "remaining_quantity" not in order_data and "quantity" in merged:
                merged.pop("remaining_quantity")
            merged["symbol"] = row["symbol"]
            new_row = self._order_row(merged)
            new_row["last_sequence"] = max(int(row["last_sequence"]), int(order_data.get("sequence") or 0))
            upsert_orders(connection, [new_row], guarded=False)
            return True

    def mark_order_cancelled(self, order_id: str, symbol: str | None = None, reason: str = "user") -> bool:
        """Mark a stored order cancelled; return False if no such order is stored. Idempotent."""
        with self.engine.begin() as connection:
            row = self._find(connection, order_id, symbol)
            if row is None:
                return False
            connection.execute(
                update(schema.orders)
                .where(and_(schema.orders.c.symbol == row["symbol"], schema.orders.c.order_id == order_id))
                .values(status="cancelled", cancel_reason=reason, updated_at=time.time())
            )
            return True

    def update_order_fill(self, order_id: str, filled_quantity: object, symbol: str | None = None) -> bool:
        """Set an order's cumulative filled quantity (as ORDER_FILLED's ``filled_quantity`` reports it).

        The open quantity and status follow. Returns False if no such order is stored. Raises
        :class:`StorageError` for a quantity that is negative or larger than the order.
        """
        with self.engine.begin() as connection:
            row = self._find(connection, order_id, symbol)
            if row is None:
                return False
            market = self._market(row["symbol"])
            try:
                filled = exact(filled_quantity, None if market is None else market.quantity_grid(), "filled")
            except InvalidOrderError as exc:
                raise StorageError(str(exc)) from None
            assert filled is not None
            quantity: Decimal = row["quantity"]
            if filled < 0 or filled > quantity:
                raise StorageError(f"filled quantity {filled_quantity!r} is outside 0..{quantity}")
            remaining = quantity - filled
            status = row["status"]
            if status in schema.LIVE_STATUSES and status != "pending":
                status = "filled" if remaining == 0 else ("partially_filled" if filled else "open")
            connection.execute(
                update(schema.orders)
                .where(and_(schema.orders.c.symbol == row["symbol"], schema.orders.c.order_id == order_id))
                .values(
                    filled_quantity=filled,
                    remaining_quantity=remaining,
                    status=status,
                    updated_at=time.time(),
                )
            )
            return True

    def save_failed_event(self, event_type: object, event_data: Mapping[str, Any], error: object) -> None:
        """Record an event that could not be processed, for inspection and :meth:`replay_failed_events`."""
        _save_failed_rows(self.engine, [_failed_event_row(event_type, event_data, error)])

    def get_failed_events(self, include_replayed: bool = False) -> list[dict[str, Any]]:
        """Recorded failed events, oldest first (``payload`` decoded from JSON)."""
        query = select(schema.failed_events).order_by(schema.failed_events.c.id)
        if not include_replayed:
            query = query.where(schema.failed_events.c.replayed_at.is_(None))
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [{**dict(row), "payload": json.loads(row["payload"])} for row in rows]

    def replay_failed_events(self) -> int:
        """Apply every unreplayed failed event (in sequence order per symbol); return how many."""
        failed = self.get_failed_events()
        if not failed:
            return 0
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for item in failed:
            by_symbol.setdefault(item["symbol"] or "DEFAULT", []).append(item)
        with self.engine.begin() as connection:
            for symbol, items in by_symbol.items():
                items.sort(key=lambda item: item["sequence"] or 0)
                events = [(EventType(item["event_type"]), item["payload"]) for item in items]
                unit = Unit(symbol, events, max(item["sequence"] or 0 for item in items))
                apply_units(connection, self._market(symbol), [unit])
            connection.execute(
                update(schema.failed_events)
                .where(schema.failed_events.c.id.in_([item["id"] for item in failed]))
                .values(replayed_at=time.time())
            )
        return len(failed)

    # ------------------------------------------------------------------ health

    def check_connection(self) -> bool:
        """Whether the database answers a trivial query now."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def get_pending_write_count(self) -> int:
        """Events accepted from attached books and not yet committed."""
        writer = self._writer
        buffered = sum(p.buffered for p in list(self._persisters.values()))
        return buffered + (0 if writer is None else writer.pending_events)

    # ------------------------------------------------------------------ attach: the persister

    def attach(
        self,
        book: OrderBook,
        mode: Mode = "write_behind",
        *,
        deliver: Callable[[UnitTuple], None] | None = None,
    ) -> BookPersister:
        """Persist every order, fill, trade and clear of ``book`` from now on.

        Registers the book's market (tick/lot size, fee rates). ``mode="write_behind"`` (default)
        queues each command's events for the background writer; ``mode="sync"`` commits them before
        the book call returns. Attach after :meth:`restore` when resuming a market.

        ``deliver`` (write-behind only) takes each command's unit of events instead of the writer: a
        service that journals commands holds the unit until its command is durable, then passes it to
        :meth:`submit`, so that storage never shows a command that a crash could still undo.
        """
        if mode not in ("write_behind", "sync"):
            raise StorageError("mode must be 'write_behind' or 'sync'")
        with self._lock:
            if self._closed:
                raise StorageError("storage is closed")
            if id(book) in self._persisters:
                raise StorageError(f"book {book.symbol!r} is already attached")
            market = Market.of_book(book)
            self._save_market(market)
            if deliver is not None and mode != "write_behind":
                raise StorageError("deliver is only available in write_behind mode")
            if deliver is None:
                deliver = self._write_sync if mode == "sync" else self.submit
            if mode == "write_behind" and self._writer is None:
                self._writer = self._start_writer()
            persister = BookPersister(book, market, mode, deliver)
            persister.start()
            self._persisters[id(book)] = persister
            return persister

    def _start_writer(self) -> WriteBehindWriter:
        """The write-behind writer: its thread writes batches itself (``writer="thread"``) or hands
        them to the writer process (``writer="process"``, :mod:`~manticore_storage.process`)."""

        def writer_over(write: Callable[[list[UnitTuple]], None], batch_events: int) -> WriteBehindWriter:
            chosen = self._max_batch_events
            return WriteBehindWriter(
                write,
                self._record_failed_unit,
                max_pending_units=self._max_pending_units,
                max_batch_events=batch_events if chosen is None else chosen,
                gather_delay=self._gather_delay,
            )

        if self.writer_kind != "process":
            return writer_over(self._write_batch, DEFAULT_MAX_BATCH_EVENTS)
        process = self._process = WriterProcess(
            self.engine.url.render_as_string(hide_password=False),
            self._sqlite_synchronous,
            self._market_snapshot,
        )
        writer = writer_over(process.write, PROCESS_MAX_BATCH_EVENTS)
        process.bind(writer)
        return writer

    def _market_snapshot(self) -> tuple[int, dict[str, Market]]:
        with self._lock:
            return self._markets_version, dict(self._markets)

    def detach(self, book: OrderBook) -> bool:
        """Stop persisting ``book`` (queued writes still complete); return whether it was attached."""
        with self._lock:
            persister = self._persisters.pop(id(book), None)
        if persister is None:
            return False
        persister.stop()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued write is committed; return False on timeout."""
        writer = self._writer
        return True if writer is None else writer.flush(timeout)

    def claim_ownership(self) -> None:
        """Take this database for the calling exchange until :meth:`close` (see
        :mod:`~manticore_storage.owner`); idempotent.

        Raises:
            DatabaseInUse: another exchange (in any process) holds it.
        """
        if self._owner is None:
            self._owner = DatabaseOwner.acquire(self.engine, shown_url(self.engine.url))

    def release_ownership(self) -> None:
        """Give the database back (idempotent); :meth:`close` does it."""
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.release()

    def make_durable(self, timeout: float | None = None) -> bool:
        """Wait until every queued write is committed and those commits are on disk; return False if
        that could not be done now (a timeout, or SQLite readers that kept the WAL busy).

        PostgreSQL and MySQL/MariaDB make a commit durable themselves. SQLite with ``synchronous=NORMAL``
        (the default) keeps commits in its write-ahead log unsynced until a WAL checkpoint, so a power
        cut can roll the latest ones back; a full WAL checkpoint here syncs them. The exchange calls
        this before it drops journal segments that could otherwise rewrite those rows."""
        if not self.flush(timeout):
            return False
        if self.engine.dialect.name != "sqlite":
            return True
        with self.engine.connect() as connection:
            # Readers on an older snapshot hold a full checkpoint back: wait for them briefly, not for
            # the engine's usual busy timeout.
            connection.exec_driver_sql(f"PRAGMA busy_timeout={WAL_SYNC_WAIT_MS}")
            try:
                busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(FULL)").scalar()
            finally:
                connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        return busy == 0

    def submit(self, unit: UnitTuple) -> None:
        """Queue one command's unit of events (from a persister) for the background writer.

        Blocks while the writer's queue is full. Raises StorageError if no book is attached in
        write-behind mode or storage is closed."""
        writer = self._writer
        if writer is None or self._closed:
            raise StorageError("no write-behind writer: attach a book in write_behind mode first")
        writer.submit(unit)

    def submit_many(self, units: list[UnitTuple]) -> None:
        """Queue several units, in order: :meth:`submit` of each in one call (what the exchange's
        journal thread does with a durable round's units). Blocks while the writer's queue is full;
        raises StorageError like :meth:`submit`."""
        writer = self._writer
        if writer is None or self._closed:
            raise StorageError("no write-behind writer: attach a book in write_behind mode first")
        writer.submit_many(units)

    def submit_journal_position(self, position: int, stamp: float | None = None) -> None:
        """Queue a marker after the units submitted so far: the transaction that writes them records
        ``position`` (and ``stamp``, what identifies the command there: its clock reading) as the
        journal position storage holds every unit up to (:meth:`journal_position`).

        For a service that journals commands and submits each one's units once it is durable, in
        journal order: after a restart it need not submit the units of the commands up to that
        position again. Raises StorageError like :meth:`submit`."""
        self.submit((None, position, stamp))

    def journal_position(self, name: str = JOURNAL) -> tuple[int, float | None]:
        """The last committed :meth:`submit_journal_position`: ``(position, stamp)``, ``(0, None)`` if
        none was ever committed (a fresh database, or one written without a journal)."""
        table = schema.journal_positions
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table.c.position, table.c.stamp).where(table.c.name == name)
            ).first()
        return (0, None) if row is None else (int(row[0]), row[1])

    def _write_units(self, units: list[UnitTuple]) -> None:
        """Write ``units`` in one transaction (a sync persister's; any thread)."""
        with self.engine.begin() as connection:
            self._apply(connection, units)

    def _write_batch(self, units: list[UnitTuple]) -> None:
        """Write ``units`` in one transaction on the writer thread's own connection (:class:`BatchSink`)."""
        self._sink.write_batch(units)

    @property
    def _writer_connection(self) -> Connection | None:
        """The connection this process's writer thread keeps between batches (None until its first)."""
        return self._sink.connection

    def _apply(self, connection: Connection, units: list[UnitTuple]) -> None:
        """Write ``units`` (in stream order) inside the caller's transaction (:meth:`BatchSink.apply`)."""
        self._sink.apply(connection, units)

    def _write_sync(self, unit: UnitTuple) -> None:
        deadline = time.monotonic() + self.sync_timeout
        delay = 0.05
        while True:
            try:
                self._write_units([unit])
                return
            except Exception as exc:
                if is_transient(exc) and time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if not is_transient(exc):
                    try:
                        self._record_failed_unit(unit, exc)
                    except Exception:
                        _LOG.exception("could not record the failed events either")
                raise PersistenceError(f"could not persist sequence {unit[2]}: {exc}") from exc

    def _record_failed_unit(self, packed: UnitTuple, exc: BaseException) -> None:
        self._sink.record_failed_unit(packed, exc)

    # ------------------------------------------------------------------ restore and reconcile

    def restore(self, book: OrderBook) -> int:
        """Rebuild ``book`` (empty, same symbol) from storage without publishing or storing anything.

        Restores every live order with its open quantity, time priority, iceberg slice and reserve,
        stop and trailing state and GTD expiry; the book's event sequence, trade numbering and
        generated-id numbering continue where the stored stream stopped. Queued writes are flushed
        first. Returns the number of orders restored. Raises :class:`StorageError` if the stored
        state does not fit the book (a different grid, say); the book is unchanged then.
        """
        self.flush()
        with self.engine.connect() as connection:
            market = (
                connection.execute(select(schema.markets).where(schema.markets.c.symbol == book.symbol))
                .mappings()
                .first()
            )
            try:
                return restore_book(connection, book, market)
            except InvalidOrderError as exc:
                raise StorageError(f"cannot restore {book.symbol!r}: {exc}") from None

    def reconcile(self, book: OrderBook, repair: bool = False) -> ReconcileReport:
        """Compare the book's live orders with storage's; with ``repair``, make storage match the book.

        Queued writes are flushed first, so on a quiet book a clean report means storage is exact.
        Repair rewrites every differing or missing order from the book and marks orders that storage
        holds live but the book does not as cancelled (reason ``reconcile``).
        """
        self.flush()
        state = book.export_state()
        with self.engine.connect() as connection:
            rows = connection.execute(live_orders(book.symbol)).mappings().all()
        stored = {row["order_id"]: row_to_order(row) for row in rows}
        market = self._market(book.symbol) or Market.of_book(book)
        report = compare(book.symbol, state["orders"], stored, market)
        if repair and not report.ok:
            self._repair(book, state, report, market)
            report.repaired = True
        return report

    def _repair(
        self, book: OrderBook, state: dict[str, Any], report: ReconcileReport, market: Market
    ) -> None:
        live = {order["order_id"]: order for order in state["orders"]}
        wrong = set(report.missing_in_storage) | {m.order_id for m in report.mismatches}
        rows = [order_row(live[oid], market, state["sequence"], time.time(), book.symbol) for oid in wrong]
        with self.engine.begin() as connection:
            upsert_orders(connection, rows, guarded=False)
            if report.missing_in_book:
                connection.execute(
                    update(schema.orders)
                    .where(
                        and_(
                            schema.orders.c.symbol == book.symbol,
                            schema.orders.c.order_id.in_(report.missing_in_book),
                        )
                    )
                    .values(status="cancelled", cancel_reason="reconcile", updated_at=time.time())
                )

    # ------------------------------------------------------------------ shutdown

    def close(self, timeout: float | None = 30.0) -> bool:
        """Detach every book, write what is queued (up to ``timeout`` seconds) and release connections.

        Returns whether every accepted event was written. Safe to call twice.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            persisters = list(self._persisters.values())
            self._persisters.clear()
        for persister in persisters:
            persister.stop()
        complete = True
        if self._writer is not None:
            unwritten = self._writer.pending_events
            complete = self._writer.close(timeout)
            if not complete:
                _LOG.error("storage closed with up to %d events unwritten", unwritten)
        if self._process is not None:
            self._process.close()
        self._sink.close()
        self.release_ownership()
        self.engine.dispose()
        _OPEN.discard(self)
        return complete

    def __enter__(self) -> StorageManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


#: SQLite's statements of :func:`_record_journal_position`, as driver SQL: the writer records a position
#: with every batch of the exchange's units, and building and running the Core statements costs
#: ~665,000 instructions, as much as the rows of ~6 commands.
_SQLITE_POSITION_UPDATE = (
    f'UPDATE "{schema.journal_positions.name}" SET "position" = ?, "stamp" = ?, "updated_at" = ? '
    'WHERE "name" = ?'
)
_SQLITE_POSITION_INSERT = (
    f'INSERT INTO "{schema.journal_positions.name}" ("name", "position", "stamp", "updated_at") '
    "VALUES (?, ?, ?, ?)"
)


def _record_journal_position(connection: Connection, position: int, stamp: object) -> None:
    """Set the journal's committed position and stamp (one row per journal name)."""
    table = schema.journal_positions
    now = time.time()
    if connection.dialect.name == "sqlite":
        with direct(connection) as run:
            if not run(_SQLITE_POSITION_UPDATE, (position, stamp, now, JOURNAL)).rowcount:
                run(_SQLITE_POSITION_INSERT, (JOURNAL, position, stamp, now))
        return
    changed = connection.execute(
        update(table).where(table.c.name == JOURNAL).values(position=position, stamp=stamp, updated_at=now)
    ).rowcount
    if not changed:
        connection.execute(
            table.insert().values(name=JOURNAL, position=position, stamp=stamp, updated_at=now)
        )


class BatchSink:
    """The write-behind writer's work, in whichever process it runs: each batch of units written in
    one transaction on a connection kept between batches, and a unit that cannot be written recorded
    in the failed-events table.

    The serving process's :class:`StorageManager` has one (its writer thread and sync persisters use
    it); the writer process (:mod:`~manticore_storage.process`) has its own over its own engine, with
    the markets the serving process sends it.
    """

    def __init__(self, engine: Engine, markets: dict[str, Market]) -> None:
        self.engine = engine
        #: The markets by symbol (the manager's own dict, or the copy the writer process was sent).
        self.markets = markets
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection | None:
        """The connection kept between batches (None before the first and after a failure)."""
        return self._connection

    def write_batch(self, units: list[UnitTuple]) -> None:
        """Write ``units`` in one transaction on the kept connection; raise on failure (nothing is
        written then).

        The connection is kept between batches (no pool check-out and liveness ping per batch); after
        any failure it is dropped, and the retry checks out a fresh one."""
        connection = self._connection
        if connection is None:
            connection = self._connection = self.engine.connect()
        try:
            with connection.begin():
                self.apply(connection, units)
        except BaseException:
            self._connection = None
            try:
                connection.close()
            except Exception:
                _LOG.debug("closing a failed writer connection failed", exc_info=True)
            raise

    def apply(self, connection: Connection, units: list[UnitTuple]) -> None:
        """Write ``units`` (in stream order) inside the caller's transaction: one
        :func:`~manticore_storage.apply.apply_units` call per market, with that market's units in
        their order (markets' rows are disjoint, so only the order within a market matters), and the
        latest journal position marker among them."""
        markets = self.markets
        marker: UnitTuple | None = None
        if units[-1][0] is None or any(unit[0] is None for unit in units):
            markers = [unit for unit in units if unit[0] is None]
            marker = max(markers, key=lambda unit: int(unit[1]))
            units = [unit for unit in units if unit[0] is not None]
        if units:
            first = units[0][0]
            if all(unit[0] == first for unit in units):
                apply_units(connection, markets.get(first), units)
            else:
                by_market: dict[str, list[UnitTuple]] = {}
                for unit in units:
                    by_market.setdefault(unit[0], []).append(unit)
                for symbol, mine in by_market.items():
                    apply_units(connection, markets.get(symbol), mine)
        if marker is not None:
            _record_journal_position(connection, int(marker[1]), marker[2])

    def record_failed_unit(self, packed: UnitTuple, exc: BaseException) -> None:
        """Record the events of ``packed`` as failed with ``exc`` (a marker is only logged)."""
        if packed[0] is None:  # a journal position marker: there are no events to keep
            _LOG.error("could not record journal position %s: %s", packed[1], exc)
            return
        unit = as_unit(packed)
        message = f"{type(exc).__name__}: {exc}"
        for event_type, data in unit.as_events(self.markets.get(unit.symbol)):
            _save_failed_rows(self.engine, [_failed_event_row(event_type, data, message)])

    def close(self) -> None:
        """Close the kept connection (the next batch opens another)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                _LOG.debug("closing the writer connection failed", exc_info=True)


def _failed_event_row(event_type: object, event_data: Mapping[str, Any], error: object) -> dict[str, Any]:
    kind = event_type.value if isinstance(event_type, EventType) else str(event_type)
    return {
        "symbol": event_data.get("symbol"),
        "sequence": event_data.get("sequence"),
        "event_type": kind,
        "payload": json.dumps(dict(event_data), default=_json_default, sort_keys=True),
        "error": str(error),
        "created_at": time.time(),
    }


def _save_failed_rows(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        insert_ignore(connection, schema.failed_events, rows)


#: The environment variable that chooses the write-behind writer when the constructor does not.
WRITER_ENV = "MANTICORE_STORAGE_WRITER"
_WRITER_KINDS = ("auto", "process", "thread")


def _writer_kind(requested: str | None, url: URL) -> str:
    """``"process"`` or ``"thread"``: ``requested``, else ``$MANTICORE_STORAGE_WRITER``, else
    ``"auto"`` (the process for a SQLite file where :func:`~manticore_storage.process.supported` and
    :func:`~manticore_storage.process.usable_cores` gives two or more)."""
    kind = requested if requested is not None else (os.environ.get(WRITER_ENV) or "auto")
    if kind not in _WRITER_KINDS:
        source = "writer" if requested is not None else WRITER_ENV
        raise StorageError(f"{source} must be one of {', '.join(_WRITER_KINDS)}, not {kind!r}")
    if kind == "auto":
        database = url.database or ""
        in_memory = (
            database in ("", ":memory:") or "mode=memory" in str(url) or database.startswith("file::memory:")
        )
        sqlite_file = url.get_backend_name() == "sqlite" and not in_memory
        return (
            "process"
            if sqlite_file and process_supported() and process_module.usable_cores() >= 2
            else "thread"
        )
    if kind == "process" and not process_supported():
        raise StorageError("writer='process' needs a POSIX platform: use writer='thread'")
    return kind


def _positive(value: object, what: str) -> Decimal:
    dec = exact(value, None, what)
    if dec is None or dec <= 0:
        raise InvalidOrderError(f"{what} must be positive")
    return dec


def _items(values: object, what: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise StorageError(f"{what} must be a list of dicts")
    return list(values)


_OPEN: weakref.WeakSet[StorageManager] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for storage in list(_OPEN):
        try:
            storage.close(timeout=30.0)
        except Exception:
            _LOG.exception("flushing storage at exit failed")
