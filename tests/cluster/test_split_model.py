"""Account shard + market shards in one process (no NATS), against the rules money must obey.

Random deposits, withdrawals, places (limit GTC/IOC/GTD, market), cancels and modifies by three users
across two markets on two market-shard exchanges; route messages and settlement batches are delivered
in arbitrary order, more than once, or not yet; market shards restart (cleanly or after a crash) and
the account is rebuilt from its log. After every step: the market shards' risk invariants, no
available balance left on a market shard, the account's projection mirrors every market shard's holds,
and per asset the account's available + held + the market shards' fees equal deposits - withdrawals.
Once quiescent: the same for the account itself, and its live orders are exactly the books' live orders.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from manticore_matching import ExchangeError
from tests.cluster.split_model import SplitSystem
from tests.matching.exchange_streams import Clock

USERS = ("alice", "bob", "carol")
SYMBOLS = {
    "BTC/USD": ("BTC", Decimal("0.5"), Decimal("0.1"), 100),
    "ETH/USD": ("ETH", Decimal("0.01"), Decimal("0.01"), 20),
}


def _books_live(system: SplitSystem) -> dict[str, str]:
    live: dict[str, str] = {}
    for exchange in system.markets.values():
        for symbol in exchange.markets:
            for order in exchange.book(symbol).get_orders():
                live[order["order_id"]] = order["user_id"]
    return live


class SplitMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(self._tmp_factory.mktemp("split"))  # type: ignore[attr-defined]
        self.clock = Clock()
        self.system = SplitSystem(self.root, self.clock)
        self.inbox: list[dict[str, Any]] = []  # market answers not yet delivered to the account

    # ------------------------------------------------------------------ commands at the account

    @rule(
        user=st.sampled_from(USERS), asset=st.sampled_from(["USD", "BTC", "ETH"]), amount=st.integers(1, 5000)
    )
    def deposit(self, user: str, asset: str, amount: int) -> None:
        assert isinstance(self.system.command("deposit", user, asset, str(amount)), dict)

    @rule(
        user=st.sampled_from(USERS), asset=st.sampled_from(["USD", "BTC", "ETH"]), amount=st.integers(1, 3000)
    )
    def withdraw(self, user: str, asset: str, amount: int) -> None:
        available = self.system.account.available.get(user, {}).get(asset, Decimal(0))
        result = self.system.command("withdraw", user, asset, str(amount))
        assert isinstance(result, dict) == (amount <= available)

    @rule(
        user=st.sampled_from(USERS),
        symbol=st.sampled_from(sorted(SYMBOLS)),
        side=st.sampled_from(["buy", "sell"]),
        kind=st.sampled_from(["limit", "limit", "ioc", "gtd", "market"]),
        ticks=st.integers(-6, 6),
        lots=st.integers(1, 30),
        name=st.sampled_from([None, None, "a", "b"]),
    )
    def place(
        self, user: str, symbol: str, side: str, kind: str, ticks: int, lots: int, name: str | None
    ) -> None:
        _base, tick, lot, centre = SYMBOLS[symbol]
        quantity = str(lot * lots)
        kwargs: dict[str, Any] = {"client_order_id": name}
        if kind == "market":
            kwargs["order_type"] = "market"
        else:
            kwargs["price"] = str(Decimal(centre) + tick * ticks)
            if kind == "ioc":
                kwargs["time_in_force"] = "IOC"
            elif kind == "gtd":
                kwargs["time_in_force"] = "GTD"
                kwargs["expiry_time"] = self.clock() + 5
        result = self.system.command("place", user, symbol, side, quantity, **kwargs)
        if isinstance(result, ExchangeError):
            assert result.code in (
                "insufficient_balance",
                "max_open_orders",
                "rate_limited",
                "duplicate_client_order_id",
            ), result

    @precondition(lambda self: bool(self.system.account.orders))
    @rule(data=st.data(), by_name=st.booleans())
    def cancel(self, data: st.DataObject, by_name: bool) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.system.account.orders)))
        order = self.system.account.orders[order_id]
        if by_name and order["client_order_id"] is not None:
            result = self.system.command("cancel", order["user_id"], None, order["client_order_id"])
        else:
            result = self.system.command("cancel", order["user_id"], order_id)
        if isinstance(result, ExchangeError):
            assert result.code == "order_busy", result

    @precondition(lambda self: bool(self.system.account.orders))
    @rule(data=st.data(), ticks=st.none() | st.integers(-6, 6), lots=st.none() | st.integers(1, 40))
    def modify(self, data: st.DataObject, ticks: int | None, lots: int | None) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.system.account.orders)))
        order = self.system.account.orders[order_id]
        _base, tick, lot, centre = SYMBOLS[order["symbol"]]
        price = None if ticks is None or order["price"] is None else str(Decimal(centre) + tick * ticks)
        quantity = None if lots is None else str(lot * lots)
        if price is None and quantity is None:
            return
        result = self.system.command(
            "modify", order["user_id"], order_id, new_price=price, new_quantity=quantity
        )
        if isinstance(result, ExchangeError):
            assert result.code in ("insufficient_balance", "rate_limited", "order_busy"), result

    # ------------------------------------------------------------------ the network

    @precondition(lambda self: bool(self.system.account.routes))
    @rule(data=st.data(), answer_now=st.booleans(), times=st.integers(1, 3))
    def deliver_route(self, data: st.DataObject, answer_now: bool, times: int) -> None:
        """A route reaches its market shard (``times`` times: resent while unanswered); its answer
        reaches the account now or later."""
        position = data.draw(st.sampled_from(sorted(self.system.account.routes)))
        for _ in range(times):
            answer = self.system.deliver_route(position)
            self.inbox.extend(answer)
        if answer_now:
            self.system.receive(answer)

    @precondition(lambda self: bool(self.inbox))
    @rule(seed=st.integers(0, 1000), keep=st.booleans())
    def deliver_late_answers(self, seed: int, keep: bool) -> None:
        """Answers held back arrive shuffled (and may arrive again later)."""
        batch = list(self.inbox)
        random.Random(seed).shuffle(batch)
        self.system.receive(batch)
        if not keep:
            self.inbox.clear()

    @rule(shard=st.sampled_from(["m1", "m2"]), skip=st.integers(0, 3))
    def outbox_push(self, shard: str, skip: int) -> None:
        """A market shard resends its outbox (after a failover: everything after what the account has)."""
        entries = self.system.pending_settlements(shard)
        self.system.receive(entries[skip:])  # a batch that starts too late applies nothing

    @rule(seconds=st.sampled_from([0.1, 1.0, 6.0]), shard=st.sampled_from(["m1", "m2"]))
    def time_passes(self, seconds: float, shard: str) -> None:
        self.clock.now += seconds
        self.system.expire(shard)

    # ------------------------------------------------------------------ restarts

    @rule(shard=st.sampled_from(["m1", "m2"]), clean=st.booleans())
    def restart_market(self, shard: str, clean: bool) -> None:
        self.system.restart_market(shard, clean=clean)

    @rule()
    def rebuild_account(self) -> None:
        self.system.rebuild_account()

    @rule()
    def quiesce(self) -> None:
        self.system.quiesce()
        self.inbox.clear()
        self.system.check(quiescent=True)
        live = _books_live(self.system)
        assert {oid: o["user_id"] for oid, o in self.system.account.orders.items()} == live

    # ------------------------------------------------------------------ invariants

    @invariant()
    def money_is_conserved(self) -> None:
        self.system.check()

    @invariant()
    def answers_are_final(self) -> None:
        """The first settlement the account applied for a route is the answer; a duplicate delivery
        never changes it."""
        for position, entry in self.system.answers.items():
            seen = self.system.account.results.get(position)
            if seen is not None:
                assert seen == entry

    def teardown(self) -> None:
        try:
            self.system.quiesce()
            self.system.check(quiescent=True)
        finally:
            self.system.close()


@pytest.fixture
def split_machine(tmp_path_factory: pytest.TempPathFactory) -> type[SplitMachine]:
    SplitMachine._tmp_factory = tmp_path_factory  # type: ignore[attr-defined]
    return SplitMachine


def test_account_and_market_shards_conserve_money(split_machine: type[SplitMachine]) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        split_machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
