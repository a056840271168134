"""``BookLock`` (lock.py): mutual exclusion between threads, re-entrancy, and the book's use of it."""

from __future__ import annotations

import threading
import time

import pytest

from manticore_orderbook import EventManager, EventType, OrderBook
from manticore_orderbook.lock import BookLock
from manticore_orderbook.numbers import _INTERPRETED


def test_the_book_takes_its_own_lock_when_compiled_and_rlock_in_the_interpreter() -> None:
    book = OrderBook("X")
    if _INTERPRETED:
        assert type(book._lock) is type(threading.RLock())
    else:
        assert type(book._lock) is BookLock


def test_reentrant_acquire_needs_as_many_releases() -> None:
    lock = BookLock()
    lock.acquire()
    lock.acquire()
    with lock:
        assert lock.locked()
    lock.release()
    assert lock.locked()
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()


def test_a_nested_release_from_another_thread_is_refused() -> None:
    lock = BookLock()
    lock.acquire()
    lock.acquire()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            lock.release()
        except RuntimeError as exc:
            errors.append(exc)

    worker = threading.Thread(target=other)
    worker.start()
    worker.join()
    assert len(errors) == 1
    lock.release()
    lock.release()
    assert not lock.locked()


def test_a_second_thread_waits_until_the_holder_releases() -> None:
    lock = BookLock()
    lock.acquire()
    entered = threading.Event()

    def other() -> None:
        with lock:
            entered.set()

    worker = threading.Thread(target=other)
    worker.start()
    assert not entered.wait(0.2), "the second thread entered while the lock was held"
    lock.release()
    assert entered.wait(10), "the waiting thread was never woken"
    worker.join()
    assert not lock.locked()


def test_threads_never_overlap_inside_the_lock() -> None:
    lock = BookLock()
    inside = [0]
    overlaps = [0]
    total = [0]

    def work() -> None:
        for _ in range(300):
            with lock:
                inside[0] += 1
                if inside[0] != 1:
                    overlaps[0] += 1
                if total[0] % 50 == 0:
                    time.sleep(0.0001)  # hand the GIL over while holding the lock
                total[0] += 1
                inside[0] -= 1

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert overlaps[0] == 0
    assert total[0] == 1200
    assert not lock.locked()


def test_a_handler_may_call_back_into_the_book_and_other_threads_still_get_in() -> None:
    """Re-entrancy through the book: a handler adds an order while the outer command holds the lock."""
    em = EventManager()
    book = OrderBook("X", event_manager=em)
    nested: list[str] = []

    def handler(event_type: EventType, data: dict[str, object]) -> None:
        if data["order_id"] == "outer":
            nested.append(book.add_order("buy", 1.0, 1.0, "inner"))

    em.subscribe(EventType.ORDER_ADDED, handler)
    book.add_order("buy", 2.0, 1.0, "outer")
    assert nested == ["inner"]
    assert "inner" in book and "outer" in book
    done = threading.Event()
    worker = threading.Thread(target=lambda: (book.cancel_order("inner"), done.set()))
    worker.start()
    assert done.wait(10), "the lock was left held after the nested command"
    worker.join()
    assert "inner" not in book
