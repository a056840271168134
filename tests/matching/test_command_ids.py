"""Command ids: a command sent again under its id gets the original receipt and changes nothing, also
after a restart (replay, checkpoint); ids are bounded; journals without ids replay as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from manticore_matching import Exchange, InvalidCommand, MarketConfig, OrderNotFound
from manticore_matching.command_ids import CommandResults
from manticore_matching.commands import Receipt
from tests.matching.exchange_streams import Clock, crash_releases_lock, new_exchange, state


def _receipt(receipt: Receipt) -> tuple[Any, ...]:
    return (receipt.position, receipt.order_id, receipt.order, receipt.result)


def _commands(exchange: Exchange) -> dict[str, Receipt]:
    """One command of every kind, each under its own id; their receipts by id."""
    done = {
        "d1": exchange.deposit("u1", "USD", "1000", command_id="d1"),
        "d2": exchange.deposit("u2", "BTC", "5", command_id="d2"),
        "w1": exchange.withdraw("u1", "USD", "100", command_id="w1"),
        "p1": exchange.place_order("u1", "BTC/USD", "buy", "1", "100", client_order_id="a", command_id="p1"),
        "p2": exchange.place_order("u1", "BTC/USD", "buy", "1", "99", client_order_id="b", command_id="p2"),
    }
    done["m1"] = exchange.modify_order("u1", done["p1"].order_id, new_quantity="2", command_id="m1")
    done["c1"] = exchange.cancel_order("u1", done["p2"].order_id, command_id="c1")
    done["s1"] = exchange.place_order("u2", "BTC/USD", "sell", "0.5", "100", command_id="s1")
    done["k1"] = exchange.create_market(
        MarketConfig("SOL/USD", "SOL", "USD", tick_size="0.01", lot_size="0.1"), command_id="k1"
    )
    return done


def _repeat(exchange: Exchange, done: dict[str, Receipt]) -> dict[str, Receipt]:
    """Every command of :func:`_commands` sent again under its id."""
    return {
        "d1": exchange.deposit("u1", "USD", "1000", command_id="d1"),
        "d2": exchange.deposit("u2", "BTC", "5", command_id="d2"),
        "w1": exchange.withdraw("u1", "USD", "100", command_id="w1"),
        "p1": exchange.place_order("u1", "BTC/USD", "buy", "1", "100", client_order_id="a", command_id="p1"),
        "p2": exchange.place_order("u1", "BTC/USD", "buy", "1", "99", client_order_id="b", command_id="p2"),
        "m1": exchange.modify_order("u1", done["p1"].order_id, new_quantity="2", command_id="m1"),
        "c1": exchange.cancel_order("u1", done["p2"].order_id, command_id="c1"),
        "s1": exchange.place_order("u2", "BTC/USD", "sell", "0.5", "100", command_id="s1"),
        "k1": exchange.create_market(
            MarketConfig("SOL/USD", "SOL", "USD", tick_size="0.01", lot_size="0.1"), command_id="k1"
        ),
    }


def test_a_repeated_command_gets_its_original_receipt_and_changes_nothing(tmp_path: Path) -> None:
    clock = Clock()
    with new_exchange(tmp_path, clock) as exchange:
        done = _commands(exchange)
        before = state(exchange)
        appended = exchange.journal.appended
        clock.now += 10
        again = _repeat(exchange, done)
        assert {cid: _receipt(r) for cid, r in again.items()} == {cid: _receipt(r) for cid, r in done.items()}
        assert state(exchange) == before
        assert exchange.journal.appended == appended  # nothing journaled
        # The answers are the originals, not the current state: the modify said quantity 2, open.
        assert again["m1"].order is not None and again["m1"].order["quantity"] == "2.0"
        assert again["p1"].order is not None and again["p1"].order["quantity"] == "1.0"
        # A new id is a new command (the cancelled order is not found any more).
        with pytest.raises(OrderNotFound):
            exchange.cancel_order("u1", done["p2"].order_id, command_id="c2")


def test_command_ids_survive_a_replay_and_a_checkpoint(tmp_path: Path) -> None:
    clock = Clock()
    exchange = new_exchange(tmp_path / "a", clock)
    exchange.open()
    done = _commands(exchange)
    expected = {cid: _receipt(r) for cid, r in done.items()}
    exchange.wait_durable(exchange.journal.appended)
    crash_releases_lock(exchange)  # no checkpoint: the restart replays every record
    exchange.journal.close()
    with new_exchange(tmp_path / "a", clock) as replayed:
        before = state(replayed)
        again = _repeat(replayed, done)
        assert {cid: _receipt(r) for cid, r in again.items()} == expected
        assert state(replayed) == before
    # close() wrote a checkpoint: the ids come from it now (no record is replayed).
    with new_exchange(tmp_path / "a", clock) as restored:
        assert restored.replayed_records == 0
        again = _repeat(restored, done)
        assert {cid: _receipt(r) for cid, r in again.items()} == expected
    checkpoint = json.loads((tmp_path / "a" / "checkpoint.json").read_text())
    assert [row[0] for row in checkpoint["commands"]] == list(done)


def test_an_id_of_another_kind_of_command_or_a_malformed_id_is_refused(tmp_path: Path) -> None:
    with new_exchange(tmp_path, Clock()) as exchange:
        exchange.deposit("u1", "USD", "1000", command_id="x")
        with pytest.raises(InvalidCommand) as other:
            exchange.withdraw("u1", "USD", "1", command_id="x")
        assert other.value.code == "duplicate_command_id"
        for bad in ("", "a b", "x" * 65, 7):
            with pytest.raises(InvalidCommand) as malformed:
                exchange.deposit("u1", "USD", "1", command_id=bad)  # type: ignore[arg-type]
            assert malformed.value.code == "invalid_command_id"
        assert exchange.balances("u1")["balances"]["USD"]["available"] == "1000"


def test_ids_are_forgotten_after_the_window_of_exchange_time(tmp_path: Path) -> None:
    clock = Clock()
    with new_exchange(tmp_path, clock) as exchange:
        exchange.deposit("u1", "USD", "1", command_id="old")
        clock.now += 301
        exchange.deposit("u1", "USD", "1", command_id="new")  # forgets "old"
        exchange.deposit("u1", "USD", "1", command_id="old")  # a new command now
        exchange.deposit("u1", "USD", "1", command_id="new")  # remembered: nothing
        assert exchange.balances("u1")["balances"]["USD"]["available"] == "3"


def test_the_results_are_bounded_by_count() -> None:
    results = CommandResults(window=1e9, capacity=3)
    for number in range(5):
        results.remember(f"c{number}", "deposit", float(number), Receipt(number + 1))
    assert len(results) == 3
    assert results.lookup("c1", "deposit") is None
    found = results.lookup("c4", "deposit")
    assert found is not None and found.position == 5


def test_a_journal_without_command_ids_replays_and_one_with_them_is_plain_json(tmp_path: Path) -> None:
    clock = Clock()
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    exchange.deposit("u1", "USD", "1000")  # no id: the record has no "cid", as before command ids
    exchange.deposit("u1", "USD", "5", command_id="z")
    exchange.wait_durable(exchange.journal.appended)
    records = list(exchange.journal.durable_records(after=0))
    assert [record.get("cid") for record in records if record["op"] == "deposit"] == [None, "z"]
    crash_releases_lock(exchange)
    exchange.journal.close()
    with new_exchange(tmp_path, clock) as replayed:
        assert replayed.balances("u1")["balances"]["USD"]["available"] == "1005"
        replayed.deposit("u1", "USD", "5", command_id="z")
        assert replayed.balances("u1")["balances"]["USD"]["available"] == "1005"
