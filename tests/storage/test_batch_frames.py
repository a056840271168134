"""The frames that carry a batch to the writer process (:func:`manticore_storage.process.encode_batch`).

A batch of captured units goes as JSON and must come back exactly: the same nesting of tuples, the same
types (an int stays an int, True stays True, a float the same double, -0.0 included), the same values.
Anything JSON would not give back exactly goes pickled. And the writer's ``submit_many`` queues a round's
units in order, as ``submit`` of each would.
"""

from __future__ import annotations

import enum
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventManager, EventType, OrderBook
from manticore_storage import StorageManager
from manticore_storage.apply import Unit, UnitTuple
from manticore_storage.process import decode_batch, encode_batch
from manticore_storage.writer import WriteBehindWriter


def _same(sent: Any, received: Any) -> bool:
    """Equal with the same type at every level (floats by their bits: -0.0 is not 0.0)."""
    if type(sent) is not type(received):
        return False
    if isinstance(sent, tuple):
        return len(sent) == len(received) and all(map(_same, sent, received))
    if type(sent) is float:
        return math.copysign(1.0, sent) == math.copysign(1.0, received) and (
            sent == received or (math.isnan(sent) and math.isnan(received))
        )
    return bool(sent == received)


def _round_trip(units: list[Any]) -> tuple[bytes, list[Any]]:
    frame = encode_batch(units)
    kind, received = decode_batch(frame)
    assert kind == "batch"
    return frame, received


def _captured_units() -> list[UnitTuple]:
    """Units of every kind a book's persister captures: rests, trades, fills, cancels, modifies,
    icebergs, stops, trailing stops, GTD orders, client order ids, integer user ids, a clear."""
    units: list[UnitTuple] = []
    storage = StorageManager("sqlite://")
    try:
        clock = iter(float(1_700_000_000 + n) + 0.125 for n in range(1_000))
        book = OrderBook(
            "BTC/USD",
            event_manager=EventManager(),
            tick_size="0.5",
            lot_size="0.001",
            maker_fee_rate="0.001",
            taker_fee_rate="0.002",
            clock=lambda: next(clock),
        )
        storage.attach(book, deliver=units.append)
        book.add_order("sell", "100", "1", user_id="alice", client_order_id="a-1")
        book.add_order("sell", "100.5", "2", user_id=7, displayed_quantity="0.5")
        book.add_order("buy", "99", "1.5", user_id="bob", time_in_force="GTD", expiry_time=1_800_000_000.5)
        book.add_order("buy", "101", "2.25", user_id="carol")  # trades through two levels
        book.add_order("buy", None, "0.1", user_id=8)  # a market order against the iceberg's rest
        book.add_order("sell", "98", "1", user_id="dave", order_type="STOP_LIMIT", stop_price="98.5")
        book.add_order("sell", None, "1", user_id="erin", order_type="TRAILING_STOP", trail_value="1.5")
        book.add_order(
            "buy",
            None,
            "1",
            user_id="fred",
            order_type="TRAILING_STOP",
            trail_value="2",
            trail_is_percent=True,
        )
        resting = book.add_order("buy", "97", "3", user_id="gina", client_order_id="g.1")
        book.modify_order(resting, new_price="96.5", new_quantity="2")
        book.add_order("sell", "96.5", "0.5", user_id="hank", time_in_force="IOC")
        book.add_order("buy", "95", "1", user_id="ivan", order_type="POST_ONLY")
        book.cancel_order(resting)
        book.add_order("sell", "200", "1", user_id=-(2**63))
        book.clear()
    finally:
        storage.close()
    packed = [unit for unit in units if unit[1].__class__ is not int]
    assert packed and len(packed) < len(units)  # both layouts
    return [*units, (None, 41, 1_700_000_000.25), (None, 42, None)]  # and position markers


def _holds_decimal(value: object) -> bool:
    if isinstance(value, tuple):
        return any(map(_holds_decimal, value))
    return isinstance(value, Decimal)


def test_captured_units_of_every_kind_come_back_exactly_through_json() -> None:
    """Every unit but a percent trailing stop's (its trail is a Decimal) goes as JSON; the whole
    batch, with that unit, is pickled; both arrive exactly."""
    units = _captured_units()
    with_decimal = [unit for unit in units if _holds_decimal(unit)]
    plain = [unit for unit in units if not _holds_decimal(unit)]
    assert len(with_decimal) == 2 and len(plain) >= 15
    frame, received = _round_trip(plain)
    assert frame[:1] == b"["
    assert _same(tuple(plain), tuple(received))
    for unit in plain:  # and each alone
        frame, received = _round_trip([unit])
        assert frame[:1] == b"[" and _same((unit,), tuple(received))
    frame, received = _round_trip(units)
    assert frame[:1] == b"\x80"
    assert _same(tuple(units), tuple(received))


_PLAIN = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)


def _plain_items(size: int) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(_PLAIN, min_size=size, max_size=size).map(tuple)


#: A captured record of each kind (its kind first, then its size's plain values at any place).
_RECORDS = st.one_of(
    _plain_items(25).map(lambda items: (0, *items)),  # an order
    _plain_items(6).map(lambda items: (1, *items)),  # a fill
    _plain_items(12).map(lambda items: (2, *items)),  # a trade
    _plain_items(1).map(lambda items: (3, *items)),  # a clear
)
_HEADER = st.tuples(
    st.text(), st.integers(0, 2**40), st.integers(0, 2**40), st.integers(0, 2**40), _PLAIN, st.text()
)


@given(
    st.lists(
        st.one_of(
            st.tuples(_HEADER, _plain_items(25)).map(lambda t: (*t[0], 0, *t[1])),  # one order
            st.tuples(_HEADER, st.lists(_RECORDS, max_size=5).map(tuple), st.booleans()).map(
                lambda t: (t[0][0], (), *t[0][1:5], t[1], t[0][5], t[2])  # packed, captured
            ),
            st.tuples(
                st.integers(0, 2**62), st.none() | st.floats(allow_nan=False, allow_infinity=False)
            ).map(lambda t: (None, *t)),  # a position marker
        ),
        max_size=12,
    )
)
@settings(max_examples=200, deadline=None)
def test_any_batch_of_plain_values_comes_back_exactly(units: list[UnitTuple]) -> None:
    """Strings, integers within 64 bits, finite floats, booleans and None at any place of the three
    layouts: JSON (unless a string is not valid Unicode), and back exactly."""
    frame, received = _round_trip(units)
    assert _same(tuple(units), tuple(received)), frame[:200]


class _IntUser(enum.IntEnum):
    ROOT = 1


class _StrUser(str, enum.Enum):
    ALICE = "alice"


def _one_order(user: object, timestamp: object = 1.5, expiry: object = None) -> UnitTuple:
    """A one-order unit (header, then an order record: user id at 14, timestamp 15, expiry 25)."""
    record = (0, 1, 5, None, "o1", "buy", "LIMIT", "GTC", user, timestamp, "none", None, None, False)
    return (
        "BTC/USD",
        3,
        0,
        0,
        None,
        "P-",
        *record,
        200,
        1,
        0,
        1,
        1,
        expiry,
        None,
        None,
        False,
        False,
        1,
        None,
    )


def _packed(*records: tuple[Any, ...]) -> UnitTuple:
    return ("BTC/USD", (), 9, 1, 0, 5, records, "P-", True)


_ORDER = _one_order("alice")[6:]
_TRADE = (2, 1, 6, 200, 20, "o1", "o2", "alice", "bob", "buy", 1.5, None, None)


@pytest.mark.parametrize(
    "unit",
    [
        _one_order(2**64),  # beyond 64 bits
        _one_order(-(2**63) - 1),
        _one_order(_IntUser.ROOT),  # subclasses of int and str: their type must survive
        _one_order(_StrUser.ALICE),
        _one_order("\ud800"),  # not valid Unicode
        _one_order(Decimal("1.5")),
        _one_order("alice", timestamp=float("inf")),  # JSON has neither: orjson would write null
        _one_order("alice", timestamp=float("nan")),
        _one_order("alice", expiry=float("-inf")),
        _packed((*_ORDER[:9], float("nan"), *_ORDER[10:])),
        _packed((*_ORDER[:19], float("inf"), *_ORDER[20:])),
        _packed(_ORDER, (*_TRADE[:10], float("inf"), *_TRADE[11:])),
        (None, 5, float("nan")),
        Unit("BTC/USD", (), 3, changes=(_ORDER,)),  # a named tuple
        Unit("BTC/USD", [(EventType.ORDER_ADDED, {"order_id": "o1"})], 3),  # a named tuple with events
        ("BTC/USD", [(EventType.ORDER_ADDED, {"order_id": "o1"})], 3, None, None, None, (), "", False),
    ],
    ids=[
        "int>64bit",
        "int<-2**63",
        "IntEnum",
        "StrEnum",
        "surrogate",
        "Decimal",
        "inf",
        "nan",
        "expiry-inf",
        "packed-nan",
        "packed-expiry-inf",
        "trade-inf",
        "marker-nan",
        "Unit-no-events",
        "Unit",
        "events",
    ],
)
def test_what_json_cannot_carry_is_pickled(unit: UnitTuple) -> None:
    units = [_one_order("alice"), unit]
    frame, received = _round_trip(units)
    assert frame[:1] == b"\x80"  # pickle's protocol marker
    assert _same(tuple(units), tuple(received))


def test_submit_many_queues_units_in_order_and_counts_them() -> None:
    written: list[list[UnitTuple]] = []
    writer = WriteBehindWriter(written.append, lambda unit, exc: None, gather_delay=0.0)
    try:
        one = _one_order("a")
        packed = ("BTC/USD", (), 9, 1, 0, 5, ((2, 1), (2, 2), (2, 3)), "P-", True)
        marker = (None, 7, None)
        writer.submit_many([one, packed])
        writer.submit_many([])
        writer.submit(marker)
        assert writer.flush(10)
        assert [unit for batch in written for unit in batch] == [one, packed, marker]
        assert writer.events_written == 1 + 3 + 1
        assert writer.pending_events == 0
    finally:
        writer.close()


def test_a_batch_stops_at_max_batch_events_with_sizes_counted_once() -> None:
    written: list[list[UnitTuple]] = []
    writer = WriteBehindWriter(written.append, lambda unit, exc: None, gather_delay=0.0, max_batch_events=4)
    try:
        packed = ("BTC/USD", (), 9, 1, 0, 5, ((2, 1), (2, 2), (2, 3)), "P-", True)  # 3 events
        big = ("BTC/USD", (), 9, 1, 0, 5, tuple((2, n) for n in range(6)), "P-", True)  # 6: alone
        writer.submit_many([packed, _one_order("a"), packed, big, _one_order("b")])
        assert writer.flush(10)
        assert [len(batch) for batch in written] == [2, 1, 1, 1]
        assert writer.events_written == 3 + 1 + 3 + 6 + 1
        assert writer.batches == 4
    finally:
        writer.close()


def test_submit_many_after_close_raises() -> None:
    writer = WriteBehindWriter(lambda units: None, lambda unit, exc: None)
    writer.close()
    with pytest.raises(RuntimeError):
        writer.submit_many([_one_order("a")])
