"""``amount_str``'s fast path (``str`` and trailing zeros) writes exactly what normalize + format write."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from manticore_risk.amounts import EXACT, amount_str


def reference(value: Decimal) -> str:
    """The canonical form by its definition: normalised, fixed-point, ``"0"`` for any zero."""
    return "0" if not value else format(EXACT.normalize(value), "f")


@given(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-40, max_value=12),
)
def test_amount_str_is_the_normalised_fixed_point_string(digits: int, exponent: int) -> None:
    value = Decimal(digits).scaleb(exponent, EXACT)
    assert amount_str(value) == reference(value)


def test_amount_str_edge_cases() -> None:
    for text in ("0", "-0.000", "0E+5", "12.50", "1230", "1E+2", "1E-7", "0.000001", "5.000", "-3.10"):
        value = Decimal(text)
        assert amount_str(value) == reference(value), text
    assert amount_str(Decimal("12.50")) == "12.5"
    assert amount_str(Decimal("1E+2")) == "100"
    assert amount_str(Decimal("1E-7")) == "0.0000001"
    assert amount_str(Decimal("Infinity")) == "Infinity"
