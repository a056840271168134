"""The hot paths' shortcuts (taken when nobody listens) number and count exactly like the full paths."""

from __future__ import annotations

import random
from typing import Any

from manticore_orderbook import EventType, OrderBook


def _books() -> list[OrderBook]:
    quiet = OrderBook("FP/USD", clock=lambda: 1000.0)
    heard = OrderBook("FP/USD", clock=lambda: 1000.0)
    heard.event_manager.subscribe_all(lambda event_type, data: None)
    partial = OrderBook("FP/USD", clock=lambda: 1000.0)
    partial.event_manager.subscribe(EventType.ORDER_ADDED, lambda event_type, data: None)
    recorded = OrderBook("FP/USD", clock=lambda: 1000.0)
    recorded.add_change_recorder(lambda *args: None)
    return [quiet, heard, partial, recorded]


def _state(book: OrderBook) -> tuple[Any, ...]:
    stats = book.get_statistics()
    return (book.counters(), stats, book.get_snapshot(), book.export_state()["orders"])


def test_cancels_and_rests_number_events_alike_whoever_listens() -> None:
    rng = random.Random(7)
    books = _books()
    live: list[str] = []
    for n in range(1500):
        roll = rng.random()
        if roll < 0.35 and live:
            oid = live.pop(rng.randrange(len(live)))
            answers = {book.cancel_order(oid) for book in books}
        else:
            side = rng.choice(["buy", "sell"])
            ticks = 10_000 + (rng.randint(-30, 5) if side == "buy" else rng.randint(-5, 30))
            price = ticks / 100 if rng.random() < 0.5 else f"{ticks / 100:.2f}"
            tif = "IOC" if roll > 0.9 else rng.choice(["GTC", None, "gtc"])
            oid = f"o{n}"
            quantity = rng.randint(1, 2000) / 1000
            answers = {
                book.add_order(
                    side=side, price=price, quantity=quantity, order_id=oid, user_id="u", time_in_force=tif
                )
                for book in books
            }
            if oid in books[0]:
                live.append(oid)
        assert len(answers) == 1
        states = [_state(book) for book in books]
        assert all(state == states[0] for state in states[1:]), f"books differ after command {n}"
    for book in books:
        book.check_invariants()
