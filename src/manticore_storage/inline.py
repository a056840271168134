"""SQLite rows sent with their NULLs and booleans written into the statement instead of bound.

Python's sqlite3 module binds an ``int``, ``float`` or ``str`` directly, but passes every other value,
``None`` and ``bool`` included, through its adaptation protocol first: a registry lookup keyed by a
freshly built tuple, then two attribute lookups, one of which raises and discards an AttributeError
with a formatted message. That is ~3,400 instructions per value, and an order row of the writer has
about ten such columns (a plain limit order has no stop, trail, iceberg peak, expiry or client id).

:class:`InlinedStatement` groups a batch's rows by their *shape*, which of their nullable columns hold
``None`` and what their boolean columns hold, and runs one ``executemany`` per shape whose ``VALUES`` list has
those values written in as ``NULL``, ``1`` and ``0``; only the other values are bound. The stored rows
are the same: SQLite keeps booleans as the integers 1 and 0, and a column's affinity applies to a
literal as to a bound value. A batch has a handful of shapes (resting, cancelled, with a client id...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from .direct import Run

__all__ = ["InlinedStatement"]

#: The most statements kept per :class:`InlinedStatement` (one per shape met).
_MAX_SHAPES = 256

#: A function of one row (a sequence in column order).
_RowFunction = Callable[[Sequence[Any]], Any]
#: A row's shape: for each nullable column whether it holds None, then the flags' values.
_Shape = tuple[Any, ...]


def _row_function(expression: str) -> _RowFunction:
    """``lambda r: <expression>``, where ``expression`` is built by this module from ``r[i]`` subscripts
    with integer ``i``, ``is None`` and tuple displays only.

    Generated once per statement or shape, because an expression of subscripts is the cheapest way for
    CPython to read a row (a list, whose fill columns a batch updates in place): each ``r[i]`` is one
    specialised instruction, where ``operator.itemgetter`` on a list converts every index through the
    number protocol and a ``map`` over ``operator.is_`` makes a C call per value (measured: ~10,000
    instructions per order row for the shape and the bound values, against ~3,000 this way)."""
    function: _RowFunction = eval(f"lambda r: {expression}", {"__builtins__": {}})
    return function


def _tuple_of(items: Sequence[str]) -> str:
    """The source of a tuple display of ``items`` (``()``, ``(a,)``, ``(a, b)``)."""
    return "(" + "".join(f"{item}, " for item in items) + ")"


class InlinedStatement:
    """An ``INSERT`` of rows in a fixed column order, with a variant per shape of its rows.

    Args:
        head: the statement up to ``VALUES`` (``INSERT INTO t (a, b, c) VALUES ``).
        width: the values per row.
        nullable: positions of the columns whose ``None`` is written in as ``NULL``.
        flags: positions of the boolean columns, whose True and False are written in as 1 and 0.
        tail: what follows the row (``ON CONFLICT ...``).
    """

    __slots__ = ("_flags", "_head", "_nullable", "_shape", "_shapes", "_tail", "_width")

    def __init__(
        self, head: str, width: int, nullable: Sequence[int], flags: Sequence[int], tail: str
    ) -> None:
        self._nullable = tuple(nullable)
        self._flags = tuple(flags)
        #: row -> its shape: ``(r[n1] is None, ..., r[f1], ...)``
        self._shape = _row_function(
            _tuple_of([f"r[{p}] is None" for p in self._nullable] + [f"r[{p}]" for p in self._flags])
        )
        self._head = head
        self._tail = tail
        self._width = width
        #: shape -> (statement, row -> the values it binds)
        self._shapes: dict[_Shape, tuple[str, _RowFunction]] = {}

    def execute(self, run: Run | Connection, rows: Iterable[Sequence[Any]]) -> None:
        """Write ``rows`` (in column order) through ``run`` (a :data:`~.direct.Run`, or a connection:
        its ``exec_driver_sql``): one ``executemany`` per shape."""
        if isinstance(run, Connection):
            run = run.exec_driver_sql
        # shape -> (the values a row binds, the rows' bound values, statement)
        groups: dict[_Shape, tuple[_RowFunction, list[tuple[Any, ...]], str]] = {}
        shape_of, shapes = self._shape, self._shapes
        for row in rows:
            shape = shape_of(row)
            group = groups.get(shape)
            if group is None:
                statement, bound = shapes.get(shape) or self._build(shape)
                group = groups[shape] = (bound, [], statement)
            group[1].append(group[0](row))
        for _, bound_rows, statement in groups.values():
            run(statement, bound_rows)

    def _build(self, shape: _Shape) -> tuple[str, _RowFunction]:
        empty, flag_values = shape[: len(self._nullable)], shape[len(self._nullable) :]
        literals = {position: "NULL" for position, none in zip(self._nullable, empty, strict=True) if none}
        literals.update(
            (position, "1" if value else "0")
            for position, value in zip(self._flags, flag_values, strict=True)
            if value is True or value is False
        )
        values = ", ".join(literals.get(position, "?") for position in range(self._width))
        bound = _row_function(_tuple_of([f"r[{p}]" for p in range(self._width) if p not in literals]))
        if len(self._shapes) >= _MAX_SHAPES:
            self._shapes.clear()
        built = self._shapes[shape] = (f"{self._head}({values}){self._tail}", bound)
        return built
