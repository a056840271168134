"""``formatting.money``'s fast path writes exactly what normalize + format write."""

from __future__ import annotations

from decimal import Context, Decimal

from hypothesis import given
from hypothesis import strategies as st

from manticore_matching.formatting import money

_CONTEXT = Context(prec=200)


def reference(value: Decimal) -> str:
    return "0" if not value else format(_CONTEXT.normalize(value), "f")


@given(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=-40, max_value=12),
)
def test_money_is_the_normalised_fixed_point_string(digits: int, exponent: int) -> None:
    value = Decimal(digits).scaleb(exponent, Context(prec=400))
    assert money(value) == reference(value)
    assert money(str(value)) == reference(value)


def test_money_edge_cases() -> None:
    for text in ("0", "-0.000", "12.50", "1230", "1E+2", "1E-7", "-0.00030", "5.000"):
        assert money(text) == reference(Decimal(text)), text
    assert money("0.00030") == "0.0003"
    assert money("Infinity") == "Infinity"
    assert money("abc") == "abc"
    assert money(None) is None
