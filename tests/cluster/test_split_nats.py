"""Phase 2 over a real nats-server: the account shard leader (AccountServer) routes to two market-shard
leaders (CommandServer over Exchange(settle_as=...)), every log on JetStream; clients speak the gateway
protocol to the account shard. Then: conservation, the market's answers, failover of the account
leader with routes pending (resent by the new leader), rebuilds from the logs."""

from __future__ import annotations

import json
import signal
import sys
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from manticore_api.server import ADMIN_CREDENTIALS
from manticore_cluster import protocol
from manticore_cluster.account import AccountState
from manticore_cluster.account_server import AccountServer
from manticore_cluster.account_shard import AccountLedger
from manticore_cluster.conservation import check, market_view
from manticore_cluster.log import JetStreamJournal
from manticore_cluster.natsconf import NatsOptions
from manticore_cluster.server import CommandServer
from manticore_matching import Exchange, ExchangeError
from tests.api.support import SignedClient, free_port, new_user, start_healthy
from tests.cluster.helpers import journal_factory
from tests.cluster.split_model import ACCOUNT_LIMITS, SHARDS
from tests.cluster.split_support import Loop

T = TypeVar("T")


class Split:
    """Market shards m1, m2 and the account shard ``acct`` served on one private nats-server."""

    def __init__(self, root: Path, options: NatsOptions) -> None:
        self.root = root
        self.options = options
        self.prefix = options.prefix
        url = options.servers[0]
        self.markets: dict[str, Exchange] = {}
        self.servers: dict[str, CommandServer] = {}
        self.loop = Loop(url)
        for shard, configs in SHARDS.items():
            exchange = Exchange(
                root / shard,
                markets=configs,
                fsync=False,
                settle_as=shard,
                journal_factory=journal_factory(options, shard),
            )
            exchange.open()
            self.markets[shard] = exchange
            server = CommandServer(self.loop.nc, exchange, shard, self.prefix)
            self.loop.run(server.start())
            self.servers[shard] = server
        self.ledger: AccountLedger | None = None
        self.account_server: AccountServer | None = None
        self.start_account(root / "acct-1")
        self.client = Loop(url)

    def new_state(self) -> AccountState:
        routing = {c.symbol: (c, shard) for shard, configs in SHARDS.items() for c in configs}
        return AccountState("acct", routing, ACCOUNT_LIMITS)

    def start_account(self, data_dir: Path) -> None:
        hooks: list[Any] = []
        journal = JetStreamJournal(self.options, "acct", on_durable=lambda n: hooks[0](n) if hooks else None)
        ledger = AccountLedger(data_dir, self.new_state(), journal)
        hooks.append(ledger.on_durable)
        ledger.open()
        server = AccountServer(
            self.loop.nc, ledger, "acct", self.prefix, attempt_timeout=1.0, pull_interval=0.1
        )
        self.loop.run(server.start())
        self.ledger, self.account_server = ledger, server

    def stop_account(self) -> None:
        """The account leader stops serving and its journal stops (as a killed process: no checkpoint)."""
        assert self.account_server is not None and self.ledger is not None
        self.loop.run(self.account_server.stop())
        self.ledger.journal.close()

    def request(self, op: str, retry: bool = False, cmd: str | None = None, **args: Any) -> Any:
        body = protocol.encode_request(cmd or uuid.uuid4().hex, op, args, retry=retry)
        subject = (
            protocol.cmd_subject(self.prefix, "acct")
            if op in protocol.COMMANDS
            else protocol.query_subject(self.prefix, "acct")
        )
        msg = self.client.run(self.client.nc.request(subject, body, timeout=20))
        return protocol.decode_reply(msg.data)

    def views(self) -> dict[str, Any]:
        return {shard: market_view(exchange) for shard, exchange in self.markets.items()}

    def close(self) -> None:
        self.client.close()
        if self.account_server is not None:
            self.loop.run(self.account_server.stop())
        for server in self.servers.values():
            self.loop.run(server.stop())
        self.loop.close()
        if self.ledger is not None:
            self.ledger.close()
        for exchange in self.markets.values():
            exchange.close()


@pytest.fixture
def split(tmp_path: Path, nats_options: NatsOptions) -> Any:
    system = Split(tmp_path, nats_options)
    yield system
    system.close()


def _quiet(split: Split) -> None:
    """Wait until no route is pending and every settlement is applied (pulls run every 0.1 s)."""
    assert split.ledger is not None
    for _ in range(200):
        state = split.ledger.state
        if not state.routes and all(
            not [e for e in ex.settlements(state.applied.get(s, 0))] for s, ex in split.markets.items()
        ):
            split.ledger.wait_durable(split.ledger.journal.appended, 10)
            return
        threading.Event().wait(0.05)
    raise AssertionError("the split cluster does not quiesce")


def test_orders_trade_across_shards_and_money_is_conserved(split: Split) -> None:
    for user in ("alice", "bob"):
        for asset, amount in (("USD", "10000"), ("BTC", "10"), ("ETH", "100")):
            split.request("deposit", user_id=user, asset=asset, amount=amount)
    sell = split.request(
        "place_order", user_id="bob", symbol="BTC/USD", side="sell", quantity="2", price="100"
    )
    assert sell["order"]["status"] == "open" and sell["order_id"] == f"MC-{sell['position']}"
    buy = split.request(
        "place_order",
        user_id="alice",
        symbol="BTC/USD",
        side="buy",
        quantity="3",
        price="101",
        client_order_id="a1",
    )
    assert buy["order"]["status"] == "partially_filled"
    ioc = split.request(
        "place_order",
        user_id="bob",
        symbol="ETH/USD",
        side="sell",
        quantity="1",
        price="20",
        time_in_force="IOC",
    )
    assert ioc["order"]["status"] == "cancelled"
    eth = split.request(
        "place_order", user_id="alice", symbol="ETH/USD", side="buy", quantity="5", price="19"
    )
    market = split.request(
        "place_order", user_id="bob", symbol="ETH/USD", side="sell", quantity="2", order_type="market"
    )
    assert market["order"]["status"] == "filled"
    with pytest.raises(ExchangeError) as refused:
        split.request(
            "place_order", user_id="bob", symbol="BTC/USD", side="buy", quantity="1", order_type="market"
        )
    assert refused.value.code == "no_liquidity"  # the market shard's refusal reaches the client
    refusal = {"user_id": "bob", "symbol": "BTC/USD", "side": "buy", "quantity": "1", "order_type": "market"}
    with pytest.raises(ExchangeError):
        split.request("place_order", client_order_id="r1", **refusal)
    # its retry is answered with the same refusal, never routed again (regression: it was re-placed)
    with pytest.raises(ExchangeError) as again:
        split.request("place_order", retry=True, client_order_id="r1", **refusal)
    assert again.value.code == "no_liquidity"
    assert split.ledger is not None
    routed = [
        n
        for n in range(1, split.ledger.journal.appended + 1)
        if (record := split.ledger.journal.record_at(n)) is not None
        and record["op"] == "route"
        and record["action"].get("client_order_id") == "r1"
    ]
    assert len(routed) == 1
    modified = split.request(
        "modify_order", user_id="alice", order_id=eth["order_id"], new_quantity="4", new_price="19.5"
    )
    assert modified["order"]["price"] in ("19.5", "19.50")
    # a retried place (same client order id) is answered with the first result, not placed again
    again = split.request(
        "place_order",
        retry=True,
        user_id="alice",
        symbol="BTC/USD",
        side="buy",
        quantity="3",
        price="101",
        client_order_id="a1",
    )
    assert again["order_id"] == buy["order_id"]
    cancelled = split.request("cancel_order_by_client_id", user_id="alice", client_order_id="a1")
    assert cancelled["order"]["status"] == "cancelled"
    # a retried cancel whose first attempt went through gets the first answer, not order_not_found
    retried = split.request("cancel_order_by_client_id", retry=True, user_id="alice", client_order_id="a1")
    assert retried == cancelled
    with pytest.raises(ExchangeError) as missing:
        split.request("cancel_order_by_client_id", user_id="alice", client_order_id="a1")
    assert missing.value.code == "order_not_found"
    split.request("withdraw", user_id="bob", asset="USD", amount="50")
    _quiet(split)
    assert split.ledger is not None
    check(split.ledger.state, split.views(), quiescent=True)
    balances = split.request("balances", user_id="alice")
    assert balances["balances"]["BTC"]["available"] == "12"


def test_a_new_account_leader_resends_pending_routes(split: Split, tmp_path: Path) -> None:
    split.request("deposit", user_id="bob", asset="BTC", amount="5")
    # the market shards stop answering: the route is journaled at the account but not delivered
    for server in split.servers.values():
        split.loop.run(server.stop())
    assert split.ledger is not None
    record = split.ledger.place("bob", "BTC/USD", "sell", "1", price="100")
    split.ledger.wait_durable(record["n"], 10)
    split.stop_account()  # the leader dies with the route pending
    for server in split.servers.values():
        split.loop.run(server.start())
    split.start_account(tmp_path / "acct-2")  # a new instance: replays the log, resends the outbox
    _quiet(split)
    assert split.ledger.state.orders[f"MC-{record['n']}"]["user_id"] == "bob"
    check(split.ledger.state, split.views(), quiescent=True)
    assert len(split.markets["m1"].book("BTC/USD").get_orders()) == 1


def test_a_gateway_serves_http_over_the_account_and_market_shards(split: Split, tmp_path: Path) -> None:
    """`manticore gateway --shard acct --market-shard ...`: orders, balances, books and trades over HTTP."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "gateway"
    command = [
        sys.executable,
        "-m",
        "manticore_api.cli",
        "gateway",
        "--nats",
        split.options.servers[0],
        "--shard",
        "acct",
        "--prefix",
        split.prefix,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--market-shard",
        "m1=BTC/USD",
        "--market-shard",
        "m2=ETH/USD",
        "--log-level",
        "warning",
    ]
    process = start_healthy(command, tmp_path / "gateway.log", url, "gateway")
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            credentials = json.loads((data_dir / ADMIN_CREDENTIALS).read_text())
            admin = SignedClient(http, credentials["api_key"], credentials["api_secret"])
            alice = new_user(admin, "alice", {"USD": "10000", "ETH": "10"})
            bob = new_user(admin, "bob", {"BTC": "5"})
            sold = bob.post(
                "/api/orders", {"symbol": "BTC/USD", "side": "sell", "quantity": "2", "price": "100"}
            )
            assert sold.status_code == 201, sold.text
            bought = alice.post(
                "/api/orders", {"symbol": "BTC/USD", "side": "buy", "quantity": "1", "price": "100"}
            )
            assert bought.status_code == 201, bought.text
            assert bought.json()["order"]["status"] == "filled"
            rested = alice.post(
                "/api/orders", {"symbol": "ETH/USD", "side": "sell", "quantity": "1", "price": "25"}
            )
            assert rested.status_code == 201, rested.text
            refused = alice.post(
                "/api/orders", {"symbol": "BTC/USD", "side": "buy", "quantity": "1000", "price": "100"}
            )
            assert refused.status_code == 422 and refused.json()["code"] == "insufficient_balance"
            book = http.get("/api/orderbook", params={"symbol": "BTC/USD"})
            assert book.status_code == 200, book.text
            assert [level["quantity"] for level in book.json()["asks"]] in (["1"], ["1.0"])
            trades = http.get("/api/trades", params={"symbol": "BTC/USD"}).json()
            assert len(trades["trades"]) == 1
            _quiet(split)
            balances = alice.get("/api/balances").json()
            assert balances["balances"]["BTC"]["available"] == "1"
            assert balances["balances"]["ETH"] == {"available": "9", "held": "1"}
            # Reads over every market shard (merged by the gateway) and by order id.
            markets = http.get("/api/markets")
            assert markets.status_code == 200, markets.text
            assert {"BTC/USD", "ETH/USD"} <= {market["symbol"] for market in markets.json()["markets"]}
            mine = alice.get("/api/orders")
            assert mine.status_code == 200, mine.text
            assert [order["order_id"] for order in mine.json()["orders"]] == [rested.json()["order_id"]]
            one = alice.get(f"/api/orders/{bought.json()['order_id']}")
            assert one.status_code == 200 and one.json()["order"]["status"] == "filled", one.text
            assert alice.get(f"/api/orders/{sold.json()['order_id']}").status_code == 404  # bob's
            cancelled = alice.delete(f"/api/orders/{rested.json()['order_id']}")
            assert cancelled.status_code == 200, cancelled.text
            _quiet(split)
            assert split.ledger is not None
            check(split.ledger.state, split.views(), quiescent=True)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


def test_a_retried_command_is_applied_once_even_by_a_new_account_leader(split: Split, tmp_path: Path) -> None:
    """A gateway retries a request with the same ``cmd`` after a timeout or a failover: deposits,
    withdrawals, modifies and places without a client order id get their first answer and are journaled
    once, by the leader that journaled them and by its successor (which replayed the log)."""
    assert split.ledger is not None
    deposit = split.request("deposit", cmd="dep-1", user_id="alice", asset="USD", amount="1000")
    assert split.request("deposit", retry=True, cmd="dep-1", user_id="alice", asset="USD", amount="1000") == (
        deposit
    )
    split.request("deposit", cmd="dep-2", user_id="bob", asset="BTC", amount="5")
    withdrawal = split.request("withdraw", cmd="wd-1", user_id="alice", asset="USD", amount="10")
    order = {"user_id": "alice", "symbol": "BTC/USD", "side": "buy", "quantity": "1", "price": "90"}
    placed = split.request("place_order", cmd="pl-1", **order)
    modify = {"user_id": "alice", "order_id": placed["order_id"], "new_price": "91"}
    modified = split.request("modify_order", cmd="md-1", **modify)
    split.ledger.wait_durable(split.ledger.journal.appended, 10)
    split.stop_account()  # the leader dies; its successor replays the log
    split.start_account(tmp_path / "acct-2")
    again = {
        "wd-1": ("withdraw", {"user_id": "alice", "asset": "USD", "amount": "10"}),
        "pl-1": ("place_order", order),
        "md-1": ("modify_order", modify),
        "dep-1": ("deposit", {"user_id": "alice", "asset": "USD", "amount": "1000"}),
    }
    answers = {cmd: split.request(op, retry=True, cmd=cmd, **args) for cmd, (op, args) in again.items()}
    assert answers["wd-1"] == withdrawal and answers["dep-1"] == deposit
    assert answers["pl-1"]["order_id"] == placed["order_id"]
    assert answers["md-1"]["position"] == modified["position"]
    with pytest.raises(ExchangeError) as mixed:  # an id names one command only
        split.request("withdraw", retry=True, cmd="dep-1", user_id="alice", asset="USD", amount="1")
    assert mixed.value.code == "duplicate_command_id"
    _quiet(split)
    records = [split.ledger.journal.record_at(n) for n in range(1, split.ledger.journal.appended + 1)]
    ops = [
        (r["op"], r.get("action", {}).get("kind")) for r in records if r is not None and r["op"] != "settle"
    ]
    assert ops == [
        ("deposit", None),
        ("deposit", None),
        ("withdraw", None),
        ("route", "place"),
        ("route", "modify"),
    ]
    usd = split.request("balances", user_id="alice")["balances"]["USD"]
    assert Decimal(usd["available"]) + Decimal(usd["held"]) == Decimal(990)
    check(split.ledger.state, split.views(), quiescent=True)


def test_an_order_repeated_through_another_gateway_is_the_first_one(split: Split) -> None:
    """A client whose gateway died repeats its order, under the same client order id, through another
    gateway (a new ``cmd``, not a retry): the account answers with the order placed the first time, live
    or finished; a name reused after its user cancelled the order places a new one."""
    split.request("deposit", user_id="alice", asset="USD", amount="10000")
    split.request("deposit", user_id="bob", asset="BTC", amount="10")
    order = {"user_id": "alice", "symbol": "BTC/USD", "side": "buy", "quantity": "1", "price": "90"}
    live = split.request("place_order", client_order_id="live", **order)
    assert split.request("place_order", client_order_id="live", **order)["order_id"] == live["order_id"]
    with pytest.raises(ExchangeError) as other:  # another order under a live name
        split.request("place_order", client_order_id="live", **{**order, "price": "89"})
    assert other.value.code == "duplicate_client_order_id"
    split.request("place_order", user_id="bob", symbol="BTC/USD", side="sell", quantity="1", price="95")
    taker = {**order, "price": "95", "time_in_force": "IOC"}
    filled = split.request("place_order", client_order_id="ioc", **taker)
    assert filled["order"]["status"] == "filled"
    again = split.request("place_order", client_order_id="ioc", **taker)
    assert again["order_id"] == filled["order_id"]  # not a second trade
    split.request("cancel_order", user_id="alice", order_id=live["order_id"])
    reused = split.request("place_order", client_order_id="live", **order)
    assert reused["order_id"] != live["order_id"] and reused["order"]["status"] == "open"
    _quiet(split)
    assert split.ledger is not None
    usd = split.request("balances", user_id="alice")["balances"]["USD"]
    assert Decimal(usd["held"]) == Decimal("90.18")  # one resting order of 1 x 90 and its 0.2% fee
    check(split.ledger.state, split.views(), quiescent=True)
