"""Storage fixtures: every test runs on SQLite, on PostgreSQL when MANTICORE_TEST_POSTGRES_URL is set and
on MariaDB/MySQL when MANTICORE_TEST_MARIADB_URL is set.

``storage_url`` is parametrised over the backends. A server test starts from an empty schema (the
manticore tables are dropped first). Without its variable a server's cases are skipped with a reason
that says so; ``.ci/run`` always sets both, and fails first if a server does not answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from manticore_storage import StorageManager
from tests.databases import MARIADB_URL, POSTGRES_URL, drop_tables, server_url

__all__ = ["MARIADB_URL", "POSTGRES_URL", "reset_database", "reset_postgres"]
_TABLES = (
    "manticore_failed_events",
    "manticore_trades",
    "manticore_orders",
    "manticore_markets",
    "manticore_schema_version",
)


def reset_database(url: str) -> None:
    """Drop the manticore tables of the server database at ``url``."""
    drop_tables(url, _TABLES)


reset_postgres = reset_database


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'manticore.db'}"
        return
    url = server_url(request.param)
    reset_database(url)
    yield url


@pytest.fixture
def storage(storage_url: str) -> Iterator[StorageManager]:
    manager = StorageManager(storage_url)
    yield manager
    manager.close()
