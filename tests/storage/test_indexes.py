"""The orders table's indexes since migration 4: fewer entries per written row, the same answers.

Migration 4 drops ``ix_manticore_orders_user`` (user_id, symbol) and, on SQLite and PostgreSQL, makes
``ix_manticore_orders_client_id`` partial (only orders with a client order id) and ordered like the
look-up. These tests check the migration on a database made before it, the plans SQLite picks for the
per-user reads, and (with hypothesis) that the reads answer as a plain model of the stored orders does.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Index, MetaData, Table, create_engine, event, inspect, select

from manticore_orderbook import EventManager, OrderBook
from manticore_storage import StorageManager
from manticore_storage import schema as tables
from manticore_storage.migrations import CURRENT_VERSION, version_table

_SYMBOLS = ("BTC/USD", "ETH/USD")


def _books(clock: Any) -> dict[str, OrderBook]:
    return {
        symbol: OrderBook(symbol, event_manager=EventManager(), tick_size="1", lot_size="1", clock=clock)
        for symbol in _SYMBOLS
    }


def _place_orders(storage: StorageManager) -> dict[str, OrderBook]:
    ticks = itertools.count(1)
    books = _books(lambda: float(next(ticks)))
    for book in books.values():
        storage.attach(book)
    for n in range(12):
        book = books[_SYMBOLS[n % 2]]
        client = f"c-{n % 3}" if n % 4 else None
        order_id = book.add_order("buy", 10 + n, 1, user_id=f"u{n % 2}", client_order_id=client)
        if n % 3 == 0 or (client is not None and n < 9):
            book.cancel_order(order_id)  # its client order id is free again
    assert storage.flush(30)
    return books


def _answers(storage: StorageManager) -> list[Any]:
    found: list[Any] = []
    for user in ("u0", "u1", "nobody"):
        found.append([o["order_id"] for o in storage.get_orders(user_id=user)])
        for symbol in _SYMBOLS:
            found.append([o["order_id"] for o in storage.get_orders(user_id=user, symbol=symbol, limit=3)])
        for client in ("c-0", "c-1", "c-2", "none"):
            order = storage.get_order_by_client_id(user, client)
            found.append(None if order is None else order["order_id"])
    return found


def _index_definitions(storage: StorageManager) -> dict[str, list[str]]:
    with storage.engine.connect() as connection:
        indexes = inspect(connection).get_indexes(tables.orders.name)
    return {str(index["name"]): [str(c) for c in index["column_names"]] for index in indexes}


def _is_partial(storage: StorageManager, name: str) -> bool:
    from manticore_storage.migrations import _is_partial as partial

    with storage.engine.connect() as connection:
        return partial(connection, name)


def test_a_new_database_has_the_narrow_indexes(storage_url: str) -> None:
    storage = StorageManager(storage_url)
    try:
        assert storage.schema_version == CURRENT_VERSION == 4
        indexes = _index_definitions(storage)
        assert "ix_manticore_orders_user" not in indexes
        assert indexes["ix_manticore_orders_user_time"] == ["user_id", "timestamp"]
        assert indexes["ix_manticore_orders_client_id"] == [
            "user_id",
            "client_order_id",
            "timestamp",
            "priority",
        ]
        partial = storage.engine.dialect.name in ("sqlite", "postgresql")
        assert _is_partial(storage, "ix_manticore_orders_client_id") is partial
    finally:
        storage.close()


def test_migration_4_on_a_database_made_before_it_keeps_every_answer(storage_url: str) -> None:
    storage = StorageManager(storage_url)
    try:
        _place_orders(storage)
        expected = _answers(storage)
    finally:
        storage.close()
    # Back to the indexes of migration 3, and to version 3.
    engine = create_engine(storage_url)
    try:
        with engine.begin() as connection:
            old = Table(tables.orders.name, MetaData(), autoload_with=connection)
            Index("ix_manticore_orders_client_id", old.c.client_order_id).drop(connection)
            Index("ix_manticore_orders_user", old.c.user_id, old.c.symbol).create(connection)
            Index("ix_manticore_orders_client_id", old.c.user_id, old.c.client_order_id).create(connection)
            connection.execute(version_table.delete().where(version_table.c.version == 4))
    finally:
        engine.dispose()
    storage = StorageManager(storage_url)
    try:
        assert storage.schema_version == 4
        indexes = _index_definitions(storage)
        assert "ix_manticore_orders_user" not in indexes
        partial = storage.engine.dialect.name in ("sqlite", "postgresql")
        assert _is_partial(storage, "ix_manticore_orders_client_id") is partial
        width = 4 if partial else 2  # MariaDB keeps migration 3's index
        assert len(indexes["ix_manticore_orders_client_id"]) == width
        assert _answers(storage) == expected
        with storage.engine.connect() as connection:
            versions = connection.execute(select(version_table.c.version)).scalars().all()
        assert sorted(versions) == [1, 2, 3, 4]
    finally:
        storage.close()


def _plans(storage: StorageManager, read: Any) -> list[str]:
    """SQLite's query plan of every SELECT ``read()`` runs, as its detail lines."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        read()
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    details: list[str] = []
    with storage.engine.connect() as connection:
        for statement, parameters in statements:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            details.extend(str(row[3]) for row in rows)
    return details


def test_sqlite_reads_by_client_order_id_through_its_index(tmp_path: Path) -> None:
    """Regression: without statistics SQLite took ix_manticore_orders_user_time for this look-up and read
    every order of the user; the partial index ends with the ORDER BY columns, and is taken."""
    storage = StorageManager(f"sqlite:///{tmp_path / 'plans.db'}")
    try:
        _place_orders(storage)
        plans = _plans(storage, lambda: storage.get_order_by_client_id("u1", "c-1"))
        index = "ix_manticore_orders_client_id"
        assert plans == [f"SEARCH manticore_orders USING INDEX {index} (user_id=? AND client_order_id=?)"]
        for read in (
            lambda: storage.get_orders(user_id="u1"),
            lambda: storage.get_orders(user_id="u1", symbol="BTC/USD"),
        ):
            plans = _plans(storage, read)
            assert any("USING INDEX ix_manticore_orders_user_time (user_id=?)" in plan for plan in plans), (
                plans
            )
    finally:
        storage.close()


_OPS = st.lists(
    st.tuples(
        st.sampled_from(_SYMBOLS),
        st.sampled_from(("u0", "u1", "u2")),
        st.sampled_from((None, "a", "b")),
        st.booleans(),  # cancelled at once (its client order id is free again)
    ),
    max_size=25,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_per_user_reads_answer_like_a_model_of_the_orders(tmp_path_factory: Any, ops: list[Any]) -> None:
    directory = tmp_path_factory.mktemp("model")
    storage = StorageManager(f"sqlite:///{directory / 'model.db'}")
    try:
        ticks = itertools.count(1)
        books = _books(lambda: float(next(ticks)))
        for book in books.values():
            storage.attach(book)
        model: list[tuple[float, str, str, str, str | None]] = []  # (time, symbol, order id, user, client id)
        for n, (symbol, user, client, cancel) in enumerate(ops):
            book = books[symbol]
            order_id = book.add_order("buy", 1 + n, 1, user_id=user, client_order_id=client)
            model.append((book.get_order(order_id)["timestamp"], symbol, order_id, user, client))  # type: ignore[index]
            if cancel or client is not None:
                book.cancel_order(order_id)  # a client order id is unique among a user's live orders
        assert storage.flush(30)
        newest_first = sorted(model, reverse=True)
        for user in ("u0", "u1", "u2"):
            mine = [entry for entry in newest_first if entry[3] == user]
            assert [o["order_id"] for o in storage.get_orders(user_id=user)] == [e[2] for e in mine]
            for symbol in _SYMBOLS:
                expected = [e[2] for e in mine if e[1] == symbol][:4]
                assert [
                    o["order_id"] for o in storage.get_orders(user_id=user, symbol=symbol, limit=4)
                ] == expected
            for client in ("a", "b"):
                named = [e[2] for e in mine if e[4] == client]
                found = storage.get_order_by_client_id(user, client)
                assert (found["order_id"] if found else None) == (named[0] if named else None)
    finally:
        storage.close()
