"""An independent model of what every user must have, to check an exchange's balances exactly.

The model knows only what a scenario says happened: deposits, the trades (price, quantity, who bought and
who sold, who was the taker) and which orders are live with which limit price and open quantity. From
those and the market's fee rates it computes, with exact decimals, each user's total per asset and the
part held by live orders (docs/risk.md: a sell holds its open quantity, a buy ``limit x open x margin``),
and compares them with ``Exchange.balances``, the fee account and the exchange's own open orders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from manticore_matching import Exchange, MarketConfig

ZERO = Decimal(0)


@dataclass
class Live:
    """A live order as the scenario expects it."""

    user: str
    side: str
    limit: Decimal | None  # None: a sell without a price (stop-market or trailing stop)
    open: Decimal
    status: str = "open"


@dataclass
class LedgerModel:
    market: MarketConfig
    deposits: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    flows: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    fees: Decimal = ZERO
    trades: list[tuple[str, str, str, Decimal, Decimal]] = field(default_factory=list)
    live: dict[str, Live] = field(default_factory=dict)

    @property
    def margin(self) -> Decimal:
        return 1 + max(self.market.maker_fee_rate, self.market.taker_fee_rate, ZERO)

    def fund(self, exchange: Exchange, user: str, quote: str, base: str) -> None:
        for asset, amount in ((self.market.quote_asset, quote), (self.market.base_asset, base)):
            exchange.deposit(user, asset, amount)
            key = (user, asset)
            self.deposits[key] = self.deposits.get(key, ZERO) + Decimal(amount)

    def _flow(self, user: str, asset: str, amount: Decimal) -> None:
        self.flows[(user, asset)] = self.flows.get((user, asset), ZERO) + amount

    def trade(self, buyer: str, seller: str, taker_side: str, price: str, quantity: str) -> None:
        """One execution at ``price`` (the maker's) of ``quantity``."""
        p, q = Decimal(price), Decimal(quantity)
        notional = p * q
        maker_fee = notional * self.market.maker_fee_rate
        taker_fee = notional * self.market.taker_fee_rate
        buyer_fee, seller_fee = (taker_fee, maker_fee) if taker_side == "buy" else (maker_fee, taker_fee)
        quote, base = self.market.quote_asset, self.market.base_asset
        self._flow(buyer, quote, -(notional + buyer_fee))
        self._flow(buyer, base, q)
        self._flow(seller, base, -q)
        self._flow(seller, quote, notional - seller_fee)
        self.fees += maker_fee + taker_fee
        self.trades.append((buyer, seller, taker_side, p, q))

    def rest(
        self, order_id: str, user: str, side: str, limit: str | None, open_: str, status: str = "open"
    ) -> None:
        self.live[order_id] = Live(
            user, side, None if limit is None else Decimal(limit), Decimal(open_), status
        )

    def done(self, order_id: str) -> None:
        del self.live[order_id]

    def users(self) -> set[str]:
        return {user for user, _ in self.deposits}

    def expected(self, user: str) -> dict[str, dict[str, Decimal]]:
        quote, base = self.market.quote_asset, self.market.base_asset
        held = {quote: ZERO, base: ZERO}
        for order in self.live.values():
            if order.user != user:
                continue
            if order.side == "sell":
                held[base] += order.open
            else:
                assert order.limit is not None, "a live buy always has a limit price"
                held[quote] += order.limit * order.open * self.margin
        result = {}
        for asset in (quote, base):
            total = self.deposits.get((user, asset), ZERO) + self.flows.get((user, asset), ZERO)
            result[asset] = {"available": total - held[asset], "held": held[asset]}
        return result

    def check(self, exchange: Exchange) -> None:
        """Balances, fees, conservation and the live orders all exactly as the model says."""
        quote = self.market.quote_asset
        assert exchange.risk.fees_collected().get(quote, ZERO) == self.fees
        for asset in (quote, self.market.base_asset):
            deposited = sum((v for (_, a), v in self.deposits.items() if a == asset), ZERO)
            assert exchange.risk.total(asset) == deposited
        exchange.risk.check_invariants()
        self.check_views(
            lambda user: exchange.balances(user)["balances"],
            exchange.open_orders,
            exchange.recent_trades(self.market.symbol, 1000),
        )

    def check_views(
        self,
        balances_of: Callable[[str], dict[str, dict[str, str]]],
        open_orders_of: Callable[[str], list[dict[str, Any]]],
        trades_newest_first: list[dict[str, Any]],
    ) -> None:
        """Each user's balances and live orders, and the market's prints, exactly as the model says (the
        views as the exchange or its REST API give them). Every user's total is exact, so money is
        conserved: sum of the totals + the model's fees == deposits."""
        for user in sorted(self.users()):
            got = balances_of(user)
            for asset, want in self.expected(user).items():
                have = got.get(asset, {"available": "0", "held": "0"})
                assert Decimal(have["available"]) == want["available"], (user, asset, have, want)
                assert Decimal(have["held"]) == want["held"], (user, asset, have, want)
        live: dict[str, Any] = {}
        for user in self.users():
            for order in open_orders_of(user):
                if order.get("symbol", self.market.symbol) == self.market.symbol:
                    live[order["order_id"]] = order
        assert set(live) == set(self.live), (sorted(live), sorted(self.live))
        for order_id, want in self.live.items():
            have = live[order_id]
            assert (have["user_id"], have["side"]) == (want.user, want.side)
            assert Decimal(have["remaining_quantity"]) == want.open
            assert have["status"] == want.status, (order_id, have["status"], want.status)
        prints = [
            (Decimal(t["price"]), Decimal(t["quantity"]), t["taker_side"])
            for t in reversed(trades_newest_first)
        ]
        assert prints == [(p, q, side) for _, _, side, p, q in self.trades]
