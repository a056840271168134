"""``manticore serve --checkpoint-every``: automatic checkpoints of a real server process while it
serves, and nothing acknowledged lost when it is killed right after them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.api.support import Server, SignedClient, new_user


def checkpoint_position(data_dir: Path) -> int:
    """The journal position the data directory's checkpoint covers (0: none yet)."""
    path = data_dir / "checkpoint.json"
    if not path.exists():
        return 0
    position: int = json.loads(path.read_bytes())["position"]
    return position


def place_buys(trader: SignedClient, count: int) -> list[str]:
    """``count`` resting BTC/USD buys (distinct prices), acknowledged; their order ids."""
    placed = []
    for index in range(count):
        body = {"symbol": "BTC/USD", "side": "buy", "price": f"{20000 + index}.5", "quantity": "0.01"}
        response = trader.post("/api/orders", body)
        assert response.status_code == 201, response.text
        placed.append(response.json()["order_id"])
    return placed


def test_a_server_checkpoints_every_n_records_and_a_kill_after_loses_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", extra=("--checkpoint-every", "25"))
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            trader = new_user(server.admin(http), "carol", {"USD": "100000"})
            placed = place_buys(trader, 60)
            deadline = time.monotonic() + 30
            while checkpoint_position(server.data_dir) < 25 and time.monotonic() < deadline:
                time.sleep(0.05)
            # Written in the background while the server serves, before any stop.
            assert checkpoint_position(server.data_dir) >= 25
            server.kill()
            server.start()
            open_orders = trader.get("/api/orders?symbol=BTC/USD").json()["orders"]
            assert sorted(order["order_id"] for order in open_orders) == sorted(placed)
    finally:
        server.stop()


def test_checkpoint_every_zero_writes_one_only_on_stop(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", extra=("--checkpoint-every", "0"))
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            trader = new_user(server.admin(http), "dave", {"USD": "100000"})
            place_buys(trader, 30)
            time.sleep(0.5)
            # A checkpoint written before any record (at open) may exist; none past it while serving.
            assert checkpoint_position(server.data_dir) == 0
    finally:
        server.stop()
    assert checkpoint_position(server.data_dir) > 30
