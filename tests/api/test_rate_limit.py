"""Rate limiting as HTTP clients expect it, against the real server: 429, ``Retry-After`` in whole
seconds and code ``rate_limited``; a client that waits ``Retry-After`` and retries loses no order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.support import Server, new_user

LIMIT = 4
WINDOW = 1.5

CONFIG = f"""
[[markets]]
symbol = "BTC/USD"
base_asset = "BTC"
quote_asset = "USD"
tick_size = "0.01"
lot_size = "0.00001"

[risk]
rate_limit_orders = {LIMIT}
rate_limit_window = {WINDOW}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    config = tmp_path / "markets.toml"
    config.write_text(CONFIG)
    running = Server(tmp_path / "data", extra=("--config", str(config)))
    running.start()
    yield running
    running.stop()


def _buy(price: str) -> dict[str, Any]:
    return {"symbol": "BTC/USD", "side": "buy", "price": price, "quantity": "0.001"}


def _assert_rate_limited(answer: httpx.Response) -> int:
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert body["status"] == "error" and body["code"] == "rate_limited" and body["message"]
    retry_after = answer.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    seconds = int(retry_after)
    assert 1 <= seconds <= 2  # whole seconds, at least 1, at most the window rounded up
    assert answer.headers["x-ratelimit-limit"] == str(LIMIT)
    assert answer.headers["x-ratelimit-remaining"] == "0"
    return seconds


def test_a_loop_past_the_limit_gets_429_and_retry_after(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        alice = new_user(server.admin(http), "alice", {"USD": "100000"})
        answers = [alice.post("/api/orders", _buy(f"{100 + i}.00")) for i in range(LIMIT + 3)]
        statuses = [answer.status_code for answer in answers]
        assert statuses[:LIMIT] == [201] * LIMIT
        refused = [answer for answer in answers if answer.status_code != 201]
        assert refused, statuses
        for answer in refused:
            _assert_rate_limited(answer)
        # a refused order changed nothing: only the placed ones are open
        placed = {answer.json()["order_id"] for answer in answers if answer.status_code == 201}
        assert {order["order_id"] for order in alice.get("/api/orders").json()["orders"]} == placed
        # modifies count too, and are refused the same way
        order_id = answers[0].json()["order_id"]
        while True:
            modified = alice.patch(f"/api/orders/{order_id}", {"new_quantity": "0.002"})
            if modified.status_code != 200:
                break
        _assert_rate_limited(modified)


def test_a_client_that_honours_retry_after_loses_no_order(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        admin = server.admin(http)
        alice = new_user(admin, "alice", {"USD": "100000"})
        count = 3 * LIMIT
        placed: list[str] = []
        refusals = 0
        for i in range(count):
            while True:
                answer = alice.post("/api/orders", _buy(f"{200 + i}.00"))
                if answer.status_code != 429:
                    break
                refusals += 1
                time.sleep(_assert_rate_limited(answer))
            assert answer.status_code == 201, answer.text
            placed.append(answer.json()["order_id"])
        assert refusals > 0  # the loop did hit the limit
        assert len(set(placed)) == count
        live = alice.get("/api/orders").json()["orders"]
        assert sorted(order["order_id"] for order in live) == sorted(placed)
        # the market has no fees: exactly price x quantity of every placed order is held
        held = sum(Decimal(f"{200 + i}.00") * Decimal("0.001") for i in range(count))
        balances = alice.get("/api/balances").json()["balances"]
        assert Decimal(balances["USD"]["held"]) == held


def test_other_refusals_stay_422_without_retry_after(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        poor = new_user(server.admin(http), "poor", {"USD": "1"})
        answer = poor.post("/api/orders", _buy("5000.00"))
        assert answer.status_code == 422 and answer.json()["code"] == "insufficient_balance"
        assert "retry-after" not in answer.headers
