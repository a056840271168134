"""The account shard's journaled state machine (AccountLedger) on the file journal and on JetStream."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from manticore_cluster.account_shard import AccountLedger
from manticore_cluster.log import JetStreamJournal
from manticore_cluster.natsconf import NatsOptions
from manticore_matching import CommandLog, Journal, ServiceUnavailable
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


def test_an_account_successor_absorbs_the_deposed_leader_s_late_message(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    """The account shard takes over on the same claim as a market shard (one ShardInstance path): a
    late message of the deposed account leader (lower term) that lands where the successor claims is
    applied by the following ledger; the successor writes on top of it, unfenced."""
    system = SplitSystem(tmp_path / "markets", Clock())
    old_journal = JetStreamJournal(nats_options, "account")
    old_journal.claim(10, "old")
    old = AccountLedger(tmp_path / "old", system.new_account(), old_journal, clock=system.clock)
    old.open()
    old.deposit("alice", "USD", "100")
    assert old.wait_durable(old.journal.appended, 10)
    promote = threading.Event()
    new_journal = JetStreamJournal(nats_options, "account", follow_until=promote)
    new = AccountLedger(tmp_path / "new", system.new_account(), new_journal, clock=system.clock)
    opening = threading.Thread(target=new.open)
    opening.start()
    deadline = time.monotonic() + 20
    while new_journal.stream_sequence < old_journal.stream_sequence:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    seen = new_journal.stream_sequence
    late = old.deposit("alice", "USD", "5")  # in flight while the lease passed on: it lands now
    assert old.wait_durable(late["n"], 10)
    new_journal.claim(20, "new", expected=seen)
    promote.set()
    opening.join(20)
    assert not opening.is_alive()
    assert new.state.export() == old.state.export()  # the late deposit included
    mine = new.deposit("alice", "USD", "2")
    assert new.wait_durable(mine["n"], 10) and mine["n"] == late["n"] + 1
    stale = old.deposit("bob", "USD", "1")
    with pytest.raises(ServiceUnavailable):
        old.wait_durable(stale["n"], 10)
    expected = new.state.export()
    new.journal.close()
    old.journal.close()
    rebuilt = AccountLedger(
        tmp_path / "rebuilt",
        system.new_account(),
        JetStreamJournal(nats_options, "account"),
        clock=system.clock,
    )
    rebuilt.open()
    assert rebuilt.state.export() == expected
    rebuilt.journal.close()
    system.close()
