"""The orders the risk manager holds funds for, and the indexes over them.

A :class:`TrackedOrder` exists from ``reserve`` until the book reports the order's end (or
``release_unplaced``). Its ``hold`` is exactly the amount of ``asset`` held for it in the ledger; the
sum of the holds of a user's orders in an asset is the user's held balance of that asset.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from manticore_orderbook.model import no_mypyc_attr

from .amounts import ZERO, mul, sub
from .ledger import Balance, UserId
from .markets import Market
from .units import from_units, to_units

if TYPE_CHECKING:  # what mypyc reads when it compiles (mypy_extensions is not needed at run time)
    from mypy_extensions import mypyc_attr

__all__ = ["OrderRegistry", "TrackedOrder", "limit_hold", "required_hold"]

# Bound at run time without a branch on TYPE_CHECKING (see .ledger).
globals().setdefault("mypyc_attr", no_mypyc_attr)


# acyclic: its fields are strings, numbers, Decimals and the ledger's Balances (ints only), so no
# instance can be part of a reference cycle; the compiled class is then not tracked by the cyclic GC: no
# GC header, no traversal of the ~thousands of tracked orders in each collection, and its allocations do
# not count towards one. free_list_len=1: the compiled class keeps the last freed instance for the next
# one (an order filled and forgotten, then the next order tracked: no allocator round trip).
@mypyc_attr(acyclic=True, free_list_len=1)
class TrackedOrder:
    """One order with funds held for it.

    ``price`` is the limit price the hold is computed from (None for a market order and for stops
    without a limit); ``quantity`` the order's total and ``open`` its open quantity (both in base
    units, kept equal to the book's by the events); ``margin`` the market's ``1 + max fee rate``;
    ``market_buy`` marks a buy whose hold is a sweep bound rather than a formula. ``pending`` is True
    while a stop waits for its trigger, ``seen`` once the book has announced the order (ORDER_ADDED),
    ``expiry`` its GTD expiry (seconds) or None.

    ``balance`` and ``proceeds`` are caches for settlement: the ledger's :class:`~.ledger.Balance` of
    the user in ``asset`` (what the hold comes out of) and in the other asset of the market (what fills
    pay in), linked on first use; they are the ledger's own objects, never copies.
    """

    __slots__ = (
        "_quantity",
        "_quantity_exp",
        "_quantity_units",
        "asset",
        "balance",
        "expiry",
        "hold_exp",
        "hold_units",
        "is_buy",
        "margin",
        "market_buy",
        "open_exp",
        "open_units",
        "order_id",
        "order_type",
        "pending",
        "price_exp",
        "price_units",
        "priced",
        "proceeds",
        "seen",
        "standard_margin",
        "stop_price",
        "symbol",
        "user_id",
    )

    def __init__(
        self,
        order_id: str,
        market: Market,
        user_id: UserId,
        is_buy: bool,
        order_type: str,
        price: Decimal | None,
        stop_price: Decimal | None,
        quantity: Decimal | None,
        asset: str,
        margin: Decimal,
        price_units: int = -1,
        open_units: int = -1,
    ) -> None:
        """``price_units`` and ``open_units``, when given (not negative: a price and a quantity the fast
        path holds for are positive), are ``price`` and ``quantity`` in the market's units (see
        :class:`~.markets.Market`), already known to the caller; then ``price`` may be None for a limit
        price given in units only (the order is priced), and ``quantity`` None (its Decimal is made from
        ``open_units`` when first read). Plain ints, not ``int | None``: the compiled build passes them
        without an int object each."""
        self.order_id = order_id
        self.symbol = market.symbol
        self.user_id = user_id
        self.is_buy = is_buy
        self.order_type = order_type
        self.stop_price = stop_price
        self._quantity = quantity
        self._quantity_units = 0 if open_units < 0 else open_units
        self._quantity_exp = market.quantity_exp
        self.asset = asset
        self.margin = margin
        self.standard_margin = margin is market.margin or margin == market.margin
        priced = price is not None or price_units >= 0
        self.market_buy = is_buy and not priced
        # Amounts in integer units (see .units), each with its own exponent, starting at the market's.
        self.price_exp = market.price_exp
        self.priced = priced
        self.price_units = 0
        if price_units >= 0:
            self.price_units = price_units
        elif price is not None:
            self.price = price
        self.open_exp = market.quantity_exp
        if open_units < 0:
            if quantity is None:
                raise ValueError("a TrackedOrder needs its quantity or its open_units")
            self.open_units = 0
            self.open = quantity
        else:
            self.open_units = open_units
        self.hold_exp = market.quote_exp if asset == market.quote else market.quantity_exp
        self.hold_units = 0
        self.pending = order_type in ("stop_limit", "stop_market", "trailing_stop")
        self.seen = False
        self.expiry: float | None = None
        self.balance: Balance | None = None
        self.proceeds: Balance | None = None

    @property
    def quantity(self) -> Decimal:
        """The order's total quantity (base), kept equal to the book's by ORDER_MODIFIED."""
        quantity = self._quantity
        if quantity is None:
            quantity = self._quantity = from_units(self._quantity_units, self._quantity_exp)
        return quantity

    @quantity.setter
    def quantity(self, value: Decimal) -> None:
        self._quantity = value

    @property
    def price(self) -> Decimal | None:
        """The limit price the hold is computed from, or None."""
        return from_units(self.price_units, self.price_exp) if self.priced else None

    @price.setter
    def price(self, value: Decimal | None) -> None:
        if value is None:
            self.priced = False
            self.price_units = 0
            return
        self.price_units, self.price_exp = to_units(value, self.price_exp)
        self.priced = True

    @property
    def open(self) -> Decimal:
        """The open quantity (base)."""
        return from_units(self.open_units, self.open_exp)

    @open.setter
    def open(self, value: Decimal) -> None:
        self.open_units, self.open_exp = to_units(value, self.open_exp)

    @property
    def hold(self) -> Decimal:
        """The amount of ``asset`` held for the order."""
        return from_units(self.hold_units, self.hold_exp)

    @hold.setter
    def hold(self, value: Decimal) -> None:
        self.hold_units, self.hold_exp = to_units(value, self.hold_exp)

    @property
    def filled(self) -> Decimal:
        """Base quantity filled so far (``quantity - open``)."""
        return sub(self.quantity, self.open)


def limit_hold(price: Decimal, quantity: Decimal, margin: Decimal) -> Decimal:
    """``price x quantity x margin``: the quote a buy at limit ``price`` holds for ``quantity``."""
    return mul(mul(price, quantity), margin)


def required_hold(order: TrackedOrder) -> Decimal:
    """The hold ``order`` needs for its open quantity now.

    A sell: its open quantity (base). A buy with a limit price: ``price x open x margin`` (quote). A
    market buy: what is left of its sweep bound while it is open, 0 once it is done.
    """
    if not order.is_buy:
        return order.open
    if order.price is not None:
        return limit_hold(order.price, order.open, order.margin)
    return order.hold if order.open else ZERO


class OrderRegistry:
    """Tracked orders by id and by user, plus per-market heaps of GTD expiries.

    Order ids are unique over all markets among tracked orders. Iteration orders are insertion orders.
    """

    __slots__ = ("_expiries", "by_id", "by_user", "placed")

    def __init__(self) -> None:
        self.by_id: dict[str, TrackedOrder] = {}
        self.by_user: dict[UserId, dict[str, TrackedOrder]] = {}
        self._expiries: dict[str, list[tuple[float, str]]] = {}
        #: The order most recently tracked by the manager's fast path, while it is tracked (None once
        #: it is removed, or after :meth:`replace_with`): the next events are about it (its
        #: ORDER_ADDED, the trades it takes), whose order id is the same string object, so the manager
        #: finds it by an identity test instead of a look-up in :attr:`by_id`.
        self.placed: TrackedOrder | None = None

    def replace_with(self, other: OrderRegistry) -> None:
        """Take over ``other``'s contents (used to restore a state atomically). The indexes stay the
        same objects (their contents are replaced), so a reference to :attr:`by_id` or :attr:`by_user`
        taken before stays valid."""
        self.placed = None
        self.by_id.clear()
        self.by_id.update(other.by_id)
        self.by_user.clear()
        self.by_user.update(other.by_user)
        self._expiries.clear()
        self._expiries.update(other._expiries)

    def add(self, order: TrackedOrder) -> None:
        """Start tracking ``order`` (its id must not be tracked)."""
        order_id = order.order_id
        self.by_id[order_id] = order
        mine = self.by_user.get(order.user_id)
        if mine is None:
            self.by_user[order.user_id] = {order_id: order}
        else:
            mine[order_id] = order
        if order.expiry is not None:
            self.note_expiry(order)

    def remove(self, order: TrackedOrder) -> None:
        """Stop tracking ``order``."""
        if order is self.placed:
            self.placed = None
        del self.by_id[order.order_id]
        user_orders = self.by_user[order.user_id]
        del user_orders[order.order_id]
        if not user_orders:
            del self.by_user[order.user_id]

    def of_user(self, user_id: UserId) -> dict[str, TrackedOrder]:
        """The user's tracked orders (a live view; do not mutate)."""
        return self.by_user.get(user_id, {})

    def note_expiry(self, order: TrackedOrder) -> None:
        """Index ``order.expiry`` (set by the caller) so that :meth:`expiring` finds it."""
        expiry = order.expiry
        if expiry is None:
            return
        heap = self._expiries.setdefault(order.symbol, [])
        heapq.heappush(heap, (expiry, order.order_id))
        if len(heap) > 64 and len(heap) > 2 * len(self.by_id):  # stale entries: rebuild
            symbol = order.symbol
            heap[:] = [
                (o.expiry, o.order_id)
                for o in self.by_id.values()
                if o.symbol == symbol and o.expiry is not None
            ]
            heapq.heapify(heap)

    def expiring(self, symbol: str, now: float) -> Iterator[TrackedOrder]:
        """Tracked orders of ``symbol`` whose GTD expiry is at or before ``now``: those the book removes
        at the start of its next command at time ``now``. Cost: O(entries due), not O(orders)."""
        heap = self._expiries.get(symbol)
        if not heap:
            return
        seen: set[str] = set()
        stack = [0]
        while stack:
            i = stack.pop()
            if i >= len(heap) or heap[i][0] > now:
                continue
            expiry, order_id = heap[i]
            order = self.by_id.get(order_id)
            if (
                order is not None
                and order.symbol == symbol
                and order.expiry == expiry
                and order_id not in seen
            ):
                seen.add(order_id)
                yield order
            stack.append(2 * i + 1)
            stack.append(2 * i + 2)
