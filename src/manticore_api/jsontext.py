"""JSON in and out of the API: orjson where it gives the standard library's values, the standard library
where it would not.

orjson reads an integer beyond 64 bits as a float (``123456789012345678901`` becomes
``1.2345678901234568e+20``), which would change a number a client sent; it refuses what the standard
library reads beyond the standard (``NaN``, ``Infinity``) and cannot write an integer beyond 64 bits.
:func:`loads` and :func:`dumps_text` therefore give exactly the standard library's values, at orjson's
speed for everything else.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["dumps_text", "loads"]

#: The shortest texts of an integer orjson may not read as one: 20 digits in a row (orjson reads
#: integers up to 2**64 - 1, which has 20), or a minus and 19 digits (down to -2**63, which has 19).
#: orjson reads such an integer as a float, so the search is only needed when its value holds one.
_LONG_DIGITS = re.compile(r"\d{20}|-\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{20}|-\d{19}")
#: The value types that make an object's values need :func:`_holds_float`'s walk.
_NOT_FLAT = frozenset({float, dict, list})


def loads(document: str | bytes) -> Any:
    """The value of a JSON document, as ``json.loads`` reads it (``ValueError``, a
    ``json.JSONDecodeError`` with its position, when it is not JSON).

    orjson's value is json's unless an integer beyond 64 bits became a float in it; a value without
    any float is kept without searching the document (the search costs three times the parse)."""
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError:  # NaN, Infinity, or not JSON (then with json's message)
        return json.loads(document)
    # A flat object (an order request, a WebSocket frame): its values' types in one C-level pass.
    if type(value) is dict and _NOT_FLAT.isdisjoint(map(type, value.values())):
        return value
    if _holds_float(value):
        pattern = _LONG_DIGITS_BYTES if isinstance(document, bytes) else _LONG_DIGITS
        if pattern.search(document) is not None:  # type: ignore[arg-type]
            return json.loads(document)
    return value


def _holds_float(value: Any) -> bool:
    """Whether a float is anywhere in ``value`` (orjson's types: dict, list, str, int, float, bool,
    None), walked without recursion (orjson reads 1,024 levels, more than Python's recursion limit)."""
    kind = type(value)
    if kind is float:
        return True
    if kind is not dict and kind is not list:
        return False
    pending = [value]
    while pending:
        container = pending.pop()
        for item in container.values() if type(container) is dict else container:
            kind = type(item)
            if kind is float:
                return True
            if kind is dict or kind is list:
                pending.append(item)
    return False


def dumps_text(value: Any) -> str:
    """``value`` as compact JSON text (UTF-8, not ASCII-escaped); a value JSON has no type for (a
    ``Decimal``, say) as its ``str``, NaN and infinities as ``null``, an integer beyond 64 bits
    exactly."""
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), default=str)
