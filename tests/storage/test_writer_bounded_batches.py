"""The write-behind writer's transactions are small by default and it lets other threads run between
them: a steady load's half-second backlog is written as many short transactions, never as one long
stretch of Python work that holds the event loop off the GIL."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from manticore_orderbook import OrderBook
from manticore_storage import StorageManager
from manticore_storage.apply import UnitTuple, unit_size
from manticore_storage.writer import DEFAULT_MAX_BATCH_EVENTS, PROCESS_MAX_BATCH_EVENTS, WriteBehindWriter


def _order_unit(n: int) -> UnitTuple:
    """A one-order unit (six header items, then an order record): one event."""
    record = (0, 1, 5, None, f"o{n}", "buy", "LIMIT", "GTC", "u", 1.5, "none", None, None, False)
    return ("BTC/USD", n, 0, 0, None, "P-", *record, 200, 1, 0, 1, 1, None, None, None, False, False, 1, None)


def test_a_backlog_is_written_in_transactions_of_the_default_bound_in_order() -> None:
    written: list[list[UnitTuple]] = []
    # A long gather delay: everything below is queued before the writer takes anything (flush starts it).
    writer = WriteBehindWriter(written.append, lambda unit, exc: None, gather_delay=30.0, max_delay=30.0)
    try:
        units = [_order_unit(n) for n in range(2_600)]
        writer.submit_many(units)
        assert writer.flush(30)
        assert [unit for batch in written for unit in batch] == units
        assert all(sum(map(unit_size, batch)) <= DEFAULT_MAX_BATCH_EVENTS for batch in written)
        assert len(written) == -(-len(units) // DEFAULT_MAX_BATCH_EVENTS)
        assert len(written) >= 6  # small transactions: a few ms of Python work each, not one long one
        assert writer.batches == len(written)
        assert writer.events_written == len(units)
    finally:
        writer.close()


def test_another_thread_gets_the_gil_between_two_transactions() -> None:
    """With forced GIL switches out of the way (a 5 s switch interval), a thread that sleeps and wakes
    can only run when the writer gives the GIL up: it must see the writer's progress between its
    transactions, not only before the first and after the last."""
    calls: list[int] = []

    def write(units: list[UnitTuple]) -> None:
        # Python work holding the GIL, as building a transaction's rows does.
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            pass
        calls.append(len(units))

    seen: list[int] = []
    stop = threading.Event()

    def watcher() -> None:
        while not stop.is_set():
            seen.append(len(calls))
            time.sleep(0.0002)

    writer = WriteBehindWriter(
        write, lambda unit, exc: None, gather_delay=30.0, max_delay=30.0, max_batch_events=10
    )
    interval = sys.getswitchinterval()
    thread = threading.Thread(target=watcher)
    try:
        writer.submit_many([_order_unit(n) for n in range(80)])  # 8 transactions of 10
        sys.setswitchinterval(5.0)
        thread.start()
        assert writer.flush(30)
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        if thread.is_alive():
            thread.join()
        writer.close()
    assert calls == [10] * 8
    between = {count for count in seen if 0 < count < 8}
    assert len(between) >= 5, sorted(set(seen))


@pytest.mark.parametrize(
    ("writer", "chosen", "expected"),
    [
        ("thread", None, DEFAULT_MAX_BATCH_EVENTS),
        ("process", None, PROCESS_MAX_BATCH_EVENTS),
        ("thread", 1_000, 1_000),
        ("process", 300, 300),
    ],
)
def test_the_storage_manager_bounds_a_thread_writer_s_transactions_small_by_default(
    tmp_path: Path, writer: str, chosen: int | None, expected: int
) -> None:
    """A thread writer builds its rows under the serving process's GIL: small transactions by
    default; the writer process's run off it and keep the large bound; a given bound wins."""
    storage = StorageManager(f"sqlite:///{tmp_path / 'orders.db'}", writer=writer, max_batch_events=chosen)
    try:
        storage.attach(OrderBook(symbol="BTC/USD"), deliver=lambda _unit: None)
        assert storage._writer is not None
        assert storage._writer._max_batch == expected
    finally:
        storage.close()


def _sizes_writer(written: list[int], delay: float) -> WriteBehindWriter:
    """A writer of transactions of at most 10 events that appends each transaction's unit count to
    ``written``; ``delay`` is both its gather delay and its ``max_delay``."""
    return WriteBehindWriter(
        lambda units: written.append(len(units)),
        lambda unit, exc: None,
        gather_delay=delay,
        max_delay=delay,
        max_batch_events=10,
    )


def test_a_steady_producer_s_units_are_written_a_transaction_at_a_time_as_they_arrive() -> None:
    """Regression (session 28): under a steady load the writer held off until ``max_delay`` and then
    wrote the whole backlog back to back, ~25 ms of GIL-bound work every 0.5 s in the server. Now a
    whole transaction queued ends both waits: with ``max_delay`` far away, transactions are written
    while the producer is still submitting, each one whole."""
    written: list[int] = []
    writer = _sizes_writer(written, delay=30.0)
    try:
        during = 0
        for n in range(400):  # a steady producer: a unit every ~0.2-0.3 ms
            writer.submit(_order_unit(n))
            time.sleep(0.0002)
            if n >= 300 and not during:
                during = len(written)
        during = during or len(written)
        assert during >= 5, written  # written as they came, not after 30 s or at the flush
        assert written[:during] == [10] * during  # each a whole transaction
        assert writer.flush(30)
        assert sum(written) == 400
    finally:
        writer.close()


def test_what_a_whole_transaction_leaves_queued_waits_its_gather_delay_again() -> None:
    """A transaction that leaves less than a whole one queued restarts the remainder's wait: the
    remainder is not written at once in a small transaction because the unit that started the
    gathering was older than ``gather_delay`` by then (the steady load's many tiny transactions)."""
    written: list[int] = []
    writer = _sizes_writer(written, delay=2.0)
    try:
        writer.submit_many([_order_unit(n) for n in range(5)])
        time.sleep(1.2)
        writer.submit_many([_order_unit(n) for n in range(5, 15)])  # a whole transaction: taken at once
        deadline = time.monotonic() + 10
        while not written and time.monotonic() < deadline:
            time.sleep(0.005)
        assert written == [10]
        time.sleep(1.2)  # past the first unit's gather delay, within the remainder's new one
        writer.submit_many([_order_unit(n) for n in range(15, 20)])
        assert writer.flush(30)
        assert written == [10, 10], written
    finally:
        writer.close()
