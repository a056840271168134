"""SQLite rows' prices and quantities written by ``Grid.to_str`` (the row builder's shortcut for the
SQLite store) are the text of the Decimal path, ``format(grid.to_decimal(units), "f")``, on any grid."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_storage.batch import store_decimal
from manticore_storage.capture import RECORD_ORDER, RECORD_TRADE, RowBuilder, decimal_text
from manticore_storage.records import Market

_STEPS = st.sampled_from(["1", "0.5", "0.01", "0.0001", "25", "10", "0.00000001", "2.5", "0.125"]).map(
    Decimal
)
_UNITS = st.integers(min_value=-(10**12), max_value=10**15)


def _decimal_path(value: Decimal) -> object:
    """The SQLite text through a function the builder does not recognise (so it converts Decimals)."""
    return format(value, "f")


@settings(max_examples=200, deadline=None)
@given(_STEPS, _STEPS, st.lists(st.tuples(_UNITS, _UNITS), min_size=1, max_size=6))
def test_grid_text_is_the_decimal_text(tick: Decimal, lot: Decimal, values: list[tuple[int, int]]) -> None:
    market = Market("X/Y", tick, lot, Decimal("0.001"), Decimal("0.002"))
    assert store_decimal("sqlite") is decimal_text
    fast = RowBuilder(market.symbol, market, "", decimal_text)
    model = RowBuilder(market.symbol, market, "", _decimal_path)
    for _ in range(2):  # converted, then remembered
        for number, (ticks, lots) in enumerate(values):
            order = (
                RECORD_ORDER,
                1,
                0,
                None,
                "o",
                "buy",
                "LIMIT",
                "GTC",
                "u",
                1.0,
                "none",
                None,
                None,
                False,
            )
            order += (ticks, abs(lots), 0, abs(lots), abs(lots), None, ticks, None, False, False, 1, None)
            assert fast.order_values(order, 2.0) == model.order_values(order, 2.0)  # type: ignore[arg-type]
            trade = (RECORD_TRADE, number, number, ticks, lots, "m", "t", "u", 5, "sell", 1.0, None, "c")
            assert fast.trade_values(trade) == model.trade_values(trade)
