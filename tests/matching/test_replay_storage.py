"""Replay and storage: storage commits the journal position of its rows, and a restart's replay submits
again only the units of commands after it, whatever the crash left behind.

Every case compares the tables with those of a reference exchange that ran the same commands with the
same clock and shut down cleanly (``updated_at`` aside, the rows are a function of the commands), on
SQLite and, when configured, on PostgreSQL and MariaDB.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from manticore_matching import Exchange
from manticore_storage import StorageManager, schema
from tests.databases import drop_tables, server_url
from tests.matching.exchange_streams import (
    Clock,
    apply,
    crash_releases_lock,
    make_stream,
    new_exchange,
    state,
)

_TABLES = (
    "manticore_failed_events",
    "manticore_trades",
    "manticore_orders",
    "manticore_markets",
    "manticore_journal_positions",
    "manticore_schema_version",
)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _url(backend: str, path: Path) -> str:
    """An empty database of ``backend`` (a server's tables are dropped first)."""
    if backend == "sqlite":
        return f"sqlite:///{path}"
    url = server_url(backend)
    drop_tables(url, _TABLES)
    return url


def _tables(storage: StorageManager) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored order, trade and market row, ``updated_at`` left out, in key order."""
    storage.flush()
    result: dict[str, list[tuple[Any, ...]]] = {}
    with storage.engine.connect() as connection:
        for table in (schema.orders, schema.trades, schema.markets):
            columns = [column for column in table.columns if column.name != "updated_at"]
            keys = list(table.primary_key.columns)
            rows = connection.execute(select(*columns).order_by(*keys)).all()
            result[table.name] = [tuple(row) for row in rows]
    return result


def _run(exchange: Exchange, clock: Clock, commands: list[dict[str, Any]]) -> None:
    for command in commands:
        apply(exchange, clock, command)
    exchange.wait_durable(exchange.journal.appended, 10)


def _reference(tmp_path: Path, commands: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """The tables after ``commands`` on a clean run (SQLite; decimals compared as values)."""
    clock = Clock()
    with new_exchange(tmp_path / "reference", clock) as exchange:
        _run(exchange, clock, commands)
        assert exchange.storage is not None
        return _tables(exchange.storage)


def _crash(exchange: Exchange) -> None:
    """kill -9: no checkpoint; what storage has committed stays, what it has not is lost."""
    exchange.journal.close()
    assert exchange.storage is not None
    writer = exchange.storage._writer
    if writer is not None:
        writer.close(0.0)  # nothing more is written: abandoned, as by a dead process
    exchange.storage.engine.dispose()
    crash_releases_lock(exchange)


class _Submits:
    """Counts the units a StorageManager is given (the real method still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.units = 0
        self.markers: list[int] = []
        real = StorageManager.submit

        def counting(storage: StorageManager, unit: Any) -> None:
            if unit[0] is None:
                self.markers.append(unit[1])
            else:
                self.units += 1
            real(storage, unit)

        monkeypatch.setattr(StorageManager, "submit", counting)


@pytest.fixture
def commands() -> list[dict[str, Any]]:
    return make_stream(5, 240)


def test_storage_commits_the_journal_position_of_its_rows(
    tmp_path: Path, backend: str, commands: list[dict[str, Any]]
) -> None:
    clock = Clock()
    url = _url(backend, tmp_path / "store.db")
    with new_exchange(tmp_path / "data", clock, storage_url=url) as exchange:
        assert exchange.storage is not None
        assert exchange.storage.journal_position() == (0, None)  # creating markets writes no rows
        _run(exchange, clock, commands)
        exchange.storage.flush()
        position, stamp = exchange.storage.journal_position()
        last = exchange.journal.appended
        assert 0 < position <= last
        record = exchange.journal.record_at(position)
        assert record is not None and record["ts"] == stamp
        # The commands after the position have no rows (transfers): storage holds every row.
        after = [record["op"] for record in exchange.journal.durable_records(position)]
        assert set(after) <= {"deposit", "withdraw"}


def test_a_crash_after_the_storage_commit_replays_without_submitting_again(
    tmp_path: Path, backend: str, commands: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 between storage's commit and a checkpoint: the replay rebuilds the state, and storage
    gets nothing again."""
    clock = Clock()
    url = _url(backend, tmp_path / "store.db")
    exchange = new_exchange(tmp_path / "data", clock, storage_url=url)
    exchange.open()
    _run(exchange, clock, commands)
    assert exchange.storage is not None
    exchange.storage.flush()
    stored = exchange.storage.journal_position()[0]
    expected = state(exchange)
    _crash(exchange)
    submits = _Submits(monkeypatch)
    with new_exchange(tmp_path / "data", clock, storage_url=url) as restored:
        assert restored.replayed_records == exchange.journal.appended
        assert restored._stored_position == stored > 0
        assert submits.units == 0 and submits.markers == []
        assert state(restored) == expected
        assert restored.storage is not None
        assert _tables(restored.storage) == _reference(tmp_path, commands)


def test_storage_behind_the_journal_gets_the_missing_commands_from_the_replay(
    tmp_path: Path, backend: str, commands: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies with commands durable in the journal that storage never committed: the
    replay submits exactly those, and storage ends where a clean run leaves it."""
    clock = Clock()
    url = _url(backend, tmp_path / "store.db")
    exchange = new_exchange(tmp_path / "data", clock, storage_url=url)
    exchange.open()
    half = len(commands) // 2
    _run(exchange, clock, commands[:half])
    assert exchange.storage is not None
    exchange.storage.flush()
    stored = exchange.storage.journal_position()[0]
    exchange.storage.submit = lambda unit: None  # type: ignore[method-assign]  # the writer is gone
    _run(exchange, clock, commands[half:])
    assert exchange.journal.appended > stored
    expected = state(exchange)
    _crash(exchange)
    submits = _Submits(monkeypatch)
    with new_exchange(tmp_path / "data", clock, storage_url=url) as restored:
        assert restored._stored_position == stored
        assert submits.units > 0
        assert submits.markers == [restored.journal.appended]
        assert state(restored) == expected
        assert restored.storage is not None
        assert restored.storage.journal_position()[0] <= restored.journal.appended
        assert _tables(restored.storage) == _reference(tmp_path, commands)


def test_a_fresh_database_beside_an_old_journal_gets_every_replayed_command(
    tmp_path: Path, backend: str, commands: list[dict[str, Any]]
) -> None:
    clock = Clock()
    exchange = new_exchange(tmp_path / "data", clock, storage_url=f"sqlite:///{tmp_path / 'old.db'}")
    exchange.open()
    _run(exchange, clock, commands)
    _crash(exchange)
    url = _url(backend, tmp_path / "fresh.db")
    with new_exchange(tmp_path / "data", clock, storage_url=url) as restored:
        assert restored._stored_position == 0
        assert restored.storage is not None
        assert _tables(restored.storage) == _reference(tmp_path, commands)
        assert restored.storage.journal_position()[0] == restored.journal.appended


def test_storage_ahead_of_the_journal_is_not_trusted(
    tmp_path: Path, backend: str, commands: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """A database that holds more than the journal (another data directory's, say): the replay skips
    nothing, and says so."""
    url = _url(backend, tmp_path / "store.db")
    clock = Clock()
    with new_exchange(tmp_path / "long", clock, storage_url=url) as long_run:
        _run(long_run, clock, commands)
    short = commands[: len(commands) // 3]
    clock = Clock()
    exchange = new_exchange(tmp_path / "short", clock, storage_url=f"sqlite:///{tmp_path / 'short.db'}")
    exchange.open()
    _run(exchange, clock, short)
    _crash(exchange)
    with (
        caplog.at_level(logging.WARNING, logger="manticore_matching"),
        new_exchange(tmp_path / "short", clock, storage_url=url) as restored,
    ):
        assert restored.replayed_records == exchange.journal.appended
        assert restored._stored_position == 0
    assert "does not match" in caplog.text


def test_a_journal_of_another_history_at_the_stored_position_is_not_trusted(
    tmp_path: Path, commands: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """The journal has a command at storage's position, but not the one storage committed (another
    clock reading): nothing is skipped."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    clock = Clock()
    exchange = new_exchange(tmp_path / "data", clock, storage_url=url)
    exchange.open()
    _run(exchange, clock, commands)
    assert exchange.storage is not None
    exchange.storage.flush()
    position = exchange.storage.journal_position()[0]
    _crash(exchange)
    with StorageManager(url) as storage, storage.engine.begin() as connection:
        connection.execute(schema.journal_positions.update().values(stamp=12345.0))
    with (
        caplog.at_level(logging.WARNING, logger="manticore_matching"),
        new_exchange(tmp_path / "data", clock, storage_url=url) as restored,
    ):
        assert restored._stored_position == 0 < position
        assert restored.storage is not None
        assert _tables(restored.storage) == _reference(tmp_path, commands)
    assert "does not match" in caplog.text


def test_a_checkpoint_past_the_stored_position_replays_from_the_checkpoint(
    tmp_path: Path, commands: list[dict[str, Any]]
) -> None:
    clock = Clock()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    exchange = new_exchange(tmp_path / "data", clock, storage_url=url)
    exchange.open()
    half = len(commands) // 2
    _run(exchange, clock, commands[:half])
    exchange.checkpoint()
    _run(exchange, clock, commands[half:])
    expected = state(exchange)
    _crash(exchange)
    with new_exchange(tmp_path / "data", clock, storage_url=url) as restored:
        assert state(restored) == expected
        assert restored.storage is not None
        assert _tables(restored.storage) == _reference(tmp_path, commands)


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Exchange]:
    clock = Clock()
    with new_exchange(tmp_path / "data", clock) as exchange:
        _run(exchange, clock, make_stream(3, 30))
        yield exchange


def test_record_at_finds_each_record_and_nothing_else(records: Exchange) -> None:
    journal = records.journal
    by_position = {record["n"]: record for record in journal.durable_records()}
    for position, record in by_position.items():
        assert journal.record_at(position) == record
    assert journal.record_at(0) is None
    assert journal.record_at(max(by_position) + 1) is None


def _apply_diff(levels: dict[tuple[str, str], str], message: dict[str, Any]) -> None:
    for side, key in (("buy", "bids"), ("sell", "asks")):
        for level in message[key]:
            if level["order_count"] == 0:
                levels.pop((side, level["price"]), None)
            else:
                levels[(side, level["price"])] = level["quantity"]


def _levels(snapshot: dict[str, Any]) -> dict[tuple[str, str], str]:
    levels = {("buy", level["price"]): level["quantity"] for level in snapshot["bids"]}
    levels.update({("sell", level["price"]): level["quantity"] for level in snapshot["asks"]})
    return levels


def test_stream_messages_start_complete_whenever_a_listener_comes(tmp_path: Path) -> None:
    """Without a listener the exchange builds no messages and its books no price level payloads; a
    listener added (or added again) later gets book diffs that continue the book's snapshot exactly."""
    clock = Clock()
    commands = make_stream(9, 200)
    with new_exchange(tmp_path / "data", clock) as exchange:
        _run(exchange, clock, commands[:50])
        book = exchange.book("BTC/USD")
        assert not book.event_manager.has_subscribers("price_level_changed")
        for start, end in ((50, 100), (100, 150)):
            snapshot = book.get_snapshot()
            frames: list[dict[str, Any]] = []
            exchange.add_listener(frames.extend)
            _run(exchange, clock, commands[start:end])
            assert book.event_manager.has_subscribers("price_level_changed")
            exchange.remove_listener(frames.extend)
            diffs = [frame for frame in frames if frame["type"] == "book" and frame["symbol"] == "BTC/USD"]
            assert diffs, "the stream moved the book"
            sequence = snapshot["sequence"]
            levels = _levels(snapshot)
            for diff in diffs:
                assert diff["first_sequence"] == sequence + 1
                sequence = diff["last_sequence"]
                _apply_diff(levels, diff)
            assert sequence == book.sequence
            assert levels == _levels(book.get_snapshot())
        _run(exchange, clock, commands[150:])
        assert not book.event_manager.has_subscribers("price_level_changed")


def test_a_checkpoint_waits_until_storage_has_the_units_of_the_commands_it_covers(tmp_path: Path) -> None:
    """The journal's thread marks a round durable, then hands its units to storage: a checkpoint
    taken in between, and a crash right after it, must not leave storage without those rows (the
    replay starts after the checkpoint)."""
    import threading
    import time

    clock = Clock()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    exchange = new_exchange(tmp_path / "data", clock, storage_url=url)
    exchange.open()
    exchange.deposit("alice", "USD", "1000")
    handing_on = threading.Event()
    hand_on = exchange.journal._on_durable
    assert hand_on is not None

    def slow(position: int) -> None:
        handing_on.set()
        time.sleep(0.3)  # the journal's thread is descheduled between durability and hand-on
        hand_on(position)

    exchange.journal._on_durable = slow
    order_id = exchange.place_order("alice", "BTC/USD", "buy", "1", price="100").order_id
    assert handing_on.wait(5)
    exchange.checkpoint()
    assert exchange.storage is not None
    exchange.storage.submit = lambda unit: None  # type: ignore[method-assign]  # the process dies here
    _crash(exchange)
    with new_exchange(tmp_path / "data", clock, storage_url=url) as restored:
        assert restored.replayed_records == 0
        assert restored.storage is not None
        stored = restored.storage.get_order(order_id)
        assert stored is not None and stored["status"] == "open"
