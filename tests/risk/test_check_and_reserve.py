"""``RiskManager.check_and_reserve``: one pass that must decide and hold exactly as ``check_order``
followed by ``reserve`` (the two-call path library users keep).

The property runs one random command stream (the generator of :mod:`.test_properties`: every order type,
time in force and self-trade prevention mode, modifies, cancels, expiries, clears, deposits and
withdrawals under every limit) through two exchanges in lockstep, one placing orders with the two calls
and one with the single call: every answer, the exported ledger and the books must stay identical, and
every ledger invariant must hold in both.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import InvalidOrderError
from manticore_risk import Decision, RiskLimits

from .support import Exchange, verify
from .test_properties import LIMITS, SYMBOLS, Run, make_stream


class OnePassExchange(Exchange):
    """The test exchange, placing orders with ``check_and_reserve``."""

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
        risk_kw = {k: kw[k] for k in ("stop_price", "time_in_force", "self_trade_prevention") if k in kw}
        decision = self.check(
            order_id,
            user_id=user,
            symbol=symbol,
            side=side,
            order_type=order_type,
            price=price,
            quantity=quantity,
            now=kw.get("now", self.clock.now),
            **risk_kw,
        )
        if not decision["approved"]:
            return decision
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

    def check(self, order_id: str, **args: Any) -> Decision:
        """Risk's one-pass check of an order (``check_and_reserve``'s arguments)."""
        return self.risk.check_and_reserve(order_id, **args)


class PositionalExchange(OnePassExchange):
    """The test exchange, placing orders with ``check_and_reserve_positional`` (the exchange's entry)."""

    def check(self, order_id: str, **args: Any) -> Decision:
        return self.risk.check_and_reserve_positional(
            order_id,
            args["user_id"],
            args["symbol"],
            args["side"],
            args["order_type"],
            args["price"],
            args["quantity"],
            args.get("stop_price"),
            args["now"],
            args.get("time_in_force"),
            args.get("self_trade_prevention"),
        )


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    length=st.integers(1, 150),
    entry=st.sampled_from([OnePassExchange, PositionalExchange]),
)
def test_one_pass_decides_and_holds_as_check_order_then_reserve(
    seed: int, length: int, entry: type[OnePassExchange]
) -> None:
    two_calls = Run(Exchange(limits=LIMITS))
    one_pass = Run(entry(limits=LIMITS))
    for n, command in enumerate(make_stream(seed, length)):
        assert one_pass.step(n, command) == two_calls.step(n, command)
        verify(one_pass.ex)
        assert one_pass.ex.risk.export_state() == two_calls.ex.risk.export_state()
        for symbol in SYMBOLS:
            assert one_pass.ex.books[symbol].get_orders() == two_calls.ex.books[symbol].get_orders()


def _funded() -> OnePassExchange:
    exchange = OnePassExchange(limits=RiskLimits(max_open_orders=1))
    exchange.deposit("alice", "USD", "1000")
    return exchange


def _buy(exchange: Exchange, order_id: str, quantity: str = "1") -> Decision:
    return exchange.risk.check_and_reserve(
        order_id,
        user_id="alice",
        symbol="BTC/USD",
        side="buy",
        order_type="limit",
        price=Decimal("100"),
        quantity=Decimal(quantity),
        now=exchange.clock.now,
    )


def test_an_approval_holds_the_funds_and_a_rejection_changes_nothing() -> None:
    exchange = _funded()
    decision = _buy(exchange, "o1")
    assert decision == {"approved": True, "reason": "", "code": ""}
    assert exchange.risk.balances("alice")["USD"] == {"available": "899.8", "held": "100.2"}
    before = exchange.risk.export_state()
    rejected = _buy(exchange, "o2")  # a second open order: above max_open_orders
    assert rejected["code"] == "max_open_orders"
    assert exchange.risk.export_state() == before
    too_big = _buy(exchange, "o3", "100")
    assert too_big["code"] in ("max_open_orders", "insufficient_balance")
    assert exchange.risk.export_state() == before


def test_a_bad_or_taken_order_id_raises_and_changes_nothing() -> None:
    exchange = _funded()
    assert _buy(exchange, "o1")["approved"]
    before = exchange.risk.export_state()
    for order_id in ("o1", "", 7):
        with pytest.raises(ValueError):
            _buy(exchange, order_id)  # type: ignore[arg-type]
        assert exchange.risk.export_state() == before
