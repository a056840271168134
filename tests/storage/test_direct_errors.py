"""The writer's SQLite statements run on the DBAPI cursor (``manticore_storage.direct``), and a driver
error still reaches the writer as SQLAlchemy's wrapper of it: a locked database is transient (the
writer retries it), a missing table is not (the unit is recorded as failed), and a failed batch leaves
nothing of itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from manticore_orderbook import OrderBook
from manticore_storage import StorageManager, schema
from manticore_storage.apply import UnitTuple
from manticore_storage.writer import is_transient


def _units(count: int) -> list[UnitTuple]:
    units: list[UnitTuple] = []
    scratch = StorageManager("sqlite://")
    book = OrderBook("BTC/USD", tick_size="0.5", lot_size="0.001")
    scratch.attach(book, deliver=units.append)
    for n in range(count):
        book.add_order("buy" if n % 2 else "sell", 100 + (n % 2) * -10, "1", f"o{n}", user_id="u1")
    book.add_order("buy", 100, "2", "taker", user_id="u2")  # trades with the resting sells
    scratch.close()
    return units


def _writer(path: Path) -> StorageManager:
    storage = StorageManager(f"sqlite:///{path}")
    storage.attach(OrderBook("BTC/USD", tick_size="0.5", lot_size="0.001"), deliver=lambda unit: None)
    return storage


def test_a_locked_database_is_a_transient_sqlalchemy_error_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    storage = _writer(path)
    units = _units(6)
    try:
        storage._write_batch(units[:1])  # opens the writer's connection
        assert storage._writer_connection is not None
        storage._writer_connection.exec_driver_sql("PRAGMA busy_timeout=0")
        storage._writer_connection.commit()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
        try:
            with pytest.raises(OperationalError) as raised:
                storage._write_batch(units[1:])
            assert is_transient(raised.value)
            assert isinstance(raised.value.orig, sqlite3.OperationalError)
            assert "locked" in str(raised.value.orig)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with storage.engine.connect() as connection:
            stored = connection.execute(select(schema.orders.c.order_id)).scalars().all()
        assert stored == ["o0"]
        storage._write_batch(units[1:])  # the retry on a fresh connection writes it all
        with storage.engine.connect() as connection:
            stored = connection.execute(select(schema.orders.c.order_id)).scalars().all()
            trades = connection.execute(select(schema.trades.c.trade_id)).scalars().all()
        assert sorted(stored) == sorted([f"o{n}" for n in range(6)] + ["taker"])
        assert len(trades) == 2
    finally:
        storage.close()


def test_a_missing_table_is_a_sqlalchemy_error_that_is_not_transient(tmp_path: Path) -> None:
    storage = _writer(tmp_path / "dropped.db")
    try:
        with storage.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE manticore_trades")
        with pytest.raises(OperationalError) as raised:
            storage._write_batch(_units(4))
        assert not is_transient(raised.value)
        assert "no such table" in str(raised.value.orig)
    finally:
        storage.close()
