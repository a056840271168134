"""SQLite rows sent with their NULLs and booleans written into the statement instead of bound.

Python's sqlite3 module binds an ``int``, ``float`` or ``str`` directly, but passes every other value,
``None`` and ``bool`` included, through its adaptation protocol first: a registry lookup keyed by a
freshly built tuple, then two attribute lookups, one of which raises and discards an AttributeError
with a formatted message. That is ~3,400 instructions per value, and an order row of the writer has
about ten such columns (a plain limit order has no stop, trail, iceberg peak, expiry or client id).

:class:`InlinedStatement` groups a batch's rows by their *shape*, which of their optional columns hold
``None``, ``True`` or ``False``, and runs one ``executemany`` per shape whose ``VALUES`` list has
those values written in as ``NULL``, ``1`` and ``0``; only the other values are bound. The stored rows
are the same: SQLite keeps booleans as the integers 1 and 0, and a column's affinity applies to a
literal as to a bound value. A batch has a handful of shapes (resting, cancelled, with a client id...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import compress
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import Connection

__all__ = ["InlinedStatement"]

#: What a nullable column's value is written as when it is None (other values are bound).
_NULLABLE: Final[dict[object, str]] = {None: "NULL"}
#: What a boolean column's value is written as (it only ever holds a bool).
_FLAG: Final[dict[object, str]] = {True: "1", False: "0"}
#: The most statements kept per :class:`InlinedStatement` (one per shape met).
_MAX_SHAPES = 256


class InlinedStatement:
    """An ``INSERT`` of rows in a fixed column order, with a variant per shape of its rows.

    Args:
        head: the statement up to ``VALUES`` (``INSERT INTO t (a, b, c) VALUES ``).
        width: the values per row.
        nullable: positions of the columns whose ``None`` is written in.
        flags: positions of the boolean columns (their values are always bools), written in as 1/0.
        tail: what follows the row (``ON CONFLICT ...``).
    """

    __slots__ = ("_head", "_lookups", "_optional", "_positions", "_shapes", "_tail", "_width")

    def __init__(
        self, head: str, width: int, nullable: Iterable[int], flags: Iterable[int], tail: str
    ) -> None:
        kinds = {position: _NULLABLE for position in nullable}
        kinds.update((position, _FLAG) for position in flags)
        self._positions = tuple(sorted(kinds))
        self._lookups = tuple(kinds[position] for position in self._positions)
        self._optional: Callable[[Sequence[Any]], tuple[Any, ...]] = itemgetter(*self._positions)
        self._head = head
        self._tail = tail
        self._width = width
        #: shape -> (statement, which of a row's values are bound)
        self._shapes: dict[tuple[str | None, ...], tuple[str, tuple[bool, ...]]] = {}

    def execute(self, connection: Connection, rows: Iterable[Sequence[Any]]) -> None:
        """Write ``rows`` (in column order): one ``executemany`` per shape."""
        # shape -> (statement, which values are bound, the rows' bound values)
        groups: dict[tuple[str | None, ...], tuple[str, tuple[bool, ...], list[tuple[Any, ...]]]] = {}
        shapes, optional, lookups = self._shapes, self._optional, self._lookups
        for row in rows:
            shape = tuple(map(dict.get, lookups, optional(row)))
            group = groups.get(shape)
            if group is None:
                statement, selector = shapes.get(shape) or self._build(shape)
                group = groups[shape] = (statement, selector, [])
            group[2].append(tuple(compress(row, group[1])))
        for statement, _, bound_rows in groups.values():
            connection.exec_driver_sql(statement, bound_rows)

    def _build(self, shape: tuple[str | None, ...]) -> tuple[str, tuple[bool, ...]]:
        literals: dict[int, str] = {
            position: literal
            for position, literal in zip(self._positions, shape, strict=True)
            if literal is not None
        }
        values = ", ".join(literals.get(position, "?") for position in range(self._width))
        selector = tuple(position not in literals for position in range(self._width))
        if len(self._shapes) >= _MAX_SHAPES:
            self._shapes.clear()
        built = self._shapes[shape] = (f"{self._head}({values}){self._tail}", selector)
        return built
