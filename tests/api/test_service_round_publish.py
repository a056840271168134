"""``ExchangeService._on_round``: a durable round's messages go to the stream hub only while the hub
has a subscription (its demand names something, or None: everything); the round's waiters are
released either way."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from manticore_api.server import ServerOptions, build_service


def test_round_messages_reach_the_hub_only_with_a_subscription(tmp_path: Path) -> None:
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False, require_auth=False))
    published: list[list[dict[str, Any]]] = []
    service.hub.publish = published.append  # type: ignore[method-assign, assignment]
    batches = [[{"type": "trade", "symbol": "BTC/USD"}], [{"type": "fill", "user_id": "u"}]]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        service._loop = loop
        future = loop.create_future()
        service._waiters.append((1, 1, future, loop.time() + 30))
        service._on_round(1, batches)  # no subscription: nothing published, the waiter released
        assert published == [] and future.done()
        demand = service.hub.demand
        for field, value in (("books", {"BTC/USD"}), ("trades", {"ETH/USD"}), ("users", {"u"})):
            setattr(demand, field, value)
            service._on_round(2, batches)
            assert published == batches
            published.clear()
            setattr(demand, field, set())
            setattr(demand, field, None)  # every symbol or user
            service._on_round(3, batches)
            assert published == batches
            published.clear()
            setattr(demand, field, set())
        service._on_round(4, batches)
        assert published == []

    try:
        asyncio.run(scenario())
    finally:
        service.exchange.close(checkpoint=False)
