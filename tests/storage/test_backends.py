"""What differs between the SQL backends: exact ids and numbers, the guarded upsert, lost connections.

MariaDB/MySQL is where these differ most: its default collations compare ids case-insensitively and
ignore trailing spaces, ``DECIMAL(65, 30)`` has a fixed scale, ``ON DUPLICATE KEY UPDATE`` has no
WHERE (the guard is in the assignments, applied left to right), and its drivers raise
``OperationalError`` for permanent errors too. Every test here runs on every configured backend
unless it says otherwise.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pymysql
import pytest
from sqlalchemy import Connection, create_engine, select, text
from sqlalchemy.exc import OperationalError, ProgrammingError, StatementError

from manticore_storage import StorageError, StorageManager
from manticore_storage import schema as tables
from manticore_storage.apply import upsert_orders
from manticore_storage.records import order_row
from manticore_storage.writer import is_transient
from tests.command_streams import new_book

from .conftest import MARIADB_URL


def _order(order_id: str, **fields: Any) -> dict[str, Any]:
    return {"order_id": order_id, "symbol": "ID/USD", "side": "buy", "price": "10", "quantity": "1", **fields}


def test_ids_differing_in_case_or_trailing_spaces_stay_apart(storage: StorageManager) -> None:
    """The book tells "a", "A" and "a " apart, and so must storage (MariaDB's default collation does not)."""
    ids = ["a", "A", "a ", "ä"]
    storage.batch_save_orders([_order(oid, quantity=str(i + 1), user_id=oid) for i, oid in enumerate(ids)])
    for i, oid in enumerate(ids):
        stored = storage.get_order(oid, symbol="ID/USD")
        assert stored is not None and stored["order_id"] == oid and stored["quantity"] == i + 1
        assert [o["order_id"] for o in storage.get_orders(user_id=oid)] == [oid]
    assert storage.get_order("a  ") is None
    assert sorted(o["order_id"] for o in storage.get_active_orders("ID/USD")) == sorted(ids)


def test_guarded_upsert_replaces_only_older_rows(storage: StorageManager) -> None:
    """Every column follows the sequence guard (on MariaDB: each assignment, with last_sequence last)."""

    def write(sequence: int, guarded: bool = True, **fields: Any) -> None:
        row = order_row(_order("g", **fields), None, sequence, now=float(sequence))
        with storage.engine.begin() as connection:
            upsert_orders(connection, [row], guarded=guarded)

    def stored() -> dict[str, Any]:
        with storage.engine.connect() as connection:
            row = connection.execute(select(tables.orders)).mappings().one()
        return {key: row[key] for key in ("quantity", "status", "priority", "last_sequence", "updated_at")}

    write(5, quantity="2", status="open", priority=5)
    assert stored() == {
        "quantity": 2,
        "status": "open",
        "priority": 5,
        "last_sequence": 5,
        "updated_at": 5.0,
    }
    write(3, quantity="3", status="cancelled", priority=3)  # older: no change
    write(5, quantity="4", status="cancelled", priority=4)  # the same sequence: no change either
    assert stored()["last_sequence"] == 5 and stored()["quantity"] == 2 and stored()["status"] == "open"
    write(7, quantity="5", status="cancelled", priority=7)  # newer: every column replaced
    assert stored() == {
        "quantity": 5,
        "status": "cancelled",
        "priority": 7,
        "last_sequence": 7,
        "updated_at": 7.0,
    }
    write(1, guarded=False, quantity="6", status="open", priority=1)  # the guide's unguarded write
    assert stored() == {"quantity": 6, "status": "open", "priority": 1, "last_sequence": 1, "updated_at": 1.0}


def test_numbers_keep_every_digit(storage: StorageManager) -> None:
    """35 integer and 30 decimal digits (all of MariaDB's DECIMAL(65, 30)) come back exactly."""
    big = Decimal("12345678901234567890123456789012345.123456789012345678901234567891")
    tiny = Decimal("0.000000000000000000000000000001")
    storage.save_order(_order("n", price=str(big), quantity=str(tiny), filled_quantity="0"))
    stored = storage.get_order("n")
    assert stored is not None
    assert stored["price"] == big and str(stored["price"]) == str(big)
    assert stored["quantity"] == tiny and stored["remaining_quantity"] == tiny
    storage.save_order(_order("z", price="100.50", quantity="3"))
    stored = storage.get_order("z")
    assert stored is not None and stored["price"] == Decimal("100.5") and stored["quantity"] == 3
    assert "E" not in str(stored["quantity"]), "integers come back without an exponent"


def test_mariadb_refuses_what_decimal_65_30_would_round(storage_url: str) -> None:
    if not storage_url.startswith(("mysql", "mariadb")):
        pytest.skip("only MySQL/MariaDB has a fixed decimal scale")
    with StorageManager(storage_url) as storage:
        for quantity in ("0.0000000000000000000000000000001", "1" * 36):
            with pytest.raises(StatementError, match="DECIMAL"):
                storage.save_order(_order("x", quantity=quantity))
        assert storage.get_order("x") is None


def _kill(url: str, connection: Connection) -> None:
    """End ``connection``'s server session from another session, as a server restart would."""
    if url.startswith("postgresql"):
        query, statement = "SELECT pg_backend_pid()", "SELECT pg_terminate_backend({})"
    else:
        query, statement = "SELECT CONNECTION_ID()", "KILL {}"
    session = int(connection.exec_driver_sql(query).scalar_one())
    admin = create_engine(url)
    try:
        with admin.begin() as other:
            other.exec_driver_sql(statement.format(session))
    finally:
        admin.dispose()


@pytest.mark.parametrize("mode", ["sync", "write_behind"])
def test_a_session_killed_inside_a_write_is_retried(
    storage_url: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the session in the middle of a transaction: the write is retried, nothing is lost."""
    if storage_url.startswith("sqlite"):
        pytest.skip("SQLite has no server session to kill")
    import manticore_storage.manager as manager_module

    real = manager_module.apply_units
    killed = threading.Event()

    def killing(connection: Connection, market: Any, units: Any) -> int:
        applied = real(connection, market, units)
        if not killed.is_set():
            killed.set()
            _kill(storage_url, connection)
        return applied

    monkeypatch.setattr(manager_module, "apply_units", killing)
    storage = StorageManager(storage_url)
    try:
        book = new_book()
        storage.attach(book, mode=mode)  # type: ignore[arg-type]
        book.add_order("buy", "99", "1", order_id="a")
        book.add_order("buy", "98", "2", order_id="b")
        assert storage.flush(30)
        assert killed.is_set()
        assert storage.get_failed_events() == []
        assert storage.reconcile(book).ok
        if mode == "write_behind":
            assert storage._writer is not None and storage._writer.retries >= 1
    finally:
        storage.close()


def _error(exc: BaseException) -> OperationalError:
    return OperationalError("SELECT 1", {}, exc)


def test_mysql_errors_are_classified_by_code() -> None:
    """PyMySQL raises OperationalError for an unknown column too: only the codes of passing trouble
    (lost connection, server shutdown, deadlock, lock wait timeout) are retried."""
    for code in (2003, 2006, 2013, 1053, 1205, 1213, 1927):
        assert is_transient(_error(pymysql.err.OperationalError(code, "passing"))), code
    for code in (1054, 1193, 1366, 1406):
        assert not is_transient(_error(pymysql.err.OperationalError(code, "permanent"))), code
    missing = ProgrammingError("SELECT 1", {}, pymysql.err.ProgrammingError(1146, "no such table"))
    assert not is_transient(missing)


def test_mariadb_server_errors_are_classified() -> None:
    """The same on a live server: a killed session and a lock wait timeout pass, an unknown column stays."""
    if not MARIADB_URL:
        pytest.skip("MariaDB not configured (MANTICORE_TEST_MARIADB_URL)")
    with StorageManager(MARIADB_URL) as storage:
        storage.save_market("LOCK/USD", "0.01", "0.01")
        with storage.engine.connect() as victim:
            victim.exec_driver_sql("SELECT 1")
            _kill(MARIADB_URL, victim)
            with pytest.raises(OperationalError) as lost:
                victim.exec_driver_sql("SELECT 1")
        assert is_transient(lost.value)
        with storage.engine.connect() as holder, storage.engine.connect() as waiter:
            change = text(
                "UPDATE manticore_markets SET trade_count = trade_count + 1 WHERE symbol = 'LOCK/USD'"
            )
            holder.execute(change)
            waiter.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
            with pytest.raises(OperationalError) as timeout:
                waiter.execute(change)
            assert is_transient(timeout.value)
            holder.rollback()
            with pytest.raises(OperationalError) as unknown:
                waiter.exec_driver_sql("SELECT no_such_column FROM manticore_markets")
            assert not is_transient(unknown.value)


def test_mysql_urls_need_pymysql() -> None:
    for url in ("mysql://root@127.0.0.1/test", "mariadb+mysqlconnector://root@127.0.0.1/test"):
        with pytest.raises(StorageError, match="pymysql"):
            StorageManager(url)
    with pytest.raises(StorageError, match="unsupported database"):
        StorageManager("oracle://scott@127.0.0.1/test")


@pytest.mark.timeout(60)
def test_restore_streams_to_the_end(storage: StorageManager) -> None:
    """Restore reads rows in chunks until an empty one: PyMySQL ends with ``()``, not ``[]`` (a
    sentinel of ``[]`` alone loops forever there)."""
    book = new_book()
    storage.attach(book, mode="sync")
    for i in range(5):
        book.add_order("buy", str(90 + i), "1", order_id=f"o{i}")
    storage.detach(book)
    twin = new_book()
    assert storage.restore(twin) == 5
    assert twin.get_orders() == book.get_orders()
