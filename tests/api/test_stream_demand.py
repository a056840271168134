"""The stream hub's subscriptions are the exchange's demand: while a market or user has no subscriber
its messages are not built, and every WebSocket subscriber still receives exactly the frames it did
when every message was built.

Two runs of the same commands with the same clock, through :class:`ExchangeService` (its one loop
call per durable round) and the hub's connections, subscriptions coming and going between durable
commands: the reference run has an extra exchange listener that reads everything (so every message is
built, as before demands), the other only the hub's demand. Each connection's frames must be equal.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from manticore_api.service import ExchangeService
from manticore_api.streams import StreamConnection
from manticore_auth import AuthManager
from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange

#: At which command each connection subscribes (+) or unsubscribes (-): (step, name, op, channel, symbol).
_PLAN = [
    (0, "book btc", "+", "book", "BTC/USD"),
    (0, "alice", "+", "private", None),
    (10, "trades", "+", "trades", "BTC/USD"),
    (40, "late eth book", "+", "book", "ETH/USD"),
    (60, "bob", "+", "private", None),
    (60, "trades", "+", "trades", "ETH/USD"),
    (90, "book btc", "-", "book", "BTC/USD"),
    (110, "late eth book", "-", "book", "ETH/USD"),
    (120, "alice", "-", "private", None),
    (140, "book btc", "+", "book", "BTC/USD"),
]
_USERS = {"alice": "alice", "bob": "bob"}


def _frames(connection: StreamConnection) -> list[str]:
    frames = []
    while not connection.queue.empty():
        frame = connection.queue.get_nowait()
        if frame is None:  # the hub closed (service.stop)
            break
        frames.append(frame)
    return frames


def _session(directory: Path, seed: int, read_everything: bool) -> tuple[dict[str, list[str]], int]:
    """Run the commands and the subscription plan; each connection's frames, and how many messages the
    reference listener saw (0 without it)."""
    clock = Clock()
    exchange = new_exchange(directory / "data", clock, checkpoint_every=0)
    exchange.open()
    auth = AuthManager(f"sqlite:///{directory}/auth.db", master_key=os.urandom(32))
    service = ExchangeService(exchange, auth, require_auth=False, expiry_interval=3600)
    seen: list[dict[str, Any]] = []
    if read_everything:
        exchange.add_listener(seen.extend)
    commands = make_stream(seed, 160)
    connections: dict[str, StreamConnection] = {}

    async def noop_send(_frame: str) -> None:
        return None

    async def scenario() -> None:
        await service.start()
        hub = service.hub
        for step, command in enumerate(commands):
            for _, name, op, channel, symbol in [entry for entry in _PLAN if entry[0] == step]:
                connection = connections.get(name)
                if connection is None:
                    connection = connections[name] = StreamConnection(noop_send, max_queue=100_000)
                    connection.user_id = _USERS.get(name)
                    hub.add(connection)
                if op == "+":
                    answer = await hub.subscribe(connection, channel, symbol)
                    if answer:
                        connection.push(answer)
                else:
                    connection.push(hub.unsubscribe(connection, channel, symbol))
            position = apply(exchange, clock, command)
            if position is not None:
                await service.durable(position)
        await service.stop()

    try:
        asyncio.run(scenario())
    finally:
        auth.close()
    return {name: _frames(connection) for name, connection in connections.items()}, len(seen)


@pytest.mark.parametrize("seed", [2, 29])
def test_every_subscriber_gets_the_frames_it_got_when_everything_was_built(tmp_path: Path, seed: int) -> None:
    reference, built = _session(tmp_path / "reference", seed, read_everything=True)
    limited, _ = _session(tmp_path / "limited", seed, read_everything=False)
    assert built > 0
    assert set(limited) == set(reference)
    for name in reference:
        assert any('"type":"subscribed"' in frame for frame in reference[name])
        assert len(reference[name]) > 3, name  # it received stream frames, not only acknowledgements
        assert limited[name] == reference[name], name
