"""A price level's price is one int object: the key of the level in the book's level dict is the object the
side's price index keeps in its chunks, the price object of the order that opened the level.

Compiled, ``PriceLevel.price`` is an unboxed integer, and storing it in a dict or a list makes a new int
object each time; the book passes the opening order's own object instead (docs/performance.md, session 20
h4): in a deep book, 64 bytes less per level and two allocations less per new level. Values, order and
answers are unchanged; these tests check the sharing itself (pure Python shares by construction).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import OrderBook
from manticore_orderbook.enums import Side
from manticore_orderbook.model import PriceLevel
from manticore_orderbook.price_index import PriceIndex

from .support import FakeClock


def _check_shared(index: PriceIndex, levels: dict[int, PriceLevel]) -> None:
    """Every price in the chunks is the very object keying its level in ``levels``."""
    index.check_invariants()
    key_of: dict[int, int] = {key: key for key in levels}
    for chunk in index._chunks:
        items: list[Any] = chunk
        for item in items:
            assert item is key_of[item], item


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(("buy", "sell", "cancel")), st.integers(0, 60)),
        max_size=120,
    )
)
def test_the_book_keys_and_indexes_a_level_by_one_price_object(commands: list[tuple[str, int]]) -> None:
    """Adds at new, live and emptied (kept) prices, cancels at the ends and deep: after each command every
    indexed price is its level's dict key, and a level opened by an order is keyed by the order's price."""
    book = OrderBook("PO/USD", clock=FakeClock(), tick_size="1", lot_size="1")
    orders = 0
    for kind, n in commands:
        if kind == "cancel":
            book.cancel_order(f"o{n}")
        else:
            # bids 1000-1060, asks 2000-2060: never crossing, prices beyond the interpreter's small ints
            price = 1000 + n if kind == "buy" else 2000 + n
            oid = f"o{orders}"
            levels = book._bid_levels if kind == "buy" else book._ask_levels
            new = price not in levels
            book.add_order(kind, price, 1, order_id=oid, user_id="u")
            orders += 1
            if new:  # a level made for this order: keyed by its price object
                assert {key: key for key in levels}[price] is book._orders[oid].price
        _check_shared(book._bid_prices, book._bid_levels)
        _check_shared(book._ask_prices, book._ask_levels)


def test_a_new_level_is_keyed_by_the_opening_orders_price_object() -> None:
    book = OrderBook("PO/USD", clock=FakeClock(), tick_size="1", lot_size="1")
    for i, price in enumerate((5000, 5003, 4990, 4995, 5001)):  # a new best, new worsts, deep inserts
        book.add_order("buy", price, 1, order_id=f"b{i}")
        order = book._orders[f"b{i}"]
        (key,) = [key for key in book._bid_levels if key == price]
        assert key is order.price
    _check_shared(book._bid_prices, book._bid_levels)


@settings(max_examples=80, deadline=None)
@given(
    operations=st.lists(
        st.tuples(st.sampled_from(["add", "remove", "drop"]), st.integers(min_value=0, max_value=40)),
        max_size=300,
    ),
    load=st.sampled_from([1, 2, 3, 8]),
)
def test_the_index_keeps_the_key_objects_it_is_given(operations: list[tuple[str, int]], load: int) -> None:
    """Driven as the book drives it, with a key object per new level and small loads (chunk splits,
    inserts at either end and inside, sweeps and rebuilds): the chunks only ever hold the given objects."""
    levels: dict[int, PriceLevel] = {}
    index = PriceIndex(levels, load=load)
    for op, n in operations:
        price = 10_000 + 7 * n
        level = levels.get(price)
        if op == "add":
            if level is not None and (level.marked or price in index):
                if level.marked:
                    index.add_level(level)
                continue
            key = int(str(price))  # a fresh object equal to the price
            if level is None:
                level = PriceLevel(price, Side.BUY)
                levels[key] = level
            else:
                key = next(k for k in levels if k == price)
            index.add_level(level, key)
        elif op == "remove":
            if level is None or level.marked or price not in index:
                continue
            chunks = index._chunks
            at_an_end = price in (chunks[0][0], chunks[-1][-1])
            index.remove_level(level)
            if at_an_end:
                del levels[price]
        else:
            index.drop_marked()
            for p in [p for p, lv in levels.items() if not lv.marked and p not in index]:
                del levels[p]
        _check_shared(index, levels)
