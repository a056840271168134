"""The databases tests run on: SQLite always, the local PostgreSQL and MariaDB servers when configured.

``.ci/run`` sets ``MANTICORE_TEST_POSTGRES_URL`` and ``MANTICORE_TEST_MARIADB_URL`` and fails first if a
server does not answer; without a variable, that server's cases are skipped with a reason naming it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pytest
from sqlalchemy import create_engine, text

POSTGRES_URL = os.environ.get("MANTICORE_TEST_POSTGRES_URL")
MARIADB_URL = os.environ.get("MANTICORE_TEST_MARIADB_URL")
#: The server backends and the variable that configures each.
SERVERS = {
    "postgresql": ("PostgreSQL", "MANTICORE_TEST_POSTGRES_URL", POSTGRES_URL),
    "mariadb": ("MariaDB", "MANTICORE_TEST_MARIADB_URL", MARIADB_URL),
}


def server_url(backend: str) -> str:
    """The URL of ``backend`` ("postgresql" or "mariadb"); skips the test when it is not configured."""
    name, variable, url = SERVERS[backend]
    if not url:
        pytest.skip(f"{name} not configured: set {variable} to run these cases")
    return url


def drop_tables(url: str, tables: Iterable[str]) -> None:
    """Drop ``tables`` (those that exist) in the server database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for table in tables:
                connection.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    finally:
        engine.dispose()
