"""A price level's queue is a list read from ``head``: spent entries before it are dropped in one slice.

These tests fill, cancel, refill (icebergs) and self-trade-cancel the front of one long level, one
order at a time, and check after every step that the live queue is exactly the resting orders in time
priority (what a plain list of them gives) and that the invariants hold, including the bound on
spent entries.
"""

from __future__ import annotations

import random

from manticore_orderbook import OrderBook

from .support import make_book


def _queue_ids(book: OrderBook, price: int) -> list[str]:
    return [order.order_id for order in book._ask_levels[price].live_orders()]


def test_filling_a_long_level_one_order_at_a_time_keeps_time_priority_and_drops_spent_entries() -> None:
    book, _, _ = make_book(tick_size="1", lot_size="1")
    expected = [f"s{i}" for i in range(200)]
    for oid in expected:
        book.add_order("sell", 100, 1, oid)
    level = book._ask_levels[100]
    for n in range(150):
        book.add_order("buy", 100, 1, f"t{n}", time_in_force="IOC")
        expected.pop(0)
        book.check_invariants()
        assert _queue_ids(book, 100) == expected
        assert level.head < 32 or level.head <= len(level.orders) - level.head
    assert len(level.orders) < 200  # the spent front was dropped along the way


def test_a_random_mix_at_one_level_matches_a_plain_queue() -> None:
    """Adds (some icebergs), cancels anywhere and takers from the front, against a list model."""
    rng = random.Random(7)
    book, _, _ = make_book(tick_size="1", lot_size="1")
    # (order id, visible lots, hidden lots, peak) in time priority
    queue: list[tuple[str, int, int, int]] = []
    for step in range(2000):
        r = rng.random()
        if r < 0.45 or not queue:
            lots = rng.randint(1, 4)
            if rng.random() < 0.2:
                peak = rng.randint(1, lots)
                book.add_order("sell", 100, lots, f"m{step}", displayed_quantity=peak)
                queue.append((f"m{step}", peak, lots - peak, peak))
            else:
                book.add_order("sell", 100, lots, f"m{step}")
                queue.append((f"m{step}", lots, 0, 0))
        elif r < 0.65:
            oid = queue.pop(rng.randrange(len(queue)))[0]
            assert book.cancel_order(oid)
        else:
            left = rng.randint(1, sum(visible for _, visible, _, _ in queue))
            book.add_order("buy", 100, left, f"t{step}", time_in_force="IOC")
            while left:
                oid, visible, hidden, peak = queue.pop(0)
                take = min(visible, left)
                left -= take
                if visible > take:
                    queue.insert(0, (oid, visible - take, hidden, peak))
                elif hidden:  # an iceberg's next slice joins the back
                    refill = min(peak, hidden)
                    queue.append((oid, refill, hidden - refill, peak))
        book.check_invariants()
        level = book._ask_levels.get(100)
        live = [] if level is None else [(o.order_id, o.visible) for o in level.live_orders()]
        assert live == [(oid, visible) for oid, visible, _, _ in queue]
