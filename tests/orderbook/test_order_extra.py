"""``Order``'s rarely set fields live in one optional ``OrderExtra``: they still read and write as the
order's own attributes, a plain order carries none, and a copy shares nothing mutable."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from manticore_orderbook import Order, OrderBook
from manticore_orderbook.enums import BUY, GTC, LIMIT, STP_NONE
from manticore_orderbook.model import OrderExtra

#: Each rare field, its default and values it may take.
_FIELDS: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "client_order_id": (None, st.none() | st.text("abc", min_size=1, max_size=4)),
    "expiry": (None, st.none() | st.floats(1.0, 1e9)),
    "peak": (0, st.integers(0, 10**12)),
    "stop_price": (None, st.none() | st.integers(1, 10**12)),
    "trail": (None, st.none() | st.integers(1, 10**6) | st.decimals("0.01", "50", places=2)),
    "trail_is_percent": (False, st.booleans()),
    "trail_ref": (None, st.none() | st.integers(1, 10**12)),
    "pending": (False, st.booleans()),
    "triggered": (False, st.booleans()),
}


def _order() -> Order:
    return Order("o1", BUY, 100, 5, LIMIT, GTC, "u1", 1000.0, STP_NONE)


def test_the_extra_record_holds_exactly_the_rare_fields() -> None:
    names = getattr(OrderExtra, "__slots__", None) or getattr(OrderExtra, "__mypyc_attrs__", ())
    assert sorted(names) == sorted(_FIELDS)
    extra = OrderExtra()
    for name, (default, _) in _FIELDS.items():
        assert getattr(extra, name) == default and type(getattr(extra, name)) is type(default), name


@given(
    st.lists(
        st.sampled_from(sorted(_FIELDS)).flatmap(lambda name: st.tuples(st.just(name), _FIELDS[name][1])),
        max_size=12,
    )
)
def test_rare_fields_read_back_what_was_set_as_attributes_of_a_dict_would(
    writes: list[tuple[str, Any]],
) -> None:
    """Against a dict of the nine fields: every read gives the last value written (the default before),
    the record exists once a non-default value was written, and a copy equals but shares nothing."""
    order = _order()
    model = {name: default for name, (default, _) in _FIELDS.items()}
    made = False
    for name, value in writes:
        setattr(order, name, value)
        model[name] = value
        made = made or value != _FIELDS[name][0]
        assert (order.extra is not None) is made
        for field, expected in model.items():
            assert getattr(order, field) == expected, field
    clone = order.copy()
    for field, expected in model.items():
        assert getattr(clone, field) == expected, field
    if order.extra is not None:
        assert clone.extra is not None and clone.extra is not order.extra
        clone.peak = order.peak + 1
        clone.client_order_id = "other"
        assert order.peak == model["peak"] and order.client_order_id == model["client_order_id"]
    else:
        assert clone.extra is None


def test_a_plain_order_carries_no_extra_record_and_others_do() -> None:
    """Plain limit orders (the fast path and full validation alike) have ``extra`` None; a client id,
    an expiry, a display size or a stop each make one, with the fields the order was given."""
    book = OrderBook("XE/USD", clock=lambda: 1000.0)
    book.add_order(side="buy", price=100, quantity=1, order_id="fast")
    book.add_order(side="buy", price=99, quantity=1, order_id="full", self_trade_prevention="none")
    book.add_order(side="buy", price=98, quantity=1, order_id="named", client_order_id="c-1")
    book.add_order(side="buy", price=97, quantity=1, order_id="gtd", expiry_time=5000.0)
    book.add_order(side="buy", price=96, quantity=3, order_id="ice", displayed_quantity=1)
    book.add_order(side="sell", price=None, quantity=1, order_id="stop", stop_price=120)
    orders = book._orders
    assert orders["fast"].extra is None and orders["full"].extra is None
    assert orders["named"].client_order_id == "c-1" and orders["named"].extra is not None
    assert orders["gtd"].expiry == 5000.0
    assert orders["ice"].peak == book._qty_grid.to_units(1) and orders["ice"].visible == orders["ice"].peak
    stop = orders["stop"]
    assert stop.pending and stop.stop_price == book._price_grid.to_units(120) and stop.level is None
    assert book.cancel_order("stop") and "stop" not in book
    assert book.cancel_order("gtd") and book.cancel_order("fast")
    book.check_invariants()


def test_a_percent_trail_keeps_its_decimal() -> None:
    order = _order()
    order.trail = Decimal("1.5")
    order.trail_is_percent = True
    assert order.extra is not None and order.extra.trail == Decimal("1.5") and order.trail_is_percent


def test_compiled_records_that_hold_no_book_objects_are_left_out_of_the_cyclic_gc() -> None:
    """``Trade``, ``OrderExtra`` and ``Order`` are ``acyclic`` for mypyc (untracked when compiled);
    ``PriceLevel`` stays tracked. A resting order and its level reference each other (order -> level
    -> queue -> order): the book breaks that cycle itself (test_order_cycles.py)."""
    import gc

    from manticore_orderbook import COMPILED

    book = OrderBook("XE/USD", clock=lambda: 1000.0)
    book.add_order(side="sell", price=100, quantity=2, order_id="m", client_order_id="c-m")
    book.add_order(side="buy", price=100, quantity=1, order_id="t")
    (trade,) = book._trades
    maker = book._orders["m"]
    assert maker.extra is not None and maker.level is not None
    assert gc.is_tracked(trade) is not COMPILED
    assert gc.is_tracked(maker.extra) is not COMPILED
    assert gc.is_tracked(maker) is not COMPILED and gc.is_tracked(maker.level)
    assert book.get_trade_history()[0]["maker_order_id"] == "m"
