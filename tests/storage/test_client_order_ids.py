"""Client order ids in storage: written from the change log and the event path, read back, restored, and
added to databases made before they existed (migration 3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, MetaData, Table, create_engine, func, inspect, select

from manticore_orderbook import EventManager, OrderBook
from manticore_storage import StorageManager
from manticore_storage import schema as tables
from manticore_storage.migrations import CURRENT_VERSION, version_table


def _book() -> OrderBook:
    return OrderBook(
        "BTC/USD", event_manager=EventManager(), tick_size="1", lot_size="0.1", clock=lambda: 50.0
    )


def test_orders_and_trades_keep_client_order_ids_and_restore_them(storage_url: str) -> None:
    storage = StorageManager(storage_url)
    try:
        book = _book()
        storage.attach(book)
        ask = book.add_order("sell", 100, 2, user_id="alice", client_order_id="a-1")
        book.add_order("sell", 101, 1, user_id="alice")
        bid = book.add_order("buy", 100, 1, user_id="bob", client_order_id="b-1")
        book.add_order("buy", 90, 1, user_id="bob", client_order_id="b-2", stop_price=95)
        assert storage.flush(30)
        assert storage.get_order(ask)["client_order_id"] == "a-1"  # type: ignore[index]
        assert storage.get_order(bid)["client_order_id"] == "b-1"  # type: ignore[index]
        assert storage.get_order_by_client_id("bob", "b-1")["order_id"] == bid  # type: ignore[index]
        assert storage.get_order_by_client_id("alice", "b-1") is None  # another user's id is invisible
        (trade,) = storage.get_trades(user_id="bob")
        assert (trade["maker_client_order_id"], trade["taker_client_order_id"]) == ("a-1", "b-1")
        again = _book()
        assert storage.restore(again) == 3
        assert again.export_state()["orders"] == book.export_state()["orders"]
        assert {o["client_order_id"] for o in again.get_orders()} == {"a-1", None, "b-2"}
    finally:
        storage.close()


def test_the_event_path_writes_the_client_order_id(storage_url: str) -> None:
    storage = StorageManager(storage_url)
    try:
        book = _book()
        events: list[dict[str, Any]] = []
        book.event_manager.subscribe_all(lambda _type, data: events.append(data))
        book.add_order("sell", 100, 2, user_id="alice", client_order_id="guide.1")
        storage.save_order(events[0])
        assert storage.get_order(events[0]["order_id"])["client_order_id"] == "guide.1"  # type: ignore[index]
    finally:
        storage.close()


def test_migration_3_adds_the_columns_to_an_older_database(storage_url: str) -> None:
    """A database at schema version 2 (tables without the new columns, one order in them) upgrades in place
    and keeps its rows; their client order id is NULL."""
    new_columns = {
        tables.orders.name: {"client_order_id"},
        tables.trades.name: {"maker_client_order_id", "taker_client_order_id"},
    }
    old = MetaData()
    for table in tables.metadata.sorted_tables:
        kept = [column for column in table.columns if column.name not in new_columns.get(table.name, set())]
        Table(
            table.name,
            old,
            *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in kept),
        )
    engine = create_engine(storage_url)
    try:
        with engine.begin() as connection:
            old.create_all(connection)
            version_table.create(connection, checkfirst=True)
            for number in (1, 2):
                connection.execute(
                    version_table.insert().values(version=number, description="old", applied_at=0.0)
                )
            connection.execute(
                old.tables[tables.orders.name]
                .insert()
                .values(
                    symbol="BTC/USD",
                    order_id="legacy-1",
                    side="buy",
                    price="10",
                    quantity="1",
                    filled_quantity="0",
                    remaining_quantity="1",
                    order_type="LIMIT",
                    time_in_force="GTC",
                    user_id="carol",
                    user_id_is_int=False,
                    timestamp=1.0,
                    trail_is_percent=False,
                    triggered=False,
                    status="open",
                    priority=1,
                    last_sequence=1,
                )
            )
    finally:
        engine.dispose()
    storage = StorageManager(storage_url)
    try:
        assert storage.schema_version == CURRENT_VERSION == 4  # and migration 4 after it
        with storage.engine.connect() as connection:
            inspector = inspect(connection)
            for name, columns in new_columns.items():
                assert columns <= {column["name"] for column in inspector.get_columns(name)}
            indexes = {index["name"] for index in inspector.get_indexes(tables.orders.name)}
            assert "ix_manticore_orders_client_id" in indexes
            count = connection.execute(select(func.count()).select_from(version_table)).scalar_one()
            assert count == 4
        legacy = storage.get_order("legacy-1")
        assert legacy is not None and legacy["client_order_id"] is None and legacy["user_id"] == "carol"
    finally:
        storage.close()
