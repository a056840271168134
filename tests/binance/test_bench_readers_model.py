"""``benchmarks.exchange --readers server`` models exactly what ``manticore serve``'s stream listeners read
with no subscriber, and ``--readers depth`` the same with one Binance depth subscriber on the market:
the same listeners (per command or per round) with the same demands."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from benchmarks.exchange import MARKET, add_readers

from manticore_api import create_app
from manticore_api.binance.stream_names import parse_stream
from manticore_api.server import ServerOptions, build_service
from manticore_api.service import ExchangeService
from manticore_auth import AuthManager
from manticore_matching import Demand, Exchange


def _demands(exchange: Exchange) -> list[tuple[str, Any, Any, Any, bool]]:
    """Each stream listener's kind and demand, sorted (None sorts as the word "every")."""
    release = exchange._release

    def kind(listener: object) -> str:
        if listener in release.round_listeners:
            return "round"
        return "batch" if listener in release.batch_listeners else "command"

    def names(part: set[str] | None) -> Any:
        return "every" if part is None else sorted(part)

    rows = []
    for listener, demand in release.demands:
        shown = demand if demand is not None else Demand(books=None, trades=None, users=None)
        rows.append(
            (kind(listener), names(shown.books), names(shown.trades), names(shown.users), shown.fills)
        )
    return sorted(rows, key=repr)


@pytest.mark.parametrize("readers", ["server", "depth"])
def test_bench_readers_match_the_servers_listeners(tmp_path: Path, readers: str) -> None:
    served: list[tuple[str, Any, Any, Any, bool]] = []
    modelled: list[tuple[str, Any, Any, Any, bool]] = []

    async def serve() -> None:
        service = build_service(ServerOptions(data_dir=tmp_path / "serve", fsync=False))
        app = create_app(service)
        await service.start()
        try:
            if readers == "depth":
                feed = app.state.binance_feed
                spec = parse_stream(
                    MARKET.symbol.replace("/", "").lower() + "@depth", app.state.binance_markets
                )

                class _Subscriber:
                    combined = False

                    def push(self, message: object) -> None:
                        pass

                feed.subscribe(_Subscriber(), spec)
                await feed.close()
            served.extend(_demands(service.exchange))
        finally:
            await service.stop()

    async def model() -> None:
        exchange = Exchange(tmp_path / "model" / "data", markets=[MARKET], checkpoint_every=0, fsync=False)
        exchange.open()
        auth = AuthManager(f"sqlite:///{tmp_path / 'model' / 'auth.db'}", master_key=os.urandom(32))
        service = ExchangeService(exchange, auth, require_auth=False)
        add_readers(exchange, readers)  # as benchmarks.exchange.order_entry does
        await service.start()
        try:
            modelled.extend(_demands(exchange))
        finally:
            await service.stop()
            auth.close()

    asyncio.run(serve())
    asyncio.run(model())
    assert served == modelled
    book_readers = [row for row in served if row[1] != []]
    assert book_readers == ([] if readers == "server" else [("command", [MARKET.symbol], [], [], False)])
