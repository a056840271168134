"""The order body's validation fast path: a plain body as pydantic would build it, without pydantic.

:func:`plain_order` accepts only a body that :class:`~manticore_api.schemas.OrderIn` certainly accepts,
and returns the model pydantic's validation would (the same field values, in the same order, and the
same ``model_fields_set``); :func:`plain_fields` returns just the model's field values (its ``__dict__``),
for callers that read the fields and need no model (:func:`manticore_api.order_entry.place` takes
either). A body is plain when it is a ``dict`` whose every key is a field of the
model, ``side`` and ``quantity`` are given, and every value has the exact JSON type the field takes:

- a text field: a ``str`` of ASCII characters within the field's ``max_length`` (or ``None`` where the
  field is optional; ``symbol`` is not);
- ``side``: one of ``buy``, ``sell``, ``BUY``, ``SELL``;
- a number field: an ASCII ``str``, an ``int`` (not ``bool``) or a finite ``float`` (or ``None`` where
  optional); ``expiry_time`` the same without ``str``;
- ``trail_is_percent``: a ``bool``.

For anything else it returns ``None`` and the caller validates with pydantic as before, so every error,
status code and message is pydantic's. Non-ASCII text goes to pydantic (it refuses lone surrogates,
and its ``max_length`` is its own to apply); so do non-finite floats (``NaN`` equals nothing).
tests/api/test_plain_order.py checks the result against pydantic's for generated bodies.
"""

from __future__ import annotations

from typing import Any, cast

from .schemas import OrderIn

__all__ = ["plain_fields", "plain_order"]

_NONE = type(None)
_NUMBER: frozenset[type] = frozenset({int, float})
_OPTIONAL_NUMBER: frozenset[type] = frozenset({int, float, _NONE})
_OPTIONAL: frozenset[type] = frozenset({_NONE})
_NOT_TEXT = -1
_ANY_LENGTH = 1 << 62

#: Field name -> (longest ``str`` accepted, ``_NOT_TEXT`` for none; the other types accepted as is).
_RULES: dict[str, tuple[int, frozenset[type]]] = {
    "symbol": (40, frozenset()),
    "side": (4, frozenset()),  # and one of _SIDES, checked after the loop
    "quantity": (_ANY_LENGTH, _NUMBER),
    "price": (_ANY_LENGTH, _OPTIONAL_NUMBER),
    "order_type": (20, _OPTIONAL),
    "time_in_force": (4, _OPTIONAL),
    "expiry_time": (_NOT_TEXT, _OPTIONAL_NUMBER),
    "stop_price": (_ANY_LENGTH, _OPTIONAL_NUMBER),
    "displayed_quantity": (_ANY_LENGTH, _OPTIONAL_NUMBER),
    "trail_value": (_ANY_LENGTH, _OPTIONAL_NUMBER),
    "trail_is_percent": (_NOT_TEXT, frozenset({bool})),
    "self_trade_prevention": (20, _OPTIONAL),
    "client_order_id": (64, _OPTIONAL),
    "user_id": (128, _OPTIONAL),
}
_SIDES = frozenset({"buy", "sell", "BUY", "SELL"})

#: Every field's default, in the model's field order (the two required ones are always overwritten).
_DEFAULTS: dict[str, Any] = {
    name: None if field.is_required() else field.default for name, field in OrderIn.model_fields.items()
}

_new = OrderIn.__new__
_set = object.__setattr__


def plain_fields(fields: object) -> dict[str, Any] | None:
    """The field values ``OrderIn.model_validate(fields)`` would hold (its ``__dict__``: every field of
    the model in field order, defaults for those not given) when ``fields`` is a plain body (see the
    module doc); ``None`` when it is not (validate it with pydantic then). A new dict each call."""
    if type(fields) is not dict:
        return None
    rules = _RULES
    for name, value in fields.items():
        rule = rules.get(name)
        if rule is None:
            return None
        kind = type(value)
        if kind is str:
            if len(value) > rule[0] or not value.isascii():
                return None
        elif kind not in rule[1] or (kind is float and value - value != 0.0):  # not finite
            return None
    if fields.get("side") not in _SIDES or "quantity" not in fields:
        return None
    return {**_DEFAULTS, **fields}  # the defaults' (field) order; cheaper than copy() + update()


def plain_order(fields: object) -> OrderIn | None:
    """``OrderIn.model_validate(fields)`` when ``fields`` is a plain body (see the module doc), built
    without pydantic's validator; ``None`` when it is not (validate it with pydantic then)."""
    values = plain_fields(fields)
    if values is None:
        return None
    model = _new(OrderIn)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(cast("dict[str, Any]", fields)))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model
