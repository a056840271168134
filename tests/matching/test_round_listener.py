"""``Exchange.add_round_listener``: one call per durable round, with the messages of the round's
commands in journal order (the same messages, in the same order, that a per-command listener gets) and
the round's last position, before the durability listeners hear of that position."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange


def test_rounds_carry_every_command_s_messages_in_order(tmp_path: Path) -> None:
    clock = Clock()
    exchange = new_exchange(tmp_path, clock, checkpoint_every=0)
    exchange.open()
    per_command: list[list[dict[str, Any]]] = []
    rounds: list[tuple[int, list[list[dict[str, Any]]]]] = []
    durable_seen: list[int] = []
    order: list[str] = []
    exchange.add_listener(per_command.append)
    exchange.add_round_listener(
        lambda position, batches: (rounds.append((position, batches)), order.append("r"))
    )
    exchange.add_durable_listener(lambda position: (durable_seen.append(position), order.append("d")))
    for command in make_stream(8, 200):
        apply(exchange, clock, command)
    last = exchange.journal.appended
    exchange.wait_durable(last)
    exchange.close()

    assert per_command
    assert [batch for _, batches in rounds for batch in batches] == per_command
    positions = [position for position, _ in rounds]
    assert positions == sorted(set(positions)) and positions[-1] == last
    assert positions == durable_seen
    assert order == ["r", "d"] * len(rounds)
