"""A small, deliberately naive reference model of the order book, written from the specification.

Everything is in integer units (ticks, lots). Resting orders are one flat list; the best maker is found
with ``min`` over a (price, arrival) key; stops are a list scanned in arrival order. No indexes, no
heaps, no laziness: slow and obviously correct, which is the point.

Rules (issue #2, section 3):

* price-time priority, trades at the maker's price, the remainder of a limit rests; MARKET, IOC and FOK
  never rest; FOK fills completely or does nothing (only its cancellation is reported); POST_ONLY that
  would cross is cancelled; GTD orders are removed (expired) at the start of the first command that
  touches the book at or after their expiry, and never trade after it.
* Stops wait off the book; a buy stop triggers when a trade prints at or above its stop, a sell stop at
  or below. Stops triggered by a command's trades enter after that command's matching, in arrival
  order; trades they make may trigger further stops (in a next round). A stop placed while the last
  trade price already meets its condition triggers at once. A trailing stop's reference is the best
  trade price since it was placed (highest for a sell, lowest for a buy); its stop is the reference
  minus/plus the distance (a percentage distance is ``floor(ref * pct / 100)`` ticks); every trade
  price, in the order it printed, first moves the reference and is then checked against the stop.
* FOK: "complete" means traded in full; a self-trade-prevention decrement of the taker is not a fill.
* Icebergs show ``min(peak, open)``; when the visible slice is used up, a new slice is taken from the
  reserve and goes to the back of the queue at that price.
* Self-trade prevention: the taker's mode decides, for a resting order of the same (non-None) user.
* ``modify``: the new quantity is the new total; reducing keeps priority, a new price or a larger
  quantity re-enters the order at the back (it may trade).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

BUY, SELL = "buy", "sell"
LIMIT, MARKET, POST_ONLY, ICEBERG = "LIMIT", "MARKET", "POST_ONLY", "ICEBERG"
STOP_LIMIT, STOP_MARKET, TRAILING_STOP = "STOP_LIMIT", "STOP_MARKET", "TRAILING_STOP"
STOP_TYPES = (STOP_LIMIT, STOP_MARKET, TRAILING_STOP)
GTC, IOC, FOK, GTD = "GTC", "IOC", "FOK", "GTD"
STP_NONE, STP_NEWEST, STP_OLDEST, STP_BOTH, STP_DECREMENT = (
    "none",
    "cancel_newest",
    "cancel_oldest",
    "cancel_both",
    "decrement",
)


class Rejected(Exception):
    """The model's verdict that a command is invalid (the book must raise ValueError, change nothing)."""


@dataclass(eq=False)
class MOrder:
    oid: str
    side: str
    price: int | None
    quantity: int
    kind: str = LIMIT
    tif: str = GTC
    expiry: float | None = None
    user: str | None = None
    stp: str = STP_NONE
    peak: int = 0
    stop: int | None = None
    trail: int | Decimal | None = None
    trail_pct: bool = False
    trail_ref: int | None = None
    filled: int = 0
    open: int = 0
    visible: int = 0
    rank: int = 0
    triggered: bool = False

    def __post_init__(self) -> None:
        self.open = self.quantity


@dataclass
class MTrade:
    maker: str
    taker: str
    price: int
    quantity: int
    taker_side: str


@dataclass
class Outcome:
    """What one command did, as the model predicts it."""

    result: object = None
    added: list[str] = field(default_factory=list)
    trades: list[MTrade] = field(default_factory=list)
    cancelled: list[tuple[str, int]] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    triggered: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)


class Model:
    def __init__(self, default_stp: str = STP_NONE) -> None:
        self.default_stp = default_stp
        self.resting: list[MOrder] = []
        self.stops: list[MOrder] = []
        self.last: int | None = None
        self.rank = 0
        self.out = Outcome()

    # ------------------------------------------------------------------ queries

    def live(self, oid: str) -> MOrder | None:
        for order in self.resting + self.stops:
            if order.oid == oid:
                return order
        return None

    def bids(self) -> list[MOrder]:
        return sorted((o for o in self.resting if o.side == BUY), key=lambda o: (-(o.price or 0), o.rank))

    def asks(self) -> list[MOrder]:
        return sorted((o for o in self.resting if o.side == SELL), key=lambda o: (o.price or 0, o.rank))

    def orders_in_book_order(self) -> list[MOrder]:
        """Bids best first, asks best first (time priority inside a level), then stops by arrival."""
        return self.bids() + self.asks() + sorted(self.stops, key=lambda o: o.rank)

    def levels(self, side: str) -> list[tuple[int, int, int]]:
        """(price, visible quantity, order count) per level, best first."""
        result: dict[int, list[int]] = {}
        for order in self.bids() if side == BUY else self.asks():
            assert order.price is not None
            entry = result.setdefault(order.price, [0, 0])
            entry[0] += order.visible
            entry[1] += 1
        return [(price, qty, count) for price, (qty, count) in result.items()]

    # ------------------------------------------------------------------ commands

    def _begin(self) -> Outcome:
        self.out = Outcome()
        return self.out

    def add(self, order: MOrder, now: float) -> Outcome:
        """Enter a validated order (the caller checked validity and the id)."""
        out = self._begin()
        self._expire(now)
        self._enter(order)
        out.result = order.oid
        return out

    def batch_add(self, orders: list[MOrder], now: float) -> Outcome:
        out = self._begin()
        self._expire(now)
        for order in orders:
            self._enter(order)
        out.result = [o.oid for o in orders]
        return out

    def cancel(self, oid: str, now: float) -> Outcome:
        out = self._begin()
        order = self.live(oid)
        if order is None:
            out.result = False
            return out
        self._expire(now)
        if self.live(oid) is not order:
            out.result = False
            return out
        self._take_out(order)
        out.cancelled.append((oid, order.open))
        out.result = True
        return out

    def modify(
        self, oid: str, new_price: int | None, new_quantity: int | None, new_expiry: float | None, now: float
    ) -> Outcome:
        out = self._begin()
        order = self.live(oid)
        if order is None:
            out.result = False
            return out
        if new_price is None and new_quantity is None and new_expiry is None:
            raise Rejected("nothing to modify")
        price = order.price
        if new_price is not None:
            if order.price is None:
                raise Rejected("no limit price to modify")
            price = new_price
        quantity = order.quantity if new_quantity is None else new_quantity
        if quantity <= order.filled:
            raise Rejected("new quantity at or below the filled quantity")
        expiry = order.expiry
        if new_expiry is not None:
            if order.tif != GTD:
                raise Rejected("expiry on a non-GTD order")
            if new_expiry <= now:
                raise Rejected("expiry in the past")
            expiry = new_expiry
        pending = order in self.stops
        reprices = price != order.price
        grows = quantity - order.filled > order.open
        if reprices and order.kind == POST_ONLY and not pending and self._crosses(order.side, price):
            raise Rejected("post-only would cross")
        if order.expiry is not None and order.expiry <= now:  # the order is already finished
            self._expire(now)
            out.result = False
            return out
        out.result = True
        self._expire(now)  # every accepted command expires what is due, a modify that changes nothing too
        if not reprices and quantity == order.quantity and expiry == order.expiry:
            return out
        out.modified.append(oid)
        if pending or not (reprices or grows):
            order.price = price
            new_open = quantity - order.filled
            if not pending:
                order.visible = min(order.visible, new_open)
            order.open = new_open
            order.quantity = quantity
            order.expiry = expiry
            return out
        self.resting.remove(order)
        order.price = price
        order.quantity = quantity
        order.open = quantity - order.filled
        order.visible = 0
        order.expiry = expiry
        prices: list[int] = []
        self._execute(order, announce=False, prices=prices)
        self._run_stops(prices)
        return out

    def clean_expired(self, now: float) -> Outcome:
        out = self._begin()
        out.result = self._expire(now)
        return out

    def clear(self) -> Outcome:
        out = self._begin()
        self.resting.clear()
        self.stops.clear()
        return out

    # ------------------------------------------------------------------ internals

    def _next_rank(self) -> int:
        self.rank += 1
        return self.rank

    def _expire(self, now: float) -> int:
        due = [o for o in self.resting + self.stops if o.expiry is not None and o.expiry <= now]
        for order in due:
            self._take_out(order)
            self.out.expired.append(order.oid)
        return len(due)

    def _take_out(self, order: MOrder) -> None:
        if order in self.stops:
            self.stops.remove(order)
        else:
            self.resting.remove(order)

    def _enter(self, order: MOrder) -> None:
        if order.kind in STOP_TYPES:
            self.out.added.append(order.oid)
            order.rank = self._next_rank()
            self.stops.append(order)
            if order.kind == TRAILING_STOP:
                order.trail_ref = self.last
                self._set_trailing_stop(order)
            if self.last is not None:
                self._run_stops([self.last])
            return
        prices: list[int] = []
        self._execute(order, announce=True, prices=prices)
        self._run_stops(prices)

    def _crosses(self, side: str, price: int | None) -> bool:
        book = self.asks() if side == BUY else self.bids()
        if not book:
            return False
        best = book[0].price
        assert best is not None
        if price is None:
            return True
        return best <= price if side == BUY else best >= price

    def _fok_fillable(self, order: MOrder) -> bool:
        trial = copy.deepcopy(self)
        trial.out = Outcome()
        taker = copy.deepcopy(order)
        alive = trial._match(taker, [])
        # complete means traded in full: a self-trade decrement of the taker is not a fill
        return alive and taker.filled - order.filled == order.open

    def _execute(self, order: MOrder, announce: bool, prices: list[int]) -> None:
        if self._crosses(order.side, order.price):
            if order.kind == POST_ONLY:
                self.out.cancelled.append((order.oid, order.open))
                return
            if order.tif == FOK and not self._fok_fillable(order):
                self.out.cancelled.append((order.oid, order.open))
                return
            if announce:
                self.out.added.append(order.oid)
            if not self._match(order, prices):
                return
        else:
            if order.tif == FOK:
                self.out.cancelled.append((order.oid, order.open))
                return
            if announce:
                self.out.added.append(order.oid)
        if order.open:
            if order.price is None or order.tif in (IOC, FOK):
                self.out.cancelled.append((order.oid, order.open))
            else:
                order.visible = min(order.peak, order.open) if order.peak else order.open
                order.rank = self._next_rank()
                self.resting.append(order)

    def _match(self, taker: MOrder, prices: list[int]) -> bool:
        """Trade ``taker`` against the book; return False if self-trade prevention ended it."""
        while taker.open:
            book = self.asks() if taker.side == BUY else self.bids()
            if not book:
                return True
            maker = book[0]
            assert maker.price is not None
            if taker.price is not None and (
                maker.price > taker.price if taker.side == BUY else maker.price < taker.price
            ):
                return True
            if taker.stp != STP_NONE and taker.user is not None and maker.user == taker.user:
                if not self._self_trade(taker, maker):
                    return False
                continue
            fill = min(maker.visible, taker.open)
            maker.visible -= fill
            maker.open -= fill
            maker.filled += fill
            taker.open -= fill
            taker.filled += fill
            self.out.trades.append(MTrade(maker.oid, taker.oid, maker.price, fill, taker.side))
            prices.append(maker.price)
            self.last = maker.price
            if maker.visible == 0:
                if maker.open:
                    maker.visible = min(maker.peak, maker.open)
                    maker.rank = self._next_rank()
                else:
                    self.resting.remove(maker)
        return True

    def _self_trade(self, taker: MOrder, maker: MOrder) -> bool:
        mode = taker.stp
        if mode in (STP_NEWEST, STP_BOTH):
            if mode == STP_BOTH:
                self.resting.remove(maker)
                self.out.cancelled.append((maker.oid, maker.open))
            self.out.cancelled.append((taker.oid, taker.open))
            taker.open = 0
            return False
        if mode == STP_OLDEST:
            self.resting.remove(maker)
            self.out.cancelled.append((maker.oid, maker.open))
            return True
        cut = min(maker.open, taker.open)
        if cut == maker.open:
            self.resting.remove(maker)
            self.out.cancelled.append((maker.oid, maker.open))
        else:
            maker.open -= cut
            maker.quantity -= cut
            maker.visible = min(maker.visible, maker.open)
            self.out.modified.append(maker.oid)
        if cut == taker.open:
            self.out.cancelled.append((taker.oid, cut))
            taker.open = 0
            taker.quantity -= cut
            return False
        taker.open -= cut
        taker.quantity -= cut
        self.out.modified.append(taker.oid)
        return True

    def _set_trailing_stop(self, order: MOrder) -> None:
        if order.trail_ref is None:
            order.stop = None
            return
        if order.trail_pct:
            assert isinstance(order.trail, Decimal)
            offset = int((order.trail_ref * order.trail / 100).to_integral_value(ROUND_FLOOR))
        else:
            assert isinstance(order.trail, int)
            offset = order.trail
        order.stop = order.trail_ref - offset if order.side == SELL else order.trail_ref + offset

    def _stop_hit(self, order: MOrder, trade_prices: list[int]) -> bool:
        if order.kind != TRAILING_STOP:
            assert order.stop is not None
            return any((p >= order.stop) if order.side == BUY else (p <= order.stop) for p in trade_prices)
        for p in trade_prices:
            if order.trail_ref is None:
                order.trail_ref = p
            elif order.side == SELL:
                order.trail_ref = max(order.trail_ref, p)
            else:
                order.trail_ref = min(order.trail_ref, p)
            self._set_trailing_stop(order)
            assert order.stop is not None
            if (p >= order.stop) if order.side == BUY else (p <= order.stop):
                return True
        return False

    def _run_stops(self, trade_prices: list[int]) -> None:
        while trade_prices and self.stops:
            fired = [o for o in sorted(self.stops, key=lambda o: o.rank) if self._stop_hit(o, trade_prices)]
            trade_prices = []
            for order in fired:
                self.stops.remove(order)
                order.triggered = True
                self.out.triggered.append(order.oid)
                self._execute(order, announce=False, prices=trade_prices)
