"""PriceIndex: a sorted set of integer prices, checked against a plain Python set."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from manticore_orderbook.price_index import PriceIndex


def apply(index: PriceIndex, reference: set[int], insert: bool, price: int) -> None:
    """Add or remove ``price`` in both the index and the reference set (when that is a valid step for
    the index), then check the index's invariants."""
    if insert and price not in reference:
        index.add(price)
        reference.add(price)
    elif not insert and price in reference:
        index.remove(price)
        reference.discard(price)
    index.check_invariants()


def test_empty_index() -> None:
    index = PriceIndex()
    assert len(index) == 0
    assert not index
    assert index.min() is None
    assert index.max() is None
    assert list(index.ascending()) == []
    assert list(index.descending()) == []
    assert 5 not in index


def test_add_remove_min_max_and_order() -> None:
    index = PriceIndex()
    for price in (50, 10, 30, 20, 40):
        index.add(price)
    assert index.min() == 10
    assert index.max() == 50
    assert list(index.ascending()) == [10, 20, 30, 40, 50]
    assert list(index.descending()) == [50, 40, 30, 20, 10]
    index.remove(10)
    index.remove(50)
    assert (index.min(), index.max(), len(index)) == (20, 40, 3)
    assert 30 in index
    assert 10 not in index
    index.check_invariants()


def test_clear_empties_the_index() -> None:
    index = PriceIndex(load=2)
    for price in range(20):
        index.add(price)
    index.clear()
    assert len(index) == 0
    assert index.min() is None
    index.add(7)
    assert list(index.ascending()) == [7]


@given(
    operations=st.lists(st.tuples(st.booleans(), st.integers(min_value=-50, max_value=50)), max_size=300),
    load=st.sampled_from([1, 2, 4, 256]),
)
def test_matches_a_sorted_set_under_random_operations(operations: list[tuple[bool, int]], load: int) -> None:
    index = PriceIndex(load=load)
    reference: set[int] = set()
    for insert, price in operations:
        apply(index, reference, insert, price)
        assert len(index) == len(reference)
        assert index.min() == (min(reference) if reference else None)
        assert index.max() == (max(reference) if reference else None)
    assert list(index.ascending()) == sorted(reference)
    assert list(index.descending()) == sorted(reference, reverse=True)
    for price in range(-51, 52):
        assert (price in index) == (price in reference)


def test_many_levels_split_into_chunks_and_stay_sorted() -> None:
    index = PriceIndex(load=8)
    prices = [(i * 7919) % 10007 for i in range(5000)]
    for price in dict.fromkeys(prices):
        index.add(price)
    index.check_invariants()
    assert list(index.ascending()) == sorted(set(prices))
    for price in sorted(set(prices))[::2]:
        index.remove(price)
    index.check_invariants()
    assert list(index.ascending()) == sorted(set(prices))[1::2]


def test_removal_away_from_the_ends_is_a_mark_that_iteration_and_membership_respect() -> None:
    index = PriceIndex(load=4)
    for price in range(1, 21):
        index.add(price)
    for price in (5, 6, 7, 15):
        index.remove(price)
    index.check_invariants()
    assert index.marked_prices() == {5, 6, 7, 15}  # still in the chunks, only marked
    assert len(index) == 16
    assert 6 not in index and 8 in index
    assert list(index.ascending()) == [p for p in range(1, 21) if p not in {5, 6, 7, 15}]
    assert list(index.descending()) == sorted(index.ascending(), reverse=True)
    index.add(6)  # a marked price comes back without being inserted again
    assert 6 in index and index.marked_prices() == {5, 7, 15}
    index.check_invariants()


def test_an_end_that_reaches_marked_prices_sweeps_them_out() -> None:
    index = PriceIndex(load=4)
    for price in range(1, 11):
        index.add(price)
    for price in (2, 3, 4, 8, 9):
        index.remove(price)
    index.remove(1)  # the lowest: 2, 3 and 4 behind it are marked, so 5 becomes the lowest
    index.remove(10)  # the highest: 9 and 8 go with it
    index.check_invariants()
    assert (index.min(), index.max()) == (5, 7)
    assert index.marked_prices() == set()
    assert index._chunks == [[5, 6, 7]]


def test_marks_that_outnumber_the_present_prices_are_rebuilt_away() -> None:
    index = PriceIndex(load=2)
    for price in range(100):
        index.add(price)
    for price in range(1, 99):  # all but the two ends
        index.remove(price)
        index.check_invariants()  # checks the bound on marks after every step
    assert list(index.ascending()) == [0, 99]
    assert sum(len(chunk) for chunk in index._chunks) < 10


@given(
    operations=st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=40)), max_size=400),
    load=st.sampled_from([1, 2, 3, 8]),
)
def test_lazy_removal_matches_a_sorted_set(operations: list[tuple[bool, int]], load: int) -> None:
    """Many removals away from the ends (the lazy path), re-adds of marked prices and sweeps."""
    index = PriceIndex(load=load)
    reference: set[int] = set()
    for price in range(0, 41, 2):
        index.add(price)
        reference.add(price)
    for insert, price in operations:
        apply(index, reference, insert, price)
        assert (index.min(), index.max()) == ((min(reference), max(reference)) if reference else (None, None))
        assert list(index.ascending()) == sorted(reference)
    assert [price in index for price in range(-1, 42)] == [price in reference for price in range(-1, 42)]
