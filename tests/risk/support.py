"""A small exchange for the risk tests: books on a fake clock, a RiskManager subscribed to them, and the
order-entry pipeline ``check_order -> reserve -> book.add_order (release_unplaced if it raises)``.

``Exchange.check()`` verifies the ledger against the books independently of the risk manager's own
bookkeeping: conservation per asset against the deposits and withdrawals the test made, no negative
amount, every user's held balance equal to the holds recomputed from the live orders the books show,
and the risk manager tracking exactly the orders that are live in the books.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact
from typing import Any

from manticore_orderbook import EventType, InvalidOrderError, OrderBook
from manticore_risk import Decision, RiskLimits, RiskManager

START = 1_000.0
#: The test's own exact arithmetic (the default context rounds to 28 digits).
EXACT = Context(prec=500, traps=[Inexact])

#: symbol -> (base, quote, maker fee rate, taker fee rate, default self-trade prevention)
MARKETS: dict[str, tuple[str, str, str, str, str]] = {
    "BTC/USD": ("BTC", "USD", "0.001", "0.002", "none"),
    "ETH/USD": ("ETH", "USD", "-0.0005", "0.001", "cancel_oldest"),
}


@dataclass
class Clock:
    """A settable clock for the books (seconds)."""

    now: float = START

    def __call__(self) -> float:
        return self.now


def new_book(symbol: str, clock: Clock, **kwargs: Any) -> OrderBook:
    """A book of one of :data:`MARKETS` on a 0.5 tick / 0.1 lot grid with exact string numbers."""
    _base, _quote, maker, taker, stp = MARKETS[symbol]
    kwargs.setdefault("tick_size", "0.5")
    kwargs.setdefault("lot_size", "0.1")
    return OrderBook(
        symbol,
        number_format="str",
        maker_fee_rate=maker,
        taker_fee_rate=taker,
        self_trade_prevention=stp,
        clock=clock,
        **kwargs,
    )


def margin_of(book: OrderBook) -> Decimal:
    """``1 + max(maker, taker, 0)`` for ``book``, computed by the test."""
    return EXACT.add(1, max(*book.fee_rates, Decimal(0)))


@dataclass
class Exchange:
    """Books + risk manager + the test's own record of money brought in and out."""

    limits: RiskLimits = field(default_factory=RiskLimits)
    symbols: tuple[str, ...] = tuple(MARKETS)
    clock: Clock = field(default_factory=Clock)
    books: dict[str, OrderBook] = field(default_factory=dict)
    risk: RiskManager = field(init=False)
    net: dict[str, Decimal] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    book_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.risk = RiskManager(limits=self.limits)
        if not self.books:
            self.books = {symbol: new_book(symbol, self.clock, **self.book_kwargs) for symbol in self.symbols}
        for symbol, book in self.books.items():
            base, quote = MARKETS[symbol][:2]
            self.risk.register_market(symbol=symbol, base_asset=base, quote_asset=quote, book=book)
            book.event_manager.subscribe_all(self.risk.on_event)
            book.event_manager.subscribe(EventType.ERROR, lambda _t, data: self.errors.append(dict(data)))

    # ------------------------------------------------------------------ commands

    def deposit(self, user: str, asset: str, amount: str | Decimal) -> None:
        self.risk.deposit(user, asset, amount)
        self.net[asset] = EXACT.add(self.net.get(asset, Decimal(0)), Decimal(amount))

    def withdraw(self, user: str, asset: str, amount: str | Decimal) -> None:
        self.risk.withdraw(user, asset, amount)
        self.net[asset] = EXACT.subtract(self.net.get(asset, Decimal(0)), Decimal(amount))

    def check_new(
        self, symbol: str, user: str, side: str, order_type: str, price: Any, quantity: Any, **kw: Any
    ) -> Decision:
        risk_kw = {k: kw[k] for k in ("stop_price", "time_in_force", "self_trade_prevention") if k in kw}
        return self.risk.check_order(
            user_id=user,
            symbol=symbol,
            side=side,
            order_type=order_type,
            price=price,
            quantity=quantity,
            now=kw.get("now", self.clock.now),
            **risk_kw,
        )

    def place(
        self,
        order_id: str,
        symbol: str,
        user: str,
        side: str,
        order_type: str,
        price: Any,
        quantity: Any,
        **kw: Any,
    ) -> Decision:
        """The full pipeline. Book-only arguments (``expiry_time``, ``displayed_quantity``,
        ``trail_value``, ``trail_is_percent``) go to the book only."""
        decision = self.check_new(symbol, user, side, order_type, price, quantity, **kw)
        if not decision["approved"]:
            return decision
        risk_kw = {k: kw[k] for k in ("stop_price", "time_in_force", "self_trade_prevention") if k in kw}
        self.risk.reserve(
            order_id,
            user_id=user,
            symbol=symbol,
            side=side,
            order_type=order_type,
            price=price,
            quantity=quantity,
            now=self.clock.now,
            **risk_kw,
        )
        book_kw = {k: v for k, v in kw.items() if k != "now"}
        try:
            self.books[symbol].add_order(
                side,
                None if price is None else str(price),
                str(quantity),
                order_id=order_id,
                user_id=user,
                order_type=order_type,
                **{k: (str(v) if isinstance(v, Decimal) else v) for k, v in book_kw.items()},
            )
        except InvalidOrderError:
            assert self.risk.release_unplaced(order_id)
        return decision

    def modify(self, order_id: str, new_price: Any = None, new_quantity: Any = None) -> Decision:
        decision = self.risk.check_modify(
            order_id, new_price=new_price, new_quantity=new_quantity, now=self.clock.now
        )
        if decision["approved"]:
            symbol = self.symbol_of(order_id)
            with contextlib.suppress(InvalidOrderError):
                self.books[symbol].modify_order(
                    order_id,
                    new_price=None if new_price is None else str(new_price),
                    new_quantity=None if new_quantity is None else str(new_quantity),
                )
        return decision

    def symbol_of(self, order_id: str) -> str:
        for symbol, book in self.books.items():
            if order_id in book:
                return symbol
        raise KeyError(order_id)

    # ------------------------------------------------------------------ invariants

    def expected_holds(self) -> dict[tuple[str, str], Decimal]:
        """(user, asset) -> sum of the holds of the user's live orders, recomputed from the books."""
        holds: dict[tuple[str, str], Decimal] = {}
        for symbol, book in self.books.items():
            base, quote = MARKETS[symbol][:2]
            margin = margin_of(book)
            for order in book.get_orders():
                remaining = Decimal(order["remaining_quantity"])
                if order["side"] == "buy":
                    assert order["price"] is not None, f"unbounded buy is live: {order}"
                    amount = EXACT.multiply(EXACT.multiply(Decimal(order["price"]), remaining), margin)
                    key = (order["user_id"], quote)
                else:
                    key, amount = (order["user_id"], base), remaining
                holds[key] = EXACT.add(holds.get(key, Decimal(0)), amount)
        return holds


def verify(exchange: Exchange) -> None:
    """Every invariant of the ledger against the books (see the module docstring)."""
    risk = exchange.risk
    assert not exchange.errors, f"risk reported errors: {exchange.errors}"
    assets = set(exchange.net) | {a for s in exchange.books for a in MARKETS[s][:2]}
    for asset in assets:
        assert risk.total(asset) == exchange.net.get(asset, Decimal(0)), f"{asset} not conserved"
    expected = exchange.expected_holds()
    users = {user for user, _ in expected} | {o["user_id"] for o in risk.orders()} | {"u1", "u2", "u3"}
    for user in users:
        for asset, amounts in risk.balances(user).items():
            available, held = Decimal(amounts["available"]), Decimal(amounts["held"])
            assert available >= 0 and held >= 0, (user, asset, amounts)
            assert held == expected.pop((user, asset), Decimal(0)), (user, asset, amounts)
    assert not any(expected.values()), f"holds the ledger does not show: {expected}"
    live = {o["order_id"] for book in exchange.books.values() for o in book.get_orders()}
    assert {o["order_id"] for o in risk.orders()} == live
    risk.check_invariants()
