"""An account shard and two market shards in one process, with a network the test controls.

No NATS: the account shard's log is a list of records (JSON round-tripped, as a journal stores them),
each market shard is a real :class:`~manticore_matching.Exchange` (``settle_as``) on its file journal.
A route message or a batch of settlements is "delivered" when the test says so, as often as it says
so, in the order it chooses: exactly what outbox delivery with retries and failovers can do.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from manticore_cluster.account import AccountState
from manticore_cluster.account_shard import AccountLedger
from manticore_cluster.conservation import check, market_view
from manticore_matching import Exchange, ExchangeError, MarketConfig
from manticore_risk import RiskLimits
from tests.matching.exchange_streams import Clock, crash_releases_lock

BTC = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.1"), Decimal("0.001"), Decimal("0.002")
)
ETH = MarketConfig(
    "ETH/USD", "ETH", "USD", Decimal("0.01"), Decimal("0.01"), Decimal("-0.0005"), Decimal("0.002")
)
SHARDS = {"m1": (BTC,), "m2": (ETH,)}
ACCOUNT_LIMITS = RiskLimits(max_open_orders=6, rate_limit_orders=40, rate_limit_window=1.0)


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def market_state(exchange: Exchange) -> dict[str, Any]:
    """What a market shard's restart must reproduce: books, ledger, outbox."""
    assert exchange.outbox is not None
    return {
        "books": {symbol: exchange.book(symbol).export_state() for symbol in exchange.markets},
        "risk": exchange.risk.export_state(),
        "outbox": _copy(exchange.outbox.export()),
    }


class SplitSystem:
    """One account state machine, market-shard exchanges, and what the account journaled."""

    def __init__(self, root: Path, clock: Clock) -> None:
        self.root = root
        self.clock = clock
        self.markets: dict[str, Exchange] = {}
        for shard in SHARDS:
            self.markets[shard] = self._open_market(shard)
        self.account = self.new_account()
        self.log: list[dict[str, Any]] = []
        #: the account's journaled form, when a test gives one (its state is :attr:`account`)
        self.ledger: AccountLedger | None = None
        #: route position -> the settlement the client saw (its answer), first time only
        self.answers: dict[int, dict[str, Any]] = {}

    def new_account(self) -> AccountState:
        routing = {config.symbol: (config, shard) for shard, configs in SHARDS.items() for config in configs}
        return AccountState("acct", routing, ACCOUNT_LIMITS)

    def _open_market(self, shard: str) -> Exchange:
        exchange = Exchange(
            self.root / shard,
            markets=SHARDS[shard],
            clock=self.clock,
            fsync=False,
            settle_as=shard,
            checkpoint_every=0,
        )
        exchange.open()
        return exchange

    # ------------------------------------------------------------------ the account's journal

    def journal(self, record: dict[str, Any]) -> dict[str, Any]:
        """Journal an account record at the next position and apply it (as a JSON round trip); through
        :attr:`ledger` when one is set."""
        if self.ledger is not None:
            record = self.ledger.commit(_copy(record))
            self.log.append(_copy(record))
            return record
        record = _copy({**record, "n": len(self.log) + 1})
        self.log.append(record)
        self.account.apply(record)
        return record

    def next_position(self) -> int:
        return self.ledger.journal.appended + 1 if self.ledger is not None else len(self.log) + 1

    def command(self, op: str, *args: Any, **kwargs: Any) -> dict[str, Any] | ExchangeError:
        """Run an account command (``place``, ``cancel``, ``modify``, ``deposit``, ``withdraw``): its
        record, or the error that refused it (nothing journaled then)."""
        now = self.clock()
        account = self.account
        try:
            if op == "place":
                record = account.place_record(now, self.next_position(), *args, **kwargs)
            elif op == "cancel":
                record = account.cancel_record(now, *args, **kwargs)
            elif op == "modify":
                record = account.modify_record(now, *args, **kwargs)
            else:
                record = account.transfer_record(now, op, *args, **kwargs)
        except ExchangeError as exc:
            return exc
        return self.journal(record)

    # ------------------------------------------------------------------ the network

    def deliver_route(self, position: int) -> list[dict[str, Any]]:
        """Send the pending route at ``position`` to its market shard; return what the market answers
        (its settlements after what the account has applied), not yet delivered to the account."""
        message = _copy(self.account.message(position))
        shard = message.pop("shard")
        exchange = self.markets[shard]
        entry = exchange.routed(**message)
        if entry.get("stale"):
            return []
        assert exchange.wait_durable(entry["seq"], 10)
        assert exchange.outbox is not None
        return _copy(exchange.outbox.after(message["acked"]))

    def pending_settlements(self, shard: str, after: int = 0) -> list[dict[str, Any]]:
        outbox = self.markets[shard].outbox
        assert outbox is not None
        return _copy(outbox.after(after))

    def receive(self, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The account journals the settlements among ``entries`` that apply next."""
        record = self.account.settle_record(self.clock(), entries)
        if record is None:
            return None
        record = self.journal(record)
        for entry in record["entries"]:
            routed = entry["routed"]
            if routed is not None and routed[0] == "acct":
                self.answers.setdefault(int(routed[1]), entry)
        return record

    def expire(self, shard: str) -> int:
        return self.markets[shard].expire_due()

    def quiesce(self) -> None:
        """Deliver every pending route and every settlement."""
        for _ in range(100):
            if not self.account.routes and all(
                not self.pending_settlements(s, self.account.applied.get(s, 0)) for s in self.markets
            ):
                return
            for position in sorted(self.account.routes):
                if position in self.account.routes:
                    self.receive(self.deliver_route(position))
            for shard in self.markets:
                self.receive(self.pending_settlements(shard))
        raise AssertionError("the system does not quiesce")

    # ------------------------------------------------------------------ checks and restarts

    def check(self, *, quiescent: bool = False) -> None:
        check(self.account, {s: market_view(e) for s, e in self.markets.items()}, quiescent=quiescent)

    def restart_market(self, shard: str, *, clean: bool) -> None:
        """Stop a market shard (a clean close, or a crash after its journal is durable) and open it
        again; its state must be the same."""
        exchange = self.markets[shard]
        assert exchange.wait_durable(exchange.journal.appended, 10)
        before = market_state(exchange)
        if clean:
            exchange.close()
        else:
            exchange.journal.close()
            assert exchange.storage is not None
            exchange.storage.close()
            crash_releases_lock(exchange)
        self.markets[shard] = self._open_market(shard)
        assert market_state(self.markets[shard]) == before

    def rebuild_account(self) -> None:
        """Replace the account by one rebuilt from its log; it must be the same state."""
        rebuilt = self.new_account()
        for record in self.log:
            rebuilt.apply(_copy(record))
        assert rebuilt.export() == self.account.export()
        self.account = rebuilt

    def close(self) -> None:
        for exchange in self.markets.values():
            exchange.close()
