"""``manticore cluster`` keeps the SQL read model like ``manticore serve``: a storage writer follows the
log of each shard with orders (the whole shard, or every market shard of a split cluster) into SQLite in
the cluster's data directory; ``--no-storage-writer`` starts none.

The process tests run the real command against the session's private nats-server and read the
databases the writers commit to: every order the gateway acknowledged must arrive there with the state
the gateway answered, and the trade between them too.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from manticore_cluster.local import plan, read_model_url
from manticore_cluster.natsconf import NatsOptions
from tests.api.support import free_port
from tests.cluster.shard_processes import write_config

pytestmark = pytest.mark.timeout(180)


def _plan(tmp_path: Path, **kwargs: Any) -> Any:
    return plan(
        nats_url="nats://127.0.0.1:4222",
        data_dir=tmp_path,
        standbys=1,
        gateways=1,
        host="127.0.0.1",
        port=8000,
        prefix="mc",
        shard="main",
        lease_ttl=5.0,
        config_path=None,
        **kwargs,
    )


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_plan_has_one_storage_writer_per_shard_with_orders_unless_turned_off(tmp_path: Path) -> None:
    whole = _plan(tmp_path)
    assert [child.name for child in whole.writers] == ["storage-main"]
    (writer,) = whole.writers
    assert writer.restart and writer.port is None
    assert writer.argv[3] == "storage-writer"
    assert _option(writer.argv, "--shard") == "main"
    assert _option(writer.argv, "--database-url") == f"sqlite:///{(tmp_path / 'read-model.db').resolve()}"
    assert _option(writer.argv, "--data-dir") == str(tmp_path / "storage-main")
    assert _option(writer.argv, "--prefix") == "mc"
    assert whole.children[-1] is writer  # started after the shards and gateways

    split = _plan(tmp_path, market_shards=2, symbols=["BTC/USD", "ETH/USD", "ETH/BTC"])
    assert [child.name for child in split.writers] == ["storage-m0", "storage-m1"]  # not the account
    assert [_option(c.argv, "--database-url") for c in split.writers] == [
        read_model_url(tmp_path, "m0", split=True),
        read_model_url(tmp_path, "m1", split=True),
    ]
    assert read_model_url(tmp_path, "m1", split=True).endswith("/read-model-m1.db")

    assert _plan(tmp_path, storage_writer=False).writers == ()
    assert _plan(tmp_path, storage_writer=False, market_shards=2, symbols=["BTC/USD"]).writers == ()


def _wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError, OSError):
            found = condition()
            if found:
                return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _rows(path: Path, table: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("select name from sqlite_master where type = 'table' and name = :t"), {"t": table}
            ).first()
            if exists is None:
                return []
            return [dict(row._mapping) for row in connection.execute(text(f"select * from {table}"))]
    finally:
        engine.dispose()


def _comparable(rows: list[dict[str, Any]]) -> list[tuple[tuple[str, Any], ...]]:
    """Rows without their write time, in a stable order."""
    return sorted(
        (tuple(sorted((k, v) for k, v in row.items() if k != "updated_at")) for row in rows), key=repr
    )


@pytest.mark.parametrize("market_shards", [0, 2], ids=["whole", "split"])
def test_a_local_clusters_orders_and_trades_reach_its_sql_read_model(
    tmp_path: Path, nats_options: NatsOptions, market_shards: int
) -> None:
    port = free_port()
    data = tmp_path / "data"
    output = tmp_path / "cluster.log"
    argv = [sys.executable, "-m", "manticore_api.cli", "cluster", "--nats", nats_options.servers[0]]
    argv += ["--prefix", nats_options.prefix, "--data-dir", str(data), "--port", str(port)]
    argv += ["--gateways", "1", "--standbys", "0", "--lease-ttl", "1", "--no-auth"]
    argv += ["--config", str(write_config(tmp_path / "markets.toml")), "--market-shards", str(market_shards)]
    with output.open("ab") as handle:
        cluster = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            def post(user: str, path: str, body: dict[str, str]) -> dict[str, Any]:
                answer = http.post(path, json=body, headers={"X-MC-User": user})
                assert answer.status_code == 201, answer.text
                result: dict[str, Any] = answer.json()
                return result

            _wait_for(lambda: http.get("/api/markets").status_code == 200, 90, "the gateway")
            for user, asset, amount in (
                ("alice", "USD", "100000"),
                ("bob", "BTC", "100"),
                ("bob", "ETH", "100"),
            ):
                _wait_for(
                    lambda u=user, a=asset, n=amount: (
                        http.post(
                            "/api/deposits",
                            json={"user_id": u, "asset": a, "amount": n},
                            headers={"X-MC-User": u},
                        ).status_code
                        == 201
                    ),
                    60,
                    f"a deposit of {asset}",
                )
            resting = post(
                "bob", "/api/orders", {"symbol": "ETH/USD", "side": "sell", "quantity": "2", "price": "50"}
            )
            maker = post(
                "bob", "/api/orders", {"symbol": "BTC/USD", "side": "sell", "quantity": "1", "price": "100"}
            )
            taker = post(
                "alice", "/api/orders", {"symbol": "BTC/USD", "side": "buy", "quantity": "1", "price": "100"}
            )
            other = post(
                "bob", "/api/orders", {"symbol": "ETH/USD", "side": "sell", "quantity": "3", "price": "60"}
            )
            other_id = other["order"]["order_id"]
            patched = http.patch(
                f"/api/orders/{other_id}",
                json={"new_price": "55", "new_quantity": "1"},
                headers={"X-MC-User": "bob"},
            )
            assert patched.status_code == 200, patched.text
            cancelled = http.delete(f"/api/orders/{other_id}", headers={"X-MC-User": "bob"})
            assert cancelled.status_code == 200, cancelled.text
        assert (resting["order"]["status"], maker["order"]["status"]) == ("open", "open")
        assert taker["order"]["status"] == "filled", taker
        # What the read model must come to: the gateway's answers, the maker filled by the taker since,
        # the other order modified (price 55, quantity 1), then cancelled.
        expected = {
            resting["order"]["order_id"]: {**resting["order"], "final": ("open", Decimal(0))},
            maker["order"]["order_id"]: {**maker["order"], "final": ("filled", Decimal(1))},
            taker["order"]["order_id"]: {**taker["order"], "final": ("filled", Decimal(1))},
            other_id: {**other["order"], "price": "55", "quantity": "1", "final": ("cancelled", Decimal(0))},
        }
        if market_shards:
            databases = {"BTC/USD": data / "read-model-m0.db", "ETH/USD": data / "read-model-m1.db"}
        else:
            databases = {"BTC/USD": data / "read-model.db", "ETH/USD": data / "read-model.db"}

        def stored_orders() -> dict[str, dict[str, Any]] | None:
            found = {}
            for order_id, order in expected.items():
                rows = [
                    r
                    for r in _rows(databases[order["symbol"]], "manticore_orders")
                    if r["order_id"] == order_id
                ]
                if not rows or rows[0]["status"] != order["final"][0]:
                    return None
                found[order_id] = rows[0]
            return found

        stored = _wait_for(stored_orders, 60, f"the orders in the read model: {output.read_text()[-3000:]}")
        for order_id, row in stored.items():
            order = expected[order_id]
            assert (row["symbol"], row["side"], row["user_id"]) == (
                order["symbol"],
                order["side"],
                order["user_id"],
            )
            assert Decimal(row["filled_quantity"]) == order["final"][1]
            assert Decimal(row["quantity"]) == Decimal(order["quantity"])
            assert Decimal(row["price"]) == Decimal(order["price"])
        trades = _wait_for(lambda: _rows(databases["BTC/USD"], "manticore_trades"), 30, "the trade")
        assert [(t["maker_order_id"], t["taker_order_id"], Decimal(t["quantity"])) for t in trades] == [
            (maker["order"]["order_id"], taker["order"]["order_id"], Decimal(1))
        ]
        if market_shards:  # each market shard's read model holds its own markets only
            assert {r["symbol"] for r in _rows(databases["BTC/USD"], "manticore_orders")} == {"BTC/USD"}
            assert {r["symbol"] for r in _rows(databases["ETH/USD"], "manticore_orders")} == {"ETH/USD"}
        text_so_far = output.read_text()
        writers = ["storage-m0", "storage-m1"] if market_shards else ["storage-main"]
        for writer in writers:
            assert f"started {writer} (pid" in text_so_far
        assert "exited with status" not in text_so_far, text_so_far[-3000:]
        cluster.send_signal(signal.SIGINT)
        assert cluster.wait(60) == 0, output.read_text()[-3000:]
        final = output.read_text()
        for writer in writers:
            assert f"stopped {writer} (status 0)" in final, final[-3000:]
        # Stopped cleanly, each writer's database has exactly the rows of the instance it followed
        # (each shard instance keeps its own SQLite read model in its directory).
        followed = {"storage-m0": "m0-0", "storage-m1": "m1-0", "storage-main": "shard-0"}
        for writer in writers:
            model = data / (f"read-model-{writer[8:]}.db" if market_shards else "read-model.db")
            instance = data / followed[writer] / "manticore.db"
            for table in ("manticore_orders", "manticore_trades", "manticore_markets"):
                assert _comparable(_rows(model, table)) == _comparable(_rows(instance, table)), (
                    writer,
                    table,
                )
            assert _rows(model, "manticore_orders"), writer
    finally:
        if cluster.poll() is None:
            os.kill(cluster.pid, signal.SIGKILL)
            cluster.wait(10)
        for pid in (int(found) for found in re.findall(r"started \S+ \(pid (\d+)\)", output.read_text())):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # our children (they run in their own sessions)
