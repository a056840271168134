"""The Binance surface's book mirror (:class:`manticore_api.binance.book_mirror.MirrorSide`) reads price
and quantity texts as ``Decimal`` reads them, also with its cache of price keys and its zero test that
skips ``Decimal`` for plain digit texts: any spelling, zeros of every form, more distinct prices than
the cache holds (model: the levels rebuilt with ``Decimal`` from scratch)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_api.binance import book_mirror
from manticore_api.binance.book_mirror import MirrorSide

_PRICES = st.one_of(
    st.integers(min_value=1, max_value=60).map(lambda n: f"{Decimal(n) / 4:.2f}"),
    st.integers(min_value=1, max_value=60).map(lambda n: str(Decimal(n) / 4)),
    st.sampled_from(["1E+1", "10", "10.000", " 7.5 ", "1_0", "0.25e1"]),
)
_QUANTITIES = st.one_of(
    st.sampled_from(["0", "0.000", "000", "0.", ".0", "0E+3", "-0", " 0 ", "1", "2.5", "0.125", "1E-9"]),
    st.sampled_from(["00.10", "10", "1_0", "0.0001", "+1", "٣"]),
    st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{0,4})?\Z"),
)


@settings(max_examples=300)
@given(
    descending=st.booleans(),
    operations=st.lists(st.tuples(_PRICES, _QUANTITIES), max_size=60),
    count=st.integers(min_value=1, max_value=30),
)
def test_levels_as_decimal_reads_them(
    descending: bool, operations: list[tuple[str, str]], count: int
) -> None:
    side = MirrorSide(descending)
    reference: dict[Decimal, str] = {}
    for price, quantity in operations:
        side.set(price, quantity)
        if Decimal(quantity) == 0:
            reference.pop(Decimal(price), None)
        else:
            reference[Decimal(price)] = quantity
        ordered = sorted(reference.items(), reverse=descending)
        assert side.best() == (ordered[0] if ordered else None)
        assert side.levels == reference
    assert side.top(count) == sorted(reference.items(), reverse=descending)[:count]


def test_more_prices_than_the_cache_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(book_mirror, "KEY_CACHE_SIZE", 8)
    side = MirrorSide(descending=True)
    for round_ in range(3):
        for tick in range(1, 40):
            side.set(f"{tick}.{round_}", "1")
    assert len(side.levels) == 3 * 39
    assert side.best() == (Decimal("39.2"), "1")
    for tick in range(1, 40):
        side.set(f"{tick}.2", "0")
    assert side.best() == (Decimal("39.1"), "1")


@pytest.mark.parametrize("text", ["", ".", "abc", "1.2.3", "--1"])
def test_text_that_is_no_number_is_refused_as_before(text: str) -> None:
    side = MirrorSide(descending=False)
    with pytest.raises(ArithmeticError):
        side.set("1.00", text)
    with pytest.raises(ArithmeticError):
        side.set(text, "1")
    assert side.levels == {}
