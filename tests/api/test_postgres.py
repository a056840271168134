"""The server on PostgreSQL and on MariaDB (``--database-url``): orders, trades, users and keys in the
server database, the journal in the data directory; a restart gives the same exchange. Each case is
skipped, saying so, without MANTICORE_TEST_POSTGRES_URL / MANTICORE_TEST_MARIADB_URL (``.ci/run``
always sets both)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from manticore_api import create_app
from manticore_api.server import ADMIN_CREDENTIALS, ServerOptions, build_service
from tests.api.support import SignedClient, new_user
from tests.auth.conftest import reset_postgres as reset_auth_tables
from tests.databases import server_url
from tests.storage.conftest import reset_postgres as reset_storage_tables


@pytest.fixture(params=["postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = server_url(request.param)
    reset_storage_tables(url)
    reset_auth_tables(url)
    yield url


def _client(data_dir: Path, url: str) -> TestClient:
    options = ServerOptions(data_dir=data_dir, database_url=url, fsync=False)
    return TestClient(create_app(build_service(options)))


def test_the_server_keeps_its_rows_in_the_database(tmp_path: Path, database_url: str) -> None:
    with _client(tmp_path, database_url) as http:
        credentials = json.loads((tmp_path / ADMIN_CREDENTIALS).read_text())
        admin = SignedClient(http, credentials["api_key"], credentials["api_secret"])
        alice = new_user(admin, "alice", {"USD": "100000", "BTC": "5"})
        bob = new_user(admin, "bob", {"USD": "100000", "BTC": "5"})
        placed = alice.post("/api/orders", {"side": "sell", "price": "30000", "quantity": "1"})
        sell = placed.json()["order_id"]
        bob.post("/api/orders", {"side": "buy", "price": "30000", "quantity": "0.25"})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not bob.get("/api/fills").json()["fills"]:
            time.sleep(0.05)
        assert [Decimal(f["quantity"]) for f in bob.get("/api/fills").json()["fills"]] == [Decimal("0.25")]
        expected: Any = (
            _book_state(http),
            alice.get("/api/balances").json(),
            alice.get(f"/api/orders/{sell}").json(),
        )
    assert not (tmp_path / "manticore.db").exists() and not (tmp_path / "auth.db").exists()
    with _client(tmp_path, database_url) as http:
        alice = SignedClient(http, alice.api_key, alice.api_secret)
        again = (
            _book_state(http),
            alice.get("/api/balances").json(),
            alice.get(f"/api/orders/{sell}").json(),
        )
        assert again == expected


def _book_state(http: Any) -> dict[str, Any]:
    """The full-depth book without its timestamp: the exchange clock, which the expiry sweep moves."""
    book: dict[str, Any] = http.get("/api/orderbook?depth=0").json()
    book.pop("timestamp")
    return book
