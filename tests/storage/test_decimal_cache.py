"""The row builder's decimal caches (``capture._Decimals``): ``cache[units]`` is the grid's exact value
(or its stored form) whether or not it was met before, and the cache stops growing at 4096 values."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from manticore_storage.capture import _Decimals


def _convert(units: int) -> Decimal:
    return Decimal(units).scaleb(-3)


@given(st.lists(st.integers(min_value=0, max_value=10**12), max_size=200))
def test_lookups_are_the_conversion(values: list[int]) -> None:
    cache = _Decimals(_convert)
    for units in values + values:  # every value twice: converted, then remembered
        expected = Decimal(0) if units == 0 else _convert(units)
        assert cache[units] == expected
        assert str(cache[units]) == str(expected)


def test_zero_is_given_as_events_give_it_and_the_cache_is_bounded() -> None:
    stored = _Decimals(lambda units: format(_convert(units), "f"), "0")
    assert stored[0] == "0"
    assert stored[1500] == "1.500"
    for units in range(10_000):
        assert stored[units] == ("0" if units == 0 else format(_convert(units), "f"))
    assert len(stored) == 4096
