"""The order body's fast path (:func:`manticore_api.plainorder.plain_order`) builds exactly the model
pydantic builds, for every body it accepts, and leaves every other body to pydantic."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from manticore_api import jsontext, order_entry
from manticore_api.plainorder import _RULES, plain_fields, plain_order
from manticore_api.schemas import OrderIn
from manticore_api.security import Caller

FIELDS = list(OrderIn.model_fields)
PLAIN = {"symbol": "BTC/USD", "side": "buy", "quantity": "0.1", "price": "100", "user_id": "alice"}

_ascii = st.text(st.characters(max_codepoint=127), max_size=140)
_unicode = st.text(max_size=70)  # any code point, lone surrogates included
_surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
_huge = st.integers(min_value=0, max_value=5).map(lambda extra: "9" * (10_000 + extra))
_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
_values = st.one_of(
    st.none(),
    st.booleans(),
    _numbers,
    _ascii,
    _unicode,
    _surrogates,
    _huge,
    st.sampled_from(["buy", "sell", "BUY", "SELL", "Buy", "b", "GTC", "limit", "BTC/USD", ""]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def _plain_value(draw: st.DrawFn, name: str) -> Any:
    """A value of the exact type the field takes (mostly one the fast path accepts)."""
    if name == "side":
        return draw(st.sampled_from(["buy", "sell", "BUY", "SELL"]))
    if name == "trail_is_percent":
        return draw(st.booleans())
    longest, others = _RULES[name]
    choices: list[st.SearchStrategy[Any]] = [st.sampled_from(sorted(others, key=str))] if others else []
    if longest >= 0:
        choices.append(st.text(st.characters(max_codepoint=127), max_size=min(longest, 80)))
    kind = draw(st.one_of(*choices)) if choices else str
    if kind is str:
        return draw(st.text(st.characters(max_codepoint=127), max_size=min(longest, 80)))
    if kind is int:
        return draw(st.integers())
    if kind is float:
        return draw(st.floats(allow_nan=False, allow_infinity=False))
    if kind is bool:
        return draw(st.booleans())
    return None


@st.composite
def _bodies(draw: st.DrawFn) -> dict[Any, Any]:
    """Plain bodies, and plain bodies spoiled in one or more ways."""
    names = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS)))
    if draw(st.booleans()):
        names = ["side", "quantity", *(name for name in names if name not in ("side", "quantity"))]
    body: dict[Any, Any] = {name: draw(_plain_value(name)) for name in names}
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        spoil = draw(st.sampled_from(["value", "extra", "drop", "long"]))
        if spoil == "value" and FIELDS:
            body[draw(st.sampled_from(FIELDS))] = draw(_values)
        elif spoil == "extra":
            body[draw(st.one_of(st.text(max_size=12), st.sampled_from(["op", "id", "Side", "__dict__"])))] = (
                draw(_values)
            )
        elif spoil == "drop" and body:
            del body[draw(st.sampled_from(sorted(body)))]
        elif spoil == "long":
            name = draw(
                st.sampled_from([name for name, (longest, _) in _RULES.items() if 0 <= longest < 200])
            )
            longest = _RULES[name][0]
            body[name] = draw(
                st.text(st.characters(max_codepoint=127), min_size=longest - 1, max_size=longest + 2)
            )
    return body


def _state(model: OrderIn) -> tuple[Any, ...]:
    """Everything that makes a model instance what it is (the field values with their types, in order)."""
    return (
        type(model),
        [(name, type(value), value) for name, value in model.__dict__.items()],
        model.model_fields_set,
        model.__pydantic_extra__,
        model.__pydantic_private__,
    )


def _check(body: Any) -> OrderIn | None:
    fast = plain_order(body)
    values = plain_fields(body)
    assert (values is None) == (fast is None)
    try:
        reference = OrderIn.model_validate(body)
    except ValidationError:
        assert fast is None, f"the fast path accepted a body pydantic refuses: {body!r}"
        return None
    if fast is not None:
        assert _state(fast) == _state(reference)
        assert fast == reference
        # The field values alone: the model's __dict__, value types and field order included.
        assert values is not None
        assert [(name, type(value), value) for name, value in values.items()] == _state(reference)[1]
    return fast


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies())
@example(dict(PLAIN))
@example({"side": "buy", "quantity": True})
@example({"side": "buy", "quantity": 1, "trail_is_percent": 1})
@example({"side": "buy", "quantity": "1", "symbol": None})
@example({"side": "buy", "quantity": "1", "symbol": "\ud800"})
@example({"side": "buy", "quantity": "\udfff"})
@example({"side": "buy", "quantity": math.inf})
@example({"side": "buy", "quantity": math.nan})
@example({"side": "buy", "quantity": 2**70, "expiry_time": 1.5})
@example({"side": "buy", "quantity": "1", "expiry_time": "1"})
@example({"side": "buy", "quantity": "1", "client_order_id": "x" * 65})
@example({"side": "buy", "quantity": "1", "client_order_id": "x" * 64})
@example({"side": "buy", "quantity": "1", "time_in_force": "GTCX"})
@example({"side": "buy", "quantity": "1", "symbol": "é" * 40})
def test_the_fast_path_builds_what_pydantic_builds(body: dict[Any, Any]) -> None:
    _check(body)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_values, st.lists(st.tuples(st.text(max_size=3), st.integers()))))
def test_bodies_that_are_not_objects_go_to_pydantic(body: Any) -> None:
    assert plain_order(body) is None


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), _values, max_size=6))
def test_json_bodies_through_the_parser(fields: dict[str, Any]) -> None:
    """Bodies as the routes receive them: serialized with any escapes, read back by ``jsontext``."""
    try:
        text = json.dumps({"side": "sell", "quantity": 1, **fields}, ensure_ascii=True)
    except ValueError:
        assume(False)
    _check(jsontext.loads(text))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"side": st.sampled_from(["buy", "sell", "BUY", "SELL"]), "quantity": _numbers}))
def test_plain_bodies_take_the_fast_path(body: dict[str, Any]) -> None:
    """The fast path is taken, not only allowed: every plain body gets a model from it."""
    quantity = body["quantity"]
    plain = (
        type(quantity) is int
        or (type(quantity) is float and math.isfinite(quantity))
        or type(quantity) is str
    )
    assert (plain_order(body) is not None) == plain
    _check(body)


def test_the_rules_name_every_field_of_the_model() -> None:
    assert list(_RULES) == FIELDS
    assert plain_order(dict(PLAIN)) is not None


def test_parse_order_gives_pydantic_errors_for_what_the_fast_path_refuses() -> None:
    with pytest.raises(ValidationError) as caught:
        order_entry.parse_order({"side": "buy", "quantity": "1", "symbol": "\ud800"})
    assert caught.value.errors()[0]["loc"] == ("symbol",)
    with pytest.raises(ValidationError):
        order_entry.parse_order({"side": "buy", "quantity": True})
    assert order_entry.parse_order({"side": "buy", "quantity": "1", "symbol": "é"}).symbol == "é"
    assert order_entry.parse_order(dict(PLAIN)) == OrderIn.model_validate(PLAIN)


def test_order_fields_are_the_validated_models_fields() -> None:
    """``order_fields``: pydantic's errors for what the fast path refuses, the model's field values for
    every body pydantic accepts, plain or not."""
    with pytest.raises(ValidationError) as caught:
        order_entry.order_fields({"side": "buy", "quantity": "1", "symbol": "\ud800"})
    assert caught.value.errors()[0]["loc"] == ("symbol",)
    with pytest.raises(ValidationError):
        order_entry.order_fields({"side": "buy", "quantity": True})
    for body in (
        dict(PLAIN),
        {"side": "buy", "quantity": "1", "symbol": "é"},
        {"side": "SELL", "quantity": 2},
    ):
        assert order_entry.order_fields(body) == OrderIn.model_validate(body).__dict__
        assert list(order_entry.order_fields(body)) == FIELDS


class _Exchange:
    """Records the arguments of ``place_order``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def place_order(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        raise LookupError("recorded")


@pytest.mark.parametrize("require_auth", [True, False])
@settings(max_examples=200, deadline=None)
@given(
    body=st.fixed_dictionaries(
        {"side": st.sampled_from(["buy", "SELL"]), "quantity": _numbers},
        optional={name: _values for name in FIELDS if name not in ("side", "quantity")},
    )
)
def test_place_reads_a_model_and_its_field_values_alike(require_auth: bool, body: dict[str, Any]) -> None:
    """``order_entry.place`` calls the exchange alike for the model and for its field values (dict)."""
    try:
        model = OrderIn.model_validate(body)
    except ValidationError:
        assume(False)
    caller = Caller("alice", "alice", "trader")
    outcomes = []
    for given_body in (model, model.__dict__.copy()):
        exchange = _Exchange()
        service: Any = type("Service", (), {"exchange": exchange, "require_auth": require_auth})()
        try:
            order_entry.place(service, caller, given_body)
        except LookupError:
            pass
        except Exception as exc:  # the user_id check
            outcomes.append(repr(exc))
        outcomes.append(exchange.calls)
    assert outcomes[: len(outcomes) // 2] == outcomes[len(outcomes) // 2 :]
