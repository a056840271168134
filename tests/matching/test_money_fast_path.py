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


@given(
    st.booleans(),
    st.integers(min_value=0, max_value=10**60),
    st.one_of(st.none(), st.text(alphabet="0123456789", min_size=1, max_size=60)),
)
def test_money_of_a_plain_string_is_the_normalised_fixed_point_string(
    negative: bool, whole: int, fraction: str | None
) -> None:
    """The books' plain strings (``-?digits[.digits]``, a fill's ``fee``) take a path without Decimal."""
    text = ("-" if negative else "") + str(whole) + ("" if fraction is None else "." + fraction)
    assert money(text) == reference(Decimal(text))


def test_money_of_strings_beside_the_plain_form() -> None:
    """Strings the plain path does not take (leading zeros, a bare point, a sign, exponents, too long)
    still give the normalised value."""
    for text in ("007.50", "1.", ".5", "+1.50", "-0", "-0.0", "0.000", "10", "100.000", "1e3", " 1"):
        try:
            expected = reference(Decimal(text))
        except ArithmeticError:
            continue
        assert money(text) == expected, text
    long = "1." + "0" * 250 + "1"
    assert money(long) == format(Context(prec=200).normalize(Decimal(long)), "f")
