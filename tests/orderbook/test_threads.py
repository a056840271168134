"""Thread safety: concurrent add/cancel/modify from several threads leave a consistent book and events."""

from __future__ import annotations

import contextlib
import random
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from manticore_orderbook import EventType, OrderBook

from .support import Recorder, cancelled_quantity, dec

THREADS = 4


@pytest.fixture(autouse=True)
def _frequent_thread_switches() -> Iterator[None]:
    """Make the interpreter switch threads far more often, so races show up within a short test."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def run_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def target(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert not errors, errors


def new_book() -> tuple[OrderBook, Recorder]:
    book = OrderBook("MT/USD", tick_size="1", lot_size="1")
    recorder = Recorder()
    book.event_manager.subscribe_all(recorder)
    return book, recorder


def assert_sequence_gap_free(book: OrderBook, recorder: Recorder) -> None:
    sequences = [data["sequence"] for _, data in recorder.events]
    assert sequences == list(range(1, len(sequences) + 1))
    assert book.sequence == len(sequences)


def test_concurrent_adds_and_cancels_of_resting_orders() -> None:
    book, recorder = new_book()
    cancelled_by: list[int] = [0] * THREADS
    added_by: list[int] = [0] * THREADS

    def work(index: int) -> None:
        rng = random.Random(index)
        mine: list[str] = []
        for n in range(400):
            side = "buy" if index % 2 else "sell"
            price = rng.randint(1, 50) if side == "buy" else rng.randint(51, 100)
            mine.append(book.add_order(side, price, rng.randint(1, 5), order_id=f"t{index}-{n}"))
            added_by[index] += 1
            if rng.random() < 0.5:
                victim = mine.pop(rng.randrange(len(mine)))
                assert book.cancel_order(victim) is True
                cancelled_by[index] += 1

    run_threads(work)
    book.check_invariants()
    assert len(book) == sum(added_by) - sum(cancelled_by)
    stats = book.get_statistics()
    assert stats["bid_orders"] + stats["ask_orders"] == len(book)
    assert len(recorder.of(EventType.ORDER_ADDED)) == sum(added_by)
    assert len(recorder.of(EventType.ORDER_CANCELLED)) == sum(cancelled_by)
    assert_sequence_gap_free(book, recorder)


def test_concurrent_crossing_orders_conserve_quantity() -> None:
    book, recorder = new_book()
    submitted: dict[str, Decimal] = {}
    lock = threading.Lock()

    def work(index: int) -> None:
        rng = random.Random(100 + index)
        mine: list[str] = []
        for n in range(300):
            order_id = f"x{index}-{n}"
            quantity = rng.randint(1, 9)
            with lock:
                submitted[order_id] = Decimal(quantity)
            roll = rng.random()
            side = rng.choice(["buy", "sell"])
            if roll < 0.1:
                book.add_order(side, None, quantity, order_id=order_id)
            elif roll < 0.2:
                book.add_order(side, rng.randint(45, 55), quantity, order_id=order_id, displayed_quantity=1)
            else:
                book.add_order(
                    side,
                    rng.randint(45, 55),
                    quantity,
                    order_id=order_id,
                    time_in_force=rng.choice(["GTC", "IOC"]),
                )
            mine.append(order_id)
            if rng.random() < 0.3:
                book.cancel_order(mine[rng.randrange(len(mine))])
            if rng.random() < 0.1:
                with contextlib.suppress(ValueError):  # at or below the filled quantity: rejected
                    book.modify_order(mine[rng.randrange(len(mine))], new_quantity=rng.randint(1, 12))

    run_threads(work)
    book.check_invariants()
    assert_sequence_gap_free(book, recorder)
    trades = recorder.of(EventType.TRADE_EXECUTED)
    fills = recorder.of(EventType.ORDER_FILLED)
    traded = sum(dec(t["quantity"]) for t in trades)
    assert traded > 0
    assert sum(dec(f["fill_quantity"]) for f in fills if f["is_maker"]) == traded
    assert sum(dec(f["fill_quantity"]) for f in fills if not f["is_maker"]) == traded
    # every order's final quantity is filled + cancelled + still resting
    final_quantity = dict(submitted)
    for data in recorder.of(EventType.ORDER_MODIFIED):
        final_quantity[data["order_id"]] = dec(data["new_quantity"])
    filled: dict[str, Decimal] = {}
    for fill in fills:
        filled[fill["order_id"]] = filled.get(fill["order_id"], Decimal(0)) + dec(fill["fill_quantity"])
    gone: dict[str, Decimal] = {}
    for data in recorder.of(EventType.ORDER_CANCELLED):
        gone[data["order_id"]] = gone.get(data["order_id"], Decimal(0)) + cancelled_quantity(data)
    resting = {o["order_id"]: dec(o["remaining_quantity"]) for o in book.get_orders()}
    for order_id, quantity in final_quantity.items():
        accounted = filled.get(order_id, 0) + gone.get(order_id, 0) + resting.get(order_id, 0)
        assert accounted == quantity, f"{order_id}: {accounted} != {quantity}"


def test_only_one_of_many_concurrent_cancels_succeeds() -> None:
    book, recorder = new_book()
    ids = [book.add_order("buy", 10, 1, order_id=f"o{i}") for i in range(200)]
    results: list[list[bool]] = [[] for _ in range(THREADS)]

    def work(index: int) -> None:
        for order_id in ids:
            results[index].append(book.cancel_order(order_id))

    run_threads(work)
    for position in range(len(ids)):
        assert sum(results[t][position] for t in range(THREADS)) == 1
    assert len(book) == 0
    assert len(recorder.of(EventType.ORDER_CANCELLED)) == len(ids)
    book.check_invariants()


def test_concurrent_duplicate_ids_only_one_wins() -> None:
    book, _ = new_book()
    wins: list[int] = [0] * THREADS

    def work(index: int) -> None:
        for n in range(200):
            try:
                book.add_order("buy", 10 + index, 1, order_id=f"shared-{n}")
                wins[index] += 1
            except ValueError:
                pass

    run_threads(work)
    assert sum(wins) == 200
    assert len(book) == 200
    book.check_invariants()


def test_reads_during_writes_see_consistent_snapshots() -> None:
    book, _ = new_book()
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                snapshot = book.get_snapshot()
            except Exception as exc:
                problems.append(f"get_snapshot raised {exc!r}")
                return
            bids, asks = snapshot["bids"], snapshot["asks"]
            if bids and asks and bids[0]["price"] >= asks[0]["price"]:
                problems.append(f"crossed snapshot {bids[0]} {asks[0]}")
            if any(level["quantity"] <= 0 or level["order_count"] <= 0 for level in bids + asks):
                problems.append("empty level in snapshot")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        rng = random.Random(5)
        for _ in range(3000):
            order_id = book.add_order(rng.choice(["buy", "sell"]), rng.randint(40, 60), rng.randint(1, 3))
            if rng.random() < 0.3:
                book.cancel_order(order_id)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not problems, problems[:3]
