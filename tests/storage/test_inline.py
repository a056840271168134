"""SQLite rows written with their NULLs and booleans in the statement store exactly what binding every
value stores: the same values, of the same SQLite types, whatever mix of shapes a batch holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from manticore_storage import inline
from manticore_storage.inline import InlinedStatement

_COLUMNS = ("k", "amount", "expiry", "owner", "flag", "note")
_TABLE = "CREATE TABLE t (k TEXT PRIMARY KEY, amount TEXT, expiry FLOAT, owner TEXT, flag BOOLEAN, note TEXT)"
_HEAD = f"INSERT INTO t ({', '.join(_COLUMNS)}) VALUES "
_UPSERT = " ON CONFLICT (k) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])

_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.one_of(st.none(), st.sampled_from(["0", "1", "1.5", ""])),
        st.one_of(st.none(), st.sampled_from([0.0, 1.0, 1.5, 1e9])),
        st.one_of(st.none(), st.sampled_from(["u1", "None", "1", ""])),
        st.one_of(st.none(), st.booleans()),
        st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["x", "NULL"])),
    ),
    max_size=12,
)


def _contents(url: str, rows: list[tuple[Any, ...]], inlined: bool) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(_TABLE)
            for start in range(0, len(rows), 5):  # batches of five, each upserting over the last
                batch = rows[start : start + 5]
                if inlined:
                    statement = InlinedStatement(_HEAD, len(_COLUMNS), (1, 2, 3, 5), (4,), _UPSERT)
                    statement.execute(connection, dict((row[0], row) for row in batch).values())
                else:
                    params = list(dict((row[0], row) for row in batch).values())
                    if params:
                        connection.exec_driver_sql(_HEAD + "(?, ?, ?, ?, ?, ?)" + _UPSERT, params)
            typed = ", ".join(f"{c}, typeof({c})" for c in _COLUMNS)
            return [tuple(row) for row in connection.exec_driver_sql(f"SELECT {typed} FROM t ORDER BY k")]
    finally:
        engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows)
def test_inlined_rows_store_what_bound_rows_store(tmp_path: Path, rows: list[tuple[Any, ...]]) -> None:
    for name in ("bound.db", "inlined.db"):
        (tmp_path / name).unlink(missing_ok=True)
    bound = _contents(f"sqlite:///{tmp_path / 'bound.db'}", rows, inlined=False)
    inlined = _contents(f"sqlite:///{tmp_path / 'inlined.db'}", rows, inlined=True)
    assert inlined == bound


def test_a_batch_of_many_shapes_keeps_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More shapes than the statement keeps (its cache is cleared while one batch runs): every row
    is still written, with its own shape's statement."""
    monkeypatch.setattr(inline, "_MAX_SHAPES", 2)
    rows = [
        (f"k{i}", None if i & 1 else "1", None if i & 2 else 1.5, None if i & 4 else "u", bool(i & 8), None)
        for i in range(16)
    ]
    url = f"sqlite:///{tmp_path / 't.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(_TABLE)
            statement = InlinedStatement(_HEAD, len(_COLUMNS), (1, 2, 3, 5), (4,), _UPSERT)
            statement.execute(connection, rows)
            stored = [tuple(row) for row in connection.exec_driver_sql("SELECT * FROM t ORDER BY k")]
    finally:
        engine.dispose()
    assert sorted(stored) == sorted((k, a, e, o, int(f), n) for k, a, e, o, f, n in rows)
