"""A book loaded by ``load_trusted`` keeps one int object per price level, as a book that traded does.

Compiled, ``PriceLevel.price`` and the loader's narrowed price are unboxed integers, and each store of one
in a dict, a list or an order boxes a new int object. The loader keys a level, indexes it and prices its
plain orders with the price mapping's own object instead (docs/performance.md, session 21 h4): in a
restored deep book 64 bytes less per level and 32 per order. Values, order and answers are unchanged;
these tests check the sharing itself (pure Python shares by construction).
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from manticore_orderbook import OrderBook
from manticore_orderbook.model import PriceLevel
from manticore_orderbook.price_index import PriceIndex
from manticore_orderbook.restore import load_trusted

from .support import FakeClock

#: kind keys of the records: a plain GTC limit on each side, and a detailed GTD buy (through the
#: loader's general path)
_KINDS: dict[object, tuple[Any, ...]] = {
    "b": ("buy", "LIMIT", "GTC", None, False, False, False, False),
    "s": ("sell", "LIMIT", "GTC", None, False, False, False, False),
    "d": ("buy", "LIMIT", "GTD", None, False, False, False, True),
}


def _key_objects(levels: dict[int, PriceLevel]) -> dict[int, int]:
    """Each level's price -> the very int object that keys it in ``levels``."""
    return {key: key for key in levels}


def _check_one_object_per_level(book: OrderBook, loaded: str = "") -> None:
    """Every indexed price is its level's dict key, and the price of every resting order loaded (ids
    starting with ``loaded``) is that object (an order added later keeps the object it came with)."""
    book.check_invariants()
    for index, levels in ((book._bid_prices, book._bid_levels), (book._ask_prices, book._ask_levels)):
        keys = _key_objects(levels)
        _check_index(index, keys)
        for price, level in levels.items():
            for order in level.live_orders():
                if order.order_id.startswith(loaded):
                    assert order.price is keys[price], (price, order.order_id)


def _check_index(index: PriceIndex, keys: dict[int, int]) -> None:
    for chunk in index._chunks:
        items: list[Any] = chunk
        for item in items:
            assert item is keys[item], item


def _load(book: OrderBook, records: list[tuple[Any, ...]], details: dict[int, tuple[Any, ...]]) -> int:
    # the price mapping's values are made at run time (int(text)): distinct objects, never the
    # interpreter's cached small ints or a constant shared by the test's code
    prices: dict[Any, int | None] = {None: None}
    lots: dict[Any, int | None] = {None: None}
    for record in records:
        prices.setdefault(record[1], int(str(record[1]).split(".")[0]))
        lots.setdefault(record[2], int(record[2]))
    for row in details.values():
        lots.setdefault(row[1], int(row[1]))
        lots.setdefault(row[2], int(row[2]))
    return load_trusted(book, records, _KINDS, details, prices, lots, 0, 0, 0, None)


def test_a_loaded_level_and_its_orders_share_one_price_object() -> None:
    """Three levels with plain and detailed orders: one int object per level, in the dict, the index
    and every order of the level; the book answers as before."""
    book = OrderBook("RP/USD", clock=FakeClock(), tick_size="1", lot_size="1")
    records = [
        ("a", "1000", "3", "u", 1.0, 1, "b"),
        ("b", "1000", "2", "u", 1.0, 2, "d"),
        ("c", "1000", "1", "u", 1.0, 3, "b"),
        ("d", "999", "4", "u", 1.0, 4, "b"),
        ("e", "2000", "5", "u", 1.0, 5, "s"),
    ]
    details = {2: (2, "2", "0", None, None, 5000.0, None, None, False, None)}
    assert _load(book, records, details) == 5
    _check_one_object_per_level(book)
    objects = {id(order.price) for order in book._orders.values()}
    assert len(objects) == len(book._bid_levels) + len(book._ask_levels) == 3
    assert [o["order_id"] for o in book.get_orders()] == ["a", "b", "c", "d", "e"]
    assert book.get_snapshot()["bids"][0]["quantity"] == 6


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 40), st.integers(1, 3), st.booleans()),
        min_size=1,
        max_size=40,
        unique_by=lambda t: (t[0], t[1]),
    ),
    st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=30),
)
# A regression: 2002 opens, empties away from the ends (kept, marked), an end's cancel sweeps its mark
# out of the index, and 2002 opens again: the index took the new order's object, the dict kept the old.
@example(
    groups=[(False, 4, 2, False), (False, 1, 1, False)],
    after=[(True, 3), (False, 2), (False, 6), (False, 6), (False, 2)],
)
def test_loaded_levels_keep_one_price_object_through_trading(
    groups: list[tuple[bool, int, int, bool]], after: list[tuple[bool, int]]
) -> None:
    """Random levels (bids 1000-1040, asks 2000-2040) of 1-3 orders, some detailed, loaded in one
    go: one object per level; then adds at new and loaded prices and cancels keep it so."""
    book = OrderBook("RP/USD", clock=FakeClock(), tick_size="1", lot_size="1")
    records: list[tuple[Any, ...]] = []
    details: dict[int, tuple[Any, ...]] = {}
    rank = 0
    for buy, n, count, detailed in groups:
        price = str(1000 + n if buy else 2000 + n)
        for _ in range(count):
            rank += 1
            kind = ("d" if detailed else "b") if buy else "s"
            records.append((f"o{rank}", price, "2", "u", 1.0, rank, kind))
            if kind == "d":
                details[rank] = (rank, "2", "0", None, None, 9000.0, None, None, False, None)
    assert _load(book, records, details) == rank
    _check_one_object_per_level(book, "o")
    assert len({id(order.price) for order in book._orders.values()}) == len(groups)
    for i, (buy, n) in enumerate(after):
        if n % 3 == 0 and book._orders:  # cancel a loaded order, at an end or deep
            book.cancel_order(sorted(book._orders)[n % len(book._orders)])
        else:
            book.add_order("buy" if buy else "sell", 1000 + n if buy else 2000 + n, 1, order_id=f"n{i}")
        _check_one_object_per_level(book, "o")
