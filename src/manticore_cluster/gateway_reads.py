"""A gateway's awaitable reads: :class:`RemoteReads`, the :class:`~manticore_api.reads.AsyncReads` of a
:class:`~.remote.RemoteExchange`.

Each read is a request to the shard's leader awaited on the API's event loop
(:meth:`~.remote.RemoteExchange.read`): the loop serves other requests meanwhile, and a read made while
no leader answers waits for one (retrying like a command) until the remote exchange's deadline, then
raises ServiceUnavailable (503). Answers are the leader's exchange's, converted as the synchronous
methods of :class:`~.remote.RemoteExchange` convert them.
"""

from __future__ import annotations

from typing import Any, cast

from manticore_api.reads import AsyncReads
from manticore_matching import Exchange, MarketConfig

from .remote import RemoteExchange

__all__ = ["RemoteReads"]


class RemoteReads(AsyncReads):
    """The reads of ``remote`` (see the module doc)."""

    __slots__ = ("remote",)

    def __init__(self, remote: RemoteExchange) -> None:
        super().__init__(cast(Exchange, remote))
        self.remote = remote

    async def markets(self) -> dict[str, MarketConfig]:
        answer = await self.remote.read("markets")
        return {symbol: MarketConfig.from_dict(config) for symbol, config in answer.items()}

    async def require_market(self, symbol: object) -> None:
        await self.remote.read("require_market", symbol=symbol)

    async def get_snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.remote.read("get_snapshot", symbol=symbol, depth=depth)
        return result

    async def recent_trades(self, symbol: str, limit: int = 100) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.remote.read("recent_trades", symbol=symbol, limit=limit)
        return result

    async def balances(self, user_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.remote.read("balances", user_id=user_id)
        return result

    async def open_orders(self, user_id: str, symbol: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.remote.read("open_orders", user_id=user_id, symbol=symbol)
        return result

    async def get_order(self, user_id: str | None, order_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self.remote.read(
            "get_order", user_id=user_id, order_id=order_id
        )
        return result

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self.remote.read(
            "get_order_by_client_id", user_id=user_id, client_order_id=client_order_id
        )
        return result

    async def statistics(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.remote.read("statistics")
        return result
