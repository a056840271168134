"""PriceIndex over a book's level dict: marks are flags on the levels (``PriceLevel.marked``), not a set.

The index is driven as the book drives it (``add_level``/``remove_level`` on levels kept in a dict that
the caller owns, emptied levels kept there or deleted as the book does) and checked against a sorted
set; a level is marked exactly while it was removed away from the ends and its price is still listed.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from manticore_orderbook import OrderBook
from manticore_orderbook.enums import Side
from manticore_orderbook.model import PriceLevel
from manticore_orderbook.price_index import PriceIndex


def check_flags(index: PriceIndex, levels: dict[int, PriceLevel]) -> None:
    """Every level's ``marked`` says whether its price is a removed one still in the chunks."""
    index.check_invariants()
    listed = {price for chunk in index._chunks for price in chunk}
    marked = index.marked_prices()
    assert marked <= listed
    for price, level in levels.items():
        assert level.marked == (price in marked), price


@given(
    operations=st.lists(
        st.tuples(st.sampled_from(["add", "remove", "drop"]), st.integers(min_value=0, max_value=40)),
        max_size=300,
    ),
    load=st.sampled_from([1, 2, 3, 8, 256]),
)
def test_levels_mode_matches_a_sorted_set(operations: list[tuple[str, int]], load: int) -> None:
    """As the book: a level removed at an end leaves the dict, one removed deeper stays (emptied) and
    comes back when its price is added again; ``drop`` deletes the emptied levels after ``drop_marked``."""
    levels: dict[int, PriceLevel] = {}
    index = PriceIndex(levels, load=load)
    live: set[int] = set()
    for op, price in operations:
        if op == "add" and price not in live:
            level = levels.get(price)
            if level is None:
                level = PriceLevel(price, Side.BUY)
                levels[price] = level
            level.count = 1
            index.add_level(level)
            live.add(price)
        elif op == "remove" and price in live:
            level = levels[price]
            at_an_end = price in (index.min(), index.max())
            level.count = 0
            index.remove_level(level)
            if at_an_end:
                del levels[price]
            live.discard(price)
        elif op == "drop":
            index.drop_marked()
            assert not index.marked_prices()
            for emptied in [p for p, level in levels.items() if not level.count]:
                del levels[emptied]
        check_flags(index, levels)
        assert len(index) == len(live)
        assert list(index.ascending()) == sorted(live)
        assert list(index.descending()) == sorted(live, reverse=True)
        assert (index.min(), index.max()) == ((min(live), max(live)) if live else (None, None))
    assert [p in index for p in range(-1, 42)] == [p in live for p in range(-1, 42)]


def test_a_swept_level_kept_by_the_book_is_inserted_again_when_its_price_comes_back() -> None:
    """A deep cancel marks the level; a cancel at the top sweeps the mark out of the index while the
    book keeps the emptied level; an order at that price later must put the price back in the index."""
    book = OrderBook("T/USD")
    ids = {price: book.add_order("buy", price, 1.0) for price in (7.0, 8.0, 9.0, 10.0)}
    book.cancel_order(ids[9.0])  # deep: marked, kept
    level9 = book._bid_levels[book._price_grid.to_units(9.0)]
    assert level9.marked and book._bid_prices.marked_prices() == {level9.price}
    book.cancel_order(ids[10.0])  # the top: 9 is swept out behind it
    assert not level9.marked and not book._bid_prices.marked_prices()
    assert book._bid_levels[level9.price] is level9 and not level9.count  # still kept by the book
    book.check_invariants()
    book.add_order("buy", 9.0, 2.0)
    book.check_invariants()
    assert book.get_snapshot()["bids"][0]["price"] == 9.0
    assert [level["price"] for level in book.get_snapshot()["bids"]] == [9.0, 8.0, 7.0]


def test_a_marked_level_comes_back_without_an_insert_and_drop_clears_every_mark() -> None:
    book = OrderBook("T/USD")
    ids = [book.add_order("sell", 100.0 + i, 1.0) for i in range(200)]
    for order_id in ids[1:-1:2]:  # deep cancels: marks
        book.cancel_order(order_id)
    marked = book._ask_prices.marked_prices()
    assert len(marked) == 99
    assert all(book._ask_levels[price].marked for price in marked)
    chunks_before = [list(chunk) for chunk in book._ask_prices._chunks]
    book.add_order("sell", 101.0, 3.0)  # a marked price: present again, the chunks unchanged
    assert [list(chunk) for chunk in book._ask_prices._chunks] == chunks_before
    assert not book._ask_levels[book._price_grid.to_units(101.0)].marked
    book.check_invariants()
    kept = [level for level in book._ask_levels.values() if not level.count]
    book._drop_empty_levels()
    assert not book._ask_prices.marked_prices() and not any(level.marked for level in kept)
    assert all(level.count for level in book._ask_levels.values())
    book.check_invariants()
    assert len(book.get_snapshot(depth=1000)["asks"]) == 102  # 101 left, 101.0 back
