"""The persister and restore: persisted streams come back as the same book, with the same next events."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from manticore_orderbook import EventManager, EventType, OrderBook
from manticore_storage import StorageManager
from manticore_storage import schema as tables
from manticore_storage.apply import Unit, as_unit
from tests.command_streams import Clock, apply, make_stream, new_book
from tests.databases import server_url

from .conftest import MARIADB_URL, POSTGRES_URL, reset_database, reset_postgres


def _recording_book(clock: Clock) -> tuple[OrderBook, list[tuple[str, dict[str, Any]]]]:
    manager = EventManager()
    events: list[tuple[str, dict[str, Any]]] = []
    manager.subscribe_all(lambda event_type, data: events.append((event_type.value, data)))
    return new_book(clock=clock, event_manager=manager), events


def _run_and_restore(url: str, seed: int, cut: int, tail: int, mode: str) -> None:
    stream = make_stream(seed, cut + tail)
    storage = StorageManager(url)
    try:
        clock = Clock()
        original, original_events = _recording_book(clock)
        storage.attach(original, mode=mode)  # type: ignore[arg-type]
        for command in stream[:cut]:
            apply(original, clock, command)
        storage.detach(original)
        twin_clock = Clock(clock.now)
        twin, twin_events = _recording_book(twin_clock)
        storage.restore(twin)
        assert twin_events == [], "restore published events"
        twin.check_invariants()
        assert twin.get_orders() == original.get_orders()
        assert twin.get_snapshot() == original.get_snapshot()
        assert twin.sequence == original.sequence
        assert storage.reconcile(original).ok
        del original_events[:]
        for command in stream[cut:]:
            assert apply(original, clock, command) == apply(twin, twin_clock, command)
        assert json.dumps(twin_events) == json.dumps(original_events), "restored book diverged"
    finally:
        storage.close()


@pytest.mark.parametrize("mode", ["write_behind", "sync"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**9), cut=st.integers(0, 250), tail=st.integers(1, 40))
def test_sqlite_persisted_stream_restores_to_the_same_book(
    tmp_path_factory: pytest.TempPathFactory, mode: str, seed: int, cut: int, tail: int
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'm.db'}"
    _run_and_restore(url, seed, cut, tail, mode)


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL not configured (MANTICORE_TEST_POSTGRES_URL)")
@pytest.mark.parametrize("mode", ["write_behind", "sync"])
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10**9), cut=st.integers(0, 250), tail=st.integers(1, 40))
def test_postgres_persisted_stream_restores_to_the_same_book(
    mode: str, seed: int, cut: int, tail: int
) -> None:
    assert POSTGRES_URL is not None
    reset_postgres(POSTGRES_URL)
    _run_and_restore(POSTGRES_URL, seed, cut, tail, mode)


@pytest.mark.skipif(not MARIADB_URL, reason="MariaDB not configured (MANTICORE_TEST_MARIADB_URL)")
@pytest.mark.parametrize("mode", ["write_behind", "sync"])
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10**9), cut=st.integers(0, 250), tail=st.integers(1, 40))
def test_mariadb_persisted_stream_restores_to_the_same_book(
    mode: str, seed: int, cut: int, tail: int
) -> None:
    assert MARIADB_URL is not None
    reset_database(MARIADB_URL)
    _run_and_restore(MARIADB_URL, seed, cut, tail, mode)


def _table_dump(storage: StorageManager) -> dict[str, list[tuple[Any, ...]]]:
    dump = {}
    with storage.engine.connect() as connection:
        for table in (tables.orders, tables.trades):
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
            dump[table.name] = [
                tuple(v for k, v in row._mapping.items() if k != "updated_at") for row in rows
            ]
    return dump


def test_replaying_an_event_stream_twice_leaves_the_same_rows(storage: StorageManager) -> None:
    clock = Clock()
    book = new_book(clock=clock)
    recorded: list[tuple[EventType, dict[str, Any]]] = []
    book.event_manager.subscribe_all(lambda e, d: recorded.append((e, d)))
    persister = storage.attach(book, mode="sync")
    for command in make_stream(11, 300):
        apply(book, clock, command)
    before = _table_dump(storage)
    wanted = [(e, d) for e, d in recorded if e in set(persister_types())]
    # The persister wrote captured changes; the event path must find nothing left to change.
    for half in (wanted[: len(wanted) // 2], wanted):  # a partial replay, then the whole stream again
        storage._write_units([Unit(book.symbol, list(half), book.sequence)])
    assert _table_dump(storage) == before
    assert persister.mode == "sync"


@pytest.mark.parametrize("seed", [3, 11, 29, 47])
def test_captured_changes_write_the_same_rows_as_their_events(tmp_path: Any, seed: int) -> None:
    """The persister's change capture and the event path (replays, failed events) are interchangeable."""
    clock = Clock()
    book = new_book(clock=clock)
    recorded: list[tuple[EventType, dict[str, Any]]] = []
    book.event_manager.subscribe_all(lambda e, d: recorded.append((e, d)))
    captured = StorageManager(f"sqlite:///{tmp_path / 'captured.db'}")
    from_events = StorageManager(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        captured.attach(book, mode="write_behind")
        from_events.save_market(book.symbol, book.tick_size, book.lot_size, "0.001", "0.002")
        sequence = 0
        for command in make_stream(seed, 400):
            apply(book, clock, command)
            if book.sequence != sequence:  # one unit per command, as the persister cuts them
                events = [(e, d) for e, d in recorded if e in set(persister_types())]
                from_events._write_units([Unit(book.symbol, events, book.sequence)])
                sequence = book.sequence
            recorded.clear()
        captured.flush()
        got, want = _table_dump(captured), _table_dump(from_events)
        # The event path keeps the visible quantity an order had at its last event; an order that
        # rests after its ORDER_ADDED or ORDER_MODIFIED shows 0 there. Capture stores the true value.
        visible = [c.name for c in tables.orders.columns if c.name != "updated_at"].index("visible_quantity")
        for table, rows in want.items():
            assert len(got[table]) == len(rows)
            for mine, theirs in zip(got[table], rows, strict=True):
                if table == tables.orders.name:
                    mine = mine[:visible] + mine[visible + 1 :]
                    theirs = theirs[:visible] + theirs[visible + 1 :]
                assert mine == theirs, [(a, b) for a, b in zip(mine, theirs, strict=True) if a != b]
        for row in captured.get_active_orders(book.symbol):
            live = book.get_order(row["order_id"])
            assert live is not None and Decimal(str(live["visible_quantity"])) == row["visible_quantity"]
    finally:
        captured.close()
        from_events.close()


def persister_types() -> tuple[EventType, ...]:
    from manticore_storage import PERSISTED_EVENTS

    return PERSISTED_EVENTS


def test_numbers_are_stored_exactly(storage: StorageManager) -> None:
    book = OrderBook("X/Y", tick_size="0.00000001", lot_size="0.00000001", taker_fee_rate="0.0007")
    storage.attach(book, mode="sync")
    book.add_order("sell", 0.1, 0.3, order_id="s1")
    book.add_order("buy", 0.1, 0.1, order_id="b1")
    book.add_order("buy", 0.1, 0.2, order_id="b2")
    trades = storage.get_trades("X/Y")
    assert [t["quantity"] for t in trades] == [Decimal("0.2"), Decimal("0.1")]
    assert {t["taker_fee"] for t in trades} == {Decimal("0.000014"), Decimal("0.000007")}
    sold = storage.get_order("s1")
    assert sold is not None and sold["status"] == "filled" and sold["remaining_quantity"] == 0
    assert sold["filled_quantity"] == Decimal("0.3")


def test_write_behind_flushes_on_close(storage_url: str) -> None:
    storage = StorageManager(storage_url)
    clock = Clock()
    book = new_book(clock=clock)
    storage.attach(book)
    for command in make_stream(5, 400):
        apply(book, clock, command)
    assert storage.close()
    reopened = StorageManager(storage_url)
    try:
        twin = new_book(clock=Clock(clock.now))
        reopened.restore(twin)
        assert twin.get_orders() == book.get_orders() and twin.sequence == book.sequence
        assert reopened.get_pending_write_count() == 0
    finally:
        reopened.close()


def test_clear_marks_stored_orders_cancelled(storage: StorageManager) -> None:
    book = new_book()
    storage.attach(book, mode="sync")
    book.add_order("buy", "99", "1", order_id="a")
    book.add_order("sell", "101", "1", order_id="b")
    book.clear()
    assert storage.get_active_orders(book.symbol) == []
    order = storage.get_order("a")
    assert order is not None and order["status"] == "cancelled" and order["cancel_reason"] == "clear"


def test_reconcile_reports_and_repairs(storage: StorageManager) -> None:
    book = new_book()
    persister = storage.attach(book, mode="sync")
    book.add_order("buy", "99", "1", order_id="a")
    book.add_order("buy", "98", "2", order_id="b")
    storage.detach(book)
    book.add_order("sell", "101", "1", order_id="unseen")  # not persisted
    book.modify_order("b", new_quantity="1.5")  # not persisted
    storage.save_order({**book.export_state()["orders"][0], "order_id": "ghost", "priority": 1})
    report = storage.reconcile(book)
    assert not report.ok
    assert report.missing_in_storage == ["unseen"]
    assert report.missing_in_book == ["ghost"]
    assert [(m.order_id, m.field) for m in report.mismatches] == [
        ("b", "quantity"),
        ("b", "remaining_quantity"),
    ]
    assert storage.reconcile(book, repair=True).repaired
    assert storage.reconcile(book).ok
    assert persister.symbol == book.symbol


def test_failed_units_are_recorded_and_replayed(storage_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fault is injected into this process's apply_units: the writer must run here, as a thread
    # (test_writer_process.py checks the writer process's failed units with a unit that is bad itself).
    storage = StorageManager(storage_url, writer="thread")
    try:
        _failed_units_are_recorded_and_replayed(storage, monkeypatch)
    finally:
        storage.close()


def _failed_units_are_recorded_and_replayed(storage: StorageManager, monkeypatch: pytest.MonkeyPatch) -> None:
    book = new_book()
    storage.attach(book, mode="write_behind")
    book.add_order("buy", "99", "1", order_id="a")
    assert storage.flush(10)
    import manticore_storage.manager as manager_module

    real = manager_module.apply_units

    def broken(connection: Any, market: Any, units: Any) -> int:
        events = [data for unit in units for _, data in as_unit(unit).as_events(market)]
        if any(data.get("order_id") == "poison" for data in events):
            raise ValueError("cannot store this one")
        return real(connection, market, units)

    monkeypatch.setattr(manager_module, "apply_units", broken)
    book.add_order("buy", "98", "1", order_id="poison")
    book.add_order("buy", "97", "1", order_id="fine")
    assert storage.flush(10)
    assert storage.get_order("poison") is None and storage.get_order("fine") is not None
    failed = storage.get_failed_events()
    assert [f["event_type"] for f in failed] == ["order_added"]
    assert "cannot store this one" in failed[0]["error"]
    monkeypatch.setattr(manager_module, "apply_units", real)
    assert storage.replay_failed_events() == 1
    assert storage.get_failed_events() == []
    assert storage.reconcile(book).ok


def _kill_other_sessions(storage: StorageManager) -> None:
    """End every other session on the storage's database, the way a server restart or a proxy would."""
    with storage.engine.connect() as admin:
        if storage.dialect == "postgresql":
            admin.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        else:
            sessions = admin.exec_driver_sql(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            ).scalars()
            for session in list(sessions):
                admin.exec_driver_sql(f"KILL {int(session)}")
        admin.commit()


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_sync_mode_survives_a_killed_connection(server: str) -> None:
    url = server_url(server)
    reset_database(url)
    for mode in ("sync", "write_behind"):
        storage = StorageManager(url)
        try:
            book = new_book(symbol=f"KILL/{mode}")
            storage.attach(book, mode=mode)  # type: ignore[arg-type]
            book.add_order("buy", "99", "1", order_id=f"{mode}-a")
            storage.flush(10)
            _kill_other_sessions(storage)
            book.add_order("buy", "98", "1", order_id=f"{mode}-b")
            assert storage.flush(30)
            assert storage.get_order(f"{mode}-b") is not None
            assert storage.reconcile(book).ok
        finally:
            storage.close()


def test_schema_is_versioned(storage: StorageManager) -> None:
    from manticore_storage.migrations import CURRENT_VERSION, version_table

    assert storage.schema_version == CURRENT_VERSION
    again = StorageManager(str(storage.engine.url.render_as_string(hide_password=False)))
    try:
        with again.engine.connect() as connection:
            count = connection.execute(select(func.count()).select_from(version_table)).scalar_one()
        assert count == CURRENT_VERSION
    finally:
        again.close()


def test_a_missing_table_is_not_retried_forever(tmp_path: Any) -> None:
    """Regression: SQLite's "no such table" is an OperationalError but not a transient one."""
    storage = StorageManager(f"sqlite:///{tmp_path / 'gone.db'}", sync_timeout=60)
    try:
        book = new_book()
        storage.attach(book, mode="write_behind")
        with storage.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE manticore_orders")
        book.add_order("buy", "99", "1", order_id="a")
        assert storage.flush(10), "the writer kept retrying a permanent error"
        assert [f["event_type"] for f in storage.get_failed_events()] == ["order_added"]
    finally:
        storage.close()
