"""Phase 2 with real processes: `manticore shard --role market` (m1 with a standby, m2) and
`--role account` (with a standby) on a private nats-server, driven over the gateway protocol by client
threads (places, cancels, modifies, deposits, withdrawals) that retry unanswered requests with the same
`cmd`, as gateways do. Mid-load the m1 leader and then the account leader are killed with `kill -9`;
the standbys take over. Then: every place a client saw acknowledged is in the account's log exactly
once with the answered order id, and the market's settlement the account journaled for it names the
same order; every acknowledged deposit and withdrawal is in the log once, at the answered position; no
client order id was routed twice and no command id is in the log twice; every shard rebuilt from its
log alone passes its invariant checks and money is conserved."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from manticore_cluster import protocol
from manticore_cluster.account import AccountState
from manticore_cluster.account_shard import AccountLedger
from manticore_cluster.conservation import check, market_view
from manticore_cluster.log import JetStreamJournal
from manticore_cluster.natsconf import NatsOptions
from manticore_matching import Exchange, ExchangeError
from tests.api.support import free_port
from tests.cluster.helpers import journal_factory
from tests.cluster.shard_processes import ShardProcess, write_config
from tests.cluster.split_support import Loop
from tests.matching.exchange_streams import MARKETS

pytestmark = pytest.mark.slow

ROUTING = {"BTC/USD": "m1", "ETH/USD": "m2"}
CONFIGS = {config.symbol: config for config in MARKETS}
USERS = ("u1", "u2", "u3", "u4")


class Client:
    """Gateway-protocol requests to the account shard, retried with the same body while unanswered."""

    def __init__(self, options: NatsOptions) -> None:
        self.loop = Loop(options.servers[0])
        self.prefix = options.prefix
        self.acknowledged: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (args, result)
        #: acknowledged deposits and withdrawals: (cmd, op, args, result)
        self.transfers: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        self.lock = threading.Lock()

    def request(self, op: str, args: dict[str, Any], deadline: float = 40.0, cmd: str | None = None) -> Any:
        """Send until answered (a refusal raises its ExchangeError), retrying with the same ``cmd``."""
        subject = protocol.cmd_subject(self.prefix, "acct")
        cmd = cmd or uuid.uuid4().hex
        retry = False
        give_up = time.monotonic() + deadline
        while True:
            body = protocol.encode_request(cmd, op, dict(args), retry=retry)
            try:
                msg = self.loop.run(self.loop.nc.request(subject, body, timeout=3.0))
                return protocol.decode_reply(msg.data)
            except ExchangeError as exc:
                if exc.code != "unavailable" or time.monotonic() > give_up:
                    raise
            except Exception:
                if time.monotonic() > give_up:
                    raise
            retry = True  # the same cmd: a command journaled before is answered, not applied again
            time.sleep(0.1)

    def query(self, shard: str, op: str, args: dict[str, Any]) -> Any:
        body = protocol.encode_request(uuid.uuid4().hex, op, args)
        msg = self.loop.run(
            self.loop.nc.request(protocol.query_subject(self.prefix, shard), body, timeout=10)
        )
        return protocol.decode_reply(msg.data)

    def close(self) -> None:
        self.loop.close()


def _load(client: Client, seed: int, stop: threading.Event) -> None:
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        user = rng.choice(USERS)
        roll = rng.random()
        if roll < 0.08:
            op = "deposit" if roll < 0.05 else "withdraw"
            transfer = {"user_id": user, "asset": rng.choice(("USD", "BTC", "ETH")), "amount": "1"}
            cmd = uuid.uuid4().hex
            try:
                answer = client.request(op, transfer, cmd=cmd)
            except Exception:
                continue  # refused (insufficient balance) or unanswered: not acknowledged
            with client.lock:
                client.transfers.append((cmd, op, transfer, answer))
            continue
        symbol, centre = rng.choice((("BTC/USD", 100), ("ETH/USD", 20)))
        args: dict[str, Any] = {
            "user_id": user,
            "symbol": symbol,
            "side": rng.choice(("buy", "sell")),
            "quantity": "1" if symbol == "BTC/USD" else "0.5",
            "client_order_id": f"c{seed}-{n}",
        }
        if roll < 0.2:
            args["order_type"] = "market"
        else:
            args["price"] = str(centre + rng.randint(-3, 3))
            if roll < 0.4:
                args["time_in_force"] = "IOC"
        try:
            result = client.request("place_order", args)
        except ExchangeError:
            continue  # refused (balance, liquidity): nothing to check but that nothing changed
        except Exception:
            continue  # unanswered: unknown outcome, not acknowledged
        with client.lock:
            client.acknowledged.append((args, result))
        then = rng.random()
        resting = result["order"]["status"] in ("open", "partially_filled")
        if then < 0.2:
            with contextlib.suppress(Exception):
                client.request("cancel_order", {"user_id": user, "order_id": result["order_id"]}, deadline=5)
        elif then < 0.4 and resting:
            change = {
                "user_id": user,
                "order_id": result["order_id"],
                "new_price": str(centre + rng.randint(-3, 3)),
            }
            with contextlib.suppress(Exception):
                client.request("modify_order", change, deadline=5)


def _rebuild(options: NatsOptions, root: Path) -> tuple[AccountState, dict[str, Exchange]]:
    """Every shard rebuilt from its log alone, in fresh directories."""
    markets: dict[str, Exchange] = {}
    for shard in ("m1", "m2"):
        exchange = Exchange(
            root / f"{shard}-{uuid.uuid4().hex[:6]}",
            fsync=False,
            settle_as=shard,
            journal_factory=journal_factory(options, shard),
        )
        exchange.open()
        markets[shard] = exchange
    routing = {symbol: (CONFIGS[symbol], shard) for symbol, shard in ROUTING.items()}
    ledger = AccountLedger(
        root / f"acct-{uuid.uuid4().hex[:6]}",
        AccountState("acct", routing),
        JetStreamJournal(options, "acct"),
    )
    ledger.open()
    ledger.journal.close()
    return ledger.state, markets


def test_split_cluster_survives_kill_9_of_leaders(tmp_path: Path, nats_options: NatsOptions) -> None:
    config = write_config(tmp_path / "markets.toml")
    account_args = ("--role", "account", "--market-shard", "m1=BTC/USD", "--market-shard", "m2=ETH/USD")

    def shard(name: str, index: int, extra: tuple[str, ...]) -> ShardProcess:
        return ShardProcess(nats_options, tmp_path / f"{name}-{index}", config, name=name, extra_args=extra)

    m1 = [shard("m1", i, ("--role", "market", "--markets", "BTC/USD")) for i in range(2)]
    m2 = [shard("m2", i, ("--role", "market", "--markets", "ETH/USD")) for i in range(2)]
    acct = [shard("acct", i, account_args) for i in range(2)]
    everyone = [*m1, *m2, *acct]
    client = Client(nats_options)
    try:
        for process in (m1[0], m2[0], acct[0]):
            process.start()
            process.wait_for(": leader ", 30)
        for process in (m1[1], m2[1], acct[1]):
            process.start()
            process.wait_for("following the log", 30)
        for user in USERS:
            for asset, amount in (("USD", "100000"), ("BTC", "100"), ("ETH", "500")):
                client.request("deposit", {"user_id": user, "asset": asset, "amount": amount})
        stop = threading.Event()
        threads = [threading.Thread(target=_load, args=(client, seed, stop)) for seed in range(3)]
        for thread in threads:
            thread.start()

        def acknowledged_grows(by: int) -> None:
            target = len(client.acknowledged) + by
            deadline = time.monotonic() + 60
            while len(client.acknowledged) < target:
                assert time.monotonic() < deadline, "the load makes no progress"
                time.sleep(0.05)

        acknowledged_grows(40)
        os.kill(m1[0].pid, signal.SIGKILL)  # a market-shard leader dies mid-load
        m1[1].wait_for(": leader ", 30)
        acknowledged_grows(40)
        os.kill(acct[0].pid, signal.SIGKILL)  # then the account leader
        acct[1].wait_for(": leader ", 30)
        acknowledged_grows(40)
        os.kill(m2[0].pid, signal.SIGSTOP)  # a market-shard leader paused past its lease
        m2[1].wait_for(": leader ", 30)
        os.kill(m2[0].pid, signal.SIGCONT)
        assert m2[0].wait(20) in (3, 4)  # the deposed leader exits: lease lost or fenced
        acknowledged_grows(40)
        stop.set()
        for thread in threads:
            thread.join(60)
        client.request("withdraw", {"user_id": "u1", "asset": "USD", "amount": "1"}, deadline=5)
        # wait until the account leader has delivered every route and pulled every settlement
        deadline = time.monotonic() + 30
        while True:
            state, markets = _rebuild(nats_options, tmp_path / "rebuilt")
            views = {name: market_view(exchange) for name, exchange in markets.items()}
            pending = [
                e["seq"]
                for name, view in views.items()
                for e in view["pending"]
                if e["seq"] > state.applied.get(name, 0)
            ]
            if (not state.routes and not pending) or time.monotonic() > deadline:
                break
            for exchange in markets.values():
                exchange.close()
            time.sleep(0.5)
        try:
            check(state, views, quiescent=True)
            # the live leaders hold what the logs say: books and balances equal the rebuilt shards'
            for symbol, shard in ROUTING.items():
                live = client.query(shard, "get_snapshot", {"symbol": symbol})
                rebuilt = markets[shard].get_snapshot(symbol)
                assert (live["bids"], live["asks"]) == (rebuilt["bids"], rebuilt["asks"])
            for user in USERS:
                assert client.query("acct", "balances", {"user_id": user}) == {
                    "balances": state.balances(user)
                }
            assert len(client.acknowledged) > 20
            log = list(AccountLedger_records(nats_options))
            routes = {r["n"]: r for r in log if r["op"] == "route"}
            settled = {
                int(e["routed"][1]): e
                for r in log
                if r["op"] == "settle"
                for e in r["entries"]
                if e["routed"]
            }
            names = [
                (r["user_id"], r["action"]["client_order_id"])
                for r in routes.values()
                if r["action"]["kind"] == "place"
            ]
            assert len(names) == len(set(names)), "a client order id was routed twice"
            command_ids = [r["cid"] for r in log if "cid" in r]
            assert len(command_ids) == len(set(command_ids)), "a command id was journaled twice"
            by_position = {r["n"]: r for r in log}
            assert client.transfers, "the load made no deposit or withdrawal"
            for cmd, op, transfer, answer in client.transfers:
                record = by_position[answer["position"]]
                assert (record["op"], record.get("cid")) == (op, cmd)
                assert (record["user_id"], record["asset"], Decimal(record["amount"])) == (
                    transfer["user_id"],
                    transfer["asset"],
                    Decimal(transfer["amount"]),
                )
            for args, result in client.acknowledged:
                position = result["position"]
                route = routes[position]
                assert route["action"]["client_order_id"] == args["client_order_id"]
                assert settled[position]["order_id"] == result["order_id"] == f"MC-{position}"
                assert settled[position]["error"] is None
        finally:
            for exchange in markets.values():
                exchange.close()
    finally:
        client.close()
        for process in everyone:
            process.stop()


def AccountLedger_records(options: NatsOptions) -> list[dict[str, Any]]:
    journal = JetStreamJournal(options, "acct")
    try:
        return list(journal.read(0))
    finally:
        journal.close()


def test_manticore_cluster_starts_a_split_cluster(tmp_path: Path, nats_options: NatsOptions) -> None:
    """`manticore cluster --market-shards 2`: an account shard, two market shards, a gateway routing
    to them; Ctrl-C stops every child."""
    port = free_port()
    output = tmp_path / "cluster.log"
    argv = [sys.executable, "-m", "manticore_api.cli", "cluster", "--nats", nats_options.servers[0]]
    argv += ["--prefix", nats_options.prefix, "--data-dir", str(tmp_path / "data"), "--port", str(port)]
    argv += ["--gateways", "1", "--standbys", "0", "--market-shards", "2", "--lease-ttl", "1", "--no-auth"]
    with output.open("ab") as handle:
        cluster = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        markets: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/markets", timeout=2)
                if answer.status_code == 200:
                    markets = answer.json()
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        symbols = sorted(market["symbol"] for market in markets.get("markets", []))
        assert len(symbols) >= 2, output.read_text()
        for symbol in symbols:
            book = httpx.get(f"http://127.0.0.1:{port}/api/orderbook", params={"symbol": symbol}, timeout=10)
            assert book.status_code == 200, book.text
        text = output.read_text()
        assert "m0-0" in text and "m1-0" in text and "shard-0" in text
        cluster.send_signal(signal.SIGINT)
        assert cluster.wait(40) == 0, output.read_text()
    finally:
        if cluster.poll() is None:
            cluster.kill()
            cluster.wait(10)
