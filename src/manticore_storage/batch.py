"""The write-behind writer's path: a batch of captured units in one ``executemany`` per table.

Persisters hand the writer units of captured records (:mod:`manticore_storage.capture`). A batch of
one market's units is collapsed in memory first: one row per touched order (its last full
state with later fills merged in, or only its latest fill), the trades, and the market's stream
position after the batch's last unit. Then it is written with prebuilt statements (:class:`Statements`),
as driver SQL with rows as plain tuples in column order (:mod:`manticore_storage.rows`): one upsert of
the order rows, one update of the fill-only rows, one insert of the trades (on PostgreSQL all three in
one statement; on SQLite the upsert and the insert once per shape of row, their NULLs and flags
written into the statement: :mod:`manticore_storage.inline`) and one update of the market row.
SQLAlchemy builds no statement, compiles nothing and processes no parameter per row; only the
decimals are converted, once per distinct value, to what the driver takes (:func:`store_decimal`).

The rows are those the event path of :mod:`manticore_storage.apply` writes for the same changes (see
:mod:`manticore_storage.capture`), and so are the guards: every order write is guarded by the
row's ``last_sequence``, trades are inserted at most once and the market row only moves forward, so a
batch written twice (a retry, a replay after a restart) changes nothing the second time. ``clear()``
records split the batch: what came before is written, then the clear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Dialect

from . import schema
from .apply import UnitTuple
from .capture import (
    RECORD_CLEARED,
    RECORD_FILL,
    RECORD_ORDER,
    RowBuilder,
    StoreDecimal,
    decimal_text,
)
from .direct import Run, direct
from .inline import InlinedStatement
from .records import Market
from .rows import (
    FILL_COLUMNS,
    FILL_POSITIONS,
    ORDER_COLUMNS,
    ORDER_FLAGS,
    ORDER_KEY_COLUMNS,
    ORDER_NULLABLE,
    TRADE_COLUMNS,
    TRADE_NULLABLE,
    FillValues,
    OrderValues,
    TradeValues,
)
from .schema import _check_mysql_decimal

__all__ = ["Statements", "is_captured", "statements_for", "store_decimal", "write_captured"]

_MYSQL = ("mysql", "mariadb")


def _same(value: Decimal) -> object:
    return value


def _mysql_decimal(value: Decimal) -> object:
    _check_mysql_decimal(value)
    return value


def store_decimal(dialect_name: str) -> StoreDecimal:
    """How :class:`~manticore_storage.schema.ExactDecimal` binds a Decimal on ``dialect_name``: decimal
    text on SQLite, the Decimal on PostgreSQL, the Decimal checked to fit DECIMAL(65, 30) on MySQL."""
    if dialect_name == "sqlite":
        return decimal_text
    if dialect_name in _MYSQL:
        return _mysql_decimal
    return _same


class Statements:
    """The writer's statements as driver SQL for one dialect (built once per dialect).

    SQLite and MySQL/MariaDB take each statement once per batch with ``executemany`` and a list of row
    tuples (sqlite3 loops in C; PyMySQL sends an INSERT's rows as one multi-row INSERT). PostgreSQL
    takes the batch's order rows, fills and trades in one statement (:meth:`combined`: multi-row
    ``VALUES`` lists in data-modifying ``WITH`` parts), one round trip for up to :data:`PG_CHUNK`
    rows of each kind: psycopg runs ``executemany`` in pipeline mode, which burns CPU polling the
    socket while the server works, and binds arrays (``unnest``) in Python, element by element;
    scalars it binds in C.
    """

    __slots__ = (
        "_builders",
        "_sized",
        "_templates",
        "advance_market",
        "clear",
        "inline",
        "insert_trades",
        "multirow",
        "store",
        "update_fills",
        "upsert_orders",
    )

    def __init__(self, dialect: Dialect) -> None:
        name = dialect.name
        quote = dialect.identifier_preparer.quote
        self.store = store_decimal(name)
        self.multirow = name == "postgresql"
        self._sized: dict[tuple[int, int, int], str] = {}
        self._builders: dict[tuple[Market, str], RowBuilder] = {}
        orders, trades, markets = (quote(t.name) for t in (schema.orders, schema.trades, schema.markets))
        seq = quote("last_sequence")
        if self.multirow:  # numbered, for psycopg's raw cursor (see write_captured)
            dollars = _dollars()

            def marks(n: int, start: int = 0) -> list[str]:
                return dollars[start : start + n]

        else:
            mark = "?" if dialect.paramstyle == "qmark" else "%s"

            def marks(n: int, start: int = 0) -> list[str]:
                return [mark] * n

        def row(table: Any, names: Sequence[str], typed: bool = False) -> Callable[[int], str]:
            """The placeholders of one row whose first value is parameter ``start``.

            ``typed`` casts each to its column's type: the first row of a ``VALUES`` list that is not
            an INSERT's needs it (the later rows take the types of the first); an INSERT's rows take
            the table's column types."""
            width = len(names)
            if not typed:
                return lambda start: "(" + ", ".join(marks(width, start)) + ")"
            types = [table.c[n].type.compile(dialect=dialect) for n in names]
            return lambda start: (
                "(" + ", ".join(f"{m}::{t}" for m, t in zip(marks(width, start), types, strict=True)) + ")"
            )

        insert = f"INSERT INTO {orders} ({', '.join(map(quote, ORDER_COLUMNS))}) VALUES "
        updated = [name for name in ORDER_COLUMNS if name not in ORDER_KEY_COLUMNS]
        if name in _MYSQL:
            # MySQL has no WHERE on ON DUPLICATE KEY UPDATE: each column is guarded by a CASE, and
            # last_sequence (which the guard reads) is assigned last, since MySQL applies the
            # assignments left to right and a later one sees what the earlier ones set.
            guard = f"{orders}.{seq} < VALUES({seq})"
            ordered = [n for n in updated if n != "last_sequence"] + ["last_sequence"]
            assignments = ", ".join(
                f"{quote(n)} = CASE WHEN {guard} THEN VALUES({quote(n)}) ELSE {orders}.{quote(n)} END"
                for n in ordered
            )
            upsert_tail = f" ON DUPLICATE KEY UPDATE {assignments}"
            key = quote("symbol")
            trade_tail = f" ON DUPLICATE KEY UPDATE {key} = {trades}.{key}"
        else:
            assignments = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in updated)
            upsert_tail = (
                f" ON CONFLICT ({', '.join(map(quote, ORDER_KEY_COLUMNS))}) DO UPDATE SET "
                f"{assignments} WHERE {orders}.{seq} < excluded.{seq}"
            )
            trade_tail = " ON CONFLICT DO NOTHING"
        order_row = row(schema.orders, ORDER_COLUMNS)
        trade_row = row(schema.trades, TRADE_COLUMNS)
        trade_insert = f"INSERT INTO {trades} ({', '.join(map(quote, TRADE_COLUMNS))}) VALUES "
        fill_names = (*FILL_COLUMNS, "symbol", "order_id")
        fill_update = (
            f"UPDATE {orders} SET {', '.join(f'{quote(n)} = v.{quote(n)}' for n in FILL_COLUMNS)} "
            "FROM (VALUES "
        )
        fill_tail = (
            f") AS v({', '.join(map(quote, fill_names))}) "
            f"WHERE {orders}.{quote('symbol')} = v.{quote('symbol')} "
            f"AND {orders}.{quote('order_id')} = v.{quote('order_id')} AND {orders}.{seq} < v.{seq}"
        )
        #: kind -> (head, first row, later rows, values per row, tail) of the multi-row statements.
        self._templates = {
            "orders": (insert, order_row, order_row, len(ORDER_COLUMNS), upsert_tail),
            "trades": (trade_insert, trade_row, trade_row, len(TRADE_COLUMNS), trade_tail),
            "fills": (
                fill_update,
                row(schema.orders, fill_names, typed=True),
                row(schema.orders, fill_names),
                len(fill_names),
                fill_tail,
            ),
        }
        self.upsert_orders = insert + order_row(0) + upsert_tail
        self.insert_trades = trade_insert + trade_row(0) + trade_tail
        #: SQLite: the order upsert and the trade insert with NULLs and flags written in (see
        #: :mod:`manticore_storage.inline`); None elsewhere (PyMySQL binds None in Python, cheaply).
        self.inline: tuple[InlinedStatement, InlinedStatement] | None = None
        if name == "sqlite":
            self.inline = (
                InlinedStatement(insert, len(ORDER_COLUMNS), ORDER_NULLABLE, ORDER_FLAGS, upsert_tail),
                InlinedStatement(trade_insert, len(TRADE_COLUMNS), TRADE_NULLABLE, (), trade_tail),
            )
        #: Row by row (SQLite, MySQL): ``*fill values, symbol, order_id, last_sequence``.
        m = marks(10)
        sets = ", ".join(f"{quote(n)} = {m[i]}" for i, n in enumerate(FILL_COLUMNS))
        self.update_fills = (
            f"UPDATE {orders} SET {sets} WHERE {quote('symbol')} = {m[7]} "
            f"AND {quote('order_id')} = {m[8]} AND {seq} < {m[9]}"
        )
        live = ", ".join(f"'{status}'" for status in schema.LIVE_STATUSES)
        m = marks(4)
        self.clear = (
            f"UPDATE {orders} SET {quote('status')} = 'cancelled', {quote('cancel_reason')} = 'clear', "
            f"{seq} = {m[0]}, {quote('updated_at')} = {m[1]} WHERE {quote('symbol')} = {m[2]} "
            f"AND {quote('status')} IN ({live}) AND {seq} < {m[3]}"
        )
        price = quote("last_trade_price")
        m = marks(7)
        # PostgreSQL cannot tell a bare parameter's type inside COALESCE: cast it there.
        last_price = (
            f"{m[4]}::{schema.markets.c.last_trade_price.type.compile(dialect=dialect)}"
            if self.multirow
            else m[4]
        )
        self.advance_market = (
            f"UPDATE {markets} SET {seq} = {m[0]}, {quote('updated_at')} = {m[1]}, "
            f"{quote('trade_count')} = {m[2]}, {quote('generated_order_count')} = {m[3]}, "
            f"{price} = COALESCE({last_price}, {price}) WHERE {quote('symbol')} = {m[5]} AND {seq} < {m[6]}"
        )

    def builder(self, market: Market, id_prefix: str) -> RowBuilder:
        """The row builder of ``market`` (kept: its caches of converted decimals last across batches)."""
        builder = self._builders.get((market, id_prefix))
        if builder is None:
            if len(self._builders) >= _MAX_BUILDERS:
                self._builders.clear()
            builder = self._builders[(market, id_prefix)] = RowBuilder(
                market.symbol, market, id_prefix, self.store
            )
        return builder

    def combined(self, n_orders: int, n_fills: int, n_trades: int) -> str:
        """One statement that upserts ``n_orders`` order rows, updates ``n_fills`` fill-only rows and
        inserts ``n_trades`` trades (PostgreSQL: data-modifying ``WITH`` parts), its parameters the
        rows' values in that order. The parts touch disjoint rows (an order is either in the full rows
        or in the fills of one batch), as PostgreSQL requires of one statement."""
        key = (n_orders, n_fills, n_trades)
        statement = self._sized.get(key)
        if statement is None:
            parts = []
            offset = 0
            for name, n in zip(("orders", "fills", "trades"), key, strict=True):
                if n:
                    head, first, later, width, tail = self._templates[name]
                    rows = ", ".join([first(offset)] + [later(offset + i * width) for i in range(1, n)])
                    parts.append(f"{name[0]} AS ({head}{rows}{tail})")
                    offset += n * width
            if len(self._sized) >= _MAX_STATEMENTS:
                self._sized.clear()
            statement = self._sized[key] = "WITH " + ", ".join(parts) + " SELECT 1"
        return statement


_DOLLARS: list[str] = []


def _dollars() -> list[str]:
    """``["$1", "$2", ...]``: every PostgreSQL parameter a combined statement may use (built once)."""
    if not _DOLLARS:
        _DOLLARS.extend(f"${i}" for i in range(1, 51 * PG_CHUNK + 1))
    return _DOLLARS


#: The most combined statements kept (by their row counts).
_MAX_STATEMENTS = 512
#: The most rows of each kind one combined statement takes: 1,000 order rows, fills and trades bind
#: 51,000 values, within PostgreSQL's 65,535 parameters per statement.
PG_CHUNK = 1000
#: The most row builders kept (one per market and id prefix; more only when markets are reconfigured).
_MAX_BUILDERS = 1024


_BUILT: dict[tuple[str, str, str], Statements] = {}


def statements_for(connection: Connection) -> Statements:
    """The :class:`Statements` of ``connection``'s dialect (built on first use, then shared)."""
    dialect = connection.dialect
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    statements = _BUILT.get(key)
    if statements is None:
        statements = _BUILT[key] = Statements(dialect)
    return statements


def is_captured(unit: UnitTuple) -> bool:
    """Whether ``unit`` holds captured records only, with the market counters (a persister's unit),
    which :func:`write_captured` takes; units of event dicts go through ``apply_units``."""
    if type(unit[1]) is int:
        return True
    return not unit[1] and unit[8] is True and unit[3] is not None and unit[4] is not None


#: Per market, the stream position after the batch: ``(sequence, trade_count, generated_order_count,
#: last trade price in ticks or None)``.
_Position = tuple[int, int, int, "int | None"]


class _Pending:
    """One batch's collapsed writes, across markets."""

    __slots__ = ("fills", "full", "trades")

    def __init__(self) -> None:
        self.full: dict[tuple[str, str], OrderValues] = {}
        self.fills: dict[tuple[str, str], FillValues] = {}
        self.trades: list[TradeValues] = []

    def add(self, builder: RowBuilder, symbol: str, record: Any, now: float) -> None:
        """Add one :data:`~manticore_storage.capture.Record` (not RECORD_CLEARED; ``Any`` here only
        to spare the hot loop ``typing.cast`` calls: the builder's methods take the typed layouts)."""
        tag = record[0]
        if tag == RECORD_ORDER:
            key = (symbol, record[4])
            if self.fills:
                self.fills.pop(key, None)
            self.full[key] = builder.order_values(record, now)
        elif tag == RECORD_FILL:
            fill = builder.fill_values(record, now)
            key = (symbol, fill[7])
            stored = self.full.get(key)
            if stored is None:
                self.fills[key] = fill
            else:
                for position, value in zip(FILL_POSITIONS, fill, strict=False):
                    stored[position] = value
        else:
            self.trades.append(builder.trade_values(record))

    def write(self, run: Run, statements: Statements) -> None:
        if statements.multirow:
            self._write_multirow(run, statements)
            return
        inline = statements.inline
        if self.full:
            if inline is None:
                rows = [tuple(row) for row in self.full.values()]
                run(statements.upsert_orders, rows)
            else:
                inline[0].execute(run, self.full.values())
            self.full = {}
        if self.fills:
            run(
                statements.update_fills,
                [(*fill[:7], symbol, fill[7], fill[5]) for (symbol, _), fill in self.fills.items()],
            )
            self.fills = {}
        if self.trades:
            if inline is None:
                run(statements.insert_trades, self.trades)
            else:
                inline[1].execute(run, self.trades)
            self.trades = []

    def _write_multirow(self, run: Run, statements: Statements) -> None:
        orders = list(self.full.values())
        fills = [(*fill[:7], symbol, fill[7]) for (symbol, _), fill in self.fills.items()]
        trades = self.trades
        self.full, self.fills, self.trades = {}, {}, []
        done = 0
        while done < len(orders) or done < len(fills) or done < len(trades):
            end = done + PG_CHUNK
            chunks = (orders[done:end], fills[done:end], trades[done:end])
            values = tuple([value for chunk in chunks for row in chunk for value in row])
            sql = statements.combined(len(chunks[0]), len(chunks[1]), len(chunks[2]))
            run(sql, values)
            done = end


def write_captured(
    connection: Connection,
    statements: Statements,
    market: Market | None,
    units: Sequence[UnitTuple],
    now: float,
) -> int:
    """Write captured ``units`` of ``market`` (see :func:`is_captured`; in stream order) inside the
    caller's transaction; return the records applied. Raises ValueError without a market."""
    symbol: str = units[0][0]
    if market is None:
        raise ValueError(f"captured changes of {symbol!r} need its market row")
    if statements.inline is not None:  # SQLite: on the DBAPI cursor, without SQLAlchemy's execution
        with direct(connection) as run:
            return _write(run, statements, market, symbol, units, now)
    with _raw_cursors(connection, statements.multirow):
        return _write(connection.exec_driver_sql, statements, market, symbol, units, now)


@contextmanager
def _raw_cursors(connection: Connection, raw: bool) -> Iterator[None]:
    """With ``raw``, execute through psycopg's raw cursors (``$1`` placeholders, sent as they are):
    its default cursors rewrite ``%s`` placeholders in Python on every execution of a statement with
    more than 50 parameters, which costs more than the rest of the write."""
    if not raw:
        yield
        return
    import psycopg

    dbapi: Any = connection.connection.dbapi_connection
    previous = dbapi.cursor_factory
    dbapi.cursor_factory = psycopg.RawCursor
    try:
        yield
    finally:
        dbapi.cursor_factory = previous


def _write(
    run: Run,
    statements: Statements,
    market: Market,
    symbol: str,
    units: Sequence[UnitTuple],
    now: float,
) -> int:
    first = units[0]
    builder = statements.builder(market, first[5] if type(first[1]) is int else first[7])
    pending = _Pending()
    add = pending.add
    applied = 0
    position: _Position | None = None
    for unit in units:
        if type(unit[1]) is int:  # the one-order layout: header, then the order's record
            add(builder, symbol, unit[6:], now)
            position = (unit[1], unit[2], unit[3], unit[4])
            applied += 1
            continue
        for record in unit[6]:
            if record[0] == RECORD_CLEARED:
                pending.write(run, statements)
                sequence = record[1]
                run(statements.clear, (sequence, now, symbol, sequence))
            else:
                add(builder, symbol, record, now)
        applied += len(unit[6])
        position = (unit[2], unit[3], unit[4], unit[5])
    pending.write(run, statements)
    if position is not None:
        sequence, trade_count, generated, last_trade = position
        price: Any = None
        if last_trade is not None:
            price = statements.store(market.price_grid().to_decimal(last_trade))
        run(statements.advance_market, (sequence, now, trade_count, generated, price, symbol, sequence))
    return applied
