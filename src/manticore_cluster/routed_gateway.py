"""A gateway's exchange in a split deployment (phase 2): the account shard plus the market shards.

:class:`RoutedExchange` is a :class:`~.remote.RemoteExchange` of the **account shard** (commands and
balances go there: it holds funds and routes orders) that also keeps one ``RemoteExchange`` per
**market shard**: reads by symbol (snapshot, recent trades) go to the shard owning the symbol, reads
of orders (open orders, one order, history, fills) ask every market shard, and every market shard's
stream messages reach the gateway's listeners (WebSocket fan-out), each shard's in its journal order.
The request path is RemoteExchange's own (retries, deadlines, tickets), unchanged.

The Binance-compatible surface reads the configured risk limits from the account shard (``call``, as
every op not routed here), the stored trades of one market from the market shard owning it, and flushes
every market shard's storage before a read of stored orders (:meth:`flush_storage`);
:class:`~.gateway_binance.RemoteTradeHistory` loads the stored trade history from each market shard of
:attr:`RoutedExchange.trade_sources` in turn.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from manticore_matching import Demand, MarketConfig, UnknownMarket

from .remote import Listener, RemoteExchange

__all__ = ["RoutedExchange"]

#: Reads whose ``symbol`` argument (when given) names the market shard that answers them.
_BY_SYMBOL = frozenset(
    {
        "require_market",
        "get_snapshot",
        "recent_trades",
        "open_orders",
        "order_history",
        "fills",
        "stored_trades",
    }
)
#: Reads the account shard answers.
_ACCOUNT_READS = frozenset({"balances"})


class RoutedExchange(RemoteExchange):
    """The account shard ``shard`` and the market shards of ``market_shards`` (symbol -> shard name);
    the other arguments are :class:`RemoteExchange`'s, used for every connection."""

    def __init__(
        self, servers: str | list[str], shard: str, prefix: str, market_shards: dict[str, str], **kwargs: Any
    ) -> None:
        super().__init__(servers, shard, prefix, **kwargs)
        self.market_shards = dict(market_shards)
        self._wrapped: dict[Listener, Listener] = {}
        self.remotes = {
            name: RemoteExchange(servers, name, prefix, **kwargs)
            for name in sorted(set(market_shards.values()))
        }
        # Reads that ask several shards run their blocking round trips here, off the caller's loop.
        self._fan_out = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="routed-read")

    def open(self) -> None:
        super().open()
        try:
            for remote in self.remotes.values():
                remote.open()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._fan_out.shutdown(wait=False, cancel_futures=True)
        for remote in self.remotes.values():
            remote.close()
        super().close()

    def start_read(self, op: str, **args: Any) -> concurrent.futures.Future[Any]:
        """A read (see :meth:`RemoteExchange.start_read`, which :meth:`read` awaits) sent where the
        split deployment answers it: ``balances`` to the account shard; a read of one market (``symbol``
        given) to the market shard owning it; a read of every market (the market list, a user's orders
        or history over all markets, an order by id, statistics) to every market shard, merged as the
        synchronous methods below merge them, in a worker thread. The future's result has the shape of
        the leader's answer (the market list as configuration dicts)."""
        if op in _ACCOUNT_READS:
            return super().start_read(op, **args)
        symbol = args.get("symbol")
        if op in _BY_SYMBOL and symbol is not None:
            try:
                owner = self._owner(symbol)
            except UnknownMarket as exc:
                failed: concurrent.futures.Future[Any] = concurrent.futures.Future()
                failed.set_exception(exc)
                return failed
            return owner.start_read(op, **args)
        if op == "markets":
            return self._fan_out.submit(self._market_dicts)
        return self._fan_out.submit(getattr(self, op), **args)

    @property
    def trade_sources(self) -> list[RemoteExchange]:
        """The market shards, each answering ``trade_rows`` (its stored trades, paged) for its markets."""
        return list(self.remotes.values())

    def flush_storage(self) -> bool:
        """Flush every market shard's storage (blocking); True when every one flushed in time."""
        return all([bool(remote.call("flush_storage")) for remote in self.remotes.values()])

    def _market_dicts(self) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for remote in self.remotes.values():
            answer.update(remote.call("markets"))
        return answer

    def _owner(self, symbol: object) -> RemoteExchange:
        name = self.market_shards.get(symbol) if isinstance(symbol, str) else None
        if name is None:
            raise UnknownMarket(f"there is no market {str(symbol)[:64]!r}")
        return self.remotes[name]

    # ------------------------------------------------------------------ market data

    def add_listener(self, listener: Listener, demand: Demand | None = None) -> None:
        """Every market shard's stream messages without their ``balances`` messages (a market shard
        holds only what its books need: its balances are not the user's), and the account shard's
        ``balances`` messages, each touched user's balances after every durable change of the account
        (:mod:`.account_feed`: they carry ``transfer``, true for a deposit or withdrawal). Each shard's
        messages come in its journal order; a fill's ``order``/``fill`` messages (market shard) come
        before the ``balances`` message of its settlement (account shard), which is journaled only
        after the market shard published them."""
        wrapped = self._wrapped.setdefault(listener, _without_balances(listener))
        for remote in self.remotes.values():
            remote.add_listener(wrapped)
        super().add_listener(listener, demand)

    def remove_listener(self, listener: Listener) -> None:
        wrapped = self._wrapped.pop(listener, None)
        if wrapped is not None:
            for remote in self.remotes.values():
                remote.remove_listener(wrapped)
        super().remove_listener(listener)

    # ------------------------------------------------------------------ reads

    @property
    def markets(self) -> dict[str, MarketConfig]:
        configs: dict[str, MarketConfig] = {}
        for remote in self.remotes.values():
            configs.update(remote.markets)
        return configs

    def require_market(self, symbol: object) -> None:
        self._owner(symbol).require_market(symbol)

    def get_snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        return self._owner(symbol).get_snapshot(symbol, depth)

    def recent_trades(self, symbol: str, limit: int = 100) -> list[dict[str, Any]]:
        return self._owner(symbol).recent_trades(symbol, limit)

    def open_orders(self, user_id: str, symbol: str | None = None) -> list[dict[str, Any]]:
        if symbol is not None:
            return self._owner(symbol).open_orders(user_id, symbol)
        return [order for remote in self.remotes.values() for order in remote.open_orders(user_id)]

    def get_order(self, user_id: str | None, order_id: str) -> dict[str, Any] | None:
        for remote in self.remotes.values():
            found = remote.get_order(user_id, order_id)
            if found is not None:
                return found
        return None

    def get_order_by_client_id(self, user_id: str, client_order_id: str) -> dict[str, Any] | None:
        for remote in self.remotes.values():
            found = remote.get_order_by_client_id(user_id, client_order_id)
            if found is not None:
                return found
        return None

    def recent_order_by_client_id(self, user_id: object, client_order_id: object) -> dict[str, Any] | None:
        for remote in self.remotes.values():
            found = remote.recent_order_by_client_id(user_id, client_order_id)
            if found is not None:
                return found
        return None

    def order_history(
        self, user_id: str, symbol: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        if symbol is not None:
            return self._owner(symbol).order_history(user_id, symbol, limit)
        rows = [row for remote in self.remotes.values() for row in remote.order_history(user_id, None, limit)]
        return rows[:limit]

    def fills(self, user_id: str, symbol: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if symbol is not None:
            return self._owner(symbol).fills(user_id, symbol, limit)
        rows = [row for remote in self.remotes.values() for row in remote.fills(user_id, None, limit)]
        return rows[:limit]

    def statistics(self) -> dict[str, Any]:
        return {name: remote.statistics() for name, remote in self.remotes.items()}

    def journal_state(self) -> dict[str, Any]:
        return {name: remote.journal_state() for name, remote in self.remotes.items()}

    def component_health(self) -> dict[str, Any]:
        """The first market shard's report (journal, storage, resting orders of its books)."""
        first = next(iter(self.remotes.values()))
        return first.component_health()


def _without_balances(listener: Listener) -> Listener:
    def deliver(messages: list[dict[str, Any]]) -> None:
        kept = [message for message in messages if message.get("type") != "balances"]
        if kept:
            listener(kept)

    return deliver
