"""One server per data directory, with real ``manticore serve`` processes.

A second server (same port or another), or an admin command, started while a server owns the data
directory must not change a byte of it; the owner keeps acknowledging, and after a ``kill -9`` every
acknowledged order is still there.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from manticore_api.server import SERVER_FILE
from tests.api.support import Server, SignedClient, free_port, new_user


def tree(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with the hash of its bytes. SQLite's ``-shm`` files are left out:
    they are the owner's shared-memory index, rewritten by its own reads, and hold no data."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.endswith("-shm")
    }


def manticore(*arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "manticore_api.cli", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def settle(http: httpx.Client) -> None:
    """Wait until the server has nothing left to write (storage caught up with the journal)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        health = http.get("/api/health").json()
        if health["components"]["storage"]["pending_writes"] == 0:
            time.sleep(0.5)
            return
        time.sleep(0.05)
    raise AssertionError("the server's storage did not catch up")


def place(trader: SignedClient, side: str, price: str, quantity: str = "0.01") -> str:
    response = trader.post(
        "/api/orders", {"symbol": "BTC/USD", "side": side, "price": price, "quantity": quantity}
    )
    assert response.status_code == 201, response.text
    order_id: str = response.json()["order_id"]
    return order_id


@pytest.fixture
def owner(tmp_path: Path) -> Server:
    server = Server(tmp_path / "data")
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


def test_a_second_server_or_admin_command_changes_nothing_and_the_owner_loses_nothing(
    owner: Server,
) -> None:
    data_dir = owner.data_dir
    assert owner.process is not None
    acknowledged: list[str] = []
    with httpx.Client(base_url=owner.url, timeout=30) as http:
        admin = owner.admin(http)
        alice = new_user(admin, "alice", {"USD": "1000000", "BTC": "100"})
        bob = new_user(admin, "bob", {"USD": "1000000", "BTC": "100"})
        for index in range(20):
            acknowledged.append(place(alice, "buy", str(29000 + index)))
            acknowledged.append(place(bob, "sell", str(31000 + index)))
        settle(http)
        before = tree(data_dir)
        assert "journal" in " ".join(before)

        for port in (owner.port, free_port()):  # the same port, and a free one (split brain before)
            started = time.monotonic()
            second = manticore("serve", "--port", str(port), "--data-dir", str(data_dir))
            assert second.returncode == 1, second
            assert str(data_dir.resolve()) in second.stderr
            assert f"process {owner.process.pid}" in second.stderr
            assert time.monotonic() - started < 30
            assert tree(data_dir) == before

        markets = manticore("markets", "--data-dir", str(data_dir))  # goes through the owner
        assert markets.returncode == 0, markets.stderr
        assert "BTC/USD" in markets.stdout
        assert tree(data_dir) == before

        # The owner goes on acknowledging, including an admin command sent through it.
        for index in range(20):
            acknowledged.append(place(alice, "buy", str(28000 + index)))
        deposit = manticore("deposit", "alice", "USD", "123.45", "--data-dir", str(data_dir))
        assert deposit.returncode == 0, deposit.stderr
        balances = alice.get("/api/balances").json()["balances"]
    owner.kill()
    assert (data_dir / SERVER_FILE).exists()  # a crash leaves it: harmless, the lock decides

    owner.start()  # the stale lock of the killed process does not block
    with httpx.Client(base_url=owner.url, timeout=30) as http:
        admin = owner.admin(http)
        for order_id in acknowledged:
            response = admin.get(f"/api/orders/{order_id}")  # an admin reads any order
            assert response.status_code == 200, response.text
            assert response.json()["order"]["status"] == "open"
        restored = SignedClient(http, alice.api_key, alice.api_secret).get("/api/balances").json()
        assert restored["balances"] == balances


def test_a_server_whose_port_is_taken_opens_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    blocker = Server(tmp_path / "blocker")
    blocker.start()
    try:
        result = manticore("serve", "--port", str(blocker.port), "--data-dir", str(data_dir))
    finally:
        blocker.stop()
    assert result.returncode == 1, result
    assert f"cannot listen on 127.0.0.1:{blocker.port}" in result.stderr
    assert sorted(path.name for path in data_dir.iterdir()) == ["LOCK"]  # nothing opened or written


def test_a_second_server_on_the_same_database_stops_before_serving(tmp_path: Path) -> None:
    """Another data directory but the same --database-url: two exchanges would write one read model.
    The second stops at start with a clear message; the first goes on."""
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    first = Server(tmp_path / "first", extra=("--database-url", database))
    first.start()
    try:
        second = manticore(
            "serve",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "second"),
            "--database-url",
            database,
        )
        assert second.returncode == 1, second
        assert "in use by another Manticore exchange" in second.stderr
        assert "Traceback" not in second.stderr
        with httpx.Client(base_url=first.url, timeout=30) as http:
            assert http.get("/api/health").status_code == 200
    finally:
        first.stop()
