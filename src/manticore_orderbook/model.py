"""The book's records: orders, price levels and trades, all in integer units.

These classes are slotted and hold integers (ticks for prices, lots for quantities); the
:class:`~manticore_orderbook.OrderBook` turns them into user numbers when it builds dictionaries.
They are exposed for type hints and advanced use; treat instances you receive as read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Final, TypeVar, cast

from .enums import OrderType, SelfTradePrevention, Side, TimeInForce
from .numbers import _INTERPRETED

if TYPE_CHECKING:  # what mypyc reads when it compiles (mypy_extensions is not needed at run time)
    from mypy_extensions import mypyc_attr

_C = TypeVar("_C")


def _same_class(cls: _C) -> _C:
    return cls


def no_mypyc_attr(*args: object, **kwargs: object) -> Callable[[_C], _C]:
    """The interpreter's stand-in for ``mypy_extensions.mypyc_attr``: a class decorator that does nothing.

    Modules compiled with mypyc (this one, and ``manticore_risk``'s) bind ``mypyc_attr`` to it at run
    time, so that the same source runs interpreted without ``mypy_extensions`` installed.
    """
    return _same_class


# Bound at run time without a branch on TYPE_CHECKING: mypyc compiles an ``else`` of that test as
# unreachable code (which raises when reached), and the book needs nothing outside the standard library.
globals().setdefault("mypyc_attr", no_mypyc_attr)


__all__ = [
    "BLANK_ORDER",
    "BLANK_TRADE",
    "NO_TEMPLATES",
    "LevelTemplates",
    "Order",
    "OrderExtra",
    "OrderFields",
    "PriceLevel",
    "Trade",
    "TradeFields",
]

#: :meth:`Order.fields`: ``(order_id, side, order_type, tif, user_id, timestamp, stp, peak, trail,
#: trail_is_percent, price, quantity, filled, open, visible, expiry, stop_price, trail_ref, triggered,
#: pending, rank, client_order_id)``.
OrderFields = tuple[
    str,
    str,
    str,
    str,
    "str | int | None",
    float,
    str,
    int,
    "int | Decimal | None",
    bool,
    "int | None",
    int,
    int,
    int,
    int,
    "float | None",
    "int | None",
    "int | None",
    bool,
    bool,
    int,
    "str | None",
]
#: :meth:`Trade.fields`: ``(number, sequence, price, quantity, maker_order_id, taker_order_id,
#: maker_user_id, taker_user_id, taker_side, timestamp, maker_client_order_id, taker_client_order_id)``.
TradeFields = tuple[
    int,
    int,
    int,
    int,
    str,
    str,
    "str | int | None",
    "str | int | None",
    str,
    float,
    "str | None",
    "str | None",
]


# acyclic: no instance can be part of a reference cycle (its fields are numbers, strings, a Decimal or
# enum members, never a container of book objects), so the compiled class is not tracked by the cyclic
# GC: no GC header, no traversal in each collection, and allocations that do not count towards one.
@mypyc_attr(acyclic=True)
class OrderExtra:
    """The fields of an order that a plain limit or market order leaves at their defaults.

    An :class:`Order` holds one only when one of them is set (``Order.extra``; None for a plain
    order), so that a plain resting order is a smaller object: fewer stores per add, fewer fields
    for the cyclic GC to visit, fewer cache lines read by a cancel. The defaults are those of a plain
    order: None, 0 for ``peak`` and False for the flags. See :class:`Order` for what each one means.
    """

    __slots__ = (
        "client_order_id",
        "expiry",
        "peak",
        "pending",
        "stop_price",
        "trail",
        "trail_is_percent",
        "trail_ref",
        "triggered",
    )

    def __init__(self) -> None:
        self.client_order_id: str | None = None
        self.expiry: float | None = None
        self.peak = 0
        self.stop_price: int | None = None
        self.trail: int | Decimal | None = None
        self.trail_is_percent = False
        self.trail_ref: int | None = None
        self.pending = False
        self.triggered = False

    def copy(self) -> OrderExtra:
        """A copy with the same fields."""
        clone = OrderExtra()
        clone.client_order_id = self.client_order_id
        clone.expiry = self.expiry
        clone.peak = self.peak
        clone.stop_price = self.stop_price
        clone.trail = self.trail
        clone.trail_is_percent = self.trail_is_percent
        clone.trail_ref = self.trail_ref
        clone.pending = self.pending
        clone.triggered = self.triggered
        return clone


# acyclic: compiled, an Order is not tracked by the cyclic GC (no 16-byte GC header, no untracking
# of its neighbours in the GC's list when it is freed, not visited by collections): in a deep book a
# cancel then touches fewer cold pages. A resting order and its level do reference each other
# (``level`` and ``PriceLevel.orders``), a cycle the GC cannot see through an untracked object, so
# the book breaks it itself wherever it lets go of resting orders (``OrderBook._release_levels``,
# ``clear``). free_list_len=1: the last Order freed is kept for the next one made (a cancel's order
# is reused by the next add, without a trip through the allocator's pool of a cold page).
@mypyc_attr(acyclic=True, free_list_len=1)
class Order:
    """One live or finished order.

    Quantities are in lots: ``quantity == filled + open`` always holds (``quantity`` shrinks only by
    self-trade decrement or a modify). ``visible`` is the part shown in its price level (an iceberg's
    current slice, otherwise ``open``); ``peak`` is an iceberg's display size (0 for other orders).
    ``level`` is the price level the order rests in, or None while it is not resting. ``rank`` orders
    time priority: it is the book's event sequence number at which the order took its current place
    (its ORDER_ADDED, ORDER_TRIGGERED or priority-losing ORDER_MODIFIED, or the ORDER_FILLED that
    refilled an iceberg slice), so the lower, the earlier it reached its place in its level's queue.
    ``client_order_id`` is the name the order's owner gave it (None when none was given).

    The rarely set fields (``client_order_id``, ``expiry``, ``peak``, ``stop_price``, ``trail``,
    ``trail_is_percent``, ``trail_ref``, ``pending``, ``triggered``) live in ``extra``, an
    :class:`OrderExtra` made when the first of them is set to something other than its default (None
    while they all have it). They read and write as attributes of the order (properties); the book's
    own hot paths read ``extra`` directly.
    """

    __slots__ = (
        "extra",
        "filled",
        "level",
        "open",
        "order_id",
        "order_type",
        "price",
        "quantity",
        "rank",
        "side",
        "stp",
        "tif",
        "timestamp",
        "user_id",
        "visible",
    )

    def __init__(
        self,
        order_id: str,
        side: Side,
        price: int | None,
        quantity: int,
        order_type: OrderType,
        tif: TimeInForce,
        user_id: str | int | None,
        timestamp: float,
        stp: SelfTradePrevention,
    ) -> None:
        self.order_id = order_id
        self.side = side
        self.price = price
        self.quantity = quantity
        self.filled = 0
        self.open = quantity
        self.visible = 0
        self.order_type = order_type
        self.tif = tif
        self.user_id = user_id
        self.timestamp = timestamp
        self.stp = stp
        self.extra: OrderExtra | None = None
        self.level: PriceLevel | None = None
        self.rank = 0

    def more(self) -> OrderExtra:
        """The order's :class:`OrderExtra`, made (with every default) if it has none yet."""
        extra = self.extra
        if extra is None:
            extra = self.extra = OrderExtra()
        return extra

    # The rarely set fields as attributes. A setter given the default leaves a plain order plain.

    @property
    def client_order_id(self) -> str | None:
        extra = self.extra
        return None if extra is None else extra.client_order_id

    @client_order_id.setter
    def client_order_id(self, value: str | None) -> None:
        if value is not None or self.extra is not None:
            self.more().client_order_id = value

    @property
    def expiry(self) -> float | None:
        extra = self.extra
        return None if extra is None else extra.expiry

    @expiry.setter
    def expiry(self, value: float | None) -> None:
        if value is not None or self.extra is not None:
            self.more().expiry = value

    @property
    def peak(self) -> int:
        extra = self.extra
        return 0 if extra is None else extra.peak

    @peak.setter
    def peak(self, value: int) -> None:
        if value or self.extra is not None:
            self.more().peak = value

    @property
    def stop_price(self) -> int | None:
        extra = self.extra
        return None if extra is None else extra.stop_price

    @stop_price.setter
    def stop_price(self, value: int | None) -> None:
        if value is not None or self.extra is not None:
            self.more().stop_price = value

    @property
    def trail(self) -> int | Decimal | None:
        extra = self.extra
        return None if extra is None else extra.trail

    @trail.setter
    def trail(self, value: int | Decimal | None) -> None:
        if value is not None or self.extra is not None:
            self.more().trail = value

    @property
    def trail_is_percent(self) -> bool:
        extra = self.extra
        return False if extra is None else extra.trail_is_percent

    @trail_is_percent.setter
    def trail_is_percent(self, value: bool) -> None:
        if value or self.extra is not None:
            self.more().trail_is_percent = value

    @property
    def trail_ref(self) -> int | None:
        extra = self.extra
        return None if extra is None else extra.trail_ref

    @trail_ref.setter
    def trail_ref(self, value: int | None) -> None:
        if value is not None or self.extra is not None:
            self.more().trail_ref = value

    @property
    def pending(self) -> bool:
        extra = self.extra
        return False if extra is None else extra.pending

    @pending.setter
    def pending(self, value: bool) -> None:
        if value or self.extra is not None:
            self.more().pending = value

    @property
    def triggered(self) -> bool:
        extra = self.extra
        return False if extra is None else extra.triggered

    @triggered.setter
    def triggered(self, value: bool) -> None:
        if value or self.extra is not None:
            self.more().triggered = value

    def copy(self) -> Order:
        """A detached copy with the same fields (not resting anywhere)."""
        clone = Order(
            self.order_id,
            self.side,
            self.price,
            self.quantity,
            self.order_type,
            self.tif,
            self.user_id,
            self.timestamp,
            self.stp,
        )
        extra = self.extra
        clone.extra = None if extra is None else extra.copy()
        clone.filled = self.filled
        clone.open = self.open
        clone.visible = self.visible
        clone.rank = self.rank
        return clone

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id!r}, {self.side.value}, price={self.price}, open={self.open}/"
            f"{self.quantity}, {self.order_type.value}/{self.tif.value})"
        )

    def fields(self, quantity: int = -1, open_: int = -1) -> OrderFields:
        """The order's fields in one tuple (one call where reading them one by one from interpreted code
        costs an attribute lookup and a boxed number each in the compiled build): ``(order_id, side,
        order_type, tif, user_id, timestamp, stp, peak, trail, trail_is_percent, price, quantity, filled,
        open, visible, expiry, stop_price, trail_ref, triggered, pending, rank, client_order_id)``, the
        enums as their string values. ``quantity`` and ``open_`` replace the order's own when given
        (not negative): a finished order's lots as they were at the event that ended it."""
        extra = self.extra
        if extra is None:
            peak = 0
            trail: int | Decimal | None = None
            trail_is_percent = False
            expiry: float | None = None
            stop_price: int | None = None
            trail_ref: int | None = None
            triggered = False
            pending = False
            client_order_id: str | None = None
        else:
            peak = extra.peak
            trail = extra.trail
            trail_is_percent = extra.trail_is_percent
            expiry = extra.expiry
            stop_price = extra.stop_price
            trail_ref = extra.trail_ref
            triggered = extra.triggered
            pending = extra.pending
            client_order_id = extra.client_order_id
        if quantity < 0:
            quantity = self.quantity
        if open_ < 0:
            open_ = self.open
        return (
            self.order_id,
            self.side._value_,
            self.order_type._value_,
            self.tif._value_,
            self.user_id,
            self.timestamp,
            self.stp._value_,
            peak,
            trail,
            trail_is_percent,
            self.price,
            quantity,
            self.filled,
            open_,
            self.visible,
            expiry,
            stop_price,
            trail_ref,
            triggered,
            pending,
            self.rank,
            client_order_id,
        )

    def progress(self) -> tuple[str, int, int, int, int]:
        """``(order_id, filled, open, visible, rank)`` in one tuple: what a fill changes (see
        :meth:`fields`)."""
        return (self.order_id, self.filled, self.open, self.visible, self.rank)


# acyclic: the templates are dicts of strings, numbers and None (never a book object), so no cycle can
# pass through a record; compiled, it has no GC header and is not visited by collections.
@mypyc_attr(acyclic=True)
class LevelTemplates:
    """A price level's own event templates, made by the book when an event of the level first needs one.

    Each is a copy of its side's template with the level's price set (the price is the same for every
    event of the level); an event is a copy of it, so a template is never handed out. ``payload``:
    PRICE_LEVEL events; ``fill_payload``: the ORDER_FILLED events of the makers resting at the level
    (price and fill price set); ``added_payload`` and ``cancelled_payload``: the ORDER_ADDED and
    ORDER_CANCELLED events of the plain orders that join and leave it. None until needed.

    :data:`NO_TEMPLATES` is the shared record of a level that has none yet: never written to (the book
    gives a level its own record before it stores a first template).
    """

    __slots__ = ("added_payload", "cancelled_payload", "fill_payload", "payload")

    def __init__(self) -> None:
        self.payload: dict[str, object] | None = None
        self.fill_payload: dict[str, object] | None = None
        self.added_payload: dict[str, object] | None = None
        self.cancelled_payload: dict[str, object] | None = None


#: The templates of every level that has none of its own (all None; never written to).
NO_TEMPLATES: Final = LevelTemplates()


class PriceLevel:
    """The queue of orders resting at one price on one side.

    The queue is ``orders[head:]``, in time priority: taking the front order advances ``head``
    (entries before it are spent and dropped in one slice once they are many; a plain list indexes
    and appends natively under mypyc, where every ``deque`` operation is a generic method call).
    Cancelled orders stay in the queue until they reach the front or the queue is compacted (lazy
    deletion, so a cancel is O(1)): they are recognised by ``order.level`` no longer being this
    level, and ``dead`` counts them. ``total`` is the visible quantity, ``reserve`` the hidden
    iceberg quantity and ``count`` the number of live orders. ``price_out`` is the book's output
    number for ``price`` (a float by default), kept by the book once an event has needed it, so that the
    level's events and the trades at it share one object instead of converting the price again.
    ``marked`` is the :class:`~manticore_orderbook.price_index.PriceIndex`'s own: True while the level
    was removed from the index away from its ends and its price is still in the index's chunks.
    ``templates`` holds the book's event templates for this level (:class:`LevelTemplates`): the shared,
    empty :data:`NO_TEMPLATES` until an event of the level first needs one, then a record of the
    level's own (one slot for the four templates keeps a level in a 128-byte allocation block).
    """

    __slots__ = (
        "count",
        "dead",
        "head",
        "marked",
        "orders",
        "price",
        "price_out",
        "reserve",
        "side",
        "templates",
        "total",
    )

    def __init__(self, price: int, side: Side) -> None:
        self.price = price
        self.side = side
        self.orders: list[Order] = []
        self.head = 0
        self.total = 0
        self.reserve = 0
        self.count = 0
        self.dead = 0
        self.price_out: object = None
        self.marked = False
        self.templates = NO_TEMPLATES

    def live_orders(self) -> list[Order]:
        """The live orders in time priority."""
        return [o for o in self.orders[self.head :] if o.level is self]

    def advance(self) -> None:
        """Take the front entry off the queue (it must have one)."""
        head = self.head + 1
        if head >= 32 and head + head > len(self.orders):  # spent entries dominate: drop them
            del self.orders[:head]
            head = 0
        self.head = head

    def clear(self) -> None:
        """Empty the queue (the level has no live order left)."""
        self.orders.clear()
        self.head = 0
        self.dead = 0

    def compact(self) -> None:
        """Drop spent and cancelled entries from the queue."""
        self.orders = [o for o in self.orders[self.head :] if o.level is self]
        self.head = 0
        self.dead = 0


@mypyc_attr(acyclic=True)  # as OrderExtra: its fields are numbers, strings and an enum member
class Trade:
    """One execution: ``quantity`` lots at ``price`` ticks between a resting maker and a taker."""

    __slots__ = (
        "maker_order_id",
        "maker_user_id",
        "number",
        "price",
        "quantity",
        "sequence",
        "taker_order_id",
        "taker_side",
        "taker_user_id",
        "timestamp",
    )

    def __init__(
        self,
        number: int,
        price: int,
        quantity: int,
        maker: Order,
        taker: Order,
        timestamp: float,
        sequence: int,
    ) -> None:
        self.number = number
        self.price = price
        self.quantity = quantity
        self.maker_order_id = maker.order_id
        self.maker_user_id = maker.user_id
        self.taker_order_id = taker.order_id
        self.taker_user_id = taker.user_id
        self.taker_side = taker.side
        self.timestamp = timestamp
        self.sequence = sequence

    def fields(self, maker: Order, taker: Order) -> TradeFields:
        """The trade's fields and its orders' client order ids in one tuple (see :meth:`Order.fields`):
        ``(number, sequence, price, quantity, maker_order_id, taker_order_id, maker_user_id,
        taker_user_id, taker_side, timestamp, maker_client_order_id, taker_client_order_id)``, the side
        as its string value; ``maker`` and ``taker`` are the trade's orders."""
        # The ids are set in statements: mypyc (mypy 2.4.1) compiled two conditional expressions in this tuple
        # display into the taker's id twice (tests/storage/test_capture_fields.py caught it).
        maker_client_order_id: str | None = None
        extra = maker.extra
        if extra is not None:
            maker_client_order_id = extra.client_order_id
        taker_client_order_id: str | None = None
        extra = taker.extra
        if extra is not None:
            taker_client_order_id = extra.client_order_id
        return (
            self.number,
            self.sequence,
            self.price,
            self.quantity,
            self.maker_order_id,
            self.taker_order_id,
            self.maker_user_id,
            self.taker_user_id,
            self.taker_side._value_,
            self.timestamp,
            maker_client_order_id,
            taker_client_order_id,
        )


_T = TypeVar("_T")


def _blank_class(cls: type[_T], name: str) -> type[_T]:
    """A subclass of ``cls`` named ``name`` that adds no field, no method and no ``__dict__``, and whose
    ``__init__`` is ``object.__init__`` (a C function: no frame, no argument)."""
    namespace: dict[str, object] = {
        "__slots__": (),
        "__init__": object.__init__,
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"A {cls.__name__} made blank, its fields set by its maker (see the BLANK_ constants).",
    }
    return cast("type[_T]", type(name, (cls,), namespace))


# In the interpreter, ``BLANK_ORDER()`` is an :class:`Order` and ``BLANK_TRADE()`` a :class:`Trade`
# with no field set yet: the book's hot paths set every one themselves (tests/orderbook/test_fast_paths.py
# compares them with the class's own ``__init__``). Called without arguments, CPython makes one with
# no argument tuple and runs no Python frame: about 280 instructions cheaper than
# ``object.__new__(Order)``, which takes a tuple ``(Order,)``. Module attributes (``_BlankOrder``,
# ``_BlankTrade``), so that pickle and copy find them. Compiled, the classes themselves (never made
# that way there: interpreted code cannot subclass a native class).

#: An ``Order`` to fill in (see above).
BLANK_ORDER: Final = cast(
    "Callable[[], Order]", _blank_class(Order, "_BlankOrder") if _INTERPRETED else Order
)
#: A ``Trade`` to fill in (see above).
BLANK_TRADE: Final = cast(
    "Callable[[], Trade]", _blank_class(Trade, "_BlankTrade") if _INTERPRETED else Trade
)
_BlankOrder: Final = BLANK_ORDER
_BlankTrade: Final = BLANK_TRADE
