"""``feed.command_messages`` and ``feed.messages`` build exactly what a simple model of the message
contract builds (the same messages, in the same order, with the same keys in the same order, the same
values and the same value types), over the events of random exchange streams and every combination of
what the listeners read.

The model is the contract written the plain way (``fill_view`` for a fill's fields, ``money`` for its
fee, one pass per message kind); the module builds the same messages with fewer instructions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import Demand
from manticore_matching.demand import Wanted
from manticore_matching.feed import command_messages, fill_view, messages, users_of
from manticore_matching.formatting import money
from manticore_orderbook import EventType
from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange

_LEVELS = (EventType.PRICE_LEVEL_ADDED, EventType.PRICE_LEVEL_CHANGED, EventType.PRICE_LEVEL_REMOVED)
_ORDERS = (
    EventType.ORDER_ADDED,
    EventType.ORDER_MODIFIED,
    EventType.ORDER_CANCELLED,
    EventType.ORDER_EXPIRED,
    EventType.ORDER_TRIGGERED,
)


def model_messages(
    symbol: str,
    first_sequence: int,
    last_sequence: int,
    timestamp: float,
    events: list[tuple[EventType, Any]],
    fee_asset: str | None,
    book: bool,
    trades: bool,
    users: Any,
    fills: bool,
) -> list[dict[str, Any]]:
    """The contract of :func:`feed.messages`, one message kind at a time."""
    if last_sequence < first_sequence:
        return []
    result: list[dict[str, Any]] = []
    if book:
        last_change: dict[tuple[str, object], dict[str, Any]] = {}
        for event_type, data in events:
            if event_type in _LEVELS:
                last_change[(data["side"], data["price"])] = {
                    "price": data["price"],
                    "quantity": data["quantity"],
                    "order_count": data["order_count"],
                }
        result.append(
            {
                "type": "book",
                "symbol": symbol,
                "first_sequence": first_sequence,
                "last_sequence": last_sequence,
                "timestamp": timestamp,
                "bids": [change for (side, _), change in last_change.items() if side == "buy"],
                "asks": [change for (side, _), change in last_change.items() if side == "sell"],
            }
        )
    if trades:
        for event_type, data in events:
            if event_type is EventType.TRADE_EXECUTED:
                result.append(
                    {
                        "type": "trade",
                        "symbol": data["symbol"],
                        "trade_id": data["trade_id"],
                        "price": data["price"],
                        "quantity": data["quantity"],
                        "taker_side": data["taker_side"],
                        "timestamp": data["timestamp"],
                        "sequence": data["sequence"],
                    }
                )
    for event_type, data in events:
        owner = data.get("user_id")
        if owner is None:
            continue
        if event_type is EventType.ORDER_FILLED and (fills or users is None or owner in users):
            view = fill_view(data, fee_asset)
            view["fee"] = money(view["fee"])
            result.append(
                {
                    "type": "fill",
                    "user_id": owner,
                    **view,
                    "status": data["status"],
                    "filled_quantity": data["filled_quantity"],
                    "remaining_quantity": data["remaining_quantity"],
                }
            )
        elif event_type in _ORDERS and (users is None or owner in users):
            result.append({"type": "order", "user_id": owner, "event": event_type.value, "order": data})
    return result


def model_command_messages(
    wanted: Wanted,
    symbol: str,
    fee_asset: str | None,
    complete: bool,
    sequence: int,
    timestamp: float,
    events: list[tuple[EventType, Any]],
    balances: Any,
) -> list[dict[str, Any]]:
    """The contract of :func:`feed.command_messages`."""
    users = wanted.users
    trades = wanted.trades is None or symbol in wanted.trades
    if not (complete or trades or wanted.fills or users is None or users):
        return []
    batch = model_messages(
        symbol,
        sequence - len(events) + 1,
        sequence,
        timestamp,
        events,
        fee_asset,
        complete,
        trades,
        users,
        wanted.fills,
    )
    if users is None or users:
        for user in users_of(events):
            if users is None or user in users:
                batch.append({"type": "balances", "user_id": user, "balances": balances(user)})
    return batch


def _shape(value: Any) -> Any:
    """``value`` with every dict as its items in order and every leaf with its type (so that equal
    shapes mean the same keys in the same order and values of the same types)."""
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    if isinstance(value, list | tuple):
        return [_shape(item) for item in value]
    return (type(value).__name__, value)


Call = tuple[str, str | None, bool, int, float, list[tuple[EventType, Any]]]


def _recorded_calls(directory: Path, seed: int, length: int) -> list[Call]:
    """The arguments of every ``command_messages`` call of a random stream on an exchange whose one
    listener reads every message (so every capture is complete)."""
    calls: list[Call] = []
    original = command_messages

    def record(
        wanted: Wanted,
        symbol: str,
        fee_asset: str | None,
        complete: bool,
        sequence: int,
        timestamp: float,
        events: list[tuple[EventType, Any]],
        balances: Any,
    ) -> list[dict[str, Any]]:
        calls.append((symbol, fee_asset, complete, sequence, timestamp, events))
        return original(wanted, symbol, fee_asset, complete, sequence, timestamp, events, balances)

    clock = Clock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("manticore_matching.exchange.command_messages", record)
        with new_exchange(directory, clock, checkpoint_every=0) as exchange:
            exchange.add_listener(lambda batch: None)
            for command in make_stream(seed, length):
                apply(exchange, clock, command)
    return calls


_DEMANDS: list[list[Demand | None]] = [
    [None],
    [Demand(books=None, trades=None), Demand(fills=True)],
    [Demand(books=["BTC/USD"])],
    [Demand(trades=["ETH/USD"])],
    [Demand(users=["alice"])],
    [Demand(users=["bob", "carol"], fills=True)],
    [Demand(fills=True)],
    [Demand()],
]


def _balances(user: str) -> dict[str, Any]:
    return {"USD": f"{user}-usd"}


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_messages_equal_the_model_over_random_streams(
    tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    calls = _recorded_calls(tmp_path_factory.mktemp("feed"), seed, 120)
    assert any(event_type is EventType.ORDER_FILLED for call in calls for event_type, _ in call[5])
    for demands in _DEMANDS:
        wanted = Wanted(demands)
        for symbol, fee_asset, complete, sequence, timestamp, events in calls:
            for captured_all in (complete, False):  # a capture without level events is not complete
                kept = events if captured_all else [e for e in events if e[0] not in _LEVELS]
                got = command_messages(
                    wanted, symbol, fee_asset, captured_all, sequence, timestamp, kept, _balances
                )
                expected = model_command_messages(
                    wanted, symbol, fee_asset, captured_all, sequence, timestamp, kept, _balances
                )
                assert _shape(got) == _shape(expected)


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    book=st.booleans(),
    trades=st.booleans(),
    users=st.none() | st.frozensets(st.sampled_from(["alice", "bob", "carol", "dave"])),
    fills=st.booleans(),
)
def test_messages_with_every_option_equal_the_model(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    book: bool,
    trades: bool,
    users: frozenset[str] | None,
    fills: bool,
) -> None:
    calls = _recorded_calls(tmp_path_factory.mktemp("feed"), seed, 60)
    for symbol, fee_asset, _, sequence, timestamp, events in calls:
        first = sequence - len(events) + 1
        for last in (sequence, first - 1):  # an empty range builds nothing
            got = messages(
                symbol,
                first,
                last,
                timestamp,
                events,
                fee_asset,
                book=book,
                trades=trades,
                users=users,
                fills=fills,
            )
            expected = model_messages(
                symbol, first, last, timestamp, events, fee_asset, book, trades, users, fills
            )
            assert _shape(got) == _shape(expected)
        assert messages(symbol, first, sequence, timestamp, events) == model_messages(
            symbol, first, sequence, timestamp, events, None, True, True, None, False
        )


_FILL = {
    "order_id": "MC-1",
    "client_order_id": None,
    "symbol": "BTC/USD",
    "trade_id": "T-1",
    "side": "buy",
    "price": "100.0",
    "quantity": "1.0",
    "fill_price": "100.0",
    "fill_quantity": "1.0",
    "filled_quantity": "1.0",
    "remaining_quantity": "0.0",
    "visible_quantity": "0.0",
    "priority": 3,
    "is_maker": True,
    "fee": "0",
    "user_id": "alice",
    "order_type": "limit",
    "status": "filled",
    "timestamp": 1.0,
    "sequence": 4,
}


@given(
    st.one_of(
        # What the books write: format(Decimal, "f") of any exact fee, rebates and zeros included.
        st.builds(
            lambda digits, exponent: format(Decimal(digits).scaleb(exponent), "f"),
            st.integers(-(10**30), 10**30),
            st.integers(-30, 5),
        ),
        st.sampled_from(["0", "-0", "0.000", "-0.000", "12.50", "100.00", "7", "-3.0"]),
        # Other types (a book of another number format, a caller's own events): through money().
        st.builds(Decimal, st.integers(-(10**9), 10**9)),
        st.floats(allow_nan=True, allow_infinity=True),
        st.none(),
    )
)
def test_a_fill_message_fee_is_money_of_the_fill_fee(fee: object) -> None:
    """The fee of a fill message is ``money`` of the fill's fee for any fee a book may write."""
    fill = dict(_FILL, fee=fee)
    (message,) = messages("BTC/USD", 4, 4, 1.0, [(EventType.ORDER_FILLED, fill)], "USD", book=False)
    assert _shape(message["fee"]) == _shape(money(fee))


def test_the_streams_have_fills_levels_trades_and_rebates(tmp_path: Path) -> None:
    """The random streams exercise what the model compares: fills whose fee has trailing zeros, maker
    rebates (ETH/USD's negative maker fee), level changes and trades."""
    calls = _recorded_calls(tmp_path, 11, 150)
    kinds = {event_type for call in calls for event_type, _ in call[5]}
    assert {EventType.TRADE_EXECUTED, EventType.ORDER_FILLED, *_LEVELS} <= kinds
    fees = [
        data["fee"] for call in calls for event_type, data in call[5] if event_type is EventType.ORDER_FILLED
    ]
    assert any(fee.startswith("-") for fee in fees)
    assert any(fee.endswith("0") and "." in fee for fee in fees)
