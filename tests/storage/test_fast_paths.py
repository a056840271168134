"""The trusted restore path and the writer's deferral to a busy producer."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from itertools import product
from typing import Any

import pytest
from sqlalchemy import text

from manticore_orderbook import (
    EventManager,
    InvalidOrderError,
    OrderBook,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from manticore_orderbook.restore import load_trusted
from manticore_storage import StorageError, StorageManager, restore
from manticore_storage import schema as tables
from manticore_storage.apply import as_unit, unit_size
from manticore_storage.capture import RECORD_ORDER
from manticore_storage.restore import UnitCache


def _book(symbol: str = "BTC/USD") -> OrderBook:
    return OrderBook(
        symbol, event_manager=EventManager(), tick_size="0.01", lot_size="0.0001", clock=lambda: 1000.0
    )


@contextmanager
def _attached_book(url: str) -> Iterator[tuple[StorageManager, OrderBook]]:
    """A StorageManager on ``url`` with a fresh ``_book()`` attached; the storage is closed on exit."""
    storage = StorageManager(url)
    try:
        book = _book()
        storage.attach(book)
        yield storage, book
    finally:
        storage.close()


def test_unit_cache_is_exact_and_rejects_values_off_the_grid() -> None:
    lots = UnitCache(Decimal("0.0001"), "quantity")
    assert lots["1.5000"] == 15000
    assert lots["1.5"] == 15000
    assert lots["0"] == 0
    assert lots[Decimal("0.00020")] == 2
    assert lots["2E-4"] == 2
    assert lots[None] is None
    with pytest.raises(InvalidOrderError):
        lots["0.00005"]
    with pytest.raises(InvalidOrderError):
        lots["NaN"]
    ticks = UnitCache(Decimal("0.5"), "price")
    assert ticks["1.5"] == 3
    with pytest.raises(InvalidOrderError):
        ticks["1.25"]


def test_restore_keeps_integer_user_ids_and_numbers_unprioritised_rows_last(storage_url: str) -> None:
    with _attached_book(storage_url) as (storage, book):
        book.add_order("buy", "100.00", "1", order_id="a", user_id=42)
        book.add_order("buy", "100.00", "2", order_id="b", user_id="bob")
        storage.flush()
        storage.save_market("BTC/USD", "0.01", "0.0001")
        storage.save_order(
            {
                "symbol": "BTC/USD",
                "order_id": "g",
                "side": "buy",
                "price": "100",
                "quantity": "3",
                "timestamp": 5.0,
            }
        )
        twin = _book()
        assert storage.restore(twin) == 3
        assert twin.get_order("a")["user_id"] == 42
        assert twin.get_order("b")["user_id"] == "bob"
        assert [o["order_id"] for o in twin.export_state()["orders"]] == ["a", "b", "g"]
        assert twin.get_order("g")["priority"] > twin.get_order("b")["priority"]


def test_restore_refuses_inconsistent_rows_and_leaves_the_book_empty(storage_url: str) -> None:
    with _attached_book(storage_url) as (storage, book):
        book.add_order("buy", "100.00", "1", order_id="a")
        book.add_order("sell", "101.00", "1", order_id="b")
        storage.flush()
        with storage.engine.begin() as connection:
            connection.execute(text("UPDATE manticore_orders SET price = '102.00' WHERE order_id = 'a'"))
        twin = _book()
        with pytest.raises(StorageError, match="crossed"):
            storage.restore(twin)
        assert len(twin) == 0 and twin.get_snapshot()["bids"] == []
        with storage.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE manticore_orders SET price = '100.00', remaining_quantity = '0.5' "
                    "WHERE order_id = 'a'"
                )
            )
        with pytest.raises(StorageError, match="quantities"):
            storage.restore(twin)
        assert len(twin) == 0


def test_writer_holds_off_for_a_busy_book_and_writes_within_max_delay(tmp_path: object) -> None:
    storage = StorageManager(f"sqlite:///{tmp_path}/busy.db")
    try:
        book = _book()
        storage.attach(book)
        deadline = time.monotonic() + 0.3
        n = 0
        # A busy producer: units arrive far faster than one per ms. Bounded in count too, so that a faster
        # book on a loaded machine does not queue more than the writer can drain in the wait below.
        while time.monotonic() < deadline and n < 10_000:
            book.add_order("buy", "100.00", "0.0001", order_id=f"o{n}")
            n += 1
        waited = time.monotonic()
        while storage.get_pending_write_count() and time.monotonic() - waited < 20.0:
            time.sleep(0.01)
        assert storage.get_pending_write_count() == 0  # written without a flush
        assert storage.reconcile(book).ok
    finally:
        storage.close()


def test_a_triggered_trailing_stop_restores_with_its_stop_price(storage_url: str) -> None:
    """Regression: both restore paths dropped the stop price of a trailing stop that had triggered."""
    book = _book()
    with StorageManager(storage_url) as storage:
        storage.attach(book, mode="sync")
        book.add_order("sell", "100", "1", order_id="m1", user_id="a")
        book.add_order("buy", "100", "1", order_id="t1", user_id="b")
        book.add_order(
            "buy", "99", "1", order_id="trail", user_id="c", order_type="trailing_stop", trail_value="1"
        )
        book.add_order("sell", "101", "1", order_id="m2", user_id="a")
        book.add_order("buy", "101", "1", order_id="t2", user_id="b")
        assert book.get_order("trail")["triggered"]  # type: ignore[index]
        twin = _book()
        storage.restore(twin)
    assert twin.export_state() == book.export_state()


# ------------------------------------------------------------------ the seven-column restore


def _sql(storage: StorageManager, statement: str) -> None:
    with storage.engine.begin() as connection:
        connection.execute(text(statement))


def test_kind_keys_decode_exactly_what_the_database_encodes(storage_url: str) -> None:
    """Every combination of the kind columns, encoded by the database and decoded by ``_KIND_KEYS``;
    the detailed flag for each way an order's quantities can be stored."""
    shapes = {  # quantity, filled, remaining, visible, expiry: and whether the row is detailed
        "plain": ("1", "0", "1", None, None, False),
        "fresh": ("1", "0", "1", "0", None, False),
        "shown": ("1", "0", "1", "1", None, False),
        "expiry": ("1", "0", "1", None, 5.0, True),
        "filled": ("2", "1", "1", "1", None, True),
        "slice": ("1", "0", "1", "0.5", None, True),
    }
    combinations = product(
        [m.value for m in Side],
        [m.value for m in OrderType],
        [m.value for m in TimeInForce],
        [None, *(m.value for m in SelfTradePrevention)],
        [False, True],
        [False, True],
        [False, True],
    )
    rows: list[dict[str, Any]] = []
    wanted = []
    for n, (side, kind, tif, stp, pending, triggered, int_id) in enumerate(combinations):
        name = list(shapes)[n % len(shapes)]
        quantity, filled, remaining, visible, expiry, detailed = shapes[name]
        rows.append(
            {
                "symbol": "K/Y",
                "order_id": f"o{n}",
                "side": side,
                "quantity": quantity,
                "filled_quantity": filled,
                "remaining_quantity": remaining,
                "visible_quantity": visible,
                "order_type": kind,
                "time_in_force": tif,
                "expiry_time": expiry,
                "user_id_is_int": int_id,
                "timestamp": 1.0,
                "trail_is_percent": False,
                "self_trade_prevention": stp,
                "triggered": triggered,
                "status": "pending" if pending else "open",
                "priority": n + 1,
            }
        )
        wanted.append((side, kind, tif, stp, pending, triggered, int_id, detailed))
    rows.append({**rows[0], "order_id": "unknown", "side": "BUY", "priority": len(rows) + 1})
    storage = StorageManager(storage_url)
    encode = restore._kind_key_sql(storage.engine.dialect.name)
    try:
        with storage.engine.begin() as connection:
            connection.execute(tables.orders.insert(), rows)
            keys = (
                connection.execute(text(f"SELECT {encode} FROM manticore_orders ORDER BY priority"))
                .scalars()
                .all()
            )
    finally:
        storage.close()
    assert [restore._KIND_KEYS[key] for key in keys[:-1]] == wanted
    assert keys[-1] is None  # a value the book does not know: the book refuses the row


def test_restore_puts_a_level_stored_in_two_spellings_in_priority_order(storage_url: str) -> None:
    """Rows come sorted by the stored price; on SQLite '100' and '100.00' sort apart, one level."""
    with _attached_book(storage_url) as (storage, book):
        for order_id in ("a", "b", "c"):
            book.add_order("buy", "100.00", "1", order_id=order_id)
        book.add_order("buy", "99.00", "1", order_id="d")
        book.add_order("sell", "101.00", "1", order_id="e")
        storage.flush()
        _sql(storage, "UPDATE manticore_orders SET price = '100' WHERE order_id = 'b'")
        twin = _book()
        assert storage.restore(twin) == 5
        twin.check_invariants()
        assert [o["order_id"] for o in twin.get_orders()] == ["a", "b", "c", "d", "e"]
        assert twin.export_state() == book.export_state()


def test_restore_refuses_two_orders_with_one_priority(storage_url: str) -> None:
    with _attached_book(storage_url) as (storage, book):
        book.add_order("buy", "100.00", "1", order_id="a")
        book.add_order("buy", "100.00", "1", order_id="b")
        book.add_order("buy", "99.00", "1", order_id="c")
        storage.flush()
        first = book.get_order("a")["priority"]  # type: ignore[index]
        for other, error in (("c", "same priority"), ("b", "not above the previous one")):
            _sql(storage, f"UPDATE manticore_orders SET priority = {first} WHERE order_id = '{other}'")
            twin = _book()
            with pytest.raises(StorageError, match=error):
                storage.restore(twin)
            assert len(twin) == 0 and twin.get_snapshot()["bids"] == []
            _sql(storage, f"UPDATE manticore_orders SET priority = {first + 10} WHERE order_id = '{other}'")


def test_restore_refuses_a_price_with_orders_on_both_sides(storage_url: str) -> None:
    with _attached_book(storage_url) as (storage, book):
        book.add_order("buy", "100.00", "1", order_id="a")
        book.add_order("sell", "101.00", "1", order_id="b")
        book.add_order("buy", "100.00", "1", order_id="c")
        storage.flush()
        _sql(storage, "UPDATE manticore_orders SET price = '100.00' WHERE order_id = 'b'")
        twin = _book()
        with pytest.raises(StorageError, match="crossed"):
            storage.restore(twin)
        assert len(twin) == 0


@pytest.mark.parametrize(
    ("update", "error"),
    [
        ("visible_quantity = '-0.5'", "visible_quantity"),
        ("displayed_quantity = '-1'", "displayed_quantity"),
        ("user_id_is_int = TRUE", "user_id"),
        ("expiry_time = 5000", "GTD"),
        ("order_type = 'STOP_LIMIT'", "stop"),
        ("side = 'BUY'", "unknown side"),
    ],
)
def test_restore_refuses_corrupt_details(storage_url: str, update: str, error: str) -> None:
    with _attached_book(storage_url) as (storage, book):
        book.add_order("buy", "99.00", "1", order_id="z", user_id="ann")
        book.add_order("buy", "100.00", "1", order_id="a", user_id="bob")
        storage.flush()
        _sql(storage, f"UPDATE manticore_orders SET {update} WHERE order_id = 'a'")
        twin = _book()
        with pytest.raises(StorageError, match=error):
            storage.restore(twin)
        assert len(twin) == 0


def _trusted(book: OrderBook, records: list[tuple[Any, ...]], details: dict[int, tuple[Any, ...]]) -> int:
    kinds: dict[object, tuple[Any, ...]] = {
        0: ("buy", "LIMIT", "GTC", None, False, False, False, False),
        1: ("sell", "TRAILING_STOP", "GTC", None, True, False, False, True),
        2: ("buy", "LIMIT", "GTD", None, False, False, False, True),
    }
    prices = UnitCache(Decimal("0.01"), "price")
    lots = UnitCache(Decimal("0.0001"), "quantity")
    return load_trusted(book, records, kinds, details, prices, lots, 0, 0, 0, None)


def test_trusted_restore_reorders_split_levels_and_registers_stops_by_priority() -> None:
    book = _book()
    trail = {rank: (rank, "1", "0", None, None, None, None, "1", False, "101") for rank in (3, 4)}
    records = [
        ("x", "100", "1", "u", 1.0, 5, 0),
        ("s2", None, "1", "u", 1.0, 4, 1),
        ("g", "99", "2", "u", 1.0, 6, 2),
        ("y", "100.0", "1", "u", 1.0, 2, 0),
        ("s1", None, "1", "u", 1.0, 3, 1),
    ]
    details = {**trail, 6: (6, "2", "0", None, None, 2000.0, None, None, False, None)}
    assert _trusted(book, records, details) == 5
    book.check_invariants()
    assert [o["order_id"] for o in book.get_orders()] == ["y", "x", "g", "s1", "s2"]
    assert list(book._trailing) == ["s1", "s2"]  # trailing stops move in arrival order
    assert book.sequence == 6
    assert book.get_snapshot()["bids"][0]["quantity"] == 2 and book.get_order("g")["expiry_time"] == 2000.0  # type: ignore[index]
    with pytest.raises(InvalidOrderError, match="details are missing"):
        _trusted(_book(), records, trail)


def test_trusted_restore_refuses_an_order_id_used_twice() -> None:
    records = [("x", "100", "1", "u", 1.0, 1, 0), ("x", "99", "1", "u", 1.0, 2, 0)]
    book = _book()
    with pytest.raises(InvalidOrderError, match="same order_id"):
        _trusted(book, records, {})
    assert len(book) == 0 and book.get_snapshot()["bids"] == []


def test_restore_turns_the_collector_back_on_and_keeps_frozen_objects_frozen(tmp_path: object) -> None:
    """Restore pauses the garbage collector and hands what it built to the oldest generation."""
    storage = StorageManager(f"sqlite:///{tmp_path}/gc.db")
    try:
        book = _book()
        storage.attach(book)
        book.add_order("buy", "100.00", "1", order_id="a")
        storage.flush()
        assert storage.restore(_book()) == 1
        assert gc.isenabled() and gc.get_freeze_count() == 0
        gc.freeze()
        try:
            assert storage.restore(_book()) == 1
            assert gc.isenabled() and gc.get_freeze_count() > 0  # still frozen
        finally:
            gc.unfreeze()
    finally:
        storage.close()


def test_a_command_touching_one_order_becomes_one_flat_unit(tmp_path: object) -> None:
    storage = StorageManager(f"sqlite:///{tmp_path}/flat.db")
    units: list[tuple[Any, ...]] = []
    try:
        book = _book()
        storage.attach(book, deliver=units.append)
        book.add_order("sell", "100.00", "0.0002", order_id="maker")  # rests: one order touched
        book.add_order("buy", "100.00", "0.0001", order_id="taker")  # trades: two orders and a trade
        book.cancel_order("maker")
        rests, trades, cancels = units
        for flat in (rests, cancels):
            assert type(flat[1]) is int and unit_size(flat) == 1
            unpacked = as_unit(flat)
            assert unpacked.price_in_ticks and unpacked.id_prefix == book.order_id_prefix
            ((record,),) = (unpacked.changes,)
            assert record[0] == RECORD_ORDER and record[4] == "maker"
        assert as_unit(rests).sequence < as_unit(cancels).sequence == book.sequence
        assert as_unit(cancels).trade_count == 1 and as_unit(cancels).last_trade_price == 10000
        assert type(trades[1]) is tuple and unit_size(trades) == 3  # maker fill, taker, trade
        for unit in units:
            storage.submit(unit)
        storage.flush()
        assert storage.reconcile(book).ok
        assert storage.get_order("maker")["status"] == "cancelled"
    finally:
        storage.close()
