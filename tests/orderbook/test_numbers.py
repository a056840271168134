"""Exact numbers (issue section 4): integers inside, any input type, exact round trips, clear rejections."""

from __future__ import annotations

import math
from decimal import Context, Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from manticore_orderbook import InvalidOrderError, numbers
from manticore_orderbook.numbers import Grid, decimal_text

from .support import dec, levels, make_book


@pytest.mark.parametrize("value", [0.3, "0.3", Decimal("0.3"), Decimal("0.300"), " 0.3 "])
def test_grid_accepts_every_input_type_for_the_same_value(value: object) -> None:
    assert Grid("0.1", "quantity").to_units(value) == 3


def test_grid_accepts_ints_and_scientific_strings() -> None:
    grid = Grid("0.01", "price")
    assert grid.to_units(5) == 500
    assert grid.to_units("1e-2") == 1
    assert grid.to_units("5E+1") == 5000


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -0.0,
        0,
        "0",
        -1,
        "-1",
        -0.1,
        float("nan"),
        "nan",
        "NaN",
        float("inf"),
        "-inf",
        "Infinity",
        "1e30",
        1e30,
    ],
)
def test_grid_rejects_non_positive_non_finite_and_absurd_values(value: object) -> None:
    with pytest.raises(InvalidOrderError):
        Grid("0.01", "price").to_units(value)


@pytest.mark.parametrize("value", [True, False, None, [], {}, object(), b"1", "abc", "", "1,5", 1 + 2j])
def test_grid_rejects_wrong_types_with_a_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        Grid("0.01", "price").to_units(value)


@pytest.mark.parametrize("value", [0.001, "0.015", Decimal("0.0001"), 0.1 + 0.2, 1 / 3])
def test_grid_rejects_off_grid_values(value: object) -> None:
    with pytest.raises(InvalidOrderError, match="multiple"):
        Grid("0.01", "price").to_units(value)


def test_grid_with_a_non_power_of_ten_step() -> None:
    grid = Grid("0.05", "price")
    assert grid.to_units(0.15) == 3
    assert grid.to_units("1.00") == 20
    with pytest.raises(InvalidOrderError):
        grid.to_units("0.07")


@pytest.mark.parametrize("step", [0, "-0.01", "nan", "abc", None])
def test_grid_rejects_invalid_steps(step: object) -> None:
    with pytest.raises(ValueError):
        Grid(step, "price")


@given(
    units=st.integers(min_value=1, max_value=10**12),
    step=st.sampled_from(["0.01", "0.001", "0.5", "1", "0.00000001"]),
)
def test_outputs_round_trip_exactly(units: int, step: str) -> None:
    grid = Grid(step, "price")
    exact = units * Decimal(step)
    assert grid.to_decimal(units) == exact
    assert Decimal(grid.to_str(units)) == exact
    assert grid.to_float(units) == float(exact)
    # every output form can be sent back in and gives the same units
    for out in (grid.to_decimal(units), grid.to_str(units), grid.to_float(units)):
        assert grid.to_units(out) == units


@given(text=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2))
def test_float_input_reads_as_the_decimal_the_user_wrote(text: Decimal) -> None:
    value = float(str(text))
    assert Grid("0.01", "price").to_units(value) == int(text * 100)


def _units_of_the_written_decimal(grid: Grid, value: float) -> int | None:
    """The reference for float input: the units of the decimal the float's repr spells, or None when
    that decimal is not a positive whole number of steps within range."""
    if not math.isfinite(value):
        return None
    units = Fraction(repr(value)) / Fraction(grid.step)
    if units.denominator != 1 or not 0 < units <= grid.max_units:
        return None
    return int(units)


@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**13), max_value=10**13).map(lambda n: n / 100),
        st.integers(min_value=1, max_value=10**15).map(lambda n: n / 10**8),
        st.integers(min_value=1, max_value=10**6).map(lambda n: n * 0.05),
    ),
    step=st.sampled_from(["0.01", "0.00000001", "0.05", "0.5", "1", "5", "0.25"]),
)
def test_float_input_is_read_as_its_shortest_decimal_on_every_grid(value: float, step: str) -> None:
    """The float fast path (scale, round to the nearest integer, check the round trip) agrees with the
    exact reading of ``repr(value)``: the same units, or a rejection."""
    grid = Grid(step, "price")
    expected = _units_of_the_written_decimal(grid, value)
    if expected is None:
        with pytest.raises(InvalidOrderError):
            grid.to_units(value)
    else:
        assert grid.to_units(value) == expected


@given(
    units=st.integers(min_value=-(10**20), max_value=10**20),
    step=st.sampled_from(["0.01", "0.001", "0.5", "1", "5", "1E+2", "0.00000001", "0.25", "2.5"]),
)
@example(units=0, step="0.00000001")
@example(units=-1, step="0.01")
@example(units=123, step="0.00000001")
def test_str_output_is_the_decimals_fixed_point_form(units: int, step: str) -> None:
    grid = Grid(step, "price")
    assert grid.to_str(units) == format(grid.to_decimal(units), "f")


@given(value=st.integers(min_value=-(10**30), max_value=10**30), places=st.integers(0, 24))
@example(value=0, places=3)
@example(value=-5, places=2)
@example(value=5, places=1)
def test_decimal_text_is_the_fixed_point_form(value: int, places: int) -> None:
    exact = Decimal(value).scaleb(-places, Context(prec=100))
    assert decimal_text(value, places) == format(exact, "f")


def test_str_output_is_remembered_within_a_bound() -> None:
    """Answers repeat (the same object for a repeated value), stay right once the memory has started
    again, and the memory never holds more than its bound."""
    grid = Grid("0.001", "quantity", "str")
    first = grid.to_str(308)
    assert first == "0.308" and grid.to_str(308) is first
    for units in range(1, 3 * numbers._CACHE_SIZE):
        assert grid.to_str(units) == format(grid.to_decimal(units), "f")
        assert len(grid._texts) <= numbers._CACHE_SIZE
    assert grid.to_str(308) == "0.308" and grid.to_str(-308) == "-0.308"


def test_str_output_has_the_grid_decimal_places() -> None:
    assert Grid("0.01", "price").to_str(30) == "0.30"
    assert Grid("0.001", "quantity").to_str(1000) == "1.000"
    assert Grid("1", "quantity").to_str(7) == "7"


def test_order_book_round_trips_0_3_in_every_format() -> None:
    for number_format, expected in (("float", 0.3), ("str", "0.30"), ("decimal", Decimal("0.30"))):
        book, _, _ = make_book(number_format=number_format)
        order_id = book.add_order("buy", 0.3, 0.3)
        order = book.get_order(order_id)
        assert order is not None
        assert order["price"] == expected
        assert type(order["price"]) is type(expected)
        assert dec(order["quantity"]) == Decimal("0.3")


def test_fills_of_0_1_and_0_2_against_0_3_leave_exactly_nothing() -> None:
    book, _, _ = make_book(tick_size="0.1", lot_size="0.1")
    maker = book.add_order("sell", 0.3, 0.3, order_id="maker")
    book.add_order("buy", 0.3, 0.1)
    partially = book.get_order(maker)
    assert partially is not None
    assert partially["remaining_quantity"] == 0.2
    book.add_order("buy", 0.3, 0.2)
    assert book.get_order(maker) is None
    assert book.get_snapshot()["asks"] == []
    assert book.get_snapshot()["bids"] == []
    assert book.get_statistics()["total_volume"] == 0.3


def test_many_small_fills_sum_exactly() -> None:
    book, _, _ = make_book(tick_size="0.01", lot_size="0.1")
    book.add_order("sell", 1.0, 1.0, order_id="big")
    for _ in range(9):
        book.add_order("buy", 1.0, 0.1)
    remaining = book.get_order("big")
    assert remaining is not None
    assert remaining["remaining_quantity"] == 0.1
    assert remaining["filled_quantity"] == 0.9
    book.add_order("buy", 1.0, 0.1)
    assert len(book) == 0


def test_level_totals_are_exact_sums() -> None:
    book, _, _ = make_book(tick_size="0.01", lot_size="0.1")
    for quantity in (0.1, 0.2, 0.7):
        book.add_order("buy", 0.3, quantity)
    assert levels(book, "bids") == [(Decimal("0.3"), Decimal("1.0"), 3)]
    assert book.get_snapshot()["bids"][0]["quantity"] == 1.0


def test_custom_tick_and_lot_sizes_are_enforced_per_book() -> None:
    coarse, _, _ = make_book(tick_size="0.5", lot_size="10")
    coarse.add_order("buy", 99.5, 20)
    with pytest.raises(InvalidOrderError):
        coarse.add_order("buy", 99.25, 20)
    with pytest.raises(InvalidOrderError):
        coarse.add_order("buy", 99.5, 15)
    assert coarse.tick_size == Decimal("0.5")
    assert coarse.lot_size == Decimal("10")


def test_large_but_valid_values_stay_exact() -> None:
    book, _, _ = make_book(tick_size="0.00000001", lot_size="0.00000001", number_format="str")
    book.add_order("sell", "12345678.12345678", "98765.43219876", order_id="s")
    order = book.get_order("s")
    assert order is not None
    assert order["price"] == "12345678.12345678"
    assert order["quantity"] == "98765.43219876"


def test_max_price_and_quantity_limits_are_configurable() -> None:
    book, _, _ = make_book(max_price="1000", max_quantity="5")
    book.add_order("buy", 1000, 5)
    with pytest.raises(InvalidOrderError):
        book.add_order("buy", "1000.01", 1)
    with pytest.raises(InvalidOrderError):
        book.add_order("buy", 1, "5.001")


def test_float_outputs_are_the_nearest_float_of_the_exact_value() -> None:
    book, _, _ = make_book(tick_size="0.01", lot_size="0.001")
    book.add_order("buy", "0.07", "0.001", order_id="a")
    order = book.get_order("a")
    assert order is not None
    assert order["price"] == 0.07
    assert order["quantity"] == 0.001
    assert not math.isnan(order["price"])


def _answer(grid: Grid, value: object) -> object:
    """``grid.to_units(value)``, or the error message it raised."""
    try:
        return grid.to_units(value)
    except InvalidOrderError as exc:
        return f"error: {exc}"


_REMEMBERED_INPUTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: n / 100),
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: f"{n / 100:.2f}"),
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: Decimal(n).scaleb(-3)),
    st.floats(allow_nan=False, allow_infinity=False).map(Decimal),  # exact binary values
    st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), "nan", " 1.5 ", "1e2"]),
    st.integers(min_value=-5, max_value=10**6),
    st.booleans(),
)


@given(
    values=st.lists(_REMEMBERED_INPUTS, min_size=1, max_size=40), step=st.sampled_from(["0.01", "0.1", "5"])
)
@example(values=[0.1, Decimal(0.1), "0.1", 0.1], step="0.1")  # noqa: RUF032 (the exact binary value)
@example(values=[1.0, True, 1, Decimal(1)], step="0.01")
def test_a_grid_remembering_inputs_answers_like_a_fresh_grid(values: list[object], step: str) -> None:
    """Float and str inputs are remembered per grid: every answer (units or error message),
    asked once or again in any order, is the one a grid that never saw an input gives. In particular
    ``Decimal(0.1) == 0.1`` but only the float is on a 0.1 grid, and True is not 1."""
    remembering = Grid(step, "price")
    for value in values + values[::-1]:
        assert _answer(remembering, value) == _answer(Grid(step, "price"), value)


def test_a_lowered_max_units_applies_to_remembered_inputs() -> None:
    grid = Grid("0.01", "price")
    assert grid.to_units(5.0) == 500 and grid.to_units("5.00") == 500 and grid.to_units(Decimal(5)) == 500
    grid.max_units = 499
    for value in (5.0, "5.00", Decimal(5)):
        with pytest.raises(InvalidOrderError, match="too large"):
            grid.to_units(value)


def test_the_memory_of_a_grid_is_bounded() -> None:
    grid = Grid("0.01", "price")
    for n in range(1, 10_000):
        assert grid.to_units(n / 100) == n
        assert grid.to_units(f"{n / 100:.2f}") == n
    assert len(grid._cache) <= 4096
