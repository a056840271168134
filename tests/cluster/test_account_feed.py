"""The account shard's balance messages (:mod:`manticore_cluster.account_feed`), without NATS: a ledger
on the file journal trades through the split model (deposits, withdrawals, places, cancels, modifies,
settlements) while the feed is released at random positions; every release is checked against the
balances the state had after each record."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manticore_cluster.account_feed import BalanceFeed
from manticore_cluster.account_shard import AccountLedger
from manticore_matching import Journal
from tests.cluster.split_model import SplitSystem
from tests.cluster.test_account_shard import _trade
from tests.matching.exchange_streams import Clock

#: (position, op, {user: balances right after the record}) of every record the ledger committed
History = list[tuple[int, str, dict[str, dict[str, dict[str, str]]]]]


def _check_release(
    batch: list[dict[str, Any]], released_position: int, history: History, after: int, upto: int
) -> None:
    """``batch`` is what the feed released for the records in (``after``, ``upto``]."""
    records = [entry for entry in history if after < entry[0] <= upto]
    touched = [user for _n, _op, users in records for user in users]
    assert released_position == max((n for n, _op, users in records if users), default=0)
    assert {message["user_id"] for message in batch} == set(touched)
    for message in batch:
        assert set(message) == {"type", "user_id", "balances", "transfer"}
        assert message["type"] == "balances"
    # each user's last message shows their balances after the last record that touched them
    last: dict[str, dict[str, dict[str, str]]] = {}
    for _n, _op, users in records:
        last.update(users)
    for user, balances in last.items():
        mine = [message for message in batch if message["user_id"] == user]
        assert mine[-1]["balances"] == balances
    # one transfer message per deposit or withdrawal, in journal order, showing the state after it
    transfers = [
        (user, balances)
        for _n, op, users in records
        if op in ("deposit", "withdraw")
        for user, balances in users.items()
    ]
    shown = [(message["user_id"], message["balances"]) for message in batch if message["transfer"]]
    assert shown == transfers


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), releases=st.lists(st.integers(1, 12), min_size=1, max_size=20))
def test_released_balances_are_the_states_after_the_durable_records(
    tmp_path_factory: pytest.TempPathFactory, seed: int, releases: list[int]
) -> None:
    root = tmp_path_factory.mktemp("feed")
    system = SplitSystem(root / "markets", Clock())
    ledger = AccountLedger(
        root / "account", system.new_account(), Journal(root / "account"), clock=system.clock
    )
    ledger.open()
    system.account, system.ledger = ledger.state, ledger
    history: History = []
    sent: list[tuple[int, list[dict[str, Any]]]] = []
    feed = BalanceFeed(ledger.state, lambda position, batch: sent.append((position, batch)))

    def record(entry: dict[str, Any], users: list[str]) -> None:
        feed.note(entry, users)
        history.append((entry["n"], entry["op"], {user: ledger.state.balances(user) for user in users}))

    ledger.commit_listeners.append(record)
    try:
        _trade(system, seed, 40)
        released = 0
        steps = iter(releases)
        while released < ledger.journal.appended:
            upto = min(ledger.journal.appended, released + next(steps, 12))
            sent.clear()
            feed.release(upto)
            if sent:
                assert len(sent) == 1
                _check_release(sent[0][1], sent[0][0], history, released, upto)
            else:
                _check_release([], 0, history, released, upto)
            released = upto
        assert not feed.pending
        # the last balances a client has seen are the account's: a deposit adds the same to both
        users = {user for _n, _op, touched in history for user in touched}
        assert users and all(
            Decimal(value["available"]) >= 0
            for user in users
            for value in ledger.state.balances(user).values()
        )
    finally:
        ledger.close(checkpoint=False)
        system.close()


def test_touched_users_of_each_record_kind(tmp_path: Path) -> None:
    """A deposit, withdrawal and a funded route touch their user; a cancel's route (no funding) none;
    a settlement every user it reports and its route's user."""
    system = SplitSystem(tmp_path / "markets", Clock())
    ledger = AccountLedger(tmp_path / "account", system.new_account(), Journal(tmp_path / "account"))
    ledger.open()
    system.account, system.ledger = ledger.state, ledger
    seen: list[tuple[str, str | None, list[str]]] = []
    ledger.commit_listeners.append(
        lambda record, users: seen.append((record["op"], record.get("action", {}).get("kind"), sorted(users)))
    )
    try:
        for user in ("alice", "bob"):
            system.command("deposit", user, "USD", "1000")
            system.command("deposit", user, "BTC", "5")
        system.command("withdraw", "alice", "USD", "1")
        placed = system.command("place", "alice", "BTC/USD", "sell", "1", price="100")
        assert isinstance(placed, dict)
        system.receive(system.deliver_route(placed["n"]))
        taken = system.command("place", "bob", "BTC/USD", "buy", "1", price="100")
        assert isinstance(taken, dict)
        system.receive(system.deliver_route(taken["n"]))
        rest = system.command("place", "bob", "BTC/USD", "buy", "1", price="90")
        assert isinstance(rest, dict)
        system.receive(system.deliver_route(rest["n"]))
        cancel = system.command("cancel", "bob", f"MC-{rest['n']}")
        assert isinstance(cancel, dict)
    finally:
        ledger.close(checkpoint=False)
        system.close()
    assert seen == [
        ("deposit", None, ["alice"]),
        ("deposit", None, ["alice"]),
        ("deposit", None, ["bob"]),
        ("deposit", None, ["bob"]),
        ("withdraw", None, ["alice"]),
        ("route", "place", ["alice"]),
        ("settle", None, ["alice"]),
        ("route", "place", ["bob"]),
        ("settle", None, ["alice", "bob"]),
        ("route", "place", ["bob"]),
        ("settle", None, ["bob"]),
        ("route", "cancel", []),
    ]
