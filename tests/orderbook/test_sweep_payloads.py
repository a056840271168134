"""A taker that trades several times in one command: every trade's and fill's payload is complete.

The book builds the second and later TRADE_EXECUTED and taker ORDER_FILLED payloads of one sweep as
copies of the previous ones with only the changing keys set (docs/performance.md, session 11). These
tests check them against what does not take that path: ``get_trade_history`` (each trade's dict built
on its own), the makers and the taker as submitted, and the arithmetic of cumulative fills.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from manticore_orderbook import EventType, OrderBook
from manticore_orderbook.payloads import ORDER_FILLED_KEYS, TRADE_KEYS

from .support import FakeClock

FORMATS: dict[str, dict[str, Any]] = {
    "float, no fees": {},
    "float, fees": {"maker_fee_rate": "0.001", "taker_fee_rate": "0.002"},
    "str, rebate": {"number_format": "str", "maker_fee_rate": "-0.0001", "taker_fee_rate": "0.0005"},
    "decimal, no fees": {"number_format": "decimal"},
}

#: Resting sells: (price, quantity, user id, client order id, displayed quantity).
MAKERS: list[tuple[str, str, object, str | None, str | None]] = [
    ("100.00", "0.5", "u1", "c-1", None),
    ("100.00", "0.25", None, None, None),
    ("100.00", "1.0", 7, "c-3", "0.3"),  # an iceberg: its slices trade one at a time
    ("100.50", "0.75", "u2", None, None),
    ("100.50", "0.1", "t", None, None),  # the taker's own user: self-trade prevention applies
    ("101.00", "2.0", None, "c-6", None),
]


def _sweep(fmt: dict[str, Any], stp: str | None, taker_quantity: str) -> tuple[OrderBook, list[Any]]:
    book = OrderBook("SW/USD", clock=FakeClock(), tick_size="0.01", lot_size="0.001", **fmt)
    for n, (price, quantity, user, client, shown) in enumerate(MAKERS):
        book.add_order(
            "sell",
            price,
            quantity,
            order_id=f"m{n}",
            user_id=user,
            client_order_id=client,
            displayed_quantity=shown,
        )
    events: list[tuple[EventType, dict[str, Any]]] = []
    book.event_manager.subscribe_all(lambda event_type, data: events.append((event_type, dict(data))))
    book.add_order(
        "buy",
        "101.00",
        taker_quantity,
        order_id="taker",
        user_id="t",
        client_order_id="tk",
        time_in_force="IOC",
        self_trade_prevention=stp,
    )
    return book, events


def _number(value: object) -> Decimal:
    return Decimal(str(value))


@pytest.mark.parametrize("stp", [None, "decrement", "cancel_oldest"])
@pytest.mark.parametrize("taker_quantity", ["2.0", "5.0"])
@pytest.mark.parametrize("fmt", list(FORMATS), ids=list(FORMATS))
def test_every_trade_and_taker_fill_of_a_sweep_is_complete(
    fmt: str, taker_quantity: str, stp: str | None
) -> None:
    book, events = _sweep(FORMATS[fmt], stp, taker_quantity)
    trades = [data for event_type, data in events if event_type is EventType.TRADE_EXECUTED]
    assert len(trades) >= 4, "the sweep trades several times"
    # Each trade's own dict, built alone, oldest first: the same keys in the same order and values.
    history = list(reversed(book.get_trade_history(limit=len(trades))))
    assert [list(t.items()) for t in trades] == [list(t.items()) for t in history]
    makers = {f"m{n}": maker for n, maker in enumerate(MAKERS)}
    for trade in trades:
        assert list(trade) == list(TRADE_KEYS)
        price, _, user, _, _ = makers[trade["maker_order_id"]]
        assert trade["maker_user_id"] == user
        assert (trade["buy_order_id"], trade["sell_order_id"]) == ("taker", trade["maker_order_id"])
        assert _number(trade["price"]) == Decimal(price)
        assert trade["taker_order_id"] == "taker" and trade["taker_user_id"] == "t"

    fills = [d for event_type, d in events if event_type is EventType.ORDER_FILLED and not d["is_maker"]]
    assert len(fills) == len(trades)
    filled = Decimal(0)
    for fill, trade in zip(fills, trades, strict=True):
        assert list(fill) == list(ORDER_FILLED_KEYS)
        assert fill["trade_id"] == trade["trade_id"] and fill["sequence"] == trade["sequence"] + 2
        assert fill["fill_price"] == trade["price"] and fill["fill_quantity"] == trade["quantity"]
        assert fill["fee"] == trade["taker_fee"]
        assert (fill["order_id"], fill["client_order_id"], fill["user_id"]) == ("taker", "tk", "t")
        assert (fill["side"], fill["order_type"], fill["timestamp"]) == ("buy", "LIMIT", trade["timestamp"])
        assert _number(fill["price"]) == Decimal("101.00")
        filled += _number(fill["fill_quantity"])
        assert _number(fill["filled_quantity"]) == filled
        # ``quantity`` follows a self-trade decrement in the middle of the sweep.
        remaining = _number(fill["remaining_quantity"])
        assert _number(fill["filled_quantity"]) + remaining == _number(fill["quantity"])
        assert fill["status"] == ("partially_filled" if remaining else "filled")
    book.check_invariants()
