"""The row builder's decimals (``capture.RowBuilder``, which reads its caches through their bound
``__getitem__``): every price, quantity and fee of an order, fill or trade row is the grid's exact
value in the stored form (text on SQLite, the Decimal elsewhere), whether the value was met before or
not, zero as events give it; against a plain model that converts every value afresh."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook.changes import CHANGE_CANCELLED
from manticore_storage.batch import store_decimal
from manticore_storage.capture import RECORD_FILL, RECORD_ORDER, RECORD_TRADE, RowBuilder
from manticore_storage.records import Market

_MARKET = Market(
    "BTC/USD",
    Decimal("0.5"),
    Decimal("0.0001"),
    maker_fee_rate=Decimal("0.001"),
    taker_fee_rate=Decimal("-0.0002"),
)
_STORES = st.sampled_from(["sqlite", "postgresql", "mysql"])
_UNITS = st.integers(min_value=0, max_value=10**9)


def _model(units: int, grid_step: Decimal, store: Any) -> object:
    """A value as the row holds it: zero without places, else the exact multiple of the step."""
    value = Decimal(0) if units == 0 else Decimal(units) * grid_step
    return store(value)


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and str(a) == str(b)


@settings(max_examples=60)
@given(_STORES, st.lists(st.tuples(_UNITS, _UNITS, _UNITS, _UNITS), min_size=1, max_size=40))
def test_fill_and_trade_values_are_exact_met_or_not(
    dialect: str, values: list[tuple[int, int, int, int]]
) -> None:
    store = store_decimal(dialect)
    builder = RowBuilder(_MARKET.symbol, _MARKET, "MC-", store)
    price_step = _MARKET.tick_size
    lot_step = _MARKET.lot_size
    for _ in range(2):  # every value twice: converted, then remembered
        for number, (filled, open_, ticks, lots) in enumerate(values):
            fill = builder.fill_values((RECORD_FILL, number, "o1", filled, open_, open_, 3), 1.0)
            assert _same(fill[0], _model(filled, lot_step, store))
            assert _same(fill[1], _model(open_, lot_step, store))
            assert _same(fill[2], _model(open_, lot_step, store))
            trade = builder.trade_values(
                (RECORD_TRADE, number, number, ticks, lots, "m", "t", "u1", 7, "buy", 2.0, None, "c")
            )
            assert _same(trade[3], _model(ticks, price_step, store))
            assert _same(trade[4], _model(lots, lot_step, store))
            with localcontext() as exact:
                exact.prec = 200
                notional = Decimal(ticks) * price_step * Decimal(lots) * lot_step
                assert Decimal(str(trade[10])) == notional * _MARKET.maker_fee_rate
                assert Decimal(str(trade[11])) == notional * _MARKET.taker_fee_rate


@settings(max_examples=60)
@given(_STORES, _UNITS, _UNITS, _UNITS, st.one_of(st.none(), _UNITS), st.one_of(st.none(), _UNITS))
def test_order_values_are_exact(
    dialect: str, quantity: int, filled: int, price: int, stop: int | None, peak: int | None
) -> None:
    store = store_decimal(dialect)
    builder = RowBuilder(_MARKET.symbol, _MARKET, "MC-", store)
    open_ = max(quantity - filled, 0)
    record = (
        RECORD_ORDER,
        9,
        CHANGE_CANCELLED if open_ == 0 and not filled else 0,
        "user",
        "MC-1",
        "buy",
        "limit",
        "gtc",
        "u1",
        1.5,
        "none",
        peak,
        None,
        False,
        price,
        quantity,
        filled,
        open_,
        open_,
        None,
        stop,
        None,
        False,
        False,
        4,
        None,
    )
    for _ in range(2):
        row = builder.order_values(record, 2.5)
        assert _same(row[3], _model(price, _MARKET.tick_size, store))
        assert _same(row[4], _model(quantity, _MARKET.lot_size, store))
        assert _same(row[5], _model(filled, _MARKET.lot_size, store))
        assert _same(row[6], _model(open_, _MARKET.lot_size, store))
        assert _same(row[7], _model(open_, _MARKET.lot_size, store))
        assert row[8] == (_model(peak, _MARKET.lot_size, store) if peak else None)
        assert row[15] == (None if stop is None else _model(stop, _MARKET.tick_size, store))
