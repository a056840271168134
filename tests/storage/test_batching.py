"""The write-behind writer's batches: many commands collapsed into one transaction write exactly what
writing them one by one writes, a batch that dies half-way leaves nothing of itself, and reconcile and
a replay of the units recover from it."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from manticore_orderbook import OrderBook
from manticore_storage import StorageManager, batch, schema
from manticore_storage.apply import UnitTuple
from manticore_storage.rows import ORDER_COLUMNS, TRADE_COLUMNS
from tests.command_streams import Clock, apply, make_stream, new_book
from tests.storage.conftest import reset_database


def _captured(run: Callable[[OrderBook, Clock], None]) -> tuple[OrderBook, list[UnitTuple]]:
    """The units a persister hands on while ``run`` drives a fresh book (captured, not written)."""
    units: list[UnitTuple] = []
    scratch = StorageManager("sqlite://")
    clock = Clock()
    book = new_book(clock=clock)
    scratch.attach(book, deliver=units.append)
    run(book, clock)
    scratch.close()
    return book, units


def _stream(seed: int, length: int) -> Callable[[OrderBook, Clock], None]:
    def run(book: OrderBook, clock: Clock) -> None:
        for command in make_stream(seed, length):
            apply(book, clock, command)

    return run


def _tables(url: str) -> dict[str, Any]:
    """Every order and trade row (without ``updated_at``, the write's own clock) and the market row."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            orders = {
                row["order_id"]: {k: row[k] for k in ORDER_COLUMNS if k != "updated_at"}
                for row in connection.execute(select(schema.orders)).mappings()
            }
            trades = {
                row["trade_id"]: {k: row[k] for k in TRADE_COLUMNS}
                for row in connection.execute(select(schema.trades)).mappings()
            }
            market = connection.execute(select(schema.markets)).mappings().one()
            position = {
                k: market[k]
                for k in ("last_sequence", "trade_count", "generated_order_count", "last_trade_price")
            }
    finally:
        engine.dispose()
    return {"orders": orders, "trades": trades, "market": position}


def _second_url(storage_url: str, tmp_path: Path) -> str:
    """Another empty database of the same backend (a server's tables are dropped instead)."""
    if storage_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'second.db'}"
    reset_database(storage_url)
    return storage_url


def _write(url: str, book: OrderBook, units: list[UnitTuple], per_batch: int) -> tuple[dict[str, Any], int]:
    """Write ``units`` through the write-behind writer, ``per_batch`` at a time (each group submitted
    while the writer gathers, then flushed: one transaction per group). Returns the tables and the
    number of transactions."""
    # No bound on a transaction's events here: each group is one transaction, whatever it holds.
    storage = StorageManager(url, gather_delay=60.0, max_batch_events=1_000_000)
    try:
        storage.attach(new_book(), deliver=lambda _unit: None)  # the market row and the writer
        writer = storage._writer
        assert writer is not None
        for start in range(0, len(units), per_batch):
            for unit in units[start : start + per_batch]:
                storage.submit(unit)
            assert storage.flush(30)
        assert storage.reconcile(book).ok
        assert storage.get_failed_events() == []
        batches = writer.batches
    finally:
        storage.close()
    return _tables(url), batches


def test_an_order_added_filled_and_cancelled_in_one_batch_is_stored_as_its_last_state(
    storage_url: str, tmp_path: Path
) -> None:
    def run(book: OrderBook, _clock: Clock) -> None:
        book.add_order("sell", "100.00", "2", order_id="maker", user_id="alice")
        book.add_order("buy", "100.00", "0.5", order_id="taker", user_id="bob")  # fills maker partly
        book.modify_order("maker", new_quantity="1.5")
        book.cancel_order("maker")
        book.add_order("buy", "99.00", "1", order_id="resting", user_id="bob")

    book, units = _captured(run)
    one_batch, batches = _write(storage_url, book, units, per_batch=len(units))
    assert batches == 1
    maker = one_batch["orders"]["maker"]
    assert maker["status"] == "cancelled"
    assert (maker["filled_quantity"], maker["remaining_quantity"]) == (Decimal("0.5"), Decimal(1))
    assert one_batch["orders"]["taker"]["status"] == "filled"
    assert one_batch["orders"]["resting"]["status"] == "open"
    assert len(one_batch["trades"]) == 1
    one_by_one, batches = _write(_second_url(storage_url, tmp_path), book, units, per_batch=1)
    assert batches == len(units)
    assert one_by_one == one_batch


@pytest.mark.parametrize("per_batch", [7, 100, 10_000])
def test_batches_write_what_one_transaction_per_command_writes(
    storage_url: str, tmp_path: Path, per_batch: int
) -> None:
    book, units = _captured(_stream(seed=per_batch, length=600))
    batched, batches = _write(storage_url, book, units, per_batch)
    assert batches == -(-len(units) // per_batch)
    one_by_one, _ = _write(_second_url(storage_url, tmp_path), book, units, per_batch=1)
    assert batched == one_by_one
    assert batched["market"]["last_sequence"] == book.sequence


class _Crash(BaseException):
    """Stands for the process dying inside a write (not an error the writer would handle)."""


def test_a_batch_that_dies_half_way_leaves_nothing_and_reconcile_or_a_replay_recovers(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    book, units = _captured(_stream(seed=11, length=400))
    half = len(units) // 2
    storage = StorageManager(storage_url, gather_delay=60.0)
    try:
        storage.attach(new_book(), deliver=lambda _unit: None)
        storage._write_batch(units[:half])
        before = _tables(storage_url)
        real = batch._Pending.write

        def dying(self: Any, connection: Any, statements: Any) -> None:
            real(self, connection, statements)  # the order rows are written, then the process dies
            raise _Crash

        monkeypatch.setattr(batch._Pending, "write", dying)
        with pytest.raises(_Crash):
            storage._write_batch(units[half:])
        monkeypatch.undo()
        assert _tables(storage_url) == before  # rolled back as a whole: the stored prefix is intact
        report = storage.reconcile(book)
        assert not report.ok
        # Reconcile repairs the live orders from the book ...
        assert storage.reconcile(book, repair=True).repaired
        assert storage.reconcile(book).ok
        # ... and replaying the units (what a restart does from the journal) writes the rest exactly.
        storage._write_batch(units[half:])
        assert storage.reconcile(book).ok
        after = _tables(storage_url)
        assert after["market"]["last_sequence"] == book.sequence
        assert len(after["trades"]) == book.counters()[1]
    finally:
        storage.close()
