"""A book that lets go of its resting orders frees them and their levels, compiled as well as pure.

Compiled, ``Order`` is acyclic (``mypyc_attr(acyclic=True)``): the cyclic GC does not track it, so an
order has no GC header and is neither untracked when freed nor visited by collections (docs/performance.md,
session 25 h1). A resting order and its level reference each other (``order.level``, ``level.orders``),
a cycle the collector cannot see through an untracked object, so the book breaks it itself wherever it
lets go of resting orders: ``clear()`` (each order's level set to None), a restore that fails after
placing orders (``_release_levels`` before ``_reset_state``) and the book's own deallocation
(``__del__``). Each test counts what stays alive: the ``PriceLevel`` objects (tracked either way) and
the references to a user id that only the test's orders hold.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import COMPILED, InvalidOrderError, Order, OrderBook
from manticore_orderbook.enums import BUY, GTC, LIMIT, STP_NONE
from manticore_orderbook.model import PriceLevel
from manticore_orderbook.restore import load_trusted

from .support import FakeClock


def _owner(tag: str) -> str:
    """A user id made at run time: an object of its own (not interned), so its reference count is
    the number of places that hold it."""
    return "".join(["owner-", tag, "-", str(id(object()))])


def _levels_alive() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, PriceLevel))


def _book() -> OrderBook:
    return OrderBook("CY/USD", clock=FakeClock(), tick_size="1", lot_size="1")


@pytest.mark.skipif(not COMPILED, reason="the compiled build's layout")
def test_a_compiled_order_is_not_tracked_by_the_cyclic_gc() -> None:
    """No GC header: 144 bytes with every slot (160 with the header), and never tracked."""
    order = Order("o1", BUY, 100, 5, LIMIT, GTC, "u1", 1000.0, STP_NONE)
    assert not gc.is_tracked(order)
    assert sys.getsizeof(order) <= 144
    book = _book()
    book.add_order("buy", 100, 1, order_id="a")
    assert not gc.is_tracked(book._orders["a"])


def test_a_dropped_book_frees_its_resting_orders_and_levels() -> None:
    owner = _owner("drop")
    baseline, levels = sys.getrefcount(owner), _levels_alive()
    book = _book()
    for i in range(50):
        book.add_order("buy" if i % 2 else "sell", 100 - i if i % 2 else 101 + i, 1 + i % 3, user_id=owner)
    book.add_order("buy", 100, 2, user_id=owner)  # two orders in one level
    assert sys.getrefcount(owner) == baseline + 51
    del book
    assert _levels_alive() == levels
    assert sys.getrefcount(owner) == baseline


#: One command: ("add", side, price, quantity), ("ioc", side, price, quantity), ("cancel", n) of the
#: n-th id given so far, or ("clear",).
_COMMANDS = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(["buy", "sell"]), st.integers(90, 110), st.integers(1, 5)),
    st.tuples(st.just("ioc"), st.sampled_from(["buy", "sell"]), st.integers(90, 110), st.integers(1, 12)),
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.tuples(st.just("clear")),
)


# Each example collects and scans the whole heap twice (_levels_alive): late in a full run that heap
# is large, and 60 examples took 80 s of the pure suite (CI durations, session 26).
@settings(max_examples=30, deadline=None)
@given(st.lists(_COMMANDS, max_size=40), st.booleans())
def test_whatever_a_book_did_dropping_it_frees_every_order_and_level(
    commands: list[tuple[Any, ...]], subscribed: bool
) -> None:
    """Random adds, IOC sweeps, cancels (deep ones keep their emptied level) and clears, with or
    without a subscriber; then the book is dropped: no level and no order of it stays alive."""
    owner = _owner("random")
    baseline, levels = sys.getrefcount(owner), _levels_alive()
    book = _book()
    if subscribed:
        book.event_manager.subscribe_all(lambda event_type, data: None)
    ids: list[str] = []
    for command in commands:
        if command[0] == "add":
            ids.append(book.add_order(command[1], command[2], command[3], user_id=owner))
        elif command[0] == "ioc":
            book.add_order(command[1], command[2], command[3], user_id=owner, time_in_force="IOC")
        elif command[0] == "cancel":
            if ids:
                book.cancel_order(ids[command[1] % len(ids)])
        else:
            book.clear()
    book.check_invariants()
    del book
    assert _levels_alive() == levels
    # trades hold the user id too (history); they go with the book
    assert sys.getrefcount(owner) == baseline


def test_a_restore_that_fails_after_placing_orders_keeps_none_of_them() -> None:
    """restore_state of a crossed state: the orders it had placed are freed at once (the book lives on)."""
    owner = _owner("restore")
    bid, ask = _book(), _book()
    bid.add_order("buy", 100, 1, order_id="b", user_id=owner)
    ask.add_order("sell", 99, 1, order_id="s", user_id=owner)
    state = bid.export_state()
    state["orders"].append(dict(ask.export_state()["orders"][0], priority=5))
    del bid, ask
    baseline, levels = sys.getrefcount(owner), _levels_alive()
    twin = _book()
    with pytest.raises(InvalidOrderError, match="crossed"):
        twin.restore_state(state)
    assert _levels_alive() == levels
    assert sys.getrefcount(owner) == baseline
    twin.add_order("buy", 98, 1, order_id="c")  # still a working book
    assert len(twin) == 1


def test_a_trusted_load_that_fails_keeps_none_of_its_orders() -> None:
    """load_trusted of crossed records: the same, through its own reset."""
    owner = _owner("trusted")
    kinds: dict[object, tuple[Any, ...]] = {
        "b": ("buy", "LIMIT", "GTC", None, False, False, False, False),
        "s": ("sell", "LIMIT", "GTC", None, False, False, False, False),
    }
    records = [("b1", "100", "1", owner, 1.0, 1, "b"), ("s1", "99", "1", owner, 1.0, 2, "s")]
    prices: dict[Any, int | None] = {None: None, "100": int("100"), "99": int("99")}
    lots: dict[Any, int | None] = {None: None, "1": 1}
    baseline, levels = sys.getrefcount(owner), _levels_alive()
    book = _book()
    with pytest.raises(InvalidOrderError, match="crossed"):
        load_trusted(book, records, kinds, {}, prices, lots, 0, 0, 0, None)
    assert _levels_alive() == levels
    assert sys.getrefcount(owner) == baseline
    assert len(book) == 0
