"""``RowBuilder.order_values``' shortcuts (the status inlined, the open and visible quantities taken from
the quantity's cache entry when equal, a ``str`` user id passed as it is) against a plain model of each
column: the status rule, every quantity converted on its own, ``str(user_id)`` and its int flag."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook.changes import CHANGE_ADDED, CHANGE_CANCELLED, CHANGE_EXPIRED
from manticore_storage.batch import store_decimal
from manticore_storage.capture import RECORD_ORDER, RowBuilder
from manticore_storage.records import Market

_MARKET = Market("ETH/USD", Decimal("0.01"), Decimal("0.001"))
_UNITS = st.integers(min_value=0, max_value=50)


def _status(kind: int, filled: int, open_: int, pending: bool) -> str:
    if kind == CHANGE_CANCELLED:
        return "cancelled"
    if kind == CHANGE_EXPIRED:
        return "expired"
    if pending:
        return "pending"
    if open_ == 0:
        return "filled" if filled else "cancelled"
    return "partially_filled" if filled else "open"


def _quantity(units: int, store: Any) -> object:
    return store(Decimal(0) if units == 0 else Decimal(units) * _MARKET.lot_size)


@settings(max_examples=200)
@given(
    dialect=st.sampled_from(["sqlite", "postgresql"]),
    kind=st.sampled_from([CHANGE_ADDED, CHANGE_CANCELLED, CHANGE_EXPIRED, 7]),
    quantities=st.tuples(_UNITS, _UNITS, _UNITS, _UNITS),
    pending=st.booleans(),
    user=st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["u1", "", "7"])),
)
def test_order_values_match_a_plain_model(
    dialect: str, kind: int, quantities: tuple[int, int, int, int], pending: bool, user: Any
) -> None:
    store = store_decimal(dialect)
    builder = RowBuilder(_MARKET.symbol, _MARKET, "", store)
    quantity, filled, open_, visible = quantities
    record = (
        RECORD_ORDER,
        3,
        kind,
        "user",
        "o1",
        "sell",
        "LIMIT",
        "GTC",
        user,
        1.0,
        "none",
        None,
        None,
        False,
    )
    record += (5, quantity, filled, open_, visible, None, None, None, False, pending, 2, None)
    for _ in range(2):  # quantities converted, then remembered
        row = builder.order_values(record, 4.0)  # type: ignore[arg-type]
        assert row[4:8] == [_quantity(units, store) for units in quantities]
        assert [str(value) for value in row[4:8]] == [str(_quantity(units, store)) for units in quantities]
        assert row[12] == (None if user is None else str(user))
        assert row[13] is (isinstance(user, int) and not isinstance(user, bool))
        status = _status(kind, filled, open_, pending)
        assert row[21] == status
        assert row[22] == ("user" if status == "cancelled" else None)
