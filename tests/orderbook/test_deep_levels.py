"""Levels emptied away from the top stay in place (count 0) until a single pass drops them.

A cancel deep in a large book then frees nothing; every reader goes through the price index, which
never yields such a level. These tests check that nothing observable changes: events, snapshots,
statistics, restore, and the invariants after each step.
"""

from __future__ import annotations

import random

from manticore_orderbook import EventType, OrderBook

from .support import make_book


def deep_book(levels_per_side: int = 200) -> OrderBook:
    book, _, _ = make_book(tick_size="1", lot_size="1")
    for i in range(1, levels_per_side + 1):
        book.add_order("buy", 1_000 - i, 1, f"b{i}")
        book.add_order("sell", 1_000 + i, 1, f"s{i}")
    return book


def test_a_deep_cancel_keeps_the_level_and_a_new_order_there_reports_it_added() -> None:
    book, recorder, _ = make_book(tick_size="1", lot_size="1")
    for price in (10, 9, 8):
        book.add_order("buy", price, 1, f"b{price}")
    book.cancel_order("b9")
    assert book._kept_empty == 1 and 9 in book._bid_levels  # kept, but not in the book
    assert [level["price"] for level in book.get_snapshot()["bids"]] == [10.0, 8.0]
    assert book.get_statistics()["bid_levels"] == 2
    recorder.events.clear()
    book.add_order("buy", 9, 2, "again")
    assert [event_type for event_type, _ in recorder.events] == [
        EventType.ORDER_ADDED,
        EventType.PRICE_LEVEL_ADDED,
    ]
    assert recorder.events[1][1]["quantity"] == 2 and recorder.events[1][1]["order_count"] == 1
    assert book._kept_empty == 0
    book.check_invariants()


def test_cancels_at_the_top_remove_levels_at_once() -> None:
    book = deep_book(3)
    book.cancel_order("b1")
    book.cancel_order("s3")  # the far end of the asks
    assert book._kept_empty == 0
    assert 999 not in book._bid_levels and 1_003 not in book._ask_levels
    book.check_invariants()


def test_kept_levels_are_dropped_once_they_pass_half_of_the_levels() -> None:
    book = deep_book(300)
    most = 0
    for i in range(2, 300):  # every level but the two ends of each side
        book.cancel_order(f"b{i}")
        book.cancel_order(f"s{i}")
        most = max(most, book._kept_empty)
        book.check_invariants()
    assert 0 < most <= (600 // 2) + 64 + 1
    assert len(book._bid_levels) + len(book._ask_levels) < 600
    assert [level["price"] for level in book.get_snapshot()["bids"]] == [999.0, 700.0]


def test_random_deep_traffic_matches_a_fresh_replay_of_the_survivors() -> None:
    """After random adds, cancels and sweeps on a deep book, the snapshot equals that of a book
    built from the surviving orders alone, and the invariants hold after every command."""
    rng = random.Random(7)
    book = deep_book(150)
    live = {f"b{i}" for i in range(1, 151)} | {f"s{i}" for i in range(1, 151)}
    for n in range(1_500):
        roll = rng.random()
        if roll < 0.45 and live:
            order_id = rng.choice(sorted(live))
            assert book.cancel_order(order_id)
            live.discard(order_id)
        elif roll < 0.9:
            side = rng.choice(["buy", "sell"])
            price = 1_000 - rng.randint(1, 150) if side == "buy" else 1_000 + rng.randint(1, 150)
            live.add(book.add_order(side, price, rng.randint(1, 3), f"n{n}"))
        else:
            side = rng.choice(["buy", "sell"])
            book.add_order(side, 1_200 if side == "buy" else 800, 2, f"x{n}", time_in_force="IOC")
            live = {order["order_id"] for order in book.get_orders()}
        book.check_invariants()
    replay, _, _ = make_book(tick_size="1", lot_size="1")
    for order in sorted(book.get_orders(), key=lambda o: o["priority"]):
        replay.add_order(order["side"], order["price"], order["remaining_quantity"], order["order_id"])
    assert replay.get_snapshot(depth=None)["bids"] == book.get_snapshot(depth=None)["bids"]
    assert replay.get_snapshot(depth=None)["asks"] == book.get_snapshot(depth=None)["asks"]


def test_restore_into_a_book_emptied_by_cancels() -> None:
    source = deep_book(5)
    state = source.export_state()
    book = deep_book(5)
    for order_id in ("b2", "b3", "b4", "s3", "b1", "b5", "s1", "s2", "s4", "s5"):  # middles first
        book.cancel_order(order_id)
    assert len(book) == 0 and book._kept_empty > 0
    book.restore_state(state)
    assert book._kept_empty == 0
    book.check_invariants()
    assert book.get_snapshot(depth=None)["bids"] == source.get_snapshot(depth=None)["bids"]
