"""Reading the book for risk: the reference price and a bound of what a market order sweeps.

Both read only the public query API of :class:`~manticore_orderbook.OrderBook` and never change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from manticore_orderbook import OrderBook

from .amounts import ZERO, add, mul, sub, to_decimal

__all__ = ["Sweep", "reference_price", "sweep"]

_FIRST_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Sweep:
    """What a market order of some quantity meets on the opposite side.

    ``cost`` is sum(price x quantity) over the levels taken best first (quote units), the quantity
    beyond the visible liquidity counted at ``worst_price``; ``worst_price`` is the farthest price the
    order can reach. For a buy ``cost`` is an upper bound of what the sweep pays (see :func:`sweep`).
    """

    cost: Decimal
    worst_price: Decimal


def reference_price(book: OrderBook) -> Decimal | None:
    """The price band's reference: the last trade price, else the mid price, else None."""
    last = book.last_trade_price
    if last is not None:
        return to_decimal(last)
    mid = book.get_mid_price()
    return None if mid is None else to_decimal(mid)


def sweep(book: OrderBook, buy: bool, quantity: Decimal, excluded: Mapping[Decimal, Decimal]) -> Sweep | None:
    """Walk the asks (``buy``) or bids best first for ``quantity``; None when that side is empty.

    ``excluded`` maps a price to a quantity to leave out there: liquidity that may be gone when the
    order matches (GTD orders due to expire, the taker's own orders under ``cancel_oldest``). The walk
    fetches ``get_snapshot(depth=k)`` with k = 8, 16, 32 ... only while it needs more levels, so it costs
    O(levels needed), not O(book).

    Why the buy cost is an upper bound: every trade is at a resting order's price, and the liquidity
    at each price when the order matches is at least the visible quantity minus the excluded one
    (iceberg reserves only add liquidity, at visible prices); taking the cheapest liquidity first and
    pricing any shortfall at the highest ask in the book can only cost more than the real sweep.
    """
    key = "asks" if buy else "bids"
    need = quantity
    cost = ZERO
    worst: Decimal | None = None
    done = 0
    depth = _FIRST_DEPTH
    while True:
        levels = book.get_snapshot(depth=depth)[key]
        for level in levels[done:]:
            price = to_decimal(level["price"])
            worst = price
            size = to_decimal(level["quantity"])
            gone = excluded.get(price)
            if gone is not None:
                size = max(sub(size, gone), ZERO)
            take = size if size < need else need
            if take:
                cost = add(cost, mul(price, take))
                need = sub(need, take)
                if not need:
                    return Sweep(cost, price)
        done = len(levels)
        if done < depth:
            break
        depth *= 2
    if worst is None:
        return None
    return Sweep(add(cost, mul(worst, need)), worst)
