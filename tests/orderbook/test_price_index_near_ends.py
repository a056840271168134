"""PriceIndex inserts into the first and last chunks (where a book adds: near its best prices) land
where a sorted set puts them, whatever their distance from the end, with prices as large as the
book's (1e-8 ticks: about 1e12, past mypyc's short integers)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from manticore_orderbook.price_index import PriceIndex

BASE = 10_000 * 10**8  # 10,000.00 in 1e-8 ticks


def filled(load: int, count: int, step: int) -> tuple[PriceIndex, set[int]]:
    """An index of ``count`` prices ``step`` apart from BASE (several chunks when count > 2 * load)."""
    index = PriceIndex(load=load)
    reference = {BASE + i * step for i in range(count)}
    for price in sorted(reference, key=lambda p: (p * 7919) % 10007):  # not in order: chunks of all sizes
        index.add(price)
    index.check_invariants()
    return index, reference


@given(
    load=st.sampled_from([1, 2, 3, 8, 32]),
    count=st.integers(min_value=1, max_value=200),
    inserts=st.lists(
        st.tuples(
            st.booleans(), st.integers(min_value=0, max_value=120), st.integers(min_value=1, max_value=9)
        ),
        max_size=60,
    ),
)
def test_inserts_near_either_end_match_a_sorted_set(
    load: int, count: int, inserts: list[tuple[bool, int, int]]
) -> None:
    """Each insert goes ``distance`` present prices in from the low or the high end, between two of them."""
    index, reference = filled(load, count, 10)
    for from_high, distance, offset in inserts:
        ordered = sorted(reference)
        anchor = (
            ordered[-1 - min(distance, len(ordered) - 1)]
            if from_high
            else ordered[min(distance, len(ordered) - 1)]
        )
        price = anchor - offset if from_high else anchor + offset
        if price in reference:
            continue
        index.add(price)
        reference.add(price)
        index.check_invariants()
        assert list(index.ascending()) == sorted(reference)
    assert (index.min(), index.max()) == (min(reference), max(reference))


@given(
    load=st.sampled_from([2, 4, 8]),
    removals=st.lists(st.integers(min_value=1, max_value=60), max_size=30),
    inserts=st.lists(st.integers(min_value=-5, max_value=70), max_size=60),
)
def test_inserts_between_marked_prices_match_a_sorted_set(
    load: int, removals: list[int], inserts: list[int]
) -> None:
    """Marked (lazily removed) prices stay in the chunks: an insert beside them still lands in order,
    and one at a marked price makes it present again."""
    index, reference = filled(load, 64, 2)
    for i in removals:
        price = BASE + 2 * i
        if price in reference and price not in (min(reference), max(reference)):
            index.remove(price)
            reference.discard(price)
    index.check_invariants()
    for i in inserts:
        price = BASE + i
        if price not in reference:
            index.add(price)
            reference.add(price)
            index.check_invariants()
    assert list(index.ascending()) == sorted(reference)
    assert list(index.descending()) == sorted(reference, reverse=True)
    assert all((BASE + i in index) == (BASE + i in reference) for i in range(-6, 72))


def test_an_insert_deep_in_the_first_or_last_chunk_of_a_large_index() -> None:
    """Far from the end of an end chunk (past any short search from that end) and in a middle chunk."""
    index, reference = filled(256, 5000, 10)
    chunk_sizes = [len(chunk) for chunk in index._chunks]
    assert len(chunk_sizes) > 2 and chunk_sizes[0] > 100 and chunk_sizes[-1] > 100
    for price in (
        BASE + 5,  # second slot of the first chunk
        BASE + 10 * (chunk_sizes[0] - 2) + 5,  # last slots of the first chunk
        BASE + 10 * 4999 - 5,  # next to the highest price
        BASE + 10 * (5000 - chunk_sizes[-1]) + 5,  # first slots of the last chunk
        BASE + 10 * 2500 + 3,  # a middle chunk
    ):
        index.add(price)
        reference.add(price)
        index.check_invariants()
    assert list(index.ascending()) == sorted(reference)
