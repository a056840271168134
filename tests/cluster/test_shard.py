"""Shard instances as real processes on a private nats-server: failover, zombies, restarts.

Each test starts ``manticore shard`` processes (lease TTL :data:`LEASE_TTL`), drives them over the
gateway protocol from this process, kills them by process id, and then checks the log and the new
leader against an exchange rebuilt from the log here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from manticore_cluster import protocol
from manticore_cluster.log import JetStreamJournal
from manticore_cluster.natsconf import NatsOptions
from manticore_matching import Exchange, ExchangeError, OrderNotFound
from tests.cluster.conftest import free_port
from tests.cluster.helpers import journal_factory, raw_records
from tests.cluster.shard_processes import (
    LEASE_TTL,
    NoLeader,
    ProtocolClient,
    ShardProcess,
    shard_processes,
    write_config,
)
from tests.matching.exchange_streams import MARKETS, START, Clock

pytestmark = pytest.mark.timeout(120)

USERS = tuple(f"u{index}" for index in range(6))
FUNDS = {"USD": "10000000", "BTC": "100000", "ETH": "1000000"}
TERMINAL = {"filled", "cancelled", "expired"}


def _normal(value: Any) -> Any:
    """What a value looks like after crossing the wire (Decimals as strings)."""
    return protocol.loads(protocol.dumps(value))


def rebuild(options: NatsOptions, data_dir: Path) -> Exchange:
    """An exchange rebuilt here from the whole log (fresh directory, no checkpoint). It appends nothing."""
    exchange = Exchange(data_dir, fsync=False, journal_factory=journal_factory(options))
    exchange.open()
    return exchange


async def fund(client: ProtocolClient) -> None:
    for user in USERS:
        for asset, amount in FUNDS.items():
            await client.command("deposit", {"user_id": user, "asset": asset, "amount": amount})


class Load:
    """Workers placing and cancelling orders, retrying an unanswered request with the same id (and
    ``retry: true``) until a leader answers; records every answer."""

    def __init__(self, client: ProtocolClient, seed: int, attempt_timeout: float = 1.0) -> None:
        self.client = client
        self.rng = random.Random(seed)
        self.attempt_timeout = attempt_timeout
        #: cmd -> (op, args, result) of every command answered ok (durable).
        self.acked: dict[str, tuple[str, dict[str, Any], Any]] = {}
        #: cmd -> error class name of every command answered with an error.
        self.refused: dict[str, str] = {}
        #: cmds whose answer came to a retry (their position may be the order's later state).
        self.retried: set[str] = set()
        self.first_ack_after: dict[float, float] = {}
        self._live: dict[str, list[tuple[str, str]]] = {user: [] for user in USERS}
        self._numbers = iter(range(1, 10**9))

    async def one(self, op: str, args: dict[str, Any], deadline: float = 25.0) -> Any:
        cmd = self.client.new_cmd()
        started = time.monotonic()
        retry = False
        while True:
            try:
                result = await self.client.command(
                    op, args, cmd=cmd, retry=retry, timeout=self.attempt_timeout
                )
            except (asyncio.TimeoutError, NoLeader) as exc:
                if time.monotonic() - started > deadline:
                    raise AssertionError(f"no leader answered {op} {args} in {deadline} s") from None
                retry = True
                self.retried.add(cmd)
                if isinstance(exc, NoLeader):
                    await asyncio.sleep(0.05)
                continue
            except ExchangeError as exc:
                if type(exc).__name__ == "ServiceUnavailable":  # a leader on its way out: try again
                    retry = True
                    self.retried.add(cmd)
                    await asyncio.sleep(0.05)
                    continue
                self.refused[cmd] = type(exc).__name__
                return exc
            self.acked[cmd] = (op, args, result)
            return result

    async def worker(self, index: int, count: int) -> None:
        rng = random.Random(self.rng.random())
        for _ in range(count):
            user = rng.choice(USERS)
            live = self._live[user]
            if live and rng.random() < 0.25:
                symbol, name = live.pop(rng.randrange(len(live)))
                await self.one("cancel_order_by_client_id", {"user_id": user, "client_order_id": name})
                continue
            symbol = rng.choice(["BTC/USD", "ETH/USD"])
            centre, tick, lot = (100, "0.5", "0.1") if symbol == "BTC/USD" else (20, "0.01", "0.01")
            name = f"w{index}-{next(self._numbers)}"
            args = {
                "user_id": user,
                "symbol": symbol,
                "side": rng.choice(["buy", "sell"]),
                "quantity": str(Decimal(lot) * rng.randint(1, 20)),
                "price": str(centre + Decimal(tick) * rng.randint(-6, 6)),
                "time_in_force": rng.choice(["GTC", "GTC", "GTC", "IOC"]),
                "client_order_id": name,
            }
            result = await self.one("place_order", args)
            if isinstance(result, dict) and (result.get("order") or {}).get("status") not in TERMINAL:
                live.append((symbol, name))

    async def run(self, workers: int, per_worker: int) -> None:
        await asyncio.gather(*(self.worker(index, per_worker) for index in range(workers)))


def _book(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without its ``timestamp`` (the reading of the live clock when it was taken)."""
    return {key: value for key, value in snapshot.items() if key != "timestamp"}


#: What an order is, whichever view answers: a finished order comes from memory (its last event's
#: shape) or, after a restart, from storage (the stored row's shape, with its creation timestamp).
ORDER_KEYS = (
    "order_id",
    "client_order_id",
    "user_id",
    "symbol",
    "side",
    "price",
    "quantity",
    "filled_quantity",
    "remaining_quantity",
    "status",
)


def _order(order: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if order is None else {key: order.get(key) for key in ORDER_KEYS}


async def state_of_leader(client: ProtocolClient, order_ids: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "balances": {user: await client.query("balances", {"user_id": user}) for user in USERS},
        "books": {m.symbol: _book(await client.query("get_snapshot", {"symbol": m.symbol})) for m in MARKETS},
        "orders": {
            oid: _order(await client.query("get_order", {"user_id": u, "order_id": oid}))
            for u, oid in order_ids
        },
    }


def state_of(exchange: Exchange, order_ids: list[tuple[str, str]]) -> dict[str, Any]:
    return _normal(
        {
            "balances": {user: exchange.balances(user) for user in USERS},
            "books": {m.symbol: _book(exchange.get_snapshot(m.symbol)) for m in MARKETS},
            "orders": {oid: _order(exchange.get_order(u, oid)) for u, oid in order_ids},
        }
    )


def check_log_against_answers(options: NatsOptions, load: Load) -> list[tuple[str, str]]:
    """Every acknowledged command is in the log exactly once, as answered; return the acknowledged
    orders as (user, order id)."""
    records = raw_records(options)
    assert [record["n"] for record in records] == list(range(1, len(records) + 1))
    places: dict[tuple[str, str], dict[str, Any]] = {}
    cancels: dict[str, int] = {}
    for record in records:
        if record["op"] == "place":
            key = (record["user_id"], record["client_order_id"])
            assert key not in places, f"placed twice: {key}"
            places[key] = record
        elif record["op"] == "cancel":
            cancels[record["order_id"]] = cancels.get(record["order_id"], 0) + 1
    assert all(count == 1 for count in cancels.values())
    orders = []
    for cmd, (op, args, result) in load.acked.items():
        if op == "place_order":
            record = places[(args["user_id"], args["client_order_id"])]
            assert record["order_id"] == result["order_id"]
            if cmd not in load.retried:
                assert record["n"] == result["position"]
                assert record["symbol"] == args["symbol"] and record["side"] == args["side"]
            orders.append((args["user_id"], result["order_id"]))
        elif op == "cancel_order_by_client_id":
            record = places[(args["user_id"], args["client_order_id"])]
            assert cancels.get(record["order_id"]) == 1, (
                f"acknowledged cancel of {record['order_id']} not in the log"
            )
    return orders


def check_against_rebuild(
    options: NatsOptions, load: Load, leader: dict[str, Any], data_dir: Path, orders: list[tuple[str, str]]
) -> None:
    rebuilt = rebuild(options, data_dir)
    try:
        assert state_of(rebuilt, orders) == leader
        for asset, amount in FUNDS.items():
            assert rebuilt.risk.total(asset) == Decimal(amount) * len(USERS)
        rebuilt.risk.check_invariants()
    finally:
        rebuilt.close()
    for cmd, (op, _args, result) in load.acked.items():
        order = result.get("order") if op == "place_order" else None
        if order is not None and order["status"] in TERMINAL:  # an ended order keeps what the client saw
            final = leader["orders"][result["order_id"]]
            assert (final["status"], final["filled_quantity"]) == (
                order["status"],
                order["filled_quantity"],
            ), cmd


def test_kill_9_of_the_leader_mid_load_loses_nothing_acknowledged(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    config = write_config(tmp_path / "markets.toml")
    first = ShardProcess(nats_options, tmp_path / "a", config).start()
    second = ShardProcess(nats_options, tmp_path / "b", config)
    with shard_processes(first, second):
        first.wait_for(": leader ")
        second.start().wait_for("following the log")

        async def scenario() -> tuple[Load, dict[str, Any], list[tuple[str, str]], float, float]:
            async with ProtocolClient(nats_options) as client:
                await client.wait_for_leader()
                await fund(client)
                load = Load(client, seed=18)
                running = asyncio.ensure_future(load.run(workers=6, per_worker=70))
                while len(load.acked) < 150 and not running.done():
                    await asyncio.sleep(0.01)
                killed_at = time.monotonic()
                first.signal(signal.SIGKILL)
                acked_before = len(load.acked)
                leader_at = await asyncio.to_thread(second.wait_for, ": leader ", 20.0)
                while len(load.acked) == acked_before and not running.done():
                    await asyncio.sleep(0.005)
                first_ack = time.monotonic()
                await running
                assert first.wait(5) == -signal.SIGKILL
                orders = await asyncio.to_thread(check_log_against_answers, nats_options, load)
                leader = await state_of_leader(client, orders)
                return load, leader, orders, leader_at - killed_at, first_ack - killed_at

        load, leader, orders, takeover, first_ack = asyncio.run(scenario())
        print(
            f"failover: leader killed -> standby leads {takeover:.2f} s, "
            f"first acknowledgement {first_ack:.2f} s"
        )
        assert second.leading and second.process is not None and second.process.poll() is None
        assert takeover < LEASE_TTL + 6, takeover  # TTL + catch-up, on a busy 2-core machine
        assert first_ack >= takeover
        assert len(load.acked) > 300
        check_against_rebuild(nats_options, load, leader, tmp_path / "rebuilt", orders)


def test_a_leader_stopped_past_its_lease_exits_and_never_answers_again(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    config = write_config(tmp_path / "markets.toml")
    first = ShardProcess(nats_options, tmp_path / "a", config).start()
    second = ShardProcess(nats_options, tmp_path / "b", config)
    with shard_processes(first, second):
        first.wait_for(": leader ")
        second.start().wait_for("following the log")

        async def scenario() -> None:
            async with ProtocolClient(nats_options) as client:
                await client.wait_for_leader()
                await fund(client)
                await client.command("deposit", {"user_id": "u0", "asset": "USD", "amount": "1"})
                first.signal(signal.SIGSTOP)
                # Delivered to the stopped leader only (the standby does not serve yet): it must never
                # answer them - it wakes up after its successor has started.
                baits = [client.new_cmd() for _ in range(20)]
                for cmd in baits:
                    args = {"user_id": "bait", "asset": "USD", "amount": "5"}
                    await client.send("deposit", args, cmd=cmd)
                await asyncio.to_thread(second.wait_for, ": leader ", 20.0)
                await client.wait_for_leader()
                before = [await client.command("deposit", {"user_id": "u1", "asset": "USD", "amount": "2"})]
                first.signal(signal.SIGCONT)
                after = [client.new_cmd() for _ in range(30)]
                for cmd in after:  # while the old leader wakes up: both processes subscribe for a moment
                    await client.send("deposit", {"user_id": "u2", "asset": "USD", "amount": "3"}, cmd=cmd)
                    await asyncio.sleep(0.01)
                status = await asyncio.to_thread(first.wait, 15.0)
                assert status in (3, 4), (status, first.text())
                await asyncio.sleep(0.5)
                assert not any(cmd in client.replies for cmd in baits), "the stopped leader answered"
                assert [len(client.replies.get(cmd, ())) for cmd in after] == [1] * len(after)
                assert before[0]["position"] > 0
                balances = await client.query("balances", {"user_id": "u2"})
                assert balances["balances"]["USD"]["available"] == str(Decimal(FUNDS["USD"]) + 3 * len(after))
                assert await client.query("balances", {"user_id": "bait"}) == {"balances": {}}

        asyncio.run(scenario())
        assert "exiting" in first.text()
        records = raw_records(nats_options)
        assert not [record for record in records if record.get("user_id") == "bait"]
        assert second.process is not None and second.process.poll() is None


def test_a_restart_of_every_instance_gives_the_same_balances_and_books(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    config = write_config(tmp_path / "markets.toml")
    directories = (tmp_path / "a", tmp_path / "b")

    def start_both() -> tuple[ShardProcess, ShardProcess]:
        leader = ShardProcess(nats_options, directories[0], config).start()
        leader.wait_for(": leader ")
        standby = ShardProcess(nats_options, directories[1], config).start()
        standby.wait_for("following the log")
        return leader, standby

    async def drive() -> tuple[dict[str, Any], list[tuple[str, str]]]:
        async with ProtocolClient(nats_options) as client:
            await client.wait_for_leader()
            await fund(client)
            load = Load(client, seed=7)
            await load.run(workers=4, per_worker=40)
            orders = await asyncio.to_thread(check_log_against_answers, nats_options, load)
            return await state_of_leader(client, orders), orders

    async def observe(orders: list[tuple[str, str]]) -> dict[str, Any]:
        async with ProtocolClient(nats_options) as client:
            await client.wait_for_leader()
            return await state_of_leader(client, orders)

    first, second = start_both()
    with shard_processes(first, second):
        expected, orders = asyncio.run(drive())
        for instance in (second, first):  # a clean stop: checkpoint, lease released
            instance.signal(signal.SIGTERM)
            assert instance.wait(20) == 0, instance.text()
        checkpoint = json.loads((directories[0] / "checkpoint.json").read_text())
    first, second = start_both()
    with shard_processes(first, second):
        found = asyncio.run(observe(orders))
        assert found == expected
        for instance in (first, second):  # now a crash of every instance
            instance.signal(signal.SIGKILL)
            instance.wait(10)
    first, second = start_both()
    with shard_processes(first, second):
        assert asyncio.run(observe(orders)) == expected
        rebuilt = rebuild(nats_options, tmp_path / "rebuilt")
        try:
            assert state_of(rebuilt, orders) == expected
            books = {symbol: rebuilt.book(symbol).export_state() for symbol in rebuilt.markets}
            assert json.loads(json.dumps(books)) == checkpoint["books"]
            # The rate limiter's window is what live checks saw; a replay makes no checks.
            risk = json.loads(json.dumps(rebuilt.risk.export_state()))
            assert risk.pop("rate_limiter") == []
            checkpoint["risk"].pop("rate_limiter")
            assert risk == checkpoint["risk"]
        finally:
            rebuilt.close()


def test_a_second_instance_on_the_same_directory_is_refused(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    config = write_config(tmp_path / "markets.toml")
    first = ShardProcess(nats_options, tmp_path / "a", config).start()
    again = ShardProcess(nats_options, tmp_path / "a", config)
    again.log_path = tmp_path / "again.log"
    with shard_processes(first, again):
        first.wait_for(": leader ")
        again.start()
        assert again.wait(20) == 1
        assert "in use" in again.text()
        assert first.process is not None and first.process.poll() is None


def test_an_unknown_order_is_an_error_answer_not_a_crash(tmp_path: Path, nats_options: NatsOptions) -> None:
    """The leader answers refusals at once and keeps serving (a refused command is not journaled)."""
    config = write_config(tmp_path / "markets.toml")
    first = ShardProcess(nats_options, tmp_path / "a", config).start()
    with shard_processes(first):
        first.wait_for(": leader ")

        async def scenario() -> None:
            async with ProtocolClient(nats_options) as client:
                await client.wait_for_leader()
                with pytest.raises(OrderNotFound):
                    await client.command("cancel_order", {"user_id": "u0", "order_id": "MC-999"})
                receipt = await client.command("deposit", {"user_id": "u0", "asset": "USD", "amount": "1"})
                assert receipt["position"] == len(MARKETS) + 1

        asyncio.run(scenario())


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie - exited, not yet reaped - counts as gone)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except (ProcessLookupError, OSError):
        return False


def _health(port: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()
            if health.get("status") == "ok":
                break
        time.sleep(0.2)
    return health


def test_manticore_cluster_runs_restarts_and_stops_its_processes(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    port = free_port()
    output = tmp_path / "cluster.log"
    argv = [sys.executable, "-m", "manticore_api.cli", "cluster", "--nats", nats_options.servers[0]]
    argv += ["--prefix", nats_options.prefix, "--data-dir", str(tmp_path / "data"), "--port", str(port)]
    argv += ["--gateways", "1", "--standbys", "1", "--lease-ttl", str(LEASE_TTL), "--no-auth"]
    argv += ["--no-storage-writer"]  # its storage writer: tests/cluster/test_local_cluster.py
    with output.open("ab") as handle:
        cluster = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
    children: set[int] = set()

    def started() -> set[int]:
        return {int(pid) for pid in re.findall(r"started \S+ \(pid (\d+)\)", output.read_text())}

    try:
        assert _health(port, 60).get("status") == "ok", output.read_text()
        children = started()
        assert len(children) == 3  # two shard instances and a gateway: no storage writer when told so
        assert "started storage-" not in output.read_text()
        leader_pid = int(re.findall(r": leader \S+:(\d+):", output.read_text())[-1])
        os.kill(leader_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and output.read_text().count(": leader ") < 2:
            time.sleep(0.1)
        assert _health(port, 30).get("status") == "ok", output.read_text()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(started()) < 4:
            time.sleep(0.1)
        children = started()
        assert len(children) == 4, output.read_text()  # the killed shard instance was started again
        cluster.send_signal(signal.SIGINT)
        assert cluster.wait(40) == 0, output.read_text()
        assert not [pid for pid in children if _alive(pid)]
    finally:
        if cluster.poll() is None:
            cluster.kill()
            cluster.wait(10)
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_leader_fenced_by_another_writer_exits_and_its_successor_has_that_record(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    config = write_config(tmp_path / "markets.toml")
    first = ShardProcess(nats_options, tmp_path / "a", config).start()
    second = ShardProcess(nats_options, tmp_path / "b", config)
    with shard_processes(first, second):
        first.wait_for(": leader ")

        async def scenario() -> None:
            async with ProtocolClient(nats_options) as client:
                await client.wait_for_leader()
                await client.command("deposit", {"user_id": "u0", "asset": "USD", "amount": "10"})
                # Another writer (a second instance started by mistake, say) appends to the log.
                intruder = JetStreamJournal(nats_options, "main")
                await asyncio.to_thread(lambda: list(intruder.read()))
                intruder.start()
                record = {"op": "deposit", "ts": time.time(), "user_id": "u0", "asset": "USD", "amount": "5"}
                assert await asyncio.to_thread(intruder.wait, intruder.append(record), 10)
                intruder.close()
                cmd = client.new_cmd()
                await client.send("deposit", {"user_id": "u0", "asset": "USD", "amount": "1"}, cmd=cmd)
                assert await asyncio.to_thread(first.wait, 15.0) == 4, first.text()
                await asyncio.sleep(0.3)
                answers = [protocol.loads(data) for _, data in client.replies.get(cmd, [])]
                assert not [answer for answer in answers if answer["ok"]], answers
                second.start()
                await asyncio.to_thread(second.wait_for, ": leader ", 20.0)
                balances = await client.query("balances", {"user_id": "u0"})
                assert balances["balances"]["USD"]["available"] == "15"

        asyncio.run(scenario())
        assert "FENCED" in first.text()


def test_a_successor_behind_in_clock_never_stamps_earlier_than_the_log(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    ahead = Clock(START + 3600)
    leader = Exchange(
        tmp_path / "leader", clock=ahead, fsync=False, journal_factory=journal_factory(nats_options)
    )
    leader.open()
    leader.deposit("u0", "USD", "100")
    assert leader.wait_durable(leader.deposit("u0", "USD", "1").position, 10)
    last = leader.journal.appended
    leader.close()
    promote = threading.Event()
    promote.set()
    behind = Clock(START)
    successor = Exchange(
        tmp_path / "successor",
        clock=behind,
        fsync=False,
        journal_factory=journal_factory(nats_options, follow_until=promote),
    )
    successor.open()
    try:
        receipt = successor.deposit("u0", "USD", "2")
        assert successor.wait_durable(receipt.position, 10)
        records = raw_records(nats_options)
        assert receipt.position == last + 1
        assert [record["ts"] for record in records] == sorted(record["ts"] for record in records)
        assert records[-1]["ts"] >= START + 3600
    finally:
        successor.close()
