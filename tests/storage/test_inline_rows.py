""":class:`~manticore_storage.inline.InlinedStatement` reads rows through generated functions: rows given
as lists (the writer's order rows) or tuples, shapes that bind every value, one value or none, store
exactly what binding every value with ``executemany`` stores."""

from __future__ import annotations

import sqlite3
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_storage.inline import InlinedStatement

_TABLE = "CREATE TABLE t (k INTEGER PRIMARY KEY, a TEXT, b BOOLEAN, c FLOAT)"
_HEAD = "INSERT INTO t (k, a, b, c) VALUES "

_values = st.tuples(
    st.one_of(st.none(), st.sampled_from(["x", "", "0.5"])),
    st.one_of(st.none(), st.booleans()),
    st.one_of(st.none(), st.floats(allow_nan=False)),
)


def _stored(rows: list[Any], inlined: bool) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute(_TABLE)
        if inlined:
            # every column but the key nullable, b a flag as well: a shape may bind only the key
            statement = InlinedStatement(_HEAD, 4, (1, 2, 3), (2,), "")
            statement.execute(connection.executemany, rows)
        elif rows:
            connection.executemany(_HEAD + "(?, ?, ?, ?)", [tuple(row) for row in rows])
        query = "SELECT k, a, typeof(a), b, typeof(b), c, typeof(c) FROM t ORDER BY k"
        return connection.execute(query).fetchall()
    finally:
        connection.close()


@settings(max_examples=80, deadline=None)
@given(values=st.lists(_values, max_size=10), as_lists=st.booleans())
def test_rows_of_any_shape_store_what_binding_stores(values: list[tuple[Any, ...]], as_lists: bool) -> None:
    rows: list[Any] = [[key, *value] if as_lists else (key, *value) for key, value in enumerate(values)]
    assert _stored(rows, inlined=True) == _stored(rows, inlined=False)


def test_a_shape_with_nothing_to_bind_writes_its_literals() -> None:
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE TABLE u (a TEXT, b BOOLEAN)")
        statement = InlinedStatement("INSERT INTO u (a, b) VALUES ", 2, (0,), (1,), "")
        statement.execute(connection.executemany, [[None, True], (None, False), [None, True]])
        rows = connection.execute("SELECT a, b, typeof(b) FROM u ORDER BY rowid").fetchall()
        assert rows == [(None, 1, "integer"), (None, 1, "integer"), (None, 0, "integer")]
    finally:
        connection.close()
