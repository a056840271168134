"""The account shard's journaled state machine (AccountLedger) on the file journal and on JetStream."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from manticore_cluster.account_shard import AccountLedger
from manticore_cluster.log import JetStreamJournal
from manticore_cluster.natsconf import NatsOptions
from manticore_matching import CommandLog, Journal
from tests.cluster.split_model import SplitSystem
from tests.matching.exchange_streams import Clock


def _trade(system: SplitSystem, seed: int, steps: int) -> None:
    """A reproducible conversation: deposits, places on both markets, cancels, modifies, deliveries."""
    rng = random.Random(seed)
    for user in ("alice", "bob"):
        for asset, amount in (("USD", "5000"), ("BTC", "20"), ("ETH", "50")):
            system.command("deposit", user, asset, amount)
    for _ in range(steps):
        roll = rng.random()
        user = rng.choice(("alice", "bob"))
        if roll < 0.5:
            symbol, price = rng.choice((("BTC/USD", 100), ("ETH/USD", 20)))
            system.command(
                "place", user, symbol, rng.choice(("buy", "sell")), "1", price=str(price + rng.randint(-2, 2))
            )
        elif roll < 0.6 and system.account.orders:
            order_id = rng.choice(sorted(system.account.orders))
            system.command("cancel", system.account.orders[order_id]["user_id"], order_id)
        elif roll < 0.7 and system.account.orders:
            order_id = rng.choice(sorted(system.account.orders))
            system.command("modify", system.account.orders[order_id]["user_id"], order_id, new_quantity="2")
        elif roll < 0.75:
            system.command("withdraw", user, "USD", "10")
        elif system.account.routes:
            position = rng.choice(sorted(system.account.routes))
            system.receive(system.deliver_route(position))


def _run(tmp_path: Path, factory: Any, restart: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Trade through an AccountLedger on ``factory()``'s journal, restart it (``clean``: checkpoint;
    ``crash``: none), trade on; return (state before restart, state after, state rebuilt from the log)."""
    system = SplitSystem(tmp_path / "markets", Clock())
    data = tmp_path / "account"
    ledger = AccountLedger(data, system.new_account(), factory(), clock=system.clock)
    ledger.open()
    system.account, system.ledger = ledger.state, ledger
    _trade(system, 5, 60)
    assert ledger.wait_durable(ledger.journal.appended, 10)
    before = ledger.state.export()
    results = dict(ledger.state.results)
    assert results
    if restart == "clean":
        ledger.close()
    else:
        ledger.journal.close()
    ledger = AccountLedger(data, system.new_account(), factory(), clock=system.clock)
    ledger.open()
    assert ledger.replayed_records == (0 if restart == "clean" else len(system.log))
    after = ledger.state.export()
    # the answers kept for recognising retried places survive the restart, checkpoint or not
    assert ledger.state.results == results
    system.account, system.ledger = ledger.state, ledger
    _trade(system, 6, 60)
    system.quiesce()
    system.check(quiescent=True)
    assert ledger.wait_durable(ledger.journal.appended, 10)
    final = ledger.state.export()
    ledger.journal.close()
    if restart == "crash":  # a checkpoint lets the file journal drop its older segments
        rebuilt = AccountLedger(tmp_path / "elsewhere", system.new_account(), factory(), clock=system.clock)
        rebuilt.open()
        assert rebuilt.state.export() == final
        rebuilt.journal.close()
    system.close()
    return before, after, final


@pytest.mark.parametrize("restart", ["clean", "crash"])
def test_the_account_ledger_restarts_on_its_file_journal(tmp_path: Path, restart: str) -> None:
    def factory() -> CommandLog:
        return Journal(tmp_path / "account-log", fsync=False)

    before, after, _final = _run(tmp_path, factory, restart)
    assert after == before


def test_the_account_ledger_restarts_on_jetstream(tmp_path: Path, nats_options: NatsOptions) -> None:
    def factory() -> CommandLog:
        return JetStreamJournal(nats_options, "account")

    before, after, _final = _run(tmp_path, factory, "crash")
    assert after == before
