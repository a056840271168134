"""``manticore_api.jsontext``: the standard library's values at orjson's speed (regression: orjson read an
integer beyond 64 bits, a WebSocket request id or a REST number, as a float)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manticore_api.jsontext import dumps_text, loads

_atoms = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 10, max_value=2**200)
    | st.integers(min_value=-(2**200), max_value=-(2**63) + 10)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _atoms,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 and 1.0 differ; -0.0 and 0.0 too)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


@given(_values)
def test_loads_reads_what_the_standard_library_reads(value: Any) -> None:
    document = json.dumps(value)
    assert _same(loads(document), json.loads(document))
    assert _same(loads(document.encode()), json.loads(document))


@given(_values)
def test_dumps_text_round_trips_exactly(value: Any) -> None:
    assert _same(json.loads(dumps_text(value)), value)


def test_an_integer_beyond_64_bits_stays_an_integer() -> None:
    assert loads('{"id": 123456789012345678901}') == {"id": 123456789012345678901}
    assert loads(b"[18446744073709551616]") == [2**64]
    assert dumps_text({"id": 2**70}) == '{"id":1180591620717411303424}'


def test_a_negative_integer_below_64_bits_stays_an_integer() -> None:
    # Regression: 19 digits after a minus can be below -2**63, which orjson reads as a float.
    below = -(2**63) - 1
    assert loads(str(below)) == below
    assert loads(f'{{"id": {below}}}'.encode()) == {"id": below}
    assert loads("[-9999999999999999999]") == [-9999999999999999999]
    assert loads(str(-(2**63))) == -(2**63)
    assert type(loads(str(below))) is int


def test_what_only_the_standard_library_reads_is_read() -> None:
    assert math.isnan(loads("NaN"))
    assert loads("[Infinity]") == [math.inf]


@pytest.mark.parametrize("document", ["{", "", "[1,]", b"\xff"])
def test_a_document_that_is_not_json_raises_value_error(document: str | bytes) -> None:
    with pytest.raises(ValueError):
        loads(document)


@given(_values, st.sampled_from(["", " ", "\n"]))
def test_long_digit_runs_and_floats_together_read_as_the_standard_library(value: Any, space: str) -> None:
    """A document with a float beside a long integer, or long digit runs in its strings: the values
    json reads (a float in the document no longer means orjson's value can be kept)."""
    document = json.dumps(
        [value, 0.5, 2**70, "12345678901234567890123", {"k": -(2**63) - 1}], indent=space or None
    )
    assert _same(loads(document), json.loads(document))
    assert _same(loads(document.encode()), json.loads(document))


def test_digit_runs_in_strings_keep_their_text() -> None:
    document = '{"client_order_id": "123456789012345678901234", "price": "90.01"}'
    assert loads(document) == json.loads(document)
    assert loads(document.encode()) == {"client_order_id": "123456789012345678901234", "price": "90.01"}


def test_a_long_integer_deep_in_containers_stays_an_integer() -> None:
    deep = "[" * 50 + '{"a": [1, {"b": 123456789012345678901}]}' + "]" * 50
    assert _same(loads(deep), json.loads(deep))
    assert _same(loads(deep.encode()), json.loads(deep))


@pytest.mark.parametrize("depth", [1, 900, 1024])
def test_nesting_that_was_read_is_still_read(depth: int) -> None:
    """Nesting orjson reads (up to 1,024 levels) is still read without a recursion error."""
    document = "[" * depth + "0.5" + "]" * depth
    value = loads(document)
    for _ in range(depth):
        assert isinstance(value, list)
        value = value[0]
    assert value == 0.5


def test_a_flat_object_is_read_as_the_standard_library_reads_it() -> None:
    # loads answers a flat object (no float, list or object among its values) without the walk:
    # a big integer (read by orjson as a float) and nested values must still take the walk.
    big = 123456789012345678901
    for document in (
        f'{{"op": "order.place", "id": {big}, "price": "1"}}',
        f'{{"op": "x", "nested": {{"id": {big}}}}}',
        f'{{"op": "x", "list": [{big}]}}',
        '{"op": "x", "id": 7, "price": "1.5", "flag": true, "none": null}',
    ):
        value = loads(document)
        assert _same(value, json.loads(document)), document
        assert _same(loads(document.encode()), json.loads(document)), document
