"""State transfer of an :class:`~manticore_orderbook.book.OrderBook`: export, validated restore, trusted load.

Cold code, kept out of the matching engine's module: none of it runs while the book trades.

* :func:`export_state` / :func:`restore_state`: what ``OrderBook.export_state`` and
  ``OrderBook.restore_state`` do (those methods call these); ``restore_state`` validates every order as
  a new command would.
* :func:`load_trusted`: the bulk load for a trusted source (:mod:`manticore_storage` restoring rows it
  wrote itself), which parses nothing twice and checks only cheap invariants; a million orders load in
  seconds.

Every function takes the book first, holds its lock while it works, and changes nothing when it raises.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .enums import (
    BUY,
    FOK,
    GTC,
    GTD,
    ICEBERG,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    STOP_LIMIT,
    STOP_MARKET,
    TRAILING_STOP,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from .errors import InvalidOrderError
from .model import Order, PriceLevel
from .numbers import to_decimal
from .price_index import PriceIndex
from .rules import check_client_order_id

if TYPE_CHECKING:
    from .book import OrderBook

__all__ = ["export_state", "load_trusted", "restore_state"]


#: Enum members by their exact values, for :func:`load_trusted` (records carry the book's own values).
_TRUSTED_SIDES: Final[dict[object, Side]] = {m.value: m for m in Side}
_TRUSTED_KINDS: Final[dict[object, OrderType]] = {m.value: m for m in OrderType}
_TRUSTED_TIFS: Final[dict[object, TimeInForce]] = {m.value: m for m in TimeInForce}
_TRUSTED_STPS: Final[dict[object, SelfTradePrevention]] = {m.value: m for m in SelfTradePrevention}

#: A decoded kind key of the trusted load: side, type, time in force, STP, pending, triggered, user id
#: is an int, detailed, plain (a GTC limit or post-only order needing no details), and the side's
#: levels and price index (see ``_trusted_kind``).
_TrustedKind = tuple[
    Side,
    OrderType,
    TimeInForce,
    SelfTradePrevention,
    bool,
    bool,
    bool,
    bool,
    bool,
    dict[int, PriceLevel],
    PriceIndex,
]


def export_state(book: OrderBook) -> dict[str, Any]:
    """What ``book.export_state()`` returns (the contract is on ``OrderBook.export_state``)."""
    with book._lock:
        return {
            "symbol": book.symbol,
            "sequence": book._sequence,
            "last_trade_price": book.last_trade_price,
            "trade_count": book._trade_no,
            "generated_order_count": book._next_order_no,
            "orders": [book._order_dict(order) for order in book._iter_orders()],
        }


def restore_state(book: OrderBook, state: Mapping[str, Any] | object) -> int:
    """``book.restore_state(state)``, every order validated (the contract: ``OrderBook.restore_state``)."""
    if not isinstance(state, Mapping):
        raise InvalidOrderError("state must be a mapping like export_state() returns")
    records = state.get("orders", [])
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
        raise InvalidOrderError("state['orders'] must be a list of order dicts")
    with book._lock:
        if book._orders:
            raise InvalidOrderError("restore_state needs an empty book")
        book._drop_empty_levels()
        reserved: set[str] = set()
        ranks: set[int] = set()
        orders: list[Order] = []
        for index, record in enumerate(records):
            try:
                order = _restored_order(book, record, reserved)
            except InvalidOrderError as exc:
                raise InvalidOrderError(f"state order {index}: {exc}") from None
            if order.rank in ranks:
                raise InvalidOrderError(f"state order {index}: priority {order.rank} is used twice")
            ranks.add(order.rank)
            reserved.add(order.order_id)
            orders.append(order)
        sequence = _counter(state.get("sequence", 0), "sequence")
        if ranks and max(ranks) > sequence:
            sequence = max(ranks)
        trade_count = _counter(state.get("trade_count", 0), "trade_count")
        generated = _counter(state.get("generated_order_count", 0), "generated_order_count")
        last = state.get("last_trade_price")
        last_price = None if last is None else book._price_grid.to_units(last)
        _place_restored(book, orders)
        book._sequence = max(book._sequence, sequence)
        book._trade_no = max(book._trade_no, trade_count)
        book._next_order_no = max(book._next_order_no, generated)
        if last_price is not None:
            book._last_price = last_price
        return len(orders)


def _restored_order(book: OrderBook, record: object, reserved: set[str]) -> Order:
    """Validate one ``restore_state`` order record and return the Order (not placed anywhere)."""
    if not isinstance(record, Mapping):
        raise InvalidOrderError("each order must be a dict")
    get = record.get
    timestamp = get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or timestamp != timestamp:
        raise InvalidOrderError("timestamp must be a number of seconds")
    order_id = get("order_id")
    if order_id is None:
        raise InvalidOrderError("order_id is required")
    order = book._build(
        get("side"),
        get("price"),
        get("quantity"),
        order_id,
        get("time_in_force"),
        get("expiry_time"),
        get("user_id"),
        get("order_type"),
        None if _is_trailing(get("order_type")) else get("stop_price"),
        get("trail_value"),
        get("trail_is_percent", False),
        # The display size is set below: a self-trade decrement may leave an iceberg smaller than it.
        None if get("displayed_quantity") is None else get("quantity"),
        get("self_trade_prevention"),
        float(timestamp),
        reserved,
    )
    displayed = get("displayed_quantity")
    if displayed is not None:
        order.peak = book._qty_grid.to_units(displayed)
    client_id = get("client_order_id")
    if client_id is not None:
        order.client_order_id = check_client_order_id(client_id)
    qty_grid = book._qty_grid
    filled_value = get("filled_quantity")
    # A zero fill comes in every number format ("0.0" from a str book): only a non-zero one is on
    # the grid.
    unfilled = filled_value is None or to_decimal(filled_value, "filled_quantity") == 0
    order.filled = 0 if unfilled else qty_grid.to_units(filled_value)
    order.open = qty_grid.to_units(get("remaining_quantity"))
    if order.filled + order.open != order.quantity:
        raise InvalidOrderError("filled_quantity + remaining_quantity must equal quantity")
    rank = get("priority")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0:
        raise InvalidOrderError("priority must be a positive integer")
    order.rank = rank
    order.triggered = bool(get("triggered", False))
    kind = order.order_type
    is_stop = kind is STOP_LIMIT or kind is STOP_MARKET or kind is TRAILING_STOP
    order.pending = get("status") == "pending"
    if order.pending:
        if not is_stop or order.triggered:
            raise InvalidOrderError("only an untriggered stop can be pending")
        if kind is TRAILING_STOP:
            ref = get("trail_reference_price")
            order.trail_ref = None if ref is None else book._price_grid.to_units(ref)
            order.stop_price = None
            book._update_trailing_stop(order)
        return order
    if is_stop and not order.triggered:
        raise InvalidOrderError("a stop that has not triggered must have status 'pending'")
    if order.price is None or kind is MARKET or kind is STOP_MARKET:
        raise InvalidOrderError("a resting order needs a limit price")
    if order.tif is IOC or order.tif is FOK:
        raise InvalidOrderError(f"{order.tif.value} orders never rest")
    visible = get("visible_quantity")
    if visible is None or to_decimal(visible, "visible_quantity") == 0:
        # Not shown yet (a taker's payloads precede its resting): it rests with a fresh slice.
        order.visible = order.peak if order.peak and order.peak < order.open else order.open
    else:
        order.visible = qty_grid.to_units(visible)
    if order.visible > order.open or (order.peak and order.visible > order.peak):
        raise InvalidOrderError("visible_quantity exceeds the open or displayed quantity")
    if kind is TRAILING_STOP:  # triggered: keeps the stop price it triggered at
        ref = get("trail_reference_price")
        order.trail_ref = None if ref is None else book._price_grid.to_units(ref)
        stop = get("stop_price")
        order.stop_price = None if stop is None else book._price_grid.to_units(stop)
    return order


def load_trusted(
    book: OrderBook,
    records: Iterable[tuple[Any, ...]],
    kinds: Mapping[object, tuple[Any, ...]],
    details: Mapping[Any, tuple[Any, ...]],
    prices: Mapping[Any, int | None],
    lots: Mapping[Any, int | None],
    sequence: int,
    trade_count: int,
    generated_order_count: int,
    last_trade_price: int | None,
    client_order_ids: Mapping[str, str] | None = None,
) -> int:
    """Load live orders and counters into the empty ``book`` from a trusted source, without events.

    The trusted source is :mod:`manticore_storage` restoring rows it wrote itself (the public
    counterpart of :meth:`OrderBook.restore_state <manticore_orderbook.OrderBook.restore_state>`).
    Returns the number of orders loaded.

    Nothing is parsed twice and only cheap invariants are checked (ids unique, priorities unique
    and rising in each price level, quantities positive and consistent, kinds that can rest or
    wait, the book not crossed), instead of validating every order as a new command.

    Each record is a tuple ``(order_id, price, remaining_quantity, user_id, timestamp, priority,
    kind)``. The records of the resting orders must come grouped by price (consecutive records
    with equal ``price`` values join the same level; a price that comes back in a later group
    costs a sort of its level) and in ascending priority within each group; untriggered stops
    may come anywhere. ``kinds[kind]`` is ``(side, order_type, time_in_force,
    self_trade_prevention, pending, triggered, user_id_is_int, detailed)``: the enum fields are
    the book's own values (an STP of None means the book's default) and a true
    ``user_id_is_int`` turns a text ``user_id`` into an int. The other fields of a ``detailed``
    order are ``details[priority]``: ``(priority, quantity, filled_quantity, visible_quantity,
    displayed_quantity, expiry_time, stop_price, trail_value, trail_is_percent,
    trail_reference_price)``. Any other order has nothing filled, is fully visible and has no
    display size, expiry, stop or trail. Prices (``price``, ``stop_price``,
    ``trail_reference_price``, a non-percent ``trail_value``) are keys of ``prices`` and
    quantities keys of ``lots``: mappings from the stored value to whole ticks or lots (None to
    None). ``visible_quantity`` None or 0 means a fresh slice; a percent ``trail_value`` is a
    decimal. ``client_order_ids`` maps order ids to their client order ids (orders not in it have
    none). Raises :class:`InvalidOrderError` and leaves the book empty if anything does not hold.
    """
    with book._lock:
        if book._orders:
            raise InvalidOrderError("restore_state needs an empty book")
        book._drop_empty_levels()
        sequence = _counter(sequence, "sequence")
        trade_count = _counter(trade_count, "trade_count")
        generated = _counter(generated_order_count, "generated_order_count")
        if last_trade_price is not None and last_trade_price <= 0:
            raise InvalidOrderError("last_trade_price must be positive")
        try:
            top = _load_trusted(book, records, kinds, details, prices, lots)
            if client_order_ids:
                book_orders = book._orders
                for order_id, client_id in client_order_ids.items():
                    found = book_orders.get(order_id)
                    if found is not None:
                        found.client_order_id = check_client_order_id(client_id)
            bid, ask = book._bid_prices.max(), book._ask_prices.min()
            if bid is not None and ask is not None and bid >= ask:
                raise InvalidOrderError(f"the restored book would be crossed (bid {bid} >= ask {ask} ticks)")
        except BaseException:
            book._release_levels()
            book._reset_state()
            raise
        book._sequence = max(book._sequence, sequence, top)
        book._trade_no = max(book._trade_no, trade_count)
        book._next_order_no = max(book._next_order_no, generated)
        if last_trade_price is not None:
            book._last_price = last_trade_price
        return len(book._orders)


def _load_trusted(
    book: OrderBook,
    records: Iterable[tuple[Any, ...]],
    kinds: Mapping[object, tuple[Any, ...]],
    details: Mapping[Any, tuple[Any, ...]],
    prices: Mapping[Any, int | None],
    lots: Mapping[Any, int | None],
) -> int:
    """Build and place the orders of ``load_trusted``; return the top priority.

    One price level at a time: a level is looked up once per group of records and its totals are
    added once, which keeps a million orders over many levels fast. A plain order (limit or
    post-only, GTC, not detailed, not a stop) that passes the checks is built here; any other
    goes through ``_trusted_order``, which also makes the error of a record that fails a check.
    Untriggered stops are registered last, in ascending priority."""
    book_orders = book._orders
    expiries = book._expiries
    max_price = book._price_grid.max_units
    max_qty = book._qty_grid.max_units
    ranks: set[int] = set()
    seen = ranks.add
    stops: list[Order] = []
    revisited: dict[int, PriceLevel] = {}
    decoded: dict[object, _TrustedKind] = {}
    no_key = current = object()  # the kind key and price value of the last record, none yet
    last_key: object = no_key
    price_key: Any = None  # the int object of the current level's price (see below)
    side = BUY
    order_type = LIMIT
    tif = GTC
    stp = book.default_stp
    pending = user_id_is_int = plain = False
    levels = book._bid_levels
    level_prices = book._bid_prices
    level: PriceLevel | None = None
    append = list[Order]().append
    price = total = count = last_rank = placed = 0
    for order_id, price_value, open_value, user_id, timestamp, rank, key in records:
        if key != last_key:
            found = decoded.get(key)
            if found is None:
                found = _trusted_kind(book, kinds, key, len(book_orders))
                decoded[key] = found
            kind = found
            side, order_type, tif, stp, pending, _, user_id_is_int, _, plain, levels, level_prices = kind
            last_key = key
            if not pending and level is not None and side is not level.side:
                current = no_key  # same price, other side: another level (and a crossed book)
        if user_id_is_int and user_id is not None:
            user_id = _trusted_user_id(user_id, len(book_orders))
        seen(rank)
        if pending:
            order = _trusted_order(
                book, order_id, price_value, open_value, user_id, timestamp, rank, kind, details, prices, lots
            )
            book_orders[order_id] = order
            stops.append(order)
            continue
        if price_value != current:  # the next level: settle this one, find or make that one
            if level is not None:
                level.total += total
                level.count += count
                placed += count
            price_units = prices[price_value]
            # ``price_key``: the mapping's own int object, taken before ``price_units`` is narrowed and
            # kept as it is (``Any``) for the level's key in its dict and index and for the plain
            # orders' price. Compiled, the narrowed int is unboxed, and each store of it would box a
            # new int object (64 bytes a level more, and 32 an order; see ``OrderBook._new_level``).
            price_key = price_units
            if price_units is None or not 0 < price_units <= max_price:
                raise InvalidOrderError(
                    f"state order {len(book_orders)}: no price to rest at, or out of range"
                )
            price = price_units
            if type(price_key) is not int:  # an int subclass: the level keeps a plain int
                price_key = price
            level = levels.get(price_key)
            if level is None:
                level = PriceLevel(price, side)
                levels[price_key] = level
                level_prices.add_level(level, price_key)
            elif level.count or len(level.orders) > level.head:
                revisited[id(level)] = level
            append = level.orders.append
            current = price_value
            total = count = last_rank = 0
        assert level is not None
        if rank <= last_rank:
            raise InvalidOrderError(
                f"state order {len(book_orders)}: priority {rank!r} is not above the previous one"
                " of its price level"
            )
        last_rank = rank
        quantity = lots[open_value]
        if (
            plain
            and quantity is not None
            and 0 < quantity <= max_qty
            and isinstance(order_id, str)
            and order_id
        ):  # a repeated order_id shows in the count of book_orders at the end
            order = Order(order_id, side, price_key, quantity, order_type, tif, user_id, timestamp, stp)
            order.visible = quantity
            order.rank = rank
            total += quantity
        else:
            order = _trusted_order(
                book, order_id, price_value, open_value, user_id, timestamp, rank, kind, details, prices, lots
            )
            total += order.visible
            level.reserve += order.open - order.visible
            if order.expiry is not None:
                heapq.heappush(expiries, (order.expiry, rank, order))
        order.level = level
        append(order)
        count += 1
        book_orders[order_id] = order
    if level is not None:
        level.total += total
        level.count += count
        placed += count
    if len(book_orders) != placed + len(stops):
        raise InvalidOrderError("two orders have the same order_id")
    if len(ranks) != len(book_orders):
        raise InvalidOrderError("two orders have the same priority")
    for level in revisited.values():  # a level in two groups (a price spelt two ways): reorder
        level.orders = sorted(level.orders[level.head :], key=lambda o: o.rank)
        level.head = 0
    stops.sort(key=lambda o: o.rank)
    for order in stops:
        if order.order_type is TRAILING_STOP:
            book._update_trailing_stop(order)
        book._register_stop(order)
    return max(ranks, default=0)


def _trusted_kind(
    book: OrderBook, kinds: Mapping[object, tuple[Any, ...]], key: object, index: int
) -> _TrustedKind:
    """Decode one kind key of ``load_trusted`` (``_load_trusted`` does it once per key)."""
    values = kinds.get(key)
    if values is None or len(values) != 8:
        raise InvalidOrderError(f"state order {index}: unknown side, order type, time in force or STP")
    side_value, type_value, tif_value, stp_value, pending, triggered, user_id_is_int, detailed = values
    side = _TRUSTED_SIDES.get(side_value)
    order_type = _TRUSTED_KINDS.get(type_value)
    tif = _TRUSTED_TIFS.get(tif_value)
    stp = book.default_stp if stp_value is None else _TRUSTED_STPS.get(stp_value)
    if side is None or order_type is None or tif is None or stp is None:
        raise InvalidOrderError(f"state order {index}: unknown side, order type, time in force or STP")
    plain = (
        not (pending or triggered or detailed)
        and (order_type is LIMIT or order_type is POST_ONLY)
        and tif is GTC
    )
    levels, level_prices = (
        (book._bid_levels, book._bid_prices) if side is BUY else (book._ask_levels, book._ask_prices)
    )
    return (
        side,
        order_type,
        tif,
        stp,
        bool(pending),
        bool(triggered),
        bool(user_id_is_int),
        bool(detailed),
        plain,
        levels,
        level_prices,
    )


def _trusted_user_id(user_id: Any, index: int) -> int:
    """A ``user_id`` of ``load_trusted`` that ``user_id_is_int`` says is an int."""
    try:
        return int(user_id)
    except (TypeError, ValueError):
        raise InvalidOrderError(f"state order {index}: user_id {user_id!r} is not an int") from None


def _trusted_order(
    book: OrderBook,
    order_id: Any,
    price_value: Any,
    open_value: Any,
    user_id: Any,
    timestamp: Any,
    rank: int,
    kind: _TrustedKind,
    details: Mapping[Any, tuple[Any, ...]],
    prices: Mapping[Any, int | None],
    lots: Mapping[Any, int | None],
) -> Order:
    """Check and build one order of ``load_trusted``, whatever its kind and details: a resting
    order with its visible quantity, not placed yet, or an untriggered stop, not registered yet."""
    book_orders = book._orders
    index = len(book_orders)
    side, kind_, tif, stp, pending, triggered, _, detailed, _, _, _ = kind
    if not isinstance(order_id, str) or not order_id or order_id in book_orders:
        raise InvalidOrderError(f"state order {index}: order_id missing or used twice")
    price = prices[price_value]
    open_ = lots[open_value]
    if detailed:
        row = details.get(rank)
        if row is None or len(row) != 10:
            raise InvalidOrderError(f"state order {index}: its details are missing")
        (
            _,
            quantity_value,
            filled_value,
            visible_value,
            peak_value,
            expiry,
            stop_value,
            trail_value,
            trail_is_percent,
            trail_ref_value,
        ) = row
        quantity = lots[quantity_value]
        filled = lots[filled_value]
    else:
        visible_value = peak_value = expiry = stop_value = trail_value = trail_ref_value = None
        trail_is_percent = False
        quantity = open_
        filled = 0
    max_price = book._price_grid.max_units
    max_qty = book._qty_grid.max_units
    if quantity is None or filled is None or open_ is None:
        raise InvalidOrderError(f"state order {index}: quantities missing")
    if not 0 < quantity <= max_qty or filled < 0 or open_ <= 0 or filled + open_ != quantity:
        raise InvalidOrderError(f"state order {index}: inconsistent quantities")
    if price is not None and not 0 < price <= max_price:
        raise InvalidOrderError(f"state order {index}: price out of range")
    if (tif is GTD) != (expiry is not None):
        raise InvalidOrderError(f"state order {index}: GTD orders, and only they, have an expiry")
    peak = 0 if peak_value is None else lots[peak_value]
    if peak is None or peak < 0:
        raise InvalidOrderError(f"state order {index}: displayed_quantity out of range")
    if peak:
        if kind_ is LIMIT:
            kind_ = ICEBERG  # as add_order reads a limit order with a display size
        elif kind_ is not ICEBERG:
            raise InvalidOrderError(f"state order {index}: only icebergs have a displayed_quantity")
    elif kind_ is ICEBERG:
        raise InvalidOrderError(f"state order {index}: an iceberg needs a displayed_quantity")
    order = Order(order_id, side, price, quantity, kind_, tif, user_id, timestamp, stp)
    order.filled = filled
    order.open = open_
    order.expiry = expiry
    order.peak = peak
    order.rank = rank
    order.triggered = triggered
    is_stop = kind_ is STOP_LIMIT or kind_ is STOP_MARKET or kind_ is TRAILING_STOP
    if kind_ is TRAILING_STOP:
        if trail_value is None:
            raise InvalidOrderError(f"state order {index}: a trailing stop needs a trail_value")
        order.trail_is_percent = bool(trail_is_percent)
        order.trail = to_decimal(trail_value, "trail_value") if trail_is_percent else prices[trail_value]
        order.trail_ref = prices[trail_ref_value]
        if not pending and stop_value is not None:  # triggered: keeps the stop it triggered at
            order.stop_price = prices[stop_value]
    elif is_stop:
        stop = prices[stop_value]
        if stop is None or not 0 < stop <= max_price:
            raise InvalidOrderError(f"state order {index}: a stop needs a valid stop_price")
        order.stop_price = stop
    if pending:
        if not is_stop or triggered:
            raise InvalidOrderError(f"state order {index}: only an untriggered stop can be pending")
        return order
    if is_stop and not triggered:
        raise InvalidOrderError(f"state order {index}: an untriggered stop must be pending")
    if price is None or kind_ is MARKET or kind_ is STOP_MARKET or tif is IOC or tif is FOK:
        raise InvalidOrderError(f"state order {index}: this order cannot rest")
    visible = open_ if visible_value is None else lots[visible_value]
    if not visible:
        visible = peak if peak and peak < open_ else open_
    elif visible < 0 or visible > open_ or (peak and visible > peak):
        raise InvalidOrderError(f"state order {index}: visible_quantity out of range")
    order.visible = visible
    return order


def _place_restored(book: OrderBook, orders: list[Order]) -> None:
    """Put validated restored orders in place: resting ones in their levels by priority, stops held."""
    orders.sort(key=lambda o: o.rank)
    for order in orders:
        if order.pending:
            book._register_stop(order)
        else:
            book._join_level(order)
    bid, ask = book._bid_prices.max(), book._ask_prices.min()
    if bid is not None and ask is not None and bid >= ask:
        book._release_levels()
        book._reset_state()
        raise InvalidOrderError(f"the restored book would be crossed (bid {bid} >= ask {ask} ticks)")


def _is_trailing(order_type: object) -> bool:
    return order_type is TRAILING_STOP or (
        isinstance(order_type, str) and order_type.strip().upper() == TRAILING_STOP.value.upper()
    )


def _counter(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidOrderError(f"{what} must be a non-negative integer")
    return value
