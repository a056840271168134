"""The journal position the writer commits with a batch (SQLite: as driver SQL on the DBAPI cursor;
elsewhere: Core statements): the first one inserts the row (on SQLite's fresh file), later ones move
it, each in the batch's transaction, and a position alone (a batch of markers) is written too."""

from __future__ import annotations

from manticore_orderbook import OrderBook
from manticore_storage import StorageManager
from manticore_storage.apply import UnitTuple


def test_positions_are_inserted_then_moved_with_their_batches(storage: StorageManager) -> None:
    units: list[UnitTuple] = []
    book = OrderBook("BTC/USD", tick_size="0.5", lot_size="0.001")
    storage.attach(book, deliver=units.append)
    if storage.engine.dialect.name == "sqlite":  # a fresh file; a server's tables may keep a position
        assert storage.journal_position() == (0, None)
    book.add_order("buy", 100, "1", "o1", user_id="u1")
    storage._write_batch([*units, (None, 3, 1.5)])
    assert storage.journal_position() == (3, 1.5)
    units.clear()
    book.add_order("sell", 101, "1", "o2", user_id="u2")
    storage._write_batch([(None, 4, 2.0), *units, (None, 7, None)])  # the highest marker counts
    assert storage.journal_position() == (7, None)
    storage._write_batch([(None, 9, 4.25)])
    assert storage.journal_position() == (9, 4.25)
    assert {order["order_id"] for order in storage.get_orders(user_id="u1")} == {"o1"}
    assert {order["order_id"] for order in storage.get_orders(user_id="u2")} == {"o2"}
