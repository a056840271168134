"""The order rules (manticore_orderbook.rules) and the book agree on every combination of fields."""

from __future__ import annotations

import itertools

import pytest

from manticore_orderbook import InvalidOrderError, OrderBook, OrderType, TimeInForce
from manticore_orderbook.rules import (
    check_client_order_id,
    check_fields,
    infer_order_type,
    may_rest,
    unbounded_buy_reason,
)

from .support import FakeClock

#: The table of docs/orderbook.md, written out independently of RULES: type -> (price, stop, trail,
#: displayed, time in force), each field "req", "opt" or "no".
TABLE = {
    OrderType.LIMIT: ("req", "no", "no", "opt", "GTC IOC FOK GTD"),
    OrderType.MARKET: ("no", "no", "no", "no", "GTC IOC FOK"),
    OrderType.POST_ONLY: ("req", "no", "no", "no", "GTC GTD"),
    OrderType.STOP_LIMIT: ("req", "req", "no", "no", "GTC IOC FOK GTD"),
    OrderType.STOP_MARKET: ("no", "req", "no", "no", "GTC IOC FOK GTD"),
    OrderType.TRAILING_STOP: ("opt", "no", "req", "no", "GTC IOC FOK GTD"),
    OrderType.ICEBERG: ("req", "no", "no", "req", "GTC GTD"),
}


def table_allows(kind: OrderType, tif: TimeInForce, given: tuple[bool, bool, bool, bool]) -> bool:
    *fields, tifs = TABLE[kind]
    if kind is OrderType.LIMIT and given[3]:
        return table_allows(OrderType.ICEBERG, tif, given)
    if tif.value not in tifs.split():
        return False
    return all(
        (rule != "req" or has) and (rule != "no" or not has) for rule, has in zip(fields, given, strict=True)
    )


COMBOS = list(
    itertools.product(OrderType, TimeInForce, itertools.product((False, True), repeat=4), (False, True))
)


@pytest.mark.parametrize(("kind", "tif", "given", "buy"), COMBOS)
def test_the_book_accepts_exactly_what_the_table_allows(
    kind: OrderType, tif: TimeInForce, given: tuple[bool, bool, bool, bool], buy: bool
) -> None:
    has_price, has_stop, has_trail, has_displayed = given
    book = OrderBook("X/Y", tick_size="1", lot_size="1", clock=FakeClock(100.0))
    args = {
        "side": "buy" if buy else "sell",
        "price": 10 if has_price else None,
        "quantity": 5,
        "order_type": kind,
        "time_in_force": tif,
        "expiry_time": 200.0 if tif is TimeInForce.GTD else None,
        "stop_price": 12 if has_stop else None,
        "trail_value": 1 if has_trail else None,
        "displayed_quantity": 2 if has_displayed else None,
    }
    allowed = table_allows(kind, tif, given)
    if allowed:
        book.add_order(**args)
        assert book.sequence > 0
    else:
        with pytest.raises(InvalidOrderError):
            book.add_order(**args)
        assert book.sequence == 0
    try:
        check_fields(
            kind,
            tif,
            has_price=has_price,
            has_stop=has_stop,
            has_trail=has_trail,
            has_displayed=has_displayed,
            has_expiry=tif is TimeInForce.GTD,
        )
        assert allowed
    except InvalidOrderError:
        assert not allowed


def test_expiry_goes_with_gtd_only() -> None:
    flags = {"has_price": True, "has_stop": False, "has_trail": False, "has_displayed": False}
    with pytest.raises(InvalidOrderError, match="GTD orders need an expiry_time"):
        check_fields(OrderType.LIMIT, TimeInForce.GTD, has_expiry=False, **flags)
    with pytest.raises(InvalidOrderError, match="only allowed with GTD, not IOC"):
        check_fields(OrderType.LIMIT, TimeInForce.IOC, has_expiry=True, **flags)


def test_inference_and_resting() -> None:
    assert infer_order_type(True, False, False, False) is OrderType.LIMIT
    assert infer_order_type(False, False, False, False) is OrderType.MARKET
    assert infer_order_type(True, True, False, False) is OrderType.STOP_LIMIT
    assert infer_order_type(False, True, False, False) is OrderType.STOP_MARKET
    assert infer_order_type(False, False, True, False) is OrderType.TRAILING_STOP
    assert infer_order_type(True, False, False, True) is OrderType.ICEBERG
    assert may_rest(OrderType.LIMIT, TimeInForce.GTC, True)
    assert not may_rest(OrderType.LIMIT, TimeInForce.IOC, True)
    assert not may_rest(OrderType.MARKET, TimeInForce.GTC, False)
    assert may_rest(OrderType.TRAILING_STOP, TimeInForce.GTD, True)
    assert not may_rest(OrderType.TRAILING_STOP, TimeInForce.GTC, False)
    assert not may_rest(OrderType.STOP_MARKET, TimeInForce.GTC, False)


def test_only_buys_that_can_become_market_buys_are_unbounded() -> None:
    for kind in OrderType:
        for has_price in (False, True):
            assert unbounded_buy_reason(kind, False, has_price) is None
            reason = unbounded_buy_reason(kind, True, has_price)
            expect = not has_price and kind in (OrderType.STOP_MARKET, OrderType.TRAILING_STOP)
            assert (reason is not None) is expect


@pytest.mark.parametrize("good", ["a", "A-z_0.9:x", "x" * 64])
def test_client_order_id_accepts(good: str) -> None:
    assert check_client_order_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 65, "a b", "a/b", "ü", None, 1, "a\n"])
def test_client_order_id_refuses(bad: object) -> None:
    with pytest.raises(InvalidOrderError):
        check_client_order_id(bad)
