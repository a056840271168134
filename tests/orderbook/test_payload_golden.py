"""Event payloads are pinned: keys, their order and every value, over a seeded stream of every command.

The digests below were first taken from the book before its payload fast paths (prefilled per-book
templates, shared quantity objects, the zero-fee shortcut) existed, and those paths must reproduce them
exactly, in both the pure-Python and the mypyc build. A change that alters a payload on purpose updates them
(``python -m tests.orderbook.test_payload_golden`` prints the current ones) and says so in docs/events.md.
They were last regenerated when orders gained ``client_order_id`` (issue 13): every third order of the
stream is given one, so both the default (None) and a set value are pinned on every order-event path.
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
    "decimal, no fees": "cf73f48ed6ff2c605cc78f5ef8d50bae2254c8b95845763fed237361e2bc4573",
    "float, fees": "07831eea9c54ca3644fae6f0a40ea66363d3fdd09d0d249163af3156c90d8a71",
    "float, no fees, default grid": "af0869807f112c856b68571f6ada355ca616d0c31801935ec124f2bf1e518671",
    "float, stp default cancel_both": "2bca9c6f8631a0c91051e4f0217582e81535337892d945e945a1a190ffd6fc63",
    "str, negative maker fee": "7fbc6c681ba34c40bb828de8bfa7b2c446b04c8a6052b116ffc66b7da2071356",
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
    for number, (name, args) in enumerate(random_commands(seed, 600)):
        if name == "add" and number % 3 == 0:
            args = {**args, "client_order_id": f"client.{number}"}
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
