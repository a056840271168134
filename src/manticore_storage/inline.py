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
from operator import is_, itemgetter
from typing import Any

from sqlalchemy import Connection

from .direct import Run

__all__ = ["InlinedStatement"]

#: The most statements kept per :class:`InlinedStatement` (one per shape met).
_MAX_SHAPES = 256

#: Picks some of a row's values, always as a tuple.
_Pick = Callable[[Sequence[Any]], tuple[Any, ...]]
#: A row's shape: which nullable columns hold None, and the flags' values.
_Shape = tuple[tuple[bool, ...], tuple[Any, ...]]


def _picker(positions: Sequence[int]) -> _Pick:
    """The values of a row at ``positions``, as a tuple (``itemgetter`` of one position gives the
    value itself; this gives a 1-tuple)."""
    if len(positions) == 1:
        position = positions[0]
        return lambda row: (row[position],)
    if not positions:
        return lambda row: ()
    pick: _Pick = itemgetter(*positions)
    return pick


class InlinedStatement:
    """An ``INSERT`` of rows in a fixed column order, with a variant per shape of its rows.

    Args:
        head: the statement up to ``VALUES`` (``INSERT INTO t (a, b, c) VALUES ``).
        width: the values per row.
        nullable: positions of the columns whose ``None`` is written in as ``NULL``.
        flags: positions of the boolean columns, whose True and False are written in as 1 and 0.
        tail: what follows the row (``ON CONFLICT ...``).
    """

    __slots__ = ("_flags", "_head", "_nones", "_nullable", "_nulls", "_shapes", "_tail", "_width")

    def __init__(
        self, head: str, width: int, nullable: Sequence[int], flags: Sequence[int], tail: str
    ) -> None:
        self._nullable = tuple(nullable)
        self._nulls = _picker(self._nullable)
        self._nones = (None,) * len(self._nullable)
        self._flags = (tuple(flags), _picker(flags))
        self._head = head
        self._tail = tail
        self._width = width
        #: shape -> (statement, the values a row binds)
        self._shapes: dict[_Shape, tuple[str, _Pick]] = {}

    def execute(self, run: Run | Connection, rows: Iterable[Sequence[Any]]) -> None:
        """Write ``rows`` (in column order) through ``run`` (a :data:`~.direct.Run`, or a connection:
        its ``exec_driver_sql``): one ``executemany`` per shape."""
        if isinstance(run, Connection):
            run = run.exec_driver_sql
        # shape -> (statement, the values a row binds, the rows' bound values)
        groups: dict[_Shape, tuple[str, _Pick, list[tuple[Any, ...]]]] = {}
        shapes, nulls, nones, flags = self._shapes, self._nulls, self._nones, self._flags[1]
        for row in rows:
            shape = (tuple(map(is_, nulls(row), nones)), flags(row))
            group = groups.get(shape)
            if group is None:
                statement, bound = shapes.get(shape) or self._build(shape)
                group = groups[shape] = (statement, bound, [])
            group[2].append(group[1](row))
        for statement, _, bound_rows in groups.values():
            run(statement, bound_rows)

    def _build(self, shape: _Shape) -> tuple[str, _Pick]:
        empty, flag_values = shape
        literals = {position: "NULL" for position, none in zip(self._nullable, empty, strict=True) if none}
        literals.update(
            (position, "1" if value else "0")
            for position, value in zip(self._flags[0], flag_values, strict=True)
            if value is True or value is False
        )
        values = ", ".join(literals.get(position, "?") for position in range(self._width))
        bound = _picker([position for position in range(self._width) if position not in literals])
        if len(self._shapes) >= _MAX_SHAPES:
            self._shapes.clear()
        built = self._shapes[shape] = (f"{self._head}({values}){self._tail}", bound)
        return built
