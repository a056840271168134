"""Fill and trade messages built from the feed's key templates (a copy, then the values stored) are
exactly the dict displays the contract writes: same keys in the same order, the same values (the very
objects of the payload), the fee as ``money()`` writes it, and every message a dict of its own (a
reader that changes one changes neither the next message nor the templates)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching.feed import messages
from manticore_orderbook import EventType
from tests.matching.exchange_streams import expected_fill_message

_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
#: Fee strings as the books write them (``format(Decimal, "f")``): signs, zeros, trailing zeros, long.
_FEES = st.one_of(
    st.builds(
        lambda digits, exponent: format(Decimal(digits).scaleb(exponent), "f"),
        st.integers(-(10**40), 10**40),
        st.integers(-40, 10),
    ),
    st.sampled_from(["0", "-0", "0.000", "-0.000", "12.50", "100.00", "7", "-3.0", "0." + "0" * 150 + "1"]),
)
_FILL_PAYLOAD_KEYS = (
    "trade_id",
    "symbol",
    "order_id",
    "client_order_id",
    "side",
    "fill_price",
    "fill_quantity",
    "timestamp",
    "status",
    "filled_quantity",
    "remaining_quantity",
)
_TRADE_KEYS = ("symbol", "trade_id", "price", "quantity", "taker_side", "timestamp", "sequence")


def _fill(values: list[Any], is_maker: bool, fee: str, user: str) -> dict[str, Any]:
    return {
        **dict(zip(_FILL_PAYLOAD_KEYS, values, strict=True)),
        "is_maker": is_maker,
        "fee": fee,
        "user_id": user,
    }


def _same(message: dict[str, Any], expected: dict[str, Any]) -> None:
    assert list(message) == list(expected)
    assert message == expected
    for key, value in expected.items():
        if key != "fee":  # the fee is a new string; every other value is the payload's own object
            assert message[key] is value, key


@settings(max_examples=200, deadline=None)
@given(
    fills=st.lists(
        st.tuples(
            st.lists(_VALUES, min_size=len(_FILL_PAYLOAD_KEYS), max_size=len(_FILL_PAYLOAD_KEYS)),
            st.booleans(),
            _FEES,
            st.sampled_from(["alice", "bob"]),
        ),
        max_size=4,
    ),
    trades=st.lists(st.lists(_VALUES, min_size=len(_TRADE_KEYS), max_size=len(_TRADE_KEYS)), max_size=3),
)
def test_fill_and_trade_messages_are_the_dict_displays(
    fills: list[tuple[list[Any], bool, str, str]], trades: list[list[Any]]
) -> None:
    fill_data = [_fill(*fill) for fill in fills]
    trade_data = [dict(zip(_TRADE_KEYS, values, strict=True)) for values in trades]
    events: list[tuple[EventType, Any]] = [(EventType.ORDER_FILLED, data) for data in fill_data]
    events += [(EventType.TRADE_EXECUTED, data) for data in trade_data]
    for _ in range(2):  # a second build after the first one's messages were changed by a reader
        built = messages("BTC/USD", 1, len(events), 3.0, events, "USD", book=False)
        assert len(built) == len(trade_data) + len(fill_data)
        # The trades come first, then the private messages, each in event order.
        for message, data in zip(built, trade_data, strict=False):
            _same(message, {"type": "trade", **data})
        for message, data in zip(built[len(trade_data) :], fill_data, strict=True):
            _same(message, expected_fill_message(data))
        for message in built:
            message["type"] = "changed"
            message["extra"] = object()
    assert len({id(message) for message in built}) == len(built)
