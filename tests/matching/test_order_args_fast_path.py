"""``commands.order_args``' fast path (a plain GTC limit order) returns the general path's record and
raises its errors.

The general path reads ``order_type`` in any case, so ``"LIMIT"`` takes it while ``"limit"`` takes the
fast path: the two must agree on every input."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from manticore_matching import MarketConfig
from manticore_matching.commands import order_args
from manticore_matching.errors import InvalidCommand

CONFIG = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.001"), Decimal("0.001"), Decimal("0.002")
)

numbers = st.one_of(
    st.none(),
    st.decimals(allow_nan=True, allow_infinity=True, places=4),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100000"), places=3),
    st.integers(min_value=-5, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["30000.5", "30000.25", "0.001", "abc", "", "1e400", "-1", "0", " 1", "1" * 70]),
    st.booleans(),
)


def outcome(order_type: str, side: object, price: object, quantity: object) -> object:
    try:
        return order_args(
            CONFIG, side, quantity, price, order_type, None, None, None, None, None, False, None
        )
    except InvalidCommand as exc:
        return ("InvalidCommand", str(exc), exc.code)


@given(st.sampled_from(["buy", "sell", "BUY", "Sell", "hold", 3]), numbers, numbers)
def test_fast_path_agrees_with_the_general_path(side: object, price: object, quantity: object) -> None:
    assert outcome("limit", side, price, quantity) == outcome("LIMIT", side, price, quantity)


def test_fast_path_record() -> None:
    assert order_args(
        CONFIG, "buy", "0.250", "30000.5", "limit", None, None, None, None, None, False, None
    ) == {
        "symbol": "BTC/USD",
        "side": "buy",
        "order_type": "limit",
        "price": "30000.5",
        "quantity": "0.250",
        "time_in_force": "GTC",
        "expiry_time": None,
        "stop_price": None,
        "displayed_quantity": None,
        "trail_value": None,
        "trail_is_percent": False,
        "self_trade_prevention": None,
    }
