"""The number rule of REST and WebSocket (docs/api.md, "Numbers"): exact, grid decimals, trimmed amounts."""

from __future__ import annotations

from decimal import Context, Decimal

from hypothesis import given
from hypothesis import strategies as st

from manticore_matching.formatting import format_order, money, on_grid, places

STEPS = st.sampled_from([Decimal("0.01"), Decimal("0.00001"), Decimal("0.5"), Decimal("1"), Decimal("25")])


@given(units=st.integers(min_value=0, max_value=10**15), step=STEPS, extra_zeros=st.integers(0, 20))
def test_on_grid_is_exact_and_has_the_grid_decimals(units: int, step: Decimal, extra_zeros: int) -> None:
    value = units * step
    exponent = Decimal(1).scaleb(-(places(step) + extra_zeros))
    stored = Context(prec=100).quantize(value, exponent)  # trailing zeros, as a database returns them
    text = on_grid(stored, step)
    assert isinstance(text, str) and "E" not in text
    assert Decimal(text) == value
    assert len(text.partition(".")[2]) == places(step)


@given(
    value=st.decimals(allow_nan=False, allow_infinity=False, places=12, min_value=-(10**9), max_value=10**9)
)
def test_money_is_exact_without_trailing_zeros(value: Decimal) -> None:
    text = money(value)
    assert isinstance(text, str) and "E" not in text and Decimal(text) == value
    assert text == "0" or not (("." in text and text.endswith("0")) or text.endswith("."))


def test_orders_and_trades_follow_the_rule() -> None:
    tick, lot = Decimal("0.01"), Decimal("0.00001")
    stored = {
        "price": Decimal("30000"),
        "quantity": Decimal("0.500000000000000000"),
        "remaining_quantity": Decimal("0"),
        "stop_price": None,
        "maker_fee": Decimal("15.0000000000"),
        "trail_value": Decimal("2.50"),
        "trail_is_percent": True,
        "status": "filled",
    }
    shown = format_order(stored, tick, lot)
    assert shown == {
        "price": "30000.00",
        "quantity": "0.50000",
        "remaining_quantity": "0.00000",
        "stop_price": None,
        "maker_fee": "15",
        "trail_value": "2.5",
        "trail_is_percent": True,
        "status": "filled",
    }
    assert stored["price"] == Decimal("30000")  # a copy: the input is unchanged
    assert on_grid("not a number", tick) == "not a number" and money(None) is None
    assert on_grid("1.234567", tick) == "1.234567"  # off-grid digits are never dropped
