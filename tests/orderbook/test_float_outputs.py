"""Float outputs in event payloads: the float nearest to the exact decimal value of the units.

On a grid of ``10**-k`` the book writes a float price or quantity as ``units / divisor`` (docs/performance.md,
session 24 (h1): in the interpreter the divisor is the int ``10**k``, compiled the float ``1e k``). For
every units value a grid accepts (below 2**53) both are the correctly rounded quotient; past 2**53 (a
level's total of several orders) only the int division is, and the interpreter reports that one.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventType, OrderBook

from .support import FakeClock

_MAX_UNITS = 2**53 - 1


def _nearest(units: int, places: int) -> float:
    """The float nearest to ``units * 10**-places`` (Fraction's conversion rounds once)."""
    return float(Fraction(units, 10**places))


def _decimal_str(units: int, places: int) -> str:
    """``units * 10**-places`` written exactly."""
    if not places:
        return str(units)
    digits = str(units).rjust(places + 1, "0")
    return f"{digits[:-places]}.{digits[-places:]}"


def _recording_book(**options: Any) -> tuple[OrderBook, list[tuple[EventType, dict[str, Any]]]]:
    book = OrderBook("FO/USD", clock=FakeClock(), **options)
    seen: list[tuple[EventType, dict[str, Any]]] = []
    book.event_manager.subscribe_all(lambda event_type, data: seen.append((event_type, data)))
    return book, seen


@settings(max_examples=200, deadline=None)
@given(
    places=st.sampled_from([0, 2, 3, 8]),
    price=st.integers(1, _MAX_UNITS),
    quantities=st.lists(st.integers(1, _MAX_UNITS // 4), min_size=1, max_size=3),
)
def test_prices_and_quantities_are_the_nearest_floats(places: int, price: int, quantities: list[int]) -> None:
    """Resting orders at one price, then a market order through them and beyond: every price and
    quantity of every event (ORDER_ADDED, level events, trades, fills, the taker's cancel) is the
    float nearest to one of the units values the commands make (each order's, the level's running
    totals, the taker's filled and open parts)."""
    step = "1" if places == 0 else f"0.{'0' * (places - 1)}1"
    book, seen = _recording_book(tick_size=step, lot_size=step)
    for n, lots in enumerate(quantities):
        book.add_order("sell", _decimal_str(price, places), _decimal_str(lots, places), order_id=f"s{n}")
    taker = sum(quantities) + 1
    book.add_order("buy", None, _decimal_str(taker, places), order_id="t")
    units = {0, taker, 1}
    for i in range(len(quantities) + 1):
        units.update({sum(quantities[:i]), sum(quantities[i:]), taker - sum(quantities[:i])})
    units.update(quantities)
    wanted = {_nearest(u, places) for u in units}
    checked = 0
    for event_type, data in seen:
        if data.get("price") is not None:
            assert data["price"] == _nearest(price, places), (event_type, data)
        for key in (
            "quantity",
            "remaining_quantity",
            "fill_quantity",
            "filled_quantity",
            "cancelled_quantity",
        ):
            if key in data:
                assert data[key] in wanted, (event_type, key, data)
                checked += 1
    assert checked >= 4 * len(quantities)


@pytest.mark.pure_only  # compiled, the float divisor rounds such a total twice (see the module doc)
def test_a_level_total_past_2_53_lots_is_the_nearest_float() -> None:
    """Two orders of the largest size a grid takes at one price: the level's total (2**54 - 3 lots)
    has no exact float; its PRICE_LEVEL_CHANGED quantity is the float nearest to the exact value,
    not the quotient of its float (180143985.0948198 here)."""
    book, seen = _recording_book()
    first, second = _MAX_UNITS, _MAX_UNITS - 3
    book.add_order("sell", "100", _decimal_str(first, 8), order_id="a")
    book.add_order("sell", "100", _decimal_str(second, 8), order_id="b")
    levels = [data for event_type, data in seen if event_type is EventType.PRICE_LEVEL_CHANGED]
    total = first + second
    assert float(total) / 1e8 != _nearest(total, 8)  # the case this test is about
    assert levels[-1]["quantity"] == _nearest(total, 8) == 180143985.09481978
