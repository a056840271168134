"""Event payloads are pinned: keys, their order and every value, over a seeded stream of every command.

The digests below were taken from the book before its payload fast paths (prefilled per-book templates,
shared quantity objects, the zero-fee shortcut) existed, and those paths must reproduce them exactly, in
both the pure-Python and the mypyc build. A change that alters a payload on purpose updates them
(``python -m tests.orderbook.test_payload_golden`` prints the current ones) and says so in docs/events.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from manticore_orderbook import OrderBook

from .support import FakeClock
from .test_determinism import random_commands

#: (book keyword arguments, seed) -> sha256 of the ordered event stream.
CASES: dict[str, tuple[dict[str, Any], int]] = {
    "float, fees": (
        {"tick_size": "1", "lot_size": "0.1", "maker_fee_rate": "0.001", "taker_fee_rate": "0.002"},
        11,
    ),
    "float, no fees, default grid": ({}, 12),
    "str, negative maker fee": (
        {"tick_size": "0.5", "lot_size": "0.1", "number_format": "str", "maker_fee_rate": "-0.0001"},
        13,
    ),
    "decimal, no fees": ({"tick_size": "1", "lot_size": "0.1", "number_format": "decimal"}, 14),
    "float, stp default cancel_both": (
        {"tick_size": "1", "lot_size": "0.1", "self_trade_prevention": "cancel_both"},
        15,
    ),
}

DIGESTS: dict[str, str] = {
    "decimal, no fees": "2fc3d539e77cb1b8bc1c5830b315306cadbc15066aa3e4a69023755dea88cf6d",
    "float, fees": "7e6269e5d8397ceaff61a012a661e0c7366a22336b293c263622b7868f547753",
    "float, no fees, default grid": "331faec330c82a7e5684899446a90e22ec8c76c5421b955afef6cb4b080ed4ea",
    "float, stp default cancel_both": "2723c9d512c144a3102dd911af625568616294aec8db2377e1b2821faa365cc8",
    "str, negative maker fee": "b685db1050808c7763d9fbc3b9ea94121233273577b68dfff0e7ccea77017a11",
}


def ordered_stream(kwargs: dict[str, Any], seed: int) -> str:
    """JSON of every event of a seeded stream, each payload as its ordered list of (key, value)."""
    clock = FakeClock(1_000.0)
    book = OrderBook("GOLD/USD", clock=clock, **kwargs)
    events: list[Any] = []
    book.event_manager.subscribe_all(
        lambda event_type, data: events.append([event_type.value, list(data.items())])
    )
    ids: list[str] = []
    for name, args in random_commands(seed, 600):
        try:
            if name == "add":
                ids.append(book.add_order(**args))
            elif name == "batch":
                ids.extend(book.batch_add_orders(args["orders"]))
            elif name == "cancel" and ids:
                book.cancel_order(ids[args["index"] % len(ids)])
            elif name == "modify" and ids:
                book.modify_order(ids[args["index"] % len(ids)], args["new_price"], args["new_quantity"])
            elif name == "tick":
                clock.advance(args["seconds"])
            elif name == "clean":
                book.clean_expired_orders()
        except ValueError:
            pass
    return json.dumps(events, default=repr)


def digest(name: str) -> str:
    kwargs, seed = CASES[name]
    return hashlib.sha256(ordered_stream(kwargs, seed).encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(CASES))
def test_payloads_match_the_pinned_stream(name: str) -> None:
    assert digest(name) == DIGESTS[name]


if __name__ == "__main__":
    for case in sorted(CASES):
        print(f'    "{case}": "{digest(case)}",')


def test_payloads_follow_a_reassigned_symbol() -> None:
    """The prefilled templates carry the symbol; assigning ``book.symbol`` must not leave it stale."""
    book = OrderBook("OLD/USD", tick_size="1", lot_size="1")
    seen: list[tuple[str, str]] = []
    book.event_manager.subscribe_all(lambda event_type, data: seen.append((event_type.value, data["symbol"])))
    book.add_order("sell", 10, 1, "a")
    book.symbol = "NEW/USD"
    book.add_order("buy", 10, 2, "b")
    book.cancel_order("b")
    assert seen[:2] == [("order_added", "OLD/USD"), ("price_level_added", "OLD/USD")]
    assert {symbol for _, symbol in seen[2:]} == {"NEW/USD"}
    assert {name for name, _ in seen[2:]} >= {
        "order_added",
        "trade_executed",
        "order_filled",
        "order_cancelled",
    }
