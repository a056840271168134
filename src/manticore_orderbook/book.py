"""The limit order book: price-time priority matching with exact integer arithmetic and events.

See docs/orderbook.md for the matching rules and docs/events.md for the event contract. In short:

* Prices are whole ticks and quantities whole lots inside the book; inputs off the grid are rejected.
* Trades execute at the resting (maker) order's price, best price first, earliest order first.
* Every command reads the injected clock once; orders whose GTD expiry has passed are removed (with
  ``ORDER_EXPIRED``) before the command does anything else.
* A command that raises has changed nothing: not the book, not the event sequence.
* Events are numbered per book, one by one, whether or not anyone listens; payload dictionaries are
  built only for event types that have subscribers, and delivered after the command's state change
  is complete (handlers always see a consistent book and may call back into it).
"""

from __future__ import annotations

import heapq
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_FLOOR, Context, Decimal
from enum import Enum
from operator import truediv
from typing import Any, Final, cast

from .changes import (
    CHANGE_ADDED,
    CHANGE_CANCELLED,
    CHANGE_CLEARED,
    CHANGE_EXPIRED,
    CHANGE_ORDER,
    CHANGE_TRADE,
    ChangeEntry,
    ChangeRecorder,
)
from .enums import (
    BUY,
    FOK,
    GTC,
    GTD,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    SELL,
    STOP_LIMIT,
    STOP_MARKET,
    STP_BOTH,
    STP_NEWEST,
    STP_NONE,
    STP_OLDEST,
    TRAILING_STOP,
    EventType,
    SelfTradePrevention,
    Side,
    parse_order_type,
    parse_side,
    parse_stp,
    parse_time_in_force,
)
from .errors import DuplicateOrderIdError, InvalidOrderError
from .events import EVENT_INDEX, EventHandler, EventManager, Route
from .lock import BookLock
from .model import (
    BLANK_ORDER,
    BLANK_TRADE,
    NO_TEMPLATES,
    LevelTemplates,
    Order,
    OrderExtra,
    PriceLevel,
    Trade,
)
from .numbers import _INTERPRETED, Grid, NumberFormat, decimal_text, to_decimal
from .payloads import (
    ORDER_ADDED_KEYS,
    ORDER_CANCELLED_KEYS,
    ORDER_EXPIRED_KEYS,
    ORDER_FILLED_KEYS,
    ORDER_KEYS,
    ORDER_TRIGGERED_KEYS,
    PRICE_LEVEL_KEYS,
    READ_ORDER_KEYS,
    TRADE_KEYS,
)
from .price_index import PriceIndex
from .restore import export_state as _export_state
from .restore import restore_state as _restore_state
from .rules import (
    check_client_order_id,
    check_display_size,
    check_fields,
    check_trail_percent,
    infer_order_type,
)

__all__ = ["OrderBook"]

_LOG = logging.getLogger("manticore_orderbook.events")


E_ADDED: Final = 0
E_MODIFIED: Final = 1
E_CANCELLED: Final = 2
E_FILLED: Final = 3
E_EXPIRED: Final = 4
E_TRIGGERED: Final = 5
E_TRADE: Final = 6
E_LEVEL_ADDED: Final = 7
E_LEVEL_CHANGED: Final = 8
E_LEVEL_REMOVED: Final = 9
E_CLEARED: Final = 10
E_ERROR: Final = 11
# The literals above are the declaration order of EventType (kept literal so compiled code inlines them).
assert [EVENT_INDEX[t] for t in EventType] == [
    E_ADDED,
    E_MODIFIED,
    E_CANCELLED,
    E_FILLED,
    E_EXPIRED,
    E_TRIGGERED,
    E_TRADE,
    E_LEVEL_ADDED,
    E_LEVEL_CHANGED,
    E_LEVEL_REMOVED,
    E_CLEARED,
    E_ERROR,
]

_PLAIN_SIDES: Final = {"buy": BUY, "sell": SELL, "BUY": BUY, "SELL": SELL, "Buy": BUY, "Sell": SELL}
_PLAIN_TIFS: Final = {"GTC": GTC, "IOC": IOC, "FOK": FOK, "gtc": GTC, "ioc": IOC, "fok": FOK}
_ORDER_ID_MAX_LEN: Final = 128
_new_object: Final = object.__new__
#: The default clock: reading it has no effect, so a quiet cancel skips it (cancel_order).
_WALL_CLOCK: Final = time.time
#: A trade as the interpreter keeps it in the history (flat, see ``OrderBook._history``; ``_trades``
#: reads it back as this tuple, or as a ``Trade`` for a heard one): Trade's fields in this order, the
#: taker's side as ``taker is buyer`` (a bool) when nobody heard its fills, as its ``Side`` when
#: somebody did. Only str, int, float, bool, Side and None in it.
_TradeRow = tuple[int, int, int, str, "str | int | None", str, "str | int | None", "bool | Side", float, int]
#: Items per trade in ``OrderBook._history``: a row's fields in the interpreter, one ``Trade`` compiled.
_HISTORY_STRIDE: Final = 10 if _INTERPRETED else 1
_TRADE_ROW_FIELDS: Final = (
    "number",
    "price",
    "quantity",
    "maker_order_id",
    "maker_user_id",
    "taker_order_id",
    "taker_user_id",
    "taker_side",
    "timestamp",
    "sequence",
)
#: The rare fields of every plain order (read only: never set a field of it).
_NO_EXTRA: Final = OrderExtra()
# Enum class attribute lookups cost ~150 ns each (EnumType's metaclass machinery); module constants
# do not.
_BUY_VALUE: Final = "buy"
_IOC_VALUE: Final = "IOC"
_SELL_VALUE: Final = "sell"
#: Arithmetic on fees and notionals must never round: 28 digits (the default context) is not enough.
_EXACT: Final = Context(prec=999, rounding=ROUND_FLOOR, Emax=999999, Emin=-999999)


def _money_str(value: Decimal) -> object:
    return format(value, "f")


def _money_decimal(value: Decimal) -> object:
    return value


_MONEY_FORMATS: dict[str, Callable[[Decimal], object]] = {
    "float": float,
    "str": _money_str,
    "decimal": _money_decimal,
}
_ADD_ORDER_KEYS: Final = frozenset(
    {
        "side",
        "price",
        "quantity",
        "order_id",
        "time_in_force",
        "expiry_time",
        "user_id",
        "order_type",
        "stop_price",
        "trail_value",
        "trail_is_percent",
        "displayed_quantity",
        "self_trade_prevention",
        "client_order_id",
    }
)

Clock = Callable[[], float]


#: Templates of the dicts the book builds: every key, in its published order (the key tuples are in
#: :mod:`manticore_orderbook.payloads`), values None; the book fills copies of them.
_ORDER_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(ORDER_KEYS)
#: An order as readers get it (``get_order``, ``get_orders``).
_READ_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(READ_ORDER_KEYS)
#: Event payload templates (``_queue`` sets the stamped keys).
_ADDED_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(ORDER_ADDED_KEYS)
_CANCELLED_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(ORDER_CANCELLED_KEYS)
_EXPIRED_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(ORDER_EXPIRED_KEYS)
_TRIGGERED_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(ORDER_TRIGGERED_KEYS)
_EVENT_TEMPLATES: Final[dict[int, dict[str, Any]]] = {
    E_CANCELLED: _CANCELLED_TEMPLATE,
    E_EXPIRED: _EXPIRED_TEMPLATE,
    E_TRIGGERED: _TRIGGERED_TEMPLATE,
}
_TRADE_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(TRADE_KEYS)
_LEVEL_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(PRICE_LEVEL_KEYS)
_FILL_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(ORDER_FILLED_KEYS)


class OrderBook:
    """A price-time priority limit order book for one symbol.

    Args:
        symbol: the market's name, carried by every event.
        event_manager: where events are published; when omitted the book makes its own, reachable as
            ``book.event_manager``. A book never wired to your manager delivers it nothing.
        maker_fee_rate / taker_fee_rate: fee as a fraction of notional (``0.001`` = 10 bp); negative
            maker rates are rebates. Fees are exact decimals in quote currency.
        enable_price_improvement: accepted for compatibility. Trades always execute at the resting
            order's price, so a taker whose limit is better than the book receives the improvement.
        max_trade_history: how many recent trades ``get_trade_history`` keeps.
        tick_size / lot_size: the price and quantity grid (default 0.00000001 each).
        number_format: how prices, quantities and fees are returned: ``"float"`` (default, the nearest
            float to the exact value), ``"str"`` (exact decimal strings) or ``"decimal"``.
        self_trade_prevention: the default mode for orders that do not choose one.
        clock: returns the current time in seconds (``time.time`` by default); inject it for
            deterministic runs.
        order_id_prefix: prefix of generated order ids (default: the symbol's letters and digits).
        max_price / max_quantity: largest accepted price / quantity (default 2**53 - 1 steps).

    The code reads top to bottom in sections (``# ---- name`` lines); *hot* ones run on every order
    and are measured instruction by instruction (docs/performance.md):

    * properties, commands (``add_order`` ... ``clear``; hot), queries (``get_*``), state transfer
      (thin methods; the code is in :mod:`manticore_orderbook.restore`, cold);
    * validation (``_build``; ``add_order`` holds the hot fast path), entering orders: matching,
      self-trade prevention, resting and removal (``_enter`` ... ``_modify_in_place``; hot);
    * stops and expiry (``_hold_stop`` ... ``_expire_due``; hot only when stops or GTD orders exist);
    * events: queueing and delivery (``_emit_*``, ``_queue``, ``_dispatch``; hot);
    * dictionaries: event payloads and order dicts built from templates (hot when subscribed);
    * self-check (``check_invariants``, for tests; cold).
    """

    # Every attribute in a slot. In the interpreter an instance dict of more than 30 keys is no longer
    # shared with the class, and then CPython 3.11 cannot specialise ``self.method(...)`` (a generic
    # lookup, ~230 instructions per call) nor cheaply read attributes; slots make both a few
    # instructions. Compiled, the class is native either way. As compiled, a book takes no new
    # attributes.
    __slots__ = (
        "_added",
        "_added_templates",
        "_ask_levels",
        "_ask_prices",
        "_bid_levels",
        "_bid_prices",
        "_buy_stops",
        "_cancelled_count",
        "_cancelled_templates",
        "_changes",
        "_clock",
        "_dispatching",
        "_expired_count",
        "_expiries",
        "_fill_templates",
        "_float_fees",
        "_h",
        "_has_fees",
        "_history",
        "_id_prefix",
        "_kept_empty",
        "_last_price",
        "_level_templates",
        "_lock",
        "_maker_fee_den",
        "_maker_fee_num",
        "_maker_fee_places",
        "_maker_fee_rate",
        "_maker_fee_rate_given",
        "_maker_fee_unit",
        "_maker_rate_out",
        "_max_trade_history",
        "_modified_count",
        "_money",
        "_next_order_no",
        "_notional",
        "_notional_unit",
        "_orders",
        "_pending",
        "_price_div",
        "_price_grid",
        "_price_memo",
        "_qty_div",
        "_qty_grid",
        "_qty_memo",
        "_r",
        "_recorders",
        "_removed_templates",
        "_sell_stops",
        "_sequence",
        "_stamp",
        "_stamp_at",
        "_stop_count",
        "_sweep_fill",
        "_sweep_trade",
        "_sweeps",
        "_symbol",
        "_taker_fee_den",
        "_taker_fee_num",
        "_taker_fee_places",
        "_taker_fee_rate",
        "_taker_fee_rate_given",
        "_taker_fee_unit",
        "_taker_rate_out",
        "_text_fees",
        "_trade_id_prefix",
        "_trade_no",
        "_trade_pos",
        "_trade_templates",
        "_trailing",
        "_triggered_count",
        "_volume",
        "_zero_money",
        "_zero_qty_out",
        "default_stp",
        "enable_price_improvement",
        "event_manager",
        "number_format",
    )

    def __init__(
        self,
        symbol: str = "DEFAULT",
        *,
        event_manager: EventManager | None = None,
        maker_fee_rate: float | str | Decimal = 0.0,
        taker_fee_rate: float | str | Decimal = 0.0,
        enable_price_improvement: bool = True,
        max_trade_history: int = 10000,
        tick_size: float | str | Decimal = "0.00000001",
        lot_size: float | str | Decimal = "0.00000001",
        number_format: NumberFormat = "float",
        self_trade_prevention: SelfTradePrevention | str = STP_NONE,
        clock: Clock | None = None,
        order_id_prefix: str | None = None,
        max_price: float | str | Decimal | None = None,
        max_quantity: float | str | Decimal | None = None,
    ) -> None:
        if not isinstance(symbol, str) or not symbol:
            raise InvalidOrderError("symbol must be a non-empty string")
        if not isinstance(max_trade_history, int) or max_trade_history < 0:
            raise InvalidOrderError("max_trade_history must be a non-negative integer")
        self._symbol = symbol
        self.event_manager = event_manager if event_manager is not None else EventManager()
        self.enable_price_improvement = bool(enable_price_improvement)
        self._price_grid = Grid(tick_size, "price", number_format)
        self._qty_grid = Grid(lot_size, "quantity", number_format)
        # The grids' memos (Grid._cache: the same dicts, cleared in place, never replaced), read by
        # add_order's fast path in the interpreter without going through the grid.
        self._price_memo: dict[object, int] = self._price_grid._cache
        self._qty_memo: dict[object, int] = self._qty_grid._cache
        if max_price is not None:
            self._price_grid.max_units = Grid(tick_size, "price").to_units(max_price)
        if max_quantity is not None:
            self._qty_grid.max_units = Grid(lot_size, "quantity").to_units(max_quantity)
        self.number_format = number_format
        self._maker_fee_rate = self._fee_rate(maker_fee_rate, "maker_fee_rate")
        self._taker_fee_rate = self._fee_rate(taker_fee_rate, "taker_fee_rate")
        self._maker_fee_rate_given: object = maker_fee_rate
        self._taker_fee_rate_given: object = taker_fee_rate
        unit = _EXACT.multiply(
            self._price_grid.step, self._qty_grid.step
        )  # notional of one tick times one lot
        self._maker_fee_unit = _EXACT.multiply(unit, self._maker_fee_rate)
        self._taker_fee_unit = _EXACT.multiply(unit, self._taker_fee_rate)
        self._notional_unit = unit
        self.default_stp = parse_stp(self_trade_prevention)
        self._clock: Clock = clock if clock is not None else time.time
        if order_id_prefix is None:
            order_id_prefix = re.sub(r"[^A-Za-z0-9]", "", symbol) + "-"
        self._id_prefix = order_id_prefix
        self._trade_id_prefix = f"{order_id_prefix}T"
        self._money: Callable[[Decimal], object] = _MONEY_FORMATS[number_format]
        self._zero_money = self._money(Decimal(0))
        self._maker_rate_out = self._money(self._maker_fee_rate)
        self._taker_rate_out = self._money(self._taker_fee_rate)
        # Float fees are ``notional * num / den`` (one correctly rounded division, like float(Decimal)).
        self._float_fees = number_format == "float"
        self._maker_fee_num, self._maker_fee_den = _ratio(self._maker_fee_unit)
        self._taker_fee_num, self._taker_fee_den = _ratio(self._taker_fee_unit)
        # Text fees are ``notional * num`` written with the unit's decimal places (den == 10**places).
        self._text_fees = number_format == "str"
        self._maker_fee_places = len(str(self._maker_fee_den)) - 1
        self._taker_fee_places = len(str(self._taker_fee_den)) - 1
        # Float outputs on a grid of 10**-k are ``units / 10**k`` (exact division, one rounding).
        self._price_div = self._price_grid.float_divisor()
        self._qty_div = self._qty_grid.float_divisor()
        if _INTERPRETED:
            # The same divisor as an int (10**k is exact either way): in the interpreter int / int
            # divides two exact doubles at once (long_true_divide's small-operand path), where
            # int / float first tries int's division (NotImplemented), then float's, which converts
            # the int (by _PyLong_Frexp past 2**30): ~160 instructions more per division, and a
            # subscribed op makes ~6.5. The quotient is the same correctly rounded float for every
            # units value below 2**53 (the grids' bound); above it (a level's total, a sum) int / int
            # is the nearest float to the exact value where the float divisor rounded twice.
            # (Typed float for mypyc, which compiles this branch but never runs it.)
            self._price_div = cast(float, int(self._price_div))
            self._qty_div = cast(float, int(self._qty_div))
        self._h = self.event_manager.handlers
        # The manager's routes, read where an event is queued. Typed Any: mypyc would unbox a value
        # typed as the triple and box it again (a new tuple per event) when it is queued.
        self._r: list[Any] = self.event_manager.routes
        self._build_templates()
        # Compiled, the book's own lock (lock.py: about 230 instructions cheaper per command). In the
        # interpreter, calling its Python methods costs more than RLock's C methods, so RLock it is.
        self._lock: Final[BookLock] = cast(BookLock, threading.RLock()) if _INTERPRETED else BookLock()
        self._max_trade_history = max_trade_history
        # Events of the command in progress, each its route (the handlers subscribed to its type when
        # it was queued, and the type) and its data: ``(route, data)`` tuples in the interpreter, two
        # items compiled (``_push``; ``_deliver`` delivers).
        self._pending: list[Any] = []
        self._dispatching = False
        # The clock reading the events' ``timestamp`` keys hold, as one float object (``_stamp_of``).
        self._stamp: object = None
        self._stamp_at = 0.0
        # The taker's last TRADE_EXECUTED and ORDER_FILLED data of the sweep in progress (``_match``),
        # not delivered yet: the next trade's are copies of them (``_next_trade_dict``).
        self._sweep_trade: dict[str, Any] | None = None
        self._sweep_fill: dict[str, Any] | None = None
        # The change log of the command in progress; None while no change recorder is registered.
        self._changes: list[ChangeEntry] | None = None
        self._recorders: tuple[ChangeRecorder, ...] = ()
        self._sequence = 0
        self._next_order_no = 0
        self._trade_no = 0
        self._reset_state()
        # The last ``max_trade_history`` trades. Compiled, a ring once full (``_trade_pos`` is the
        # oldest): a list item store is native under mypyc, where ``deque.append`` is a generic method
        # call. In the interpreter a list that grows by whole rows and, once it holds an eighth more
        # than it keeps, drops the oldest in one slice at the end of ``_match`` (a row's append
        # instead of a slice store and the ring's position per trade); its readers take the last
        # ``max_trade_history`` rows, ``_trade_pos`` stays 0. It is flat: each trade takes
        # _HISTORY_STRIDE items in a row, the fields of its row (``_TRADE_ROW_FIELDS``), the taker's
        # side as a bool for a trade nobody heard (a quiet sweep's) and as its ``Side`` for one
        # somebody heard (whose ``Trade`` is then dropped). A fill then keeps no object of its own:
        # rows kept as tuples and ``Trade``s were GC-tracked allocations, each counted towards the
        # next young collection (which traverses every resting Order), and ``Trade``s traversed by
        # every collection of their generation. Compiled, one ``Trade`` per item (native,
        # untracked). ``_trades`` reads it as a list of trades either way.
        self._history: list[Any] = []
        self._trade_pos = 0
        self._last_price: int | None = None
        self._cancelled_count = 0
        self._expired_count = 0
        self._modified_count = 0
        self._triggered_count = 0
        self._added = 0
        self._volume = 0  # lots traded
        self._notional = 0  # tick-lots traded

    def __del__(self) -> None:
        """Let go of the resting orders: compiled, an order and its level form a cycle that the GC
        cannot collect (``Order`` is acyclic for mypyc; see model.py), so the book breaks it."""
        self._release_levels()

    def _release_levels(self) -> None:
        """Empty every level's queue, so that no resting order and its level keep each other alive
        (call before the level dicts are dropped: ``__del__``, a restore that failed)."""
        try:
            sides = (self._bid_levels, self._ask_levels)
        except AttributeError:  # __init__ failed before the state was made
            return
        for levels in sides:
            for level in levels.values():
                level.orders.clear()

    def _reset_state(self) -> None:
        # Id -> live order, in a table whose entries keep each key's hash (``_hashed_table``).
        self._orders: dict[str, Order] = _hashed_table()
        # Price -> level. A level emptied away from the top may stay here with count 0 (readers go
        # through the price index, which never yields it); see _emit_level_after_removal.
        self._bid_levels: dict[int, PriceLevel] = {}
        self._ask_levels: dict[int, PriceLevel] = {}
        self._kept_empty = 0  # emptied levels kept in the two dicts, at most about half of them
        self._bid_prices = PriceIndex(self._bid_levels)
        self._ask_prices = PriceIndex(self._ask_levels)
        self._expiries: list[tuple[float, int, Order]] = []
        self._buy_stops: list[tuple[int, int, Order]] = []
        self._sell_stops: list[tuple[int, int, Order]] = []
        self._trailing: dict[str, Order] = {}
        self._stop_count = 0
        # (lowest, highest, ascending) trade prices of each sweep since stops were last checked
        self._sweeps: list[tuple[int, int, bool]] = []

    @staticmethod
    def _fee_rate(value: object, what: str) -> Decimal:
        rate = to_decimal(value, what)
        if not -1 <= rate <= 1:
            raise InvalidOrderError(f"{what} must be between -1 and 1, got {value!r}")
        return rate

    # ------------------------------------------------------------------ properties

    def now(self) -> float:
        """The book's clock reading, in seconds: the injected ``clock`` (``time.time`` by default).

        What the book would take as "now" for a command started at this moment (GTD expiry, event
        timestamps). Reads the clock once; takes no lock and changes nothing.
        """
        return self._clock()

    @property
    def symbol(self) -> str:
        """The market's name, carried by every event."""
        return self._symbol

    @symbol.setter
    def symbol(self, symbol: str) -> None:
        # The payload templates hold the symbol: rebuilt here, so that building a payload need not
        # check whether they are current.
        self._symbol = symbol
        self._build_templates()
        for levels in (self._bid_levels, self._ask_levels):
            for level in levels.values():
                # made again from the new templates when next needed
                level.templates = NO_TEMPLATES

    @property
    def sequence(self) -> int:
        """The sequence number of the last event this book published (0 before the first)."""
        return self._sequence

    @property
    def maker_fee_rate(self) -> Any:
        """The maker fee rate as it was given (a float reads back as the same float, a str or
        Decimal as given); :attr:`fee_rates` has the exact values the book computes with."""
        return self._maker_fee_rate_given

    @property
    def taker_fee_rate(self) -> Any:
        """The taker fee rate as it was given (see :attr:`maker_fee_rate`)."""
        return self._taker_fee_rate_given

    @property
    def fee_rates(self) -> tuple[Decimal, Decimal]:
        """``(maker, taker)`` fee rates as exact Decimals (a float given is read as the decimal it
        prints as: ``0.001`` is ``Decimal("0.001")``)."""
        return self._maker_fee_rate, self._taker_fee_rate

    @property
    def tick_size(self) -> Decimal:
        """The price step."""
        return self._price_grid.step

    @property
    def lot_size(self) -> Decimal:
        """The quantity step."""
        return self._qty_grid.step

    def counters(self) -> tuple[int, int, int]:
        """``(sequence, trade_count, generated_order_count)``: where the book's numbering stands."""
        return self._sequence, self._trade_no, self._next_order_no

    @property
    def last_trade_ticks(self) -> int | None:
        """The last trade price in ticks (None before the first trade)."""
        return self._last_price

    def add_change_recorder(self, recorder: ChangeRecorder) -> None:
        """Call ``recorder(entries, sequence, trade_count, generated_count, last_trade_ticks)`` once
        after each command that changed orders or traded.

        ``entries`` is the command's change log (see :mod:`manticore_orderbook.changes`), in event
        order; the other arguments are where the book stands after the command, as :meth:`counters`
        and :attr:`last_trade_ticks` give them (what a persister stores with it). Recorders run in the
        book's thread, under its lock, after the command's events were delivered; an exception raised
        by one leaves the book call (the command itself is applied). Registering the first recorder
        starts the log; nothing is recorded while none is registered.
        """
        if not callable(recorder):
            raise TypeError(f"recorder must be callable, not {type(recorder).__name__}")
        with self._lock:
            self._recorders = (*self._recorders, recorder)
            if self._changes is None:
                self._changes = []

    def remove_change_recorder(self, recorder: ChangeRecorder) -> bool:
        """Stop calling ``recorder``; return whether it was registered. The last one stops the log."""
        with self._lock:
            current = list(self._recorders)
            if recorder not in current:
                return False
            current.remove(recorder)
            self._recorders = tuple(current)
            if not current:
                self._changes = None
            return True

    @property
    def order_id_prefix(self) -> str:
        """The prefix of generated order ids (and, followed by ``T``, of trade ids)."""
        return self._id_prefix

    @property
    def last_trade_price(self) -> object:
        """The price of the most recent trade, or None before the first trade."""
        return None if self._last_price is None else self._price_grid.to_output(self._last_price)

    # ------------------------------------------------------------------ commands

    def add_order(
        self,
        side: object,
        price: object,
        quantity: object,
        order_id: object = None,
        time_in_force: object = None,
        expiry_time: object = None,
        user_id: object = None,
        order_type: object = None,
        stop_price: object = None,
        trail_value: object = None,
        trail_is_percent: object = False,
        displayed_quantity: object = None,
        self_trade_prevention: object = None,
        client_order_id: object = None,
    ) -> str:
        """Submit an order; return its id (the given ``order_id`` or a generated one).

        Types: ``side``/``order_type``/``time_in_force``/``self_trade_prevention`` are enum members or
        strings; ``price``, ``quantity``, ``stop_price``, ``trail_value`` and ``displayed_quantity`` are
        int, float, str or Decimal; ``order_id`` a str; ``user_id`` a str or int; ``expiry_time`` seconds
        (int or float). Parameters are annotated ``object`` because anything else is answered with
        :class:`InvalidOrderError`, never ``TypeError``.

        ``price=None`` is a market order. The order type is inferred when omitted: ``stop_price`` makes
        a stop (limit when a price is given, market otherwise), ``trail_value`` a trailing stop,
        ``displayed_quantity`` an iceberg. ``time_in_force`` defaults to GTC (GTD when ``expiry_time``
        is given). ``client_order_id`` (1-64 characters of ``A-Z a-z 0-9 _ . : -``) is the caller's own
        name for the order: the book stores it and returns it in the order's dicts and events, and
        does not check it for uniqueness (the order id is the book's key). The rules per order type are
        those of :mod:`manticore_orderbook.rules`. Raises :class:`InvalidOrderError` (a ``ValueError``)
        for invalid input, with nothing changed; an order that cannot trade or rest as asked (FOK, IOC,
        POST_ONLY) is accepted and cancelled, which its events report.
        """
        # The lock and the clock are called through locals: in the interpreter a method call on an
        # instance attribute (``self._clock()``) is never specialised, a plain load is.
        lock = self._lock
        lock.acquire()
        try:
            clock = self._clock
            now = clock()
            # The fast path for plain limit and market orders with well-formed arguments, inlined (a
            # call costs a frame in pure Python). Anything unusual leaves ``order`` None, and ``_build``
            # then validates (and explains) in full. ``==`` before the tables: a str comparison is
            # cheaper than a dict lookup (members compare equal to their values, so Side.BUY and
            # TimeInForce.GTC take this path too). The tests are written as "unusual if any": their
            # jumps then land just below them, not past the fast path (in the interpreter a jump that
            # far takes an EXTENDED_ARG bytecode per test).
            if (
                order_type is not None
                or client_order_id is not None
                or expiry_time is not None
                or stop_price is not None
                or trail_value is not None
                or trail_is_percent is not False
                or displayed_quantity is not None
                or self_trade_prevention is not None
                or quantity is None
                or not isinstance(side, str)
                or (user_id is not None and not isinstance(user_id, str))
                or (time_in_force is not None and not isinstance(time_in_force, str))
                or (
                    order_id is not None
                    and (
                        not isinstance(order_id, str)
                        or not order_id
                        or len(order_id) > _ORDER_ID_MAX_LEN
                        or order_id in self._orders
                    )
                )
            ):
                order: Order | None = None
            else:
                # A KeyError for a spelling the tables do not hold: full validation then explains.
                try:
                    side_ = BUY if side == "buy" else SELL if side == "sell" else _PLAIN_SIDES[side]
                    tif = (
                        GTC
                        if time_in_force is None or time_in_force == "GTC"
                        else IOC
                        if time_in_force == "IOC"
                        else _PLAIN_TIFS[time_in_force]
                    )
                except KeyError:
                    order = None
                else:
                    if not _INTERPRETED:  # only str inputs are remembered (see numbers._INTERPRETED)
                        price_units: int | None = None
                        if price is not None:
                            grid = self._price_grid
                            if type(price) is str:
                                price_units = grid._cache.get(price)  # within max_units (see Grid)
                            if price_units is None:
                                price_units = grid.to_units(price)
                        grid = self._qty_grid
                        # ``qty`` an int from its first assignment (mypyc: unboxed; an ``int | None``
                        # local would box each new quantity and unbox it again for ``Order``)
                        qty_units = grid._cache.get(quantity) if type(quantity) is str else None
                        qty = grid.to_units(quantity) if qty_units is None else qty_units
                        oid = self._new_order_id(None) if order_id is None else order_id
                        kind = LIMIT if price_units is not None else MARKET
                        order = Order(oid, side_, price_units, qty, kind, tif, user_id, now, self.default_stp)
                    else:
                        # Grid.to_units' memo read inline; see to_units for which inputs it holds (all
                        # within max_units: setting it forgets them). Floats first: the user convention's.
                        # The grids' memos through the book's own references to them (no grid local);
                        # ``type`` called again for a str rather than kept in a local for a float.
                        if price is None:
                            price_units = None
                        else:
                            price_units = (
                                self._price_memo.get(price)  # within max_units (Grid)
                                if type(price) is float or type(price) is str
                                else None
                            )
                            if price_units is None:
                                price_units = self._price_grid.to_units(price)
                        qty_units = (
                            self._qty_memo.get(quantity)
                            if type(quantity) is float or type(quantity) is str
                            else None
                        )
                        if qty_units is None:
                            qty_units = self._qty_grid.to_units(quantity)
                        # The same Order, without calling the class: in the interpreter a call to a
                        # class runs ``__init__`` in a frame of its own (through ``type.__call__``) and
                        # a call to a helper costs a frame too. A blank Order (model.BLANK_ORDER), then
                        # every slot ``Order.__init__`` sets, to the same value
                        # (tests/orderbook/test_fast_paths.py compares them all); the values straight
                        # from the expressions, without locals. Not yet ``visible``, ``level`` and
                        # ``rank``: a resting order sets them once below, the other paths to
                        # ``Order.__init__``'s 0, None and 0 before anything reads them.
                        order = BLANK_ORDER()
                        order.order_id = self._new_order_id(None) if order_id is None else order_id
                        order.side = side_
                        order.price = price_units
                        order.quantity = qty_units
                        order.filled = 0
                        order.open = qty_units
                        order.order_type = LIMIT if price_units is not None else MARKET
                        order.tif = tif
                        order.user_id = user_id
                        order.timestamp = now
                        order.stp = self.default_stp
                        order.extra = None
            if order is None:
                # the client order id first: its error comes before any other, as it always has
                client_id = None if client_order_id is None else check_client_order_id(client_order_id)
                order = self._build(
                    side,
                    price,
                    quantity,
                    order_id,
                    time_in_force,
                    expiry_time,
                    user_id,
                    order_type,
                    stop_price,
                    trail_value,
                    trail_is_percent,
                    displayed_quantity,
                    self_trade_prevention,
                    now,
                )
                if client_id is not None:
                    order.client_order_id = client_id
                kind = order.order_type
                if kind is not LIMIT and kind is not MARKET:  # stops, post-only, icebergs: _enter
                    if self._expiries and self._expiries[0][0] <= now:
                        self._expire_due(now)
                    self._enter(order, now)
                    self._dispatch()
                    return order.order_id
                side_, price_units, tif = order.side, order.price, order.tif  # as the fast path's
            if self._expiries and self._expiries[0][0] <= now:
                self._expire_due(now)
            # LIMIT and MARKET orders: _enter's common case, without a call
            self._added += 1
            added_route = self._r[E_ADDED]
            if self._changes is not None or (tif is not GTC and tif is not IOC):
                order.visible = order.rank = 0  # as Order.__init__ (see the fast path)
                order.level = None
                self._execute(order, now, True)
            else:
                # _execute's work for a GTC or IOC order, without a call (a frame costs ~500
                # instructions in pure Python): take its sequence number, trade what crosses, then
                # rest the remainder (GTC limit) or cancel it. An order that trades or is cancelled
                # and whose ORDER_ADDED somebody hears goes through _execute; one that rests has its
                # ORDER_ADDED built below.
                buy = side_ is BUY
                chunks = self._ask_prices._chunks if buy else self._bid_prices._chunks
                if chunks and (
                    price_units is None
                    or (chunks[0][0] <= price_units if buy else chunks[-1][-1] >= price_units)
                ):
                    order.visible = 0  # as Order.__init__ (see the fast path)
                    order.level = None
                    if added_route is not None:  # its rank taken there first
                        self._execute(order, now, True)
                    else:
                        order.rank = self._sequence = self._sequence + 1
                        if self._match(order, now) and order.open:  # False: self-trade prevention ended it
                            if price_units is None or tif is IOC:
                                self._emit_cancelled(order, now, "ioc", order.open)
                            else:
                                self._rest_plain(order, now)
                elif price_units is None or tif is IOC:  # nothing to trade against: cancelled
                    order.visible = 0  # as Order.__init__ (see the fast path)
                    order.level = None
                    if added_route is not None:  # its rank taken there first
                        self._execute(order, now, True)
                    else:
                        order.rank = self._sequence = self._sequence + 1
                        self._emit_cancelled(order, now, "ioc", order.open)
                else:
                    # Rest at the back of its level with a fresh slice, as _execute does (the same
                    # code as _rest_plain, inlined for the common add, with its own sequence number
                    # and the level event's taken at once; kept in step by
                    # tests/orderbook/test_fast_paths.py).
                    seq = self._sequence
                    order.rank = seq + 1
                    open_ = order.open
                    order.visible = open_  # a plain order has no peak: its slice is all of it
                    levels = self._bid_levels if buy else self._ask_levels
                    # the order's own price object, not ``price`` narrowed to int: mypyc
                    # would unbox it and box it again (a new int per add), as in _execute
                    level = levels.get(order.price)  # type: ignore[arg-type]
                    if added_route is not None:
                        # ORDER_ADDED as _execute builds it for a GTC limit order that does not
                        # cross (its extra holds at most a client order id: an expiry makes it
                        # GTD, a display size an ICEBERG, stops and trails other types), before
                        # the order joins its level: not filled, open, no slice yet (the
                        # templates' 0 and "open"), its open quantity all of it (a new order), and
                        # its price the level's (from a live level's own template) or converted.
                        if level is not None and level.count:
                            payload = level.templates.added_payload
                            data = (self._level_added_payload(level) if payload is None else payload).copy()
                        else:
                            data = (self._added_templates[0] if buy else self._added_templates[1]).copy()
                            data["price"] = (
                                price_units / self._price_div
                                if self._price_div
                                else self._price_grid.to_output(price_units)
                            )
                        # (No new locals below: each local of add_order costs every call its
                        # initialisation and clearing.)
                        data["order_id"] = order.order_id
                        if order.extra is not None and order.extra.client_order_id is not None:
                            data["client_order_id"] = order.extra.client_order_id  # templates: None
                        qdiv = self._qty_div
                        data["quantity"] = data["remaining_quantity"] = (
                            open_ / qdiv if qdiv else self._qty_out(open_)
                        )
                        data["user_id"] = order.user_id
                        if order.stp is not STP_NONE:
                            data["self_trade_prevention"] = order.stp._value_
                        if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
                            data["priority"] = data["sequence"] = order.rank
                            data["timestamp"] = now
                            data["order_timestamp"] = order.timestamp
                            self._pending.append((added_route, data))
                        else:
                            self._stamp_added(data, order, now)
                            self._pending.append(added_route)
                            self._pending.append(data)
                    if level is None or not level.count:
                        level = self._new_level(order, level)
                        route = self._r[E_LEVEL_ADDED]
                    else:
                        route = self._r[E_LEVEL_CHANGED]
                    level.total += open_
                    level.count += 1
                    level.orders.append(order)
                    order.level = level
                    self._orders[order.order_id] = order  # no expiry to queue: GTD only
                    self._sequence = seq + 2
                    if route is not None:  # the level's data, as _level_dict builds it
                        payload = level.templates.payload  # the level's own template: its price set
                        data = (self._level_payload(level) if payload is None else payload).copy()
                        data["timestamp"] = now if _INTERPRETED else self._stamp_of(now)
                        data["sequence"] = self._sequence
                        qdiv = self._qty_div
                        data["quantity"] = (
                            level.total / qdiv if qdiv else self._qty_grid.to_output(level.total)
                        )
                        data["order_count"] = level.count
                        if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
                            self._pending.append((route, data))
                        else:
                            self._pending.append(route)
                            self._pending.append(data)
                    elif not self._pending:
                        # Nothing to deliver, no stops to run (nothing traded), no change log
                        # (``_changes`` was None above and nothing has run since): done.
                        return order.order_id
            if self._sweeps:
                self._run_stops(now)
            pending = self._pending
            if pending and not self._dispatching:
                if _INTERPRETED:  # _deliver's loop, without a call (a frame in pure Python)
                    self._dispatching = True
                    try:
                        for (lone, event_type, handlers), data in pending:
                            if lone is not None:
                                try:
                                    lone(event_type, data)
                                except Exception as exc:
                                    self._handler_failed(lone, event_type, data, exc)
                                continue
                            for handler in handlers:
                                try:
                                    handler(event_type, data)
                                except Exception as exc:
                                    self._handler_failed(handler, event_type, data, exc)
                    finally:
                        pending.clear()
                        self._dispatching = False
                else:
                    self._deliver()
            if self._changes:
                self._dispatch()
            return order.order_id
        finally:
            lock.release()

    def batch_add_orders(self, orders: Iterable[Mapping[str, Any]] | object) -> list[str]:
        """Submit several orders given as dicts of ``add_order`` arguments; return their ids in order.

        Every item is validated before any is applied (including duplicate ids within the batch); if
        one is invalid, :class:`InvalidOrderError` names its index and nothing is changed.
        """
        with self._lock:
            now = self._clock()
            saved_counter = self._next_order_no
            built: list[Order] = []
            seen: set[str] = set()
            if isinstance(orders, (str, bytes, Mapping)) or not isinstance(orders, Iterable):
                raise InvalidOrderError("batch_add_orders takes a list of order dicts")
            try:
                for index, item in enumerate(orders):
                    if not isinstance(item, Mapping):
                        raise InvalidOrderError(f"batch item {index} must be a mapping")
                    unknown = set(item) - _ADD_ORDER_KEYS
                    if unknown:
                        raise InvalidOrderError(f"batch item {index}: unknown field(s) {sorted(unknown)}")
                    try:
                        order = self._build(
                            item.get("side"),
                            item.get("price"),
                            item.get("quantity"),
                            item.get("order_id"),
                            item.get("time_in_force"),
                            item.get("expiry_time"),
                            item.get("user_id"),
                            item.get("order_type"),
                            item.get("stop_price"),
                            item.get("trail_value"),
                            item.get("trail_is_percent", False),
                            item.get("displayed_quantity"),
                            item.get("self_trade_prevention"),
                            now,
                            reserved=seen,
                        )
                        client_id = item.get("client_order_id")
                        if client_id is not None:
                            order.client_order_id = check_client_order_id(client_id)
                    except InvalidOrderError as exc:
                        raise type(exc)(f"batch item {index}: {exc}") from None
                    seen.add(order.order_id)
                    built.append(order)
            except BaseException:
                self._next_order_no = saved_counter
                raise
            if self._expiries and self._expiries[0][0] <= now:
                self._expire_due(now)
            for order in built:
                self._enter(order, now)
            if self._pending or self._changes:
                self._dispatch()
            return [order.order_id for order in built]

    def cancel_order(self, order_id: object) -> bool:
        """Cancel a live order (resting or untriggered stop); return False if there is none by that id."""
        lock = self._lock  # through a local, as in add_order
        lock.acquire()
        try:
            if not isinstance(order_id, str):  # _checked_id inlined
                raise InvalidOrderError(f"order_id must be a string, not {type(order_id).__name__}")
            order = self._orders.get(order_id)
            if order is None:
                return False
            clock = self._clock
            if clock is _WALL_CLOCK and not self._expiries:
                # The default clock (time.time) has no effect: read only once an event needs the time
                # (below), not for a cancel nobody hears.
                now = -1.0
            else:
                now = clock()
                if self._expiries and self._expiries[0][0] <= now:
                    self._expire_due(now)
                    if self._orders.get(order.order_id) is not order:
                        if self._pending or self._changes:
                            self._dispatch()
                        return False
            extra = order.extra
            if extra is not None and extra.pending:  # an untriggered stop
                level = self._remove(order)
            else:  # _remove's work for a resting order, without a call
                del self._orders[order.order_id]
                level = order.level
                assert level is not None
                order.level = None
                level.count -= 1
                visible = order.visible
                level.total -= visible
                if order.open != visible:  # an iceberg's hidden part
                    level.reserve -= order.open - visible
                level.dead += 1
            if self._changes is None and self._r[E_CANCELLED] is None:  # _emit_cancelled's work when unheard
                self._cancelled_count += 1
                if (
                    level is not None
                    and level.count
                    and level.dead <= level.count
                    and self._r[E_LEVEL_CHANGED] is None
                    and not self._pending
                ):
                    # The level stays and nobody hears its change either (see below), nothing is
                    # queued and there is no change log: both events' sequence numbers at once.
                    self._sequence += 2
                    return True
                self._sequence += 1
                if now < 0.0:  # not read above
                    now = clock()
            else:
                if now < 0.0:  # not read above
                    now = clock()
                self._emit_cancelled(order, now, "user", order.open, level)
            if level is not None:
                if level.count and level.dead <= level.count:
                    # _emit_level_after_removal's work when the level stays, without two calls
                    self._sequence += 1
                    route = self._r[E_LEVEL_CHANGED]
                    if route is not None:  # the level's data (as _level_dict builds it, without a call)
                        payload = level.templates.payload  # the level's own template: its price set
                        data = (self._level_payload(level) if payload is None else payload).copy()
                        data["timestamp"] = now if _INTERPRETED else self._stamp_of(now)
                        data["sequence"] = self._sequence
                        qdiv = self._qty_div
                        data["quantity"] = (
                            level.total / qdiv if qdiv else self._qty_grid.to_output(level.total)
                        )
                        data["order_count"] = level.count
                        if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
                            self._pending.append((route, data))
                        else:
                            self._pending.append(route)
                            self._pending.append(data)
                else:
                    self._emit_level_after_removal(level, now)
            pending = self._pending
            if pending and not self._dispatching:
                if _INTERPRETED:  # _deliver's loop, without a call (a frame in pure Python)
                    self._dispatching = True
                    try:
                        for (lone, event_type, handlers), data in pending:
                            if lone is not None:
                                try:
                                    lone(event_type, data)
                                except Exception as exc:
                                    self._handler_failed(lone, event_type, data, exc)
                                continue
                            for handler in handlers:
                                try:
                                    handler(event_type, data)
                                except Exception as exc:
                                    self._handler_failed(handler, event_type, data, exc)
                    finally:
                        pending.clear()
                        self._dispatching = False
                else:
                    self._deliver()
            if self._changes:
                self._dispatch()
            return True
        finally:
            lock.release()

    def batch_cancel_orders(self, order_ids: Iterable[str] | object) -> dict[str, bool]:
        """Cancel each id in turn; return ``{order_id: cancelled?}``. Every id is checked to be a string
        before any is cancelled."""
        if isinstance(order_ids, (str, bytes)) or not isinstance(order_ids, Iterable):
            raise InvalidOrderError("batch_cancel_orders takes a list of order ids")
        ids = [_checked_id(order_id) for order_id in order_ids]
        with self._lock:
            return {order_id: self.cancel_order(order_id) for order_id in ids}

    def modify_order(
        self,
        order_id: object,
        new_price: object = None,
        new_quantity: object = None,
        new_expiry_time: object = None,
    ) -> bool:
        """Change a live order's price, total quantity or GTD expiry; return False if it is not live.

        ``new_quantity`` is the new *total* quantity: the open quantity becomes ``new_quantity`` minus
        what has already filled. Reducing it keeps time priority; a new price or a larger quantity
        loses it (the order re-enters at the back and may trade at once). Raises
        :class:`InvalidOrderError` for invalid values, a quantity at or below the filled quantity, an
        expiry on a non-GTD order or in the past, a post-only order that would cross, or no change
        requested; nothing is changed then.
        """
        with self._lock:
            order = self._orders.get(_checked_id(order_id))
            if order is None:
                return False
            if new_price is None and new_quantity is None and new_expiry_time is None:
                raise InvalidOrderError("modify_order needs new_price, new_quantity or new_expiry_time")
            now = self._clock()
            price = order.price
            if new_price is not None:
                if order.order_type is STOP_MARKET or (order.price is None):
                    raise InvalidOrderError("this order has no limit price to modify")
                price = self._price_grid.to_units(new_price)
            quantity = order.quantity
            if new_quantity is not None:
                quantity = self._qty_grid.to_units(new_quantity)
                if quantity <= order.filled:
                    raise InvalidOrderError(
                        f"new quantity {new_quantity!r} must exceed the filled quantity "
                        f"{self._qty_grid.to_output(order.filled)!r}"
                    )
            expiry = order.expiry
            if new_expiry_time is not None:
                if order.tif is not GTD:
                    raise InvalidOrderError("only GTD orders have an expiry time to modify")
                expiry = _check_expiry(new_expiry_time, now)
            reprices = price != order.price
            grows = quantity - order.filled > order.open
            if (
                reprices
                and order.order_type is POST_ONLY
                and not order.pending
                and self._crosses(order.side, price)
            ):
                raise InvalidOrderError("post-only order would cross the book at the new price")
            if self._expiries and self._expiries[0][0] <= now:
                self._expire_due(now)
                if self._orders.get(order.order_id) is not order:
                    if self._pending or self._changes:
                        self._dispatch()
                    return False
            if not reprices and quantity == order.quantity and expiry == order.expiry:
                if self._pending or self._changes:
                    self._dispatch()
                return True
            self._modified_count += 1
            changes = (
                {
                    "old_price": None if order.price is None else self._price_grid.to_output(order.price),
                    "new_price": None if price is None else self._price_grid.to_output(price),
                    "old_quantity": self._qty_grid.to_output(order.quantity),
                    "new_quantity": self._qty_grid.to_output(quantity),
                    "old_expiry_time": order.expiry,
                    "new_expiry_time": expiry,
                }
                if self._h[E_MODIFIED]
                else None
            )
            if order.pending or not (reprices or grows):
                resized = quantity != order.quantity
                self._modify_in_place(order, price, quantity, expiry)
                self._emit_modified(order, now, changes, priority_kept=True)
                if order.level is not None and resized:
                    self._emit_level(order.level, now)
            else:
                level = self._remove(order)
                fresh = order.copy()
                fresh.price = price
                fresh.quantity = quantity
                fresh.open = quantity - order.filled
                fresh.visible = 0
                fresh.expiry = expiry
                fresh.rank = self._sequence + 1  # re-enters the book at its ORDER_MODIFIED event
                self._emit_modified(fresh, now, changes, priority_kept=False)
                if level is not None:
                    self._emit_level_after_removal(level, now)
                self._execute(fresh, now, announce=False)
                if self._sweeps:
                    self._run_stops(now)
            if self._pending or self._changes:
                self._dispatch()
            return True

    def clean_expired_orders(self) -> int:
        """Remove every order whose GTD expiry has passed (with ORDER_EXPIRED events); return how many."""
        with self._lock:
            now = self._clock()
            removed = self._expire_due(now) if self._expiries and self._expiries[0][0] <= now else 0
            if self._pending or self._changes:
                self._dispatch()
            return removed

    def clear(self) -> None:
        """Remove every order, resting or pending, and publish one BOOK_CLEARED event.

        Trade history, the last trade price, statistics and the event sequence are kept.
        """
        with self._lock:
            now = self._clock()
            ids = list(self._orders)
            for order in self._orders.values():
                order.level = None
                order.pending = False
            self._reset_state()
            self._sequence += 1
            if self._changes is not None:
                self._changes.append((CHANGE_CLEARED, None, self._sequence, None))
            route = self._r[E_CLEARED]
            if route is not None:
                data = {"order_count": len(ids), "order_ids": ids}
                self._queue(route, data, now)
            if self._pending or self._changes:
                self._dispatch()

    # ------------------------------------------------------------------ queries

    def get_order(self, order_id: object) -> dict[str, Any] | None:
        """A copy of a live order (resting, or a stop waiting for its trigger) as a dict, or None.

        ``quantity`` is the quantity still open (it goes down with each fill, as in the original
        library) and equals ``remaining_quantity``; ``original_quantity`` is the order's total (after a
        modify: the new total), ``filled_quantity`` what has traded. Event payloads differ: there
        ``quantity`` is the total (docs/events.md)."""
        with self._lock:
            order = self._orders.get(_checked_id(order_id))
            return None if order is None else self._read_dict(order)

    def get_orders(self, side: object = None, user_id: object = None) -> list[dict[str, Any]]:
        """Live orders as dicts (shaped as :meth:`get_order`): bids best first, then asks best first
        (each level in time priority), then untriggered stops in arrival order. Filter by ``side``
        and/or ``user_id``."""
        with self._lock:
            wanted = None if side is None else parse_side(side)
            result: list[dict[str, Any]] = []
            for order in self._iter_orders(wanted):
                if user_id is None or order.user_id == user_id:
                    result.append(self._read_dict(order))
            return result

    def _read_dict(self, order: Order) -> dict[str, Any]:
        data = self._order_dict(order, _READ_TEMPLATE)
        data["original_quantity"] = data["quantity"]
        data["quantity"] = data["remaining_quantity"]
        return data

    def _iter_orders(self, side: Side | None = None) -> Iterable[Order]:
        if side in (None, BUY):
            for price in self._bid_prices.descending():
                yield from self._bid_levels[price].live_orders()
        if side in (None, SELL):
            for price in self._ask_prices.ascending():
                yield from self._ask_levels[price].live_orders()
        stops = sorted((o for o in self._orders.values() if o.pending), key=lambda o: o.rank)
        for order in stops:
            if side in (None, order.side):
                yield order

    def get_snapshot(self, depth: object = None) -> dict[str, Any]:
        """The visible book: ``{"symbol", "timestamp", "sequence", "bids", "asks"}``.

        ``bids`` and ``asks`` are lists of ``{"price", "quantity", "order_count"}``, best price first,
        at most ``depth`` levels each (``None`` or 0: all). Iceberg reserves are not shown. The dict is
        a fresh copy and JSON-serialisable with the default number format.
        """
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
            raise InvalidOrderError(f"depth must be a non-negative integer or None, got {depth!r}")
        with self._lock:
            limit = depth or None
            return {
                "symbol": self._symbol,
                "timestamp": self._clock(),
                "sequence": self._sequence,
                "bids": self._side_levels(self._bid_prices.descending(), self._bid_levels, limit),
                "asks": self._side_levels(self._ask_prices.ascending(), self._ask_levels, limit),
            }

    def _side_levels(
        self, prices: Iterable[int], levels: dict[int, PriceLevel], limit: int | None
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        pg, qg = self._price_grid, self._qty_grid
        for price in prices:
            if limit is not None and len(out) >= limit:
                break
            level = levels[price]
            out.append(
                {
                    "price": pg.to_output(price),
                    "quantity": qg.to_output(level.total),
                    "order_count": level.count,
                }
            )
        return out

    @property
    def _trades(self) -> list[Trade | _TradeRow]:
        """The kept trades in the history's order (compiled, ``_trade_pos`` is the oldest once the
        ring is full): a ``Trade``, or in the interpreter a row (a tuple of ``_TRADE_ROW_FIELDS``) for a
        trade nobody heard. A new list; the book keeps them in ``_history``."""
        history = self._history
        if not _INTERPRETED:
            return list(history)
        kept: list[Trade | _TradeRow] = []
        first = max(len(history) - self._max_trade_history * _HISTORY_STRIDE, 0)  # past the slack
        for start in range(first, len(history), _HISTORY_STRIDE):
            row = tuple(history[start : start + _HISTORY_STRIDE])
            kept.append(row if type(row[7]) is bool else _trade_of(row))
        return kept

    def get_trade_history(self, limit: object = 100) -> list[dict[str, Any]]:
        """Recent trades as dicts, newest first, at most ``limit`` (None: all that are kept)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidOrderError(f"limit must be a non-negative integer or None, got {limit!r}")
        with self._lock:
            trades = self._trades
            pos = self._trade_pos // _HISTORY_STRIDE
            trades = trades[pos:] + trades[:pos]  # oldest first
            trades.reverse()
            if limit is not None:
                trades = trades[: max(limit, 0)]
            return [self._trade_dict(_trade_of(t) if isinstance(t, tuple) else t) for t in trades]

    def get_best_bid(self) -> object:
        """The highest bid price, or None."""
        with self._lock:
            best = self._bid_prices.max()
        return None if best is None else self._price_grid.to_output(best)

    def get_best_ask(self) -> object:
        """The lowest ask price, or None."""
        with self._lock:
            best = self._ask_prices.min()
        return None if best is None else self._price_grid.to_output(best)

    def get_spread(self) -> object:
        """Best ask minus best bid, or None when a side is empty."""
        with self._lock:
            bid, ask = self._bid_prices.max(), self._ask_prices.min()
        return None if bid is None or ask is None else self._price_grid.to_output(ask - bid)

    def get_mid_price(self) -> object:
        """The mean of best bid and best ask (exact in "decimal"/"str" formats), or None."""
        with self._lock:
            bid, ask = self._bid_prices.max(), self._ask_prices.min()
        if bid is None or ask is None:
            return None
        mid = _EXACT.divide(self._price_grid.to_decimal(bid + ask), 2)
        return self._money(mid)

    def get_statistics(self) -> dict[str, Any]:
        """Counters and top-of-book figures (see docs/orderbook.md for each key)."""
        with self._lock:
            bid, ask = self._bid_prices.max(), self._ask_prices.min()
            stats: dict[str, Any] = {
                "symbol": self._symbol,
                "sequence": self._sequence,
                "bid_levels": len(self._bid_prices),
                "ask_levels": len(self._ask_prices),
                "bid_orders": sum(level.count for level in self._bid_levels.values()),
                "ask_orders": sum(level.count for level in self._ask_levels.values()),
                "pending_stop_orders": self._stop_count,
                "best_bid": None if bid is None else self._price_grid.to_output(bid),
                "best_ask": None if ask is None else self._price_grid.to_output(ask),
                "spread": None if bid is None or ask is None else self._price_grid.to_output(ask - bid),
                "last_trade_price": self.last_trade_price,
                "total_volume": self._qty_grid.to_output(self._volume),
                "total_notional": self._money(_EXACT.multiply(self._notional, self._notional_unit)),
                "maker_fees": self._money(_EXACT.multiply(self._notional, self._maker_fee_unit)),
                "taker_fees": self._money(_EXACT.multiply(self._notional, self._taker_fee_unit)),
                "trade_history_size": min(len(self._history) // _HISTORY_STRIDE, self._max_trade_history),
            }
            stats["orders_cancelled"] = self._cancelled_count
            stats["orders_expired"] = self._expired_count
            stats["orders_modified"] = self._modified_count
            stats["orders_triggered"] = self._triggered_count
            stats["orders_added"] = self._added
            stats["trades"] = self._trade_no
            return stats

    def __len__(self) -> int:
        """Number of live orders (resting and untriggered stops)."""
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def __repr__(self) -> str:
        return (
            f"OrderBook({self._symbol!r}, orders={len(self._orders)}, best_bid={self.get_best_bid()}, "
            f"best_ask={self.get_best_ask()}, sequence={self._sequence})"
        )

    # ------------------------------------------------------------------ state transfer (cold: restore.py)

    def export_state(self) -> dict[str, Any]:
        """Everything :meth:`restore_state` needs to rebuild this book: a JSON-serialisable dict.

        Keys: ``symbol``, ``sequence`` (of the last event), ``last_trade_price``, ``trade_count`` (trades
        so far; the next trade id continues from it), ``generated_order_count`` (the counter behind
        generated order ids) and ``orders``: every live order with the keys of its events (as
        :meth:`get_order` shows it, but ``quantity`` is the total and there is no
        ``original_quantity``), in :meth:`get_orders` order. Trade history and statistics are not part
        of the state.
        """
        return _export_state(self)

    def restore_state(self, state: Mapping[str, Any] | object) -> int:
        """Load live orders and counters into this empty book without publishing any event.

        ``state`` has the keys :meth:`export_state` returns; only ``orders`` is required. Each order
        needs ``order_id, side, quantity, filled_quantity, remaining_quantity, order_type,
        time_in_force, timestamp, priority`` and, as they apply, ``price, visible_quantity,
        displayed_quantity, expiry_time, user_id, stop_price, trail_value, trail_is_percent,
        trail_reference_price, self_trade_prevention, triggered, status, client_order_id``
        (``status`` is ``"pending"`` for a stop
        that has not triggered). Orders keep their ``priority``: within a price level they queue in
        ascending priority, whatever order the list is in. GTD orders whose expiry has passed are
        restored and expire, with their events, at the next command. ``sequence`` continues from the
        given value (at least the largest priority).

        Returns the number of orders restored. Raises :class:`InvalidOrderError` if the book is not
        empty or anything in ``state`` is invalid; nothing is changed then. (Storage loads rows it wrote
        itself through :func:`manticore_orderbook.restore.load_trusted`, which checks less.)
        """
        return _restore_state(self, state)

    # ------------------------------------------------------------------ validation

    def _build(
        self,
        side: object,
        price: object,
        quantity: object,
        order_id: object,
        time_in_force: object,
        expiry_time: object,
        user_id: object,
        order_type: object,
        stop_price: object,
        trail_value: object,
        trail_is_percent: object,
        displayed_quantity: object,
        stp: object,
        now: float,
        reserved: set[str] | None = None,
    ) -> Order:
        """Validate one order's arguments and return the (not yet entered) Order. Changes nothing but
        the id counter when it generates an id."""
        side_ = side if side is BUY or side is SELL else parse_side(side)
        assert isinstance(side_, Side)
        if order_type is None:
            kind = infer_order_type(
                price is not None,
                stop_price is not None,
                trail_value is not None,
                displayed_quantity is not None,
            )
        else:
            kind = parse_order_type(order_type)
        price_units = None if price is None else self._price_grid.to_units(price)
        if quantity is None:
            raise InvalidOrderError("quantity is required")
        qty = self._qty_grid.to_units(quantity)
        if time_in_force is None:
            tif = GTD if expiry_time is not None else GTC
        else:
            tif = parse_time_in_force(time_in_force)
        kind = check_fields(
            kind,
            tif,
            has_price=price_units is not None,
            has_stop=stop_price is not None,
            has_trail=trail_value is not None,
            has_displayed=displayed_quantity is not None,
            has_expiry=expiry_time is not None,
        )
        expiry = None if expiry_time is None else _check_expiry(expiry_time, now)
        peak = 0
        if displayed_quantity is not None:
            peak = self._qty_grid.to_units(displayed_quantity)
            check_display_size(peak, qty)
        stop_units = None if stop_price is None else self._price_grid.to_units(stop_price)
        trail: int | Decimal | None = None
        if trail_value is not None:
            if trail_is_percent:
                pct = to_decimal(trail_value, "trail_value")
                check_trail_percent(pct)
                trail = pct
            else:
                trail = self._price_grid.to_units(trail_value)
        stp_mode = self.default_stp if stp is None else parse_stp(stp)
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, (str, int))):
            raise InvalidOrderError(
                f"user_id must be a string, an integer or None, not {type(user_id).__name__}"
            )
        if order_id is None:
            oid = self._new_order_id(reserved)
        else:
            if not isinstance(order_id, str) or not order_id or len(order_id) > _ORDER_ID_MAX_LEN:
                raise InvalidOrderError(
                    f"order_id must be a non-empty string of at most {_ORDER_ID_MAX_LEN} characters"
                )
            if order_id in self._orders or (reserved is not None and order_id in reserved):
                raise DuplicateOrderIdError(f"order id {order_id!r} is already used by a live order")
            oid = order_id
        assert user_id is None or isinstance(user_id, (str, int))
        order = Order(oid, side_, price_units, qty, kind, tif, user_id, now, stp_mode)
        if expiry is not None or peak or stop_units is not None or trail is not None or trail_is_percent:
            extra = order.more()
            extra.expiry = expiry
            extra.peak = peak
            extra.stop_price = stop_units
            extra.trail = trail
            extra.trail_is_percent = bool(trail_is_percent)
        return order

    def _new_order_id(self, reserved: set[str] | None) -> str:
        while True:
            self._next_order_no += 1
            oid = f"{self._id_prefix}{self._next_order_no}"
            if oid not in self._orders and (reserved is None or oid not in reserved):
                return oid

    # ------------------------------------------------------------------ entering orders

    def _enter(self, order: Order, now: float) -> None:
        """Process a validated new order: announce it, then match/rest it or hold it as a stop."""
        self._added += 1
        kind = order.order_type
        if kind is STOP_LIMIT or kind is STOP_MARKET or kind is TRAILING_STOP:
            self._sequence += 1
            order.rank = self._sequence
            self._hold_stop(order)
            self._announce(order, now)
        else:
            self._execute(order, now, announce=True)
        if self._sweeps:
            self._run_stops(now)

    def _announce(self, order: Order, now: float) -> None:
        """Queue ORDER_ADDED for ``order``, a new order (its sequence number is already taken), with its
        data built by ``_order_dict``. (``_execute`` builds a plain order's itself.)"""
        changes = self._changes
        if changes is not None:
            changes.append((CHANGE_ADDED, order, self._sequence, None))
        route = self._r[E_ADDED]
        if route is not None:
            data = self._order_dict(order, _ADDED_TEMPLATE)
            data["order_timestamp"] = order.timestamp
            self._queue(route, data, now)

    def _execute(self, order: Order, now: float, announce: bool) -> None:
        """Match ``order`` as a taker, then rest, or cancel what is left of it."""
        price = order.price
        buy = order.side is BUY
        tif = order.tif  # fields read once into locals: each read is a bytecode or more in pure Python
        # The best opposite price read from the index's chunks (as _match does): no boxed Optional.
        if buy:
            chunks = self._ask_prices._chunks
            crosses = bool(chunks) and (price is None or chunks[0][0] <= price)
        else:
            chunks = self._bid_prices._chunks
            crosses = bool(chunks) and (price is None or chunks[-1][-1] >= price)
        if crosses:
            if order.order_type is POST_ONLY:
                self._emit_cancelled(order, now, "post_only", order.open)
                return
            if tif is FOK and not self._fok_fillable(order):
                self._emit_cancelled(order, now, "fok", order.open)
                return
        elif tif is FOK:
            self._emit_cancelled(order, now, "fok", order.open)
            return
        # The level a non-crossing order will rest at, looked up once (for its ORDER_ADDED template
        # and to rest the order) when ``looked``.
        rest_level: PriceLevel | None = None
        looked = False
        if announce:
            self._sequence += 1
            order.rank = self._sequence
            route = self._r[E_ADDED]
            extra = order.extra
            if route is not None and (
                extra is None
                or not (
                    extra.peak
                    or extra.expiry is not None
                    or extra.stop_price is not None
                    or extra.trail is not None
                    or extra.trail_ref is not None
                    or extra.triggered
                )
            ):
                # ORDER_ADDED of a plain order (no iceberg, expiry, stop or trail), built here: a call
                # costs a frame in pure Python. A copy of a template prefilled with every value such
                # an order shares, then its own: the keys, order and values ``_order_dict`` gives.
                # Quantities that are equal share one output object (they are immutable).
                changes = self._changes
                if changes is not None:
                    changes.append((CHANGE_ADDED, order, self._sequence, None))
                template: dict[str, Any] | None = None
                if not crosses and price is not None and tif is not IOC and tif is not FOK:
                    # It will rest: joining a live level, its data is a copy of the level's own
                    # template, whose price is set (the same number: the level's price converted).
                    looked = True
                    rest_level = (self._bid_levels if buy else self._ask_levels).get(order.price)  # type: ignore[arg-type]
                    if rest_level is not None and rest_level.count:
                        template = rest_level.templates.added_payload
                        if template is None:
                            template = self._level_added_payload(rest_level)
                if template is None:
                    data = (self._added_templates[0] if buy else self._added_templates[1]).copy()
                    if price is not None:
                        pdiv = self._price_div  # conversions inlined: a call each costs more in pure Python
                        data["price"] = price / pdiv if pdiv else self._price_grid.to_output(price)
                else:
                    data = template.copy()
                data["order_id"] = order.order_id
                if extra is not None and extra.client_order_id is not None:  # the templates say None
                    data["client_order_id"] = extra.client_order_id
                lots = order.quantity
                open_lots = order.open
                qdiv = self._qty_div
                if qdiv:
                    quantity: object = lots / qdiv
                    remaining = quantity if open_lots == lots else open_lots / qdiv
                else:
                    quantity = self._qty_out(lots)
                    remaining = quantity if open_lots == lots else self._qty_out(open_lots)
                data["quantity"] = quantity
                data["remaining_quantity"] = remaining
                filled = order.filled
                if filled:  # the templates say 0
                    data["filled_quantity"] = filled / qdiv if qdiv else self._qty_out(filled)
                visible = order.visible
                if visible:  # the templates say 0 (a new order has no slice in a level yet)
                    data["visible_quantity"] = (
                        remaining
                        if visible == open_lots
                        else visible / qdiv
                        if qdiv
                        else self._qty_out(visible)
                    )
                if filled or not open_lots:  # the templates say "open"
                    data["status"] = "partially_filled" if open_lots else "filled" if filled else "cancelled"
                if order.order_type is not LIMIT:
                    data["order_type"] = order.order_type._value_
                if tif is not GTC:  # IOC spelled out: an Enum's ``_value_`` is a generic lookup
                    data["time_in_force"] = _IOC_VALUE if tif is IOC else tif._value_
                data["user_id"] = order.user_id
                if order.stp is not STP_NONE:
                    data["self_trade_prevention"] = order.stp._value_
                # Compiled, each store of an int or float boxes it: one object each where the values
                # are equal (a new order's rank is its ORDER_ADDED's sequence, its timestamp the
                # command's clock reading).
                rank: object = order.rank
                data["priority"] = rank
                if _INTERPRETED:
                    data["timestamp"] = now
                    data["order_timestamp"] = order.timestamp
                    data["sequence"] = self._sequence
                else:
                    stamp = self._stamp_of(now)
                    data["timestamp"] = stamp
                    data["order_timestamp"] = stamp if order.timestamp == now and now else order.timestamp
                    data["sequence"] = rank if order.rank == self._sequence else self._sequence
                if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
                    self._pending.append((route, data))
                else:
                    self._pending.append(route)
                    self._pending.append(data)
            elif route is not None or self._changes is not None:
                self._announce(order, now)
        if crosses and not self._match(order, now):
            return  # self-trade prevention ended the order
        if order.open:
            if price is None or tif is IOC or tif is FOK:
                self._emit_cancelled(order, now, "ioc", order.open)
            else:
                # Rest: put ``order`` at the back of its price level with a fresh slice and report the
                # level. Inlined (only this path rests an order; a call costs more in pure Python), and
                # so is _join_level. The level dicts are looked up with the order's own price object:
                # narrowing it to ``int`` first would unbox it and box it again (a new int object per
                # add) under mypyc.
                open_ = order.open
                extra = order.extra
                peak = 0 if extra is None else extra.peak
                visible = peak if peak and peak < open_ else open_
                order.visible = visible
                levels = self._bid_levels if buy else self._ask_levels
                level = rest_level if looked else levels.get(order.price)  # type: ignore[arg-type]
                if level is None or not level.count:
                    level = self._new_level(order, level)
                    created = True
                else:
                    created = False
                level.total += visible
                if visible != open_:  # an iceberg's hidden part
                    level.reserve += open_ - visible
                level.count += 1
                level.orders.append(order)
                order.level = level
                self._orders[order.order_id] = order
                if extra is not None and extra.expiry is not None:
                    heapq.heappush(self._expiries, (extra.expiry, order.rank, order))
                self._sequence += 1
                route = self._r[E_LEVEL_ADDED if created else E_LEVEL_CHANGED]
                if route is not None:  # the level's data (as _level_dict builds it, without a call)
                    payload = level.templates.payload  # the level's own template: its price set
                    data = (self._level_payload(level) if payload is None else payload).copy()
                    data["timestamp"] = now if _INTERPRETED else self._stamp_of(now)
                    data["sequence"] = self._sequence
                    qdiv = self._qty_div
                    data["quantity"] = level.total / qdiv if qdiv else self._qty_grid.to_output(level.total)
                    data["order_count"] = level.count
                    if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
                        self._pending.append((route, data))
                    else:
                        self._pending.append(route)
                        self._pending.append(data)

    def _crosses(self, side: Side, price: int | None) -> bool:
        if side is BUY:
            best = self._ask_prices.min()
            return best is not None and (price is None or best <= price)
        best = self._bid_prices.max()
        return best is not None and (price is None or best >= price)

    def _fok_fillable(self, order: Order) -> bool:
        """Whether ``order`` would fill completely now (self-trade prevention taken into account)."""
        need = order.open
        price = order.price
        if order.side is BUY:
            prices: Iterable[int] = self._ask_prices.ascending()
            levels = self._ask_levels
        else:
            prices = self._bid_prices.descending()
            levels = self._bid_levels
        own = order.user_id if order.stp is not STP_NONE else None
        for level_price in prices:
            if price is not None and (level_price > price if order.side is BUY else level_price < price):
                return False
            level = levels[level_price]
            if own is None:
                need -= level.total + level.reserve
            else:
                mine = [o for o in level.live_orders() if o.user_id == own]
                if not mine:
                    need -= level.total + level.reserve
                elif order.stp is STP_OLDEST:
                    need -= sum(o.open for o in level.live_orders() if o.user_id != own)
                else:
                    for resting in level.live_orders():
                        if resting.user_id == own:
                            return False
                        need -= resting.visible
                        if need <= 0:
                            return True
            if need <= 0:
                return True
        return False

    def _match(self, taker: Order, now: float) -> bool:
        """Trade ``taker`` against the opposite side while prices cross.

        Returns False when self-trade prevention cancelled the taker (it must not rest then).
        """
        buy = taker.side is BUY
        if buy:
            levels, index = self._ask_levels, self._ask_prices
        else:
            levels, index = self._bid_levels, self._bid_prices
        chunks = index._chunks
        limit = taker.price
        own = taker.user_id if taker.stp is not STP_NONE else None
        r = self._r
        changes = self._changes
        trades = self._history
        max_history = self._max_trade_history * _HISTORY_STRIDE  # in items
        orders = self._orders
        # Nobody hears this sweep's fills (no TRADE_EXECUTED or ORDER_FILLED handler, no change
        # recorder; neither changes within ``_match``: events are queued, handlers run after it): in
        # the interpreter a fill then keeps a plain tuple in the trade history (see ``_TradeRow``)
        # instead of a ``Trade``, whose slots cost a store each. Compiled code keeps ``Trade``s.
        quiet = _INTERPRETED and changes is None and r[E_TRADE] is None and r[E_FILLED] is None
        taker_id = taker.order_id
        taker_user = taker.user_id
        alive = True
        # The sweep's lowest and highest trade prices and its last one, as plain ints (an ``int | None``
        # boxes every assignment under mypyc; prices in 1e-8 ticks pass 2**30): valid once ``swept``.
        swept = False
        lo = hi = last = 0
        self._sweep_trade = self._sweep_fill = None  # this taker has no trade yet
        while taker.open and chunks:
            best = chunks[0][0] if buy else chunks[-1][-1]
            if limit is not None and (best > limit if buy else best < limit):
                break
            level = levels[best]
            queue = level.orders
            traded = 0  # lots traded at this level
            if quiet and own is None:
                # The interpreter's quiet sweep of one level without self-trade prevention: the
                # general loop below with the taker's open quantity, the level's head and the
                # counters in locals (stored back once the level is done: nothing reads them in
                # between), a row per fill and no per-fill test of who hears. Kept in step with
                # the loop below by tests/orderbook/test_fast_paths.py.
                open_ = start = taker.open
                head = level.head
                trade_no = self._trade_no
                seq = self._sequence
                while open_ and level.count:
                    maker = queue[head]
                    if maker.level is not level:
                        head += 1
                        level.dead -= 1
                        continue
                    visible = maker.visible
                    trade_no += 1
                    seq += 3
                    if visible <= open_:  # the maker's slice is used up
                        fill = visible
                        open_ -= visible
                        head += 1
                        if maker.open != visible:  # an iceberg's next slice joins the back of the queue
                            maker.open -= visible
                            maker.filled += visible
                            refill = maker.peak if maker.peak < maker.open else maker.open
                            maker.visible = refill
                            level.total += refill
                            level.reserve -= refill
                            maker.rank = seq - 1  # the sequence of the maker's ORDER_FILLED
                            queue.append(maker)
                        else:
                            # Filled: it leaves the book with its fields as they were. Nothing
                            # reads them again: the order is in no index, only in its queue's
                            # spent part (before ``head``), and a quiet sweep hands it to nobody.
                            level.count -= 1
                            del orders[maker.order_id]
                    else:
                        fill = open_
                        maker.visible = visible - open_
                        maker.open -= open_
                        maker.filled += open_
                        open_ = 0
                    # the row's fields, flat (see _history): the tuple is freed at once
                    row = (
                        trade_no,
                        best,
                        fill,
                        maker.order_id,
                        maker.user_id,
                        taker_id,
                        taker_user,
                        buy,
                        now,
                        seq - 2,
                    )
                    trades += row  # trimmed once the sweep is done
                traded = start - open_
                taker.open = open_
                taker.filled += traded
                level.total -= traded
                level.head = head
                self._trade_no = trade_no
                self._sequence = seq
            else:
                while taker.open and level.count:
                    maker = queue[level.head]
                    if maker.level is not level:
                        level.head += 1
                        level.dead -= 1
                        continue
                    if own is not None and maker.user_id == own:
                        alive = self._self_trade(taker, maker, level, now)
                        self._sweep_trade = self._sweep_fill = None  # it may have changed the taker
                        if not alive:
                            break
                        continue
                    fill = maker.visible if maker.visible < taker.open else taker.open
                    maker.visible -= fill
                    maker.open -= fill
                    maker.filled += fill
                    level.total -= fill
                    taker.open -= fill
                    taker.filled += fill
                    traded += fill
                    self._trade_no += 1
                    self._sequence += 3
                    if quiet:  # Trade's fields in the order of _TRADE_ROW_FIELDS
                        row = (
                            self._trade_no,
                            best,
                            fill,
                            maker.order_id,
                            maker.user_id,
                            taker_id,
                            taker_user,
                            buy,
                            now,
                            self._sequence - 2,
                        )
                        trades += row  # flat and trimmed, as above
                    else:
                        if (
                            _INTERPRETED
                        ):  # Trade(...)'s fields set without calling the class, as add_order does
                            trade = BLANK_TRADE()
                            trade.number = self._trade_no
                            trade.price = best
                            trade.quantity = fill
                            trade.maker_order_id = maker.order_id
                            trade.maker_user_id = maker.user_id
                            trade.taker_order_id = taker_id
                            trade.taker_user_id = taker_user
                            trade.taker_side = taker.side
                            trade.timestamp = now
                            trade.sequence = self._sequence - 2
                            # flat (see _history), the taker's side as its Side: a heard trade
                            heard_row = (
                                self._trade_no,
                                best,
                                fill,
                                maker.order_id,
                                maker.user_id,
                                taker_id,
                                taker_user,
                                taker.side,
                                now,
                                self._sequence - 2,
                            )
                            trades += heard_row  # trimmed as above
                        else:
                            trade = Trade(self._trade_no, best, fill, maker, taker, now, self._sequence - 2)
                            if len(trades) < max_history:  # as above, one item per trade
                                trades.append(trade)
                            elif max_history:
                                pos = self._trade_pos
                                trades[pos] = trade
                                pos += 1
                                self._trade_pos = 0 if pos == max_history else pos
                    if not maker.visible:
                        level.head += 1
                        if maker.open:  # an iceberg's next slice joins the back of the queue
                            refill = maker.peak if maker.peak < maker.open else maker.open
                            maker.visible = refill
                            level.total += refill
                            level.reserve -= refill
                            maker.rank = self._sequence - 1  # the sequence of the maker's ORDER_FILLED
                            queue.append(maker)
                        else:
                            maker.level = None
                            level.count -= 1
                            del orders[maker.order_id]
                    if quiet:
                        continue
                    if r[E_TRADE] is not None or r[E_FILLED] is not None:
                        self._emit_fill(trade, maker, taker, now, level)
                    if changes is not None:
                        changes.append((CHANGE_TRADE, trade, maker, taker))
            if traded:
                # Once per level, not per fill: ``best`` passes 2**30 ticks on fine grids, where
                # mypyc multiplies and adds as boxed Python ints (about 1,200 instructions).
                self._volume += traded
                self._notional += traded * best
                if not swept:
                    swept = True
                    lo = hi = best
                elif best < lo:
                    lo = best
                elif best > hi:
                    hi = best
                last = best
            if level.count:
                head = level.head
                if head >= 32 and head + head > len(queue):  # spent entries dominate: drop them
                    del queue[:head]
                    level.head = 0
                self._sequence += 1  # _emit_level, without a call
                route = r[E_LEVEL_CHANGED]
                if route is not None:  # the level's data (as _level_dict builds it, without a call)
                    payload = level.templates.payload  # the level's own template: its price set
                    data = (self._level_payload(level) if payload is None else payload).copy()
                    data["timestamp"] = now if _INTERPRETED else self._stamp_of(now)
                    data["sequence"] = self._sequence
                    qdiv = self._qty_div
                    data["quantity"] = level.total / qdiv if qdiv else self._qty_grid.to_output(level.total)
                    data["order_count"] = level.count
                    if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
                        self._pending.append((route, data))
                    else:
                        self._pending.append(route)
                        self._pending.append(data)
            else:
                level.clear()
                del levels[best]
                index.remove_level(level)
                self._emit_level_removed(level, now)
            if not alive:
                break
        # The interpreter's flat history grows by whole rows and drops its oldest ones in one slice
        # once it holds an eighth more than it keeps (readers take its last max_trade_history rows).
        if _INTERPRETED and len(trades) > max_history + (max_history >> 3):
            del trades[: len(trades) - max_history]
        if swept:
            self._last_price = last
            # Only waiting stops read the sweeps: with none, _run_stops would drop this one unread
            # (no stop can be held between here and that call within the command).
            if self._stop_count:
                self._sweeps.append((lo, hi, buy))
        return alive

    def _self_trade(self, taker: Order, maker: Order, level: PriceLevel, now: float) -> bool:
        """Apply the taker's self-trade prevention mode to ``maker`` (at the front of ``level``).

        Returns whether the taker is still alive (may go on matching and rest)."""
        mode = taker.stp
        if mode is STP_NEWEST or mode is STP_BOTH:
            if mode is STP_BOTH:
                self._cancel_resting_for_stp(maker, now)
            self._emit_cancelled(taker, now, "self_trade_prevention", taker.open)
            taker.open = 0
            return False
        if mode is STP_OLDEST:
            self._cancel_resting_for_stp(maker, now)
            return True
        # DECREMENT: both shrink by the smaller open quantity; no trade.
        cut = maker.open if maker.open < taker.open else taker.open
        if cut == maker.open:
            self._cancel_resting_for_stp(maker, now)
        else:
            old_quantity = maker.quantity
            hidden_before = maker.open - maker.visible
            maker.open -= cut
            maker.quantity -= cut
            visible = maker.visible if maker.visible < maker.open else maker.open
            level.total -= maker.visible - visible
            maker.visible = visible
            level.reserve += (maker.open - maker.visible) - hidden_before
            self._emit_modified(
                maker,
                now,
                self._quantity_changes(maker, old_quantity),
                priority_kept=True,
                reason="self_trade_prevention",
            )
        if cut == taker.open:
            self._emit_cancelled(taker, now, "self_trade_prevention", cut)
            taker.open = 0
            taker.quantity -= cut
            return False
        old_quantity = taker.quantity
        taker.open -= cut
        taker.quantity -= cut
        self._emit_modified(
            taker,
            now,
            self._quantity_changes(taker, old_quantity),
            priority_kept=True,
            reason="self_trade_prevention",
        )
        return True

    def _quantity_changes(self, order: Order, old_quantity: int) -> dict[str, Any] | None:
        """ORDER_MODIFIED's old/new keys for a change of quantity only (None when nobody listens)."""
        if not self._h[E_MODIFIED]:
            return None
        price = None if order.price is None else self._price_grid.to_output(order.price)
        return {
            "old_price": price,
            "new_price": price,
            "old_quantity": self._qty_grid.to_output(old_quantity),
            "new_quantity": self._qty_grid.to_output(order.quantity),
            "old_expiry_time": order.expiry,
            "new_expiry_time": order.expiry,
        }

    def _cancel_resting_for_stp(self, maker: Order, now: float) -> None:
        level = maker.level
        assert level is not None
        level.advance()
        maker.level = None
        level.count -= 1
        level.total -= maker.visible
        level.reserve -= maker.open - maker.visible
        del self._orders[maker.order_id]
        self._emit_cancelled(maker, now, "self_trade_prevention", maker.open)

    def _join_level(self, order: Order) -> tuple[PriceLevel, bool]:
        """Append ``order`` (its ``visible`` already set) to the back of its price level, creating the
        level if needed, and index it; return the level and whether it was created. No event."""
        price = order.price
        assert price is not None
        levels = self._bid_levels if order.side is BUY else self._ask_levels
        level = levels.get(price)
        created = level is None or not level.count
        if level is None or not level.count:
            level = self._new_level(order, level)
        level.total += order.visible
        level.reserve += order.open - order.visible
        level.count += 1
        level.orders.append(order)
        order.level = level
        self._orders[order.order_id] = order
        if order.expiry is not None:
            heapq.heappush(self._expiries, (order.expiry, order.rank, order))
        return level, created

    def _rest_plain(self, order: Order, now: float) -> None:
        """Rest a plain GTC limit order's open remainder at the back of its level with a fresh slice,
        taking the level event's sequence number: ``add_order``'s quiet path after a partial fill
        (it inlines the same work for an order that did not trade)."""
        open_ = order.open
        order.visible = open_  # a plain order has no peak: its slice is all of it
        levels = self._bid_levels if order.side is BUY else self._ask_levels
        level = levels.get(order.price)  # type: ignore[arg-type]
        if level is None or not level.count:
            level = self._new_level(order, level)
            route = self._r[E_LEVEL_ADDED]
        else:
            route = self._r[E_LEVEL_CHANGED]
        level.total += open_
        level.count += 1
        level.orders.append(order)
        order.level = level
        self._orders[order.order_id] = order  # no expiry to queue: GTD only
        self._sequence += 1
        if route is not None:
            self._push(route, self._level_dict(level, now))

    def _new_level(self, order: Order, kept: PriceLevel | None) -> PriceLevel:
        """The level ``order`` opens at its price: ``kept`` (an emptied level kept for its price, live
        again) or a new one; the price joins the side's index either way. Nothing joins the level."""
        # ``key``: the order's own int object, the level's key in the dict and in the index. Compiled,
        # the narrowed ``price`` is unboxed, and storing it would make a new int object for each (64
        # bytes a level); ``key`` is never narrowed, so it stays the object.
        key = order.price
        price = key
        assert price is not None
        if order.side is BUY:
            levels, index = self._bid_levels, self._bid_prices
        else:
            levels, index = self._ask_levels, self._ask_prices
        if kept is None:
            kept = PriceLevel(price, order.side)
            levels[key] = kept  # type: ignore[index]
        else:
            self._kept_empty -= 1
            if not kept.marked:
                # Out of the index (an end swept past its mark): the index takes ``key``, so the dict
                # is keyed by it too (an assignment to a present key would keep the old object).
                del levels[key]  # type: ignore[arg-type]
                levels[key] = kept  # type: ignore[index]
        index.add_level(kept, key)
        return kept

    def _remove(self, order: Order) -> PriceLevel | None:
        """Take a live order out of the book without any event; return the level it rested in (None
        for an untriggered stop)."""
        del self._orders[order.order_id]
        extra = order.extra
        if extra is not None and extra.pending:
            extra.pending = False
            self._stop_count -= 1
            self._trailing.pop(order.order_id, None)
            return None
        level = order.level
        assert level is not None
        order.level = None
        level.count -= 1
        visible = order.visible
        level.total -= visible
        if order.open != visible:  # an iceberg's hidden part
            level.reserve -= order.open - visible
        level.dead += 1
        return level

    def _emit_level_after_removal(self, level: PriceLevel, now: float) -> None:
        """After ``_remove`` of a resting order: drop its level if empty, and report the level."""
        if level.count:
            if level.dead > level.count:  # keeps dead entries <= live ones: bounded memory, O(1) amortized
                level.compact()
            self._emit_level(level, now)
            return
        if level.side is BUY:
            levels, index = self._bid_levels, self._bid_prices
        else:
            levels, index = self._ask_levels, self._ask_prices
        price = level.price
        chunks = index._chunks
        at_an_end = price == chunks[0][0] or price == chunks[-1][-1]
        index.remove_level(level)
        level.clear()
        if at_an_end:
            del levels[price]
        else:
            # Away from the top the emptied level stays (count 0) and the index only marks its
            # price: a cancel deep in a large book then frees no level and touches no more cold
            # memory. Kept levels are dropped in one pass once they pass about half of the levels.
            self._kept_empty += 1
            if self._kept_empty > (len(self._bid_levels) + len(self._ask_levels)) // 2 + 64:
                self._drop_empty_levels()
        self._emit_level_removed(level, now)

    def _drop_empty_levels(self) -> None:
        """Delete the emptied levels kept in the level dicts (O(levels), amortised over the removals)."""
        self._bid_prices.drop_marked()  # the marked levels are among them
        self._ask_prices.drop_marked()
        for levels in (self._bid_levels, self._ask_levels):
            for price in [price for price, level in levels.items() if not level.count]:
                del levels[price]
        self._kept_empty = 0

    def _modify_in_place(self, order: Order, price: int | None, quantity: int, expiry: float | None) -> None:
        """Apply a modify that keeps priority (or any modify of an untriggered stop)."""
        order.price = price
        new_open = quantity - order.filled
        level = order.level
        if level is not None:
            hidden_before = order.open - order.visible
            visible = order.visible if order.visible < new_open else new_open
            level.total -= order.visible - visible
            order.visible = visible
            level.reserve += (new_open - visible) - hidden_before
        order.open = new_open
        order.quantity = quantity
        if expiry != order.expiry:
            order.expiry = expiry
            if expiry is not None:
                heapq.heappush(self._expiries, (expiry, order.rank, order))

    # ------------------------------------------------------------------ stops

    def _hold_stop(self, order: Order) -> None:
        """Hold a new stop off the book until its trigger (a trailing stop starts at the last price)."""
        if order.order_type is TRAILING_STOP:
            order.trail_ref = self._last_price
            self._update_trailing_stop(order)
        self._register_stop(order)
        if self._last_price is not None:
            self._sweeps.append((self._last_price, self._last_price, True))

    def _register_stop(self, order: Order) -> None:
        """Index a waiting stop (its stop or trailing state already set) where triggers look for it."""
        order.pending = True
        self._stop_count += 1
        self._orders[order.order_id] = order
        if order.expiry is not None:
            heapq.heappush(self._expiries, (order.expiry, order.rank, order))
        if order.order_type is TRAILING_STOP:
            self._trailing[order.order_id] = order
        else:
            stop = order.stop_price
            assert stop is not None
            if order.side is BUY:
                heapq.heappush(self._buy_stops, (stop, order.rank, order))
            else:
                heapq.heappush(self._sell_stops, (-stop, order.rank, order))

    def _trail_through(self, order: Order, lo: int, hi: int, ascending: bool) -> bool:
        """Move a trailing stop along one sweep of prints (``lo`` first when ``ascending``, else ``hi``
        first) and return whether a print reached its stop."""
        if order.side is SELL:  # follows the highest print, fires on a print at or below the stop
            if ascending and self._trail_hit(order, lo):
                return True
            if order.trail_ref is None or hi > order.trail_ref:
                order.trail_ref = hi
                self._update_trailing_stop(order)
            return not ascending and self._trail_hit(order, lo)
        if not ascending and self._trail_hit(order, hi):  # follows the lowest print, fires at or above
            return True
        if order.trail_ref is None or lo < order.trail_ref:
            order.trail_ref = lo
            self._update_trailing_stop(order)
        return ascending and self._trail_hit(order, hi)

    @staticmethod
    def _trail_hit(order: Order, price: int) -> bool:
        stop = order.stop_price
        if stop is None:
            return False
        return price <= stop if order.side is SELL else price >= stop

    def _update_trailing_stop(self, order: Order) -> None:
        ref = order.trail_ref
        if ref is None:
            return
        if order.trail_is_percent:
            assert isinstance(order.trail, Decimal)
            offset = int((ref * order.trail / 100).to_integral_value(ROUND_FLOOR))
        else:
            assert isinstance(order.trail, int)
            offset = order.trail
        order.stop_price = ref - offset if order.side is SELL else ref + offset

    def _run_stops(self, now: float) -> None:
        """Trigger every stop whose condition the command's trades met, in arrival order, repeatedly."""
        while self._sweeps:
            sweeps = self._sweeps
            self._sweeps = []
            if not self._stop_count:
                return
            lo = min(sweep[0] for sweep in sweeps)
            hi = max(sweep[1] for sweep in sweeps)
            fired: list[Order] = []
            buys, sells = self._buy_stops, self._sell_stops
            while buys and buys[0][0] <= hi:
                order = heapq.heappop(buys)[2]
                if order.pending and self._orders.get(order.order_id) is order:
                    fired.append(order)
            while sells and -sells[0][0] >= lo:
                order = heapq.heappop(sells)[2]
                if order.pending and self._orders.get(order.order_id) is order:
                    fired.append(order)
            moved: list[tuple[Order, int | None]] = []
            for order in list(self._trailing.values()):
                old_stop, old_ref = order.stop_price, order.trail_ref
                for sweep_lo, sweep_hi, ascending in sweeps:
                    if self._trail_through(order, sweep_lo, sweep_hi, ascending):
                        fired.append(order)
                        break
                else:
                    if order.stop_price != old_stop or order.trail_ref != old_ref:
                        moved.append((order, old_stop))
            for order, old_stop in sorted(moved, key=lambda item: item[0].rank):
                self._emit_trailing_moved(order, old_stop, now)
            fired.sort(key=lambda o: o.rank)
            for order in fired:
                if not order.pending:
                    continue
                self._remove(order)
                order.triggered = True
                order.rank = self._sequence + 1  # re-enters the book at its ORDER_TRIGGERED event
                self._triggered_count += 1
                self._emit_order(E_TRIGGERED, order, now)
                self._execute(order, now, announce=False)

    # ------------------------------------------------------------------ expiry

    def _expire_due(self, now: float) -> int:
        """Remove every order whose expiry is at or before ``now``; return how many."""
        heap = self._expiries
        removed = 0
        while heap and heap[0][0] <= now:
            expiry, _, order = heapq.heappop(heap)
            if self._orders.get(order.order_id) is not order or order.expiry != expiry:
                continue
            level = self._remove(order)
            removed += 1
            self._expired_count += 1
            self._emit_order(E_EXPIRED, order, now, order.open)
            if level is not None:
                self._emit_level_after_removal(level, now)
        return removed

    # ------------------------------------------------------------------ events

    def _emit_cancelled(
        self, order: Order, now: float, reason: str, amount: int, level: PriceLevel | None = None
    ) -> None:
        """Queue ORDER_CANCELLED about ``order``: ``reason`` and ``amount``, the cancelled lots;
        ``level``, when given, the price level the order rested at (its price is the order's).

        A plain order's data is built here, as ``_announce`` builds ORDER_ADDED's (from ``level``'s own
        template when given); others by ``_order_dict``, with the same keys, order and values."""
        self._sequence += 1
        self._cancelled_count += 1
        changes = self._changes
        if changes is not None:
            # A cancelled taker's open quantity is zeroed after this event: keep what it reports.
            changes.append((CHANGE_CANCELLED, order, self._sequence, (reason, order.open, order.quantity)))
        route = self._r[E_CANCELLED]
        if route is None:
            return
        extra = order.extra
        if extra is not None and (
            extra.peak
            or extra.expiry is not None
            or extra.stop_price is not None
            or extra.trail is not None
            or extra.trail_ref is not None
            or extra.triggered
        ):
            data = self._order_dict(order, _CANCELLED_TEMPLATE)
            data["status"] = "cancelled"
            data["reason"] = reason
            data["cancelled_quantity"] = self._qty_grid.to_output(amount)
            data["order_timestamp"] = order.timestamp
            self._queue(route, data, now)
            return
        if level is None:
            data = (
                self._cancelled_templates[0] if order.side is BUY else self._cancelled_templates[1]
            ).copy()
            price = order.price
            if price is not None:
                pdiv = self._price_div  # conversions inlined: a call each costs more in pure Python
                data["price"] = price / pdiv if pdiv else self._price_grid.to_output(price)
        else:  # the level's own template: its price set
            payload = level.templates.cancelled_payload
            data = (self._level_cancelled_payload(level) if payload is None else payload).copy()
        data["order_id"] = order.order_id
        if extra is not None and extra.client_order_id is not None:  # the templates say None
            data["client_order_id"] = extra.client_order_id
        lots = order.quantity
        open_lots = order.open
        qdiv = self._qty_div
        if qdiv:
            quantity: object = lots / qdiv
            remaining = quantity if open_lots == lots else open_lots / qdiv
        else:
            quantity = self._qty_out(lots)
            remaining = quantity if open_lots == lots else self._qty_out(open_lots)
        data["quantity"] = quantity
        data["remaining_quantity"] = remaining
        filled = order.filled
        if filled:  # the templates say 0
            data["filled_quantity"] = filled / qdiv if qdiv else self._qty_out(filled)
        visible = order.visible
        if visible == open_lots:
            data["visible_quantity"] = remaining
        else:
            data["visible_quantity"] = visible / qdiv if qdiv else self._qty_out(visible)
        if reason != "user":  # the templates say "user"
            data["reason"] = reason
        if amount == open_lots:
            data["cancelled_quantity"] = remaining
        else:
            data["cancelled_quantity"] = amount / qdiv if qdiv else self._qty_out(amount)
        if order.order_type is not LIMIT:
            data["order_type"] = order.order_type._value_
        tif = order.tif
        if tif is not GTC:  # as in _announce
            data["time_in_force"] = _IOC_VALUE if tif is IOC else tif._value_
        data["user_id"] = order.user_id
        if order.stp is not STP_NONE:
            data["self_trade_prevention"] = order.stp._value_
        rank: object = order.rank
        data["priority"] = rank
        if _INTERPRETED:
            data["timestamp"] = now
            data["order_timestamp"] = order.timestamp
            data["sequence"] = self._sequence
        else:  # one boxed object each where the values are equal, as in _announce
            stamp = self._stamp_of(now)
            data["timestamp"] = stamp
            data["order_timestamp"] = stamp if order.timestamp == now and now else order.timestamp
            data["sequence"] = rank if order.rank == self._sequence else self._sequence
        if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
            self._pending.append((route, data))
        else:
            self._pending.append(route)
            self._pending.append(data)

    def _emit_order(self, index: int, order: Order, now: float, amount: int = 0) -> None:
        """Queue an ORDER_EXPIRED (``amount`` = expired lots) or ORDER_TRIGGERED event about ``order``."""
        self._sequence += 1
        changes = self._changes
        if changes is not None:
            if index == E_EXPIRED:
                changes.append((CHANGE_EXPIRED, order, self._sequence, (None, order.open, order.quantity)))
            else:
                changes.append((CHANGE_ORDER, order, self._sequence, None))
        route = self._r[index]
        if route is not None:
            data = self._order_dict(order, _EVENT_TEMPLATES[index])
            if index == E_EXPIRED:
                data["status"] = "expired"
                data["expired_quantity"] = self._qty_grid.to_output(amount)
            elif index == E_TRIGGERED:
                data["trigger_price"] = (
                    None if self._last_price is None else self._price_grid.to_output(self._last_price)
                )
            data["order_timestamp"] = order.timestamp
            self._queue(route, data, now)

    def _emit_modified(
        self,
        order: Order,
        now: float,
        changes: dict[str, Any] | None,
        priority_kept: bool,
        reason: str = "user",
    ) -> None:
        self._sequence += 1
        log = self._changes
        if log is not None:
            log.append((CHANGE_ORDER, order, self._sequence, None))
        route = self._r[E_MODIFIED]
        if route is not None:
            data = self._order_dict(order)
            if changes:
                data.update(changes)
            data["priority_kept"] = priority_kept
            data["reason"] = reason
            data["order_timestamp"] = order.timestamp
            self._queue(route, data, now)

    def _emit_trailing_moved(self, order: Order, old_stop: int | None, now: float) -> None:
        """Queue ORDER_MODIFIED (reason ``trailing_stop``) for a trailing stop whose reference moved."""
        changes = self._quantity_changes(order, order.quantity)  # price, quantity and expiry stay
        if changes is not None:
            pg = self._price_grid
            changes["old_stop_price"] = None if old_stop is None else pg.to_output(old_stop)
            changes["new_stop_price"] = None if order.stop_price is None else pg.to_output(order.stop_price)
        self._emit_modified(order, now, changes, priority_kept=True, reason="trailing_stop")

    def _push(self, route: Any, data: dict[str, Any]) -> None:
        """Queue one event for delivery at the end of the command: ``route`` is its type's
        ``(lone handler or None, event_type, handlers)`` when it was queued (``EventManager.routes``),
        ``data`` its data.

        The interpreter queues one ``(route, data)`` tuple per event: its loops unpack a tuple for
        fewer bytecodes than they index a list. Compiled, the route and the data are two items of
        ``_pending``: two list appends cost less than a tuple made and freed per event
        (docs/performance.md, session 18). The hot paths do this inline."""
        if _INTERPRETED:
            self._pending.append((route, data))
        else:
            self._pending.append(route)
            self._pending.append(data)

    def _queue(self, route: Any, data: dict[str, Any], now: object) -> None:
        """Stamp ``data`` with the book's symbol, ``now`` and the current sequence; queue it for delivery."""
        data["symbol"] = self._symbol
        data["sequence"] = self._sequence
        data["timestamp"] = now
        self._push(route, data)

    def _stamp_added(self, data: dict[str, Any], order: Order, now: float) -> None:
        """Compiled: store a new order's ORDER_ADDED ``priority`` and ``sequence`` (its rank, one boxed
        object for both), ``timestamp`` and ``order_timestamp`` (the command's shared clock object when
        they are equal) as ``_execute`` does. The interpreter's values are objects already: add_order
        stores them itself."""
        rank: object = order.rank
        data["priority"] = rank
        stamp = self._stamp_of(now)
        data["timestamp"] = stamp
        data["order_timestamp"] = stamp if order.timestamp == now and now else order.timestamp
        data["sequence"] = rank

    def _stamp_of(self, now: float) -> object:
        """``now`` as a float object: the same object as long as the clock reading stays the same.

        Compiled, each store of a ``float`` into a dict boxes it (a new object, freed with the dict);
        every event of a command carries the same reading, so they share one. Zero readings are
        boxed every time (``0.0 == -0.0``, and the payload must keep the sign it was given). The
        interpreter's ``now`` already is an object: its builders do not call this."""
        if now == self._stamp_at and now:
            return self._stamp
        stamp: object = now
        self._stamp = stamp
        self._stamp_at = now
        return stamp

    def _level_payload(self, level: PriceLevel) -> dict[str, Any]:
        """``level.templates.payload``, made now: a copy of its side's PRICE_LEVEL template with the
        level's price.

        Every event of the level copies it, so its events store four keys (timestamp, sequence,
        quantity, order count), not five. The copy shares the template's table of keys
        (``_shared_keys``), and so do its own copies. The symbol is in it: the ``symbol`` setter
        forgets every level's payload."""
        templates = self._level_templates
        payload = self._priced_copy(templates[0] if level.side is BUY else templates[1], level)
        own = level.templates
        if own is NO_TEMPLATES:  # the shared empty record: the level's own first (never written to)
            own = level.templates = LevelTemplates()
        own.payload = payload
        return payload

    def _level_added_payload(self, level: PriceLevel) -> dict[str, Any]:
        """``level.templates.added_payload``, made now: a copy of the ORDER_ADDED template of the level's side
        with the level's price, for the plain orders that join the level. Forgotten as ``payload`` is."""
        templates = self._added_templates
        payload = self._priced_copy(templates[0] if level.side is BUY else templates[1], level)
        own = level.templates
        if own is NO_TEMPLATES:  # the shared empty record: the level's own first (never written to)
            own = level.templates = LevelTemplates()
        own.added_payload = payload
        return payload

    def _level_cancelled_payload(self, level: PriceLevel) -> dict[str, Any]:
        """``level.templates.cancelled_payload``, made now: a copy of the ORDER_CANCELLED template of the
        level's side with the level's price, for the plain orders cancelled from it. Forgotten as
        ``payload`` is."""
        templates = self._cancelled_templates
        payload = self._priced_copy(templates[0] if level.side is BUY else templates[1], level)
        own = level.templates
        if own is NO_TEMPLATES:  # the shared empty record: the level's own first (never written to)
            own = level.templates = LevelTemplates()
        own.cancelled_payload = payload
        return payload

    def _priced_copy(self, template: dict[str, Any], level: PriceLevel) -> dict[str, Any]:
        """A copy of ``template`` with ``level``'s price (in the output format) as ``price``."""
        payload = template.copy()
        out = level.price_out  # _level_price inlined
        payload["price"] = self._level_price(level) if out is None else out
        return payload

    def _level_fill_payload(self, level: PriceLevel, price: object) -> dict[str, Any]:
        """``level.templates.fill_payload``, made now: a copy of the ORDER_FILLED template of a maker on the
        level's side with ``price`` (the level's price in the output format) as price and fill price,
        the two keys a maker's fill then need not store. Forgotten as ``payload`` is."""
        templates = self._fill_templates  # buy maker, buy taker, sell maker, sell taker
        payload = (templates[0] if level.side is BUY else templates[2]).copy()
        payload["price"] = price
        payload["fill_price"] = price
        own = level.templates
        if own is NO_TEMPLATES:  # the shared empty record: the level's own first (never written to)
            own = level.templates = LevelTemplates()
        own.fill_payload = payload
        return payload

    def _level_price(self, level: PriceLevel) -> object:
        """``level.price`` in the output format, converted once per level (``PriceLevel.price_out``)."""
        out = level.price_out
        if out is None:
            pdiv = self._price_div
            out = level.price / pdiv if pdiv else self._price_grid.to_output(level.price)
            level.price_out = out
        return out

    def _emit_fill(self, trade: Trade, maker: Order, taker: Order, now: float, level: PriceLevel) -> None:
        """Queue TRADE_EXECUTED and the two ORDER_FILLED events of ``trade`` (sequence already taken);
        ``level`` is the maker's price level (its price is the trade's).

        The maker's fill, and the second and later trade and taker fill of a sweep, are built here (a
        call costs a frame in pure Python); a sweep's first trade and taker fill by ``_trade_dict``
        and ``_fill_dict``. A later trade or taker fill is a copy of the previous one, which is still
        queued and not delivered (handlers run after the command), so as built: the taker's keys, the
        symbol and the timestamp are the same, and only the trade's, the maker's or the fill's keys
        are set (docs/performance.md, session 11)."""
        r = self._r
        seq = trade.sequence
        trade_route = r[E_TRADE]
        fill_route = r[E_FILLED]
        if trade_route is None and fill_route is None:
            return
        trade_id = self._trade_id_prefix + str(trade.number)
        has_fees = self._has_fees
        if has_fees:
            maker_fee, taker_fee = self._trade_fees(trade)
        else:
            maker_fee = taker_fee = self._zero_money
        price = level.price_out  # _level_price inlined
        if price is None:
            price = self._level_price(level)
        stamp = now if _INTERPRETED else self._stamp_of(now)
        qdiv = self._qty_div
        fill_lots = trade.quantity
        if qdiv:
            fill_quantity: object = fill_lots / qdiv
        else:
            fill_quantity = self._qty_out(fill_lots)
        pending = self._pending  # appended here: a call to _push each costs more in pure Python
        if trade_route is not None:
            data = self._sweep_trade
            if data is None:
                data = self._trade_dict(trade, trade_id, maker_fee, taker_fee, price, stamp)
            else:
                data = data.copy()
                data["trade_id"] = trade_id
                data["price"] = price
                data["quantity"] = fill_quantity
                data["maker_order_id"] = trade.maker_order_id
                data["maker_user_id"] = trade.maker_user_id  # the last maker's may differ, None included
                if trade.taker_side is BUY:
                    data["sell_order_id"] = trade.maker_order_id
                else:
                    data["buy_order_id"] = trade.maker_order_id
                if has_fees:  # otherwise both are the template's zero
                    data["maker_fee"] = maker_fee
                    data["taker_fee"] = taker_fee
                data["sequence"] = trade.sequence
            self._sweep_trade = data
            if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
                pending.append((trade_route, data))
            else:
                pending.append(trade_route)
                pending.append(data)
        if fill_route is None:
            return
        # The maker's fill (what _fill_dict builds; a maker's price is the trade's).
        payload = level.templates.fill_payload  # the level's own maker template: price and fill price set
        data = (self._level_fill_payload(level, price) if payload is None else payload).copy()
        data["order_id"] = maker.order_id
        extra = maker.extra
        if extra is not None and extra.client_order_id is not None:  # the templates say None
            data["client_order_id"] = extra.client_order_id
        data["trade_id"] = trade_id
        lots = maker.quantity
        quantity = fill_quantity if fill_lots == lots else lots / qdiv if qdiv else self._qty_out(lots)
        data["quantity"] = quantity
        data["fill_quantity"] = fill_quantity
        filled_lots = maker.filled
        if filled_lots == lots:
            data["filled_quantity"] = quantity
        elif filled_lots == fill_lots:
            data["filled_quantity"] = fill_quantity
        else:
            data["filled_quantity"] = filled_lots / qdiv if qdiv else self._qty_out(filled_lots)
        open_lots = maker.open
        if open_lots:
            remaining = open_lots / qdiv if qdiv else self._qty_out(open_lots)
            data["status"] = "partially_filled"  # the templates say "filled"
        else:
            remaining = self._zero_qty_out
        data["remaining_quantity"] = remaining
        visible = maker.visible
        if visible == open_lots:
            data["visible_quantity"] = remaining
        else:
            data["visible_quantity"] = visible / qdiv if qdiv else self._qty_out(visible)
        data["priority"] = maker.rank
        if has_fees:  # otherwise the template holds the zero fee
            data["fee"] = maker_fee
        data["user_id"] = maker.user_id
        if maker.order_type is not LIMIT:
            data["order_type"] = maker.order_type._value_
        data["timestamp"] = stamp
        data["sequence"] = seq + 1
        if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
            pending.append((fill_route, data))
        else:
            pending.append(fill_route)
            pending.append(data)
        # The taker's fill.
        data = self._sweep_fill
        if data is None:
            data = self._fill_dict(trade, trade_id, taker, False, taker_fee, seq + 2, price, stamp)
        else:
            data = data.copy()
            data["trade_id"] = trade_id
            data["fill_price"] = price
            data["fill_quantity"] = fill_quantity
            filled_lots = taker.filled
            if filled_lots == fill_lots:  # not after an earlier fill, but as _fill_dict has it
                data["filled_quantity"] = fill_quantity
            else:
                data["filled_quantity"] = filled_lots / qdiv if qdiv else self._qty_out(filled_lots)
            open_lots = taker.open
            if open_lots:
                remaining = open_lots / qdiv if qdiv else self._qty_out(open_lots)
            else:
                remaining = self._zero_qty_out
                data["status"] = "filled"  # the last fill left the taker open: it said "partially_filled"
            data["remaining_quantity"] = remaining
            visible = taker.visible
            if visible == open_lots:
                data["visible_quantity"] = remaining
            else:
                data["visible_quantity"] = visible / qdiv if qdiv else self._qty_out(visible)
            if has_fees:  # otherwise the template's zero
                data["fee"] = taker_fee
            data["sequence"] = seq + 2
        self._sweep_fill = data
        if _INTERPRETED:  # one tuple per event; compiled, two items (see _push)
            pending.append((fill_route, data))
        else:
            pending.append(fill_route)
            pending.append(data)

    def _emit_level(self, level: PriceLevel, now: float) -> None:
        self._sequence += 1
        route = self._r[E_LEVEL_CHANGED]
        if route is not None:
            self._push(route, self._level_dict(level, now))

    def _emit_level_removed(self, level: PriceLevel, now: float) -> None:
        self._sequence += 1
        route = self._r[E_LEVEL_REMOVED]
        if route is not None:
            templates = self._removed_templates  # quantity and order count are zero
            data = (templates[0] if level.side is BUY else templates[1]).copy()
            data["timestamp"] = now if _INTERPRETED else self._stamp_of(now)
            data["sequence"] = self._sequence
            data["price"] = self._level_price(level)
            self._push(route, data)

    def _dispatch(self) -> None:
        """Deliver queued events in sequence order (``_deliver``); then pass the command's changes to
        the change recorders."""
        if self._dispatching:
            return  # a handler called back into the book; the outer loop delivers its events
        if self._pending:
            self._deliver()
        changes = self._changes
        if changes:
            self._changes = []
            for recorder in self._recorders:
                recorder(changes, self._sequence, self._trade_no, self._next_order_no, self._last_price)

    def _deliver(self) -> None:
        """Deliver the queued events in order; report failing handlers with ERROR events. (``add_order``
        and ``cancel_order`` hold a copy of the interpreter's loop: a call costs a frame in pure Python.)

        Handlers that call back into the book add events to the end of ``_pending``: both loops read
        its length at every step, so they deliver them too."""
        pending = self._pending
        self._dispatching = True
        try:
            if _INTERPRETED:  # (route, data) tuples
                for (lone, event_type, handlers), data in pending:
                    if lone is not None:  # one handler: no iterator over ``handlers``
                        try:
                            lone(event_type, data)
                        except Exception as exc:
                            self._handler_failed(lone, event_type, data, exc)
                        continue
                    for handler in handlers:
                        try:
                            handler(event_type, data)
                        except Exception as exc:
                            self._handler_failed(handler, event_type, data, exc)
            else:  # route, data, route, data, ...
                i = 0
                while i < len(pending):
                    route: Route = pending[i]
                    data = pending[i + 1]
                    i += 2
                    lone, event_type, handlers = route
                    if lone is not None:
                        try:
                            lone(event_type, data)
                        except Exception as exc:
                            self._handler_failed(lone, event_type, data, exc)
                        continue
                    for handler in handlers:
                        try:
                            handler(event_type, data)
                        except Exception as exc:
                            self._handler_failed(handler, event_type, data, exc)
        finally:
            pending.clear()
            self._dispatching = False

    def _handler_failed(
        self, handler: EventHandler, event_type: EventType, data: dict[str, Any], exc: Exception
    ) -> None:
        """Log that ``handler`` raised ``exc`` on an event; report it with an ERROR event (not for one
        about an ERROR event, which could loop)."""
        _report_handler_failure(handler, event_type, exc)
        if event_type is not EventType.ERROR:
            self._emit_error(handler, event_type, data, exc)

    def _emit_error(
        self, handler: EventHandler, event_type: EventType, data: dict[str, Any], exc: Exception
    ) -> None:
        self._sequence += 1
        route = self._r[E_ERROR]
        if route is not None:
            error = {
                "message": f"{type(exc).__name__}: {exc}",
                "error_type": type(exc).__name__,
                "handler": getattr(handler, "__qualname__", repr(handler)),
                "event_type": event_type.value,
                "event_sequence": data.get("sequence"),
            }
            self._queue(route, error, data.get("timestamp"))

    # ------------------------------------------------------------------ dictionaries

    def _build_templates(self) -> None:
        """Prefill this book's payload templates with what is the same for every event of its kind.

        Per side: ORDER_ADDED / ORDER_CANCELLED of a plain order (no iceberg, expiry, stop or trail;
        limit, GTC and no self-trade prevention until the fill-in says otherwise), ORDER_FILLED and
        the price level events; and TRADE_EXECUTED. The symbol is baked in, so the templates are
        rebuilt when ``symbol`` is reassigned (its setter calls this)."""
        symbol = self._symbol
        self._zero_qty_out: object = self._qty_out(0)
        sides = (BUY, SELL)
        common = {
            "symbol": symbol,
            "order_type": LIMIT._value_,
            "time_in_force": GTC._value_,
            "trail_is_percent": False,
            "self_trade_prevention": STP_NONE._value_,
            "triggered": False,
            "filled_quantity": self._zero_qty_out,
        }
        added = tuple(
            {
                **_ADDED_TEMPLATE,
                **common,
                "side": side._value_,
                "status": "open",
                "visible_quantity": self._zero_qty_out,
            }
            for side in sides
        )
        cancelled = tuple(
            {**_CANCELLED_TEMPLATE, **common, "side": side._value_, "status": "cancelled", "reason": "user"}
            for side in sides
        )
        # Without fees every fee is the same zero: the templates hold it (``_fill_dict`` and
        # ``_trade_dict`` then set no fee key).
        self._has_fees = bool(self._maker_fee_num or self._taker_fee_num)
        zero_fee = None if self._has_fees else self._zero_money
        fills = tuple(
            {
                **_FILL_TEMPLATE,
                "symbol": symbol,
                "side": side._value_,
                "is_maker": is_maker,
                "order_type": LIMIT._value_,
                "status": "filled",
                "fee": zero_fee,
            }
            for side in sides
            for is_maker in (True, False)
        )
        levels = tuple({**_LEVEL_TEMPLATE, "symbol": symbol, "side": side._value_} for side in sides)
        self._added_templates = (_shared_keys(added[0]), _shared_keys(added[1]))
        self._cancelled_templates = (_shared_keys(cancelled[0]), _shared_keys(cancelled[1]))
        self._fill_templates = (
            _shared_keys(fills[0]),
            _shared_keys(fills[1]),
            _shared_keys(fills[2]),
            _shared_keys(fills[3]),
        )
        # Level events have 7 keys: split too, now that a copy's values array has 8 slots, not 30
        # (``_shared_keys``; an ordinary dict's copy was cheaper at 30: docs/performance.md).
        self._level_templates = (_shared_keys(levels[0]), _shared_keys(levels[1]))
        zero_level = {"quantity": self._zero_qty_out, "order_count": 0}
        self._removed_templates = tuple(_shared_keys({**template, **zero_level}) for template in levels)
        trades = tuple(
            {
                **_TRADE_TEMPLATE,
                "symbol": symbol,
                "taker_side": taker_side,
                "maker_fee": zero_fee,
                "taker_fee": zero_fee,
                "maker_fee_rate": self._maker_rate_out,
                "taker_fee_rate": self._taker_rate_out,
            }
            for taker_side in (_BUY_VALUE, _SELL_VALUE)
        )
        # by the taker's side: buy, sell
        self._trade_templates = (_shared_keys(trades[0]), _shared_keys(trades[1]))

    def _order_dict(self, order: Order, template: dict[str, Any] = _ORDER_TEMPLATE) -> dict[str, Any]:
        """``order`` as a dict: a copy of ``template`` (the keys of an event type, in their published
        order) with the order's keys filled in; the event's own keys are left for the caller.
        Filling a presized copy costs less than building a dict of this size key by key."""
        pg, qg = self._price_grid, self._qty_grid
        qdiv = self._qty_div
        if qdiv:  # the common float format on a 10**-k grid: inline the exact conversion
            quantity: object = order.quantity / qdiv
            filled: object = order.filled / qdiv
            remaining: object = order.open / qdiv
            visible: object = order.visible / qdiv
        else:
            quantity = qg.to_output(order.quantity)
            filled = qg.to_output(order.filled)
            remaining = qg.to_output(order.open)
            visible = qg.to_output(order.visible)
        extra = order.extra
        if extra is None:
            extra = _NO_EXTRA  # a plain order: every rare field has its default
        if extra.pending:
            status = "pending"
        elif order.open == 0:
            status = "filled" if order.filled else "cancelled"
        elif order.filled:
            status = "partially_filled"
        else:
            status = "open"
        trail: object = None
        if isinstance(extra.trail, Decimal):
            trail = self._money(extra.trail)
        elif extra.trail is not None:
            trail = pg.to_output(extra.trail)
        data = template.copy()
        data["order_id"] = order.order_id
        if extra.client_order_id is not None:  # the templates say None
            data["client_order_id"] = extra.client_order_id
        data["symbol"] = self._symbol
        data["side"] = order.side._value_
        data["price"] = None if order.price is None else self._price_out(order.price)
        data["quantity"] = quantity
        data["filled_quantity"] = filled
        data["remaining_quantity"] = remaining
        data["visible_quantity"] = visible
        data["displayed_quantity"] = qg.to_output(extra.peak) if extra.peak else None
        data["order_type"] = order.order_type._value_
        data["time_in_force"] = order.tif._value_
        data["expiry_time"] = extra.expiry
        data["user_id"] = order.user_id
        data["timestamp"] = order.timestamp
        data["stop_price"] = None if extra.stop_price is None else pg.to_output(extra.stop_price)
        data["trail_value"] = trail
        data["trail_is_percent"] = extra.trail_is_percent
        data["trail_reference_price"] = None if extra.trail_ref is None else pg.to_output(extra.trail_ref)
        data["self_trade_prevention"] = order.stp._value_
        data["triggered"] = extra.triggered
        data["status"] = status
        data["priority"] = order.rank
        return data

    def _trade_id(self, trade: Trade) -> str:
        return self._trade_id_prefix + str(trade.number)

    def _trade_fees(self, trade: Trade) -> tuple[object, object]:
        """``(maker fee, taker fee)`` of ``trade``, exact, in the output format."""
        if not self._maker_fee_num and not self._taker_fee_num:
            return self._zero_money, self._zero_money  # no fees: spares two big-integer products
        notional = trade.price * trade.quantity
        if self._float_fees:
            # operator.truediv, not ``/``: mypyc compiles int / int to a division of two doubles, which
            # rounds twice once the numerator passes 2**53; Python's int division rounds once.
            return (
                truediv(notional * self._maker_fee_num, self._maker_fee_den),
                truediv(notional * self._taker_fee_num, self._taker_fee_den),
            )
        if self._text_fees:
            # format(notional * unit, "f") written from the integers: a Decimal product and its
            # formatting cost several times as much.
            maker_num = self._maker_fee_num
            taker_num = self._taker_fee_num
            return (
                decimal_text(notional * maker_num, self._maker_fee_places) if maker_num else self._zero_money,
                decimal_text(notional * taker_num, self._taker_fee_places) if taker_num else self._zero_money,
            )
        return self._fee(notional, self._maker_fee_unit), self._fee(notional, self._taker_fee_unit)

    def _fee(self, notional: int, unit: Decimal) -> object:
        """The fee on ``notional`` tick-lots at ``unit`` (fee per tick-lot), in the output format."""
        if not unit:
            return self._zero_money
        return self._money(_EXACT.multiply(notional, unit))

    def _price_out(self, ticks: int) -> object:
        pdiv = self._price_div
        return ticks / pdiv if pdiv else self._price_grid.to_output(ticks)

    def _qty_out(self, lots: int) -> object:
        qdiv = self._qty_div
        return lots / qdiv if qdiv else self._qty_grid.to_output(lots)

    def _trade_dict(
        self,
        trade: Trade,
        trade_id: str | None = None,
        maker_fee: object = None,
        taker_fee: object = None,
        price: object = None,
        stamp: object = None,
    ) -> dict[str, Any]:
        """TRADE_EXECUTED's data. Without the id given, the id and fees are computed; without ``price``
        (the trade's price in the output format) and ``stamp`` (its timestamp as an object), they
        are converted."""
        if trade_id is None:
            trade_id = self._trade_id(trade)
            maker_fee, taker_fee = self._trade_fees(trade)
        buyer_is_taker = trade.taker_side is BUY
        data = (self._trade_templates[0] if buyer_is_taker else self._trade_templates[1]).copy()
        data["trade_id"] = trade_id
        pdiv = self._price_div
        qdiv = self._qty_div
        if price is None:
            price = trade.price / pdiv if pdiv else self._price_grid.to_output(trade.price)
        data["price"] = price
        data["quantity"] = trade.quantity / qdiv if qdiv else self._qty_grid.to_output(trade.quantity)
        data["maker_order_id"] = trade.maker_order_id
        data["taker_order_id"] = trade.taker_order_id
        if trade.maker_user_id is not None:
            data["maker_user_id"] = trade.maker_user_id
        if trade.taker_user_id is not None:
            data["taker_user_id"] = trade.taker_user_id
        if buyer_is_taker:  # the template holds taker_side
            data["buy_order_id"] = trade.taker_order_id
            data["sell_order_id"] = trade.maker_order_id
        else:
            data["buy_order_id"] = trade.maker_order_id
            data["sell_order_id"] = trade.taker_order_id
        if self._has_fees:  # otherwise the template holds the zero fees
            data["maker_fee"] = maker_fee
            data["taker_fee"] = taker_fee
        data["timestamp"] = trade.timestamp if stamp is None else stamp
        data["sequence"] = trade.sequence
        return data

    def _fill_dict(
        self,
        trade: Trade,
        trade_id: str,
        order: Order,
        is_maker: bool,
        fee: object,
        sequence: int,
        fill_price: object,
        stamp: object,
    ) -> dict[str, Any]:
        """ORDER_FILLED's data for ``order``'s side of ``trade``: ``fill_price`` is the trade's price in
        the output format and ``stamp`` its timestamp (objects the trade's events share)."""
        templates = self._fill_templates  # buy maker, buy taker, sell maker, sell taker
        if order.side is BUY:
            data = (templates[0] if is_maker else templates[1]).copy()
        else:
            data = (templates[2] if is_maker else templates[3]).copy()
        data["order_id"] = order.order_id
        extra = order.extra
        if extra is not None and extra.client_order_id is not None:  # the templates say None
            data["client_order_id"] = extra.client_order_id
        data["trade_id"] = trade_id
        pdiv = self._price_div  # conversions inlined: a call each costs more in pure Python
        qdiv = self._qty_div
        price = order.price
        if price is not None:
            if price == trade.price:  # a maker's price always is
                data["price"] = fill_price
            else:
                data["price"] = price / pdiv if pdiv else self._price_grid.to_output(price)
        lots = order.quantity
        fill_lots = trade.quantity
        filled_lots = order.filled
        quantity = lots / qdiv if qdiv else self._qty_out(lots)
        data["quantity"] = quantity
        data["fill_price"] = fill_price
        if fill_lots == lots:
            fill_quantity = quantity
        else:
            fill_quantity = fill_lots / qdiv if qdiv else self._qty_out(fill_lots)
        data["fill_quantity"] = fill_quantity
        if filled_lots == lots:
            data["filled_quantity"] = quantity
        elif filled_lots == fill_lots:
            data["filled_quantity"] = fill_quantity
        else:
            data["filled_quantity"] = filled_lots / qdiv if qdiv else self._qty_out(filled_lots)
        open_lots = order.open
        if not open_lots:
            remaining = self._zero_qty_out
        else:
            remaining = open_lots / qdiv if qdiv else self._qty_out(open_lots)
        data["remaining_quantity"] = remaining
        if order.visible == open_lots:
            data["visible_quantity"] = remaining
        else:
            data["visible_quantity"] = order.visible / qdiv if qdiv else self._qty_out(order.visible)
        data["priority"] = order.rank
        if self._has_fees:  # otherwise the template holds the zero fee
            data["fee"] = fee
        if order.user_id is not None:
            data["user_id"] = order.user_id
        if order.order_type is not LIMIT:
            data["order_type"] = order.order_type._value_
        if open_lots:  # the template says "filled"
            data["status"] = "partially_filled"
        data["timestamp"] = stamp
        data["sequence"] = sequence
        return data

    def _level_dict(self, level: PriceLevel, now: float) -> dict[str, Any]:
        """A price level event's data: symbol, timestamp, sequence, side, price, quantity, order_count."""
        payload = level.templates.payload
        data = (self._level_payload(level) if payload is None else payload).copy()
        data["timestamp"] = now if _INTERPRETED else self._stamp_of(now)
        data["sequence"] = self._sequence
        qdiv = self._qty_div
        data["quantity"] = level.total / qdiv if qdiv else self._qty_grid.to_output(level.total)
        data["order_count"] = level.count
        return data

    # ------------------------------------------------------------------ self-check

    def check_invariants(self) -> None:
        """Raise AssertionError if the book's internal state is inconsistent (for tests and debugging).

        Checks: the book is not crossed; every level's total, reserve and count equal the sums over its
        live orders; no live order has a non-positive open quantity; the price indexes match the level
        maps; every live order is indexed by its id exactly once.
        """
        with self._lock:
            bid, ask = self._bid_prices.max(), self._ask_prices.min()
            assert bid is None or ask is None or bid < ask, f"book crossed: bid {bid} >= ask {ask}"
            seen: set[str] = set()
            kept = 0
            for side, levels, index in (
                (BUY, self._bid_levels, self._bid_prices),
                (SELL, self._ask_levels, self._ask_prices),
            ):
                index.check_invariants()
                live_prices = sorted(price for price, level in levels.items() if level.count)
                assert live_prices == list(index.ascending()), "price index out of sync"
                for price, level in levels.items():
                    if not level.count:  # an emptied level kept for its price
                        assert not level.orders and not level.head
                        assert not level.total and not level.reserve and not level.dead
                        assert price not in index and level.price == price and level.side is side
                        kept += 1
                        continue
                    live = level.live_orders()
                    assert level.price == price and level.side is side
                    assert live, f"empty level kept at {price}"
                    assert level.count == len(live), "level count mismatch"
                    assert level.total == sum(o.visible for o in live), "level total mismatch"
                    assert level.reserve == sum(o.open - o.visible for o in live), "level reserve mismatch"
                    queued = len(level.orders) - level.head
                    assert level.dead == queued - len(live), "dead entry count mismatch"
                    assert level.head < 32 or level.head <= queued, "spent entries kept"
                    ranks = [o.rank for o in live]
                    assert ranks == sorted(ranks), "queue not in time priority"
                    for o in live:
                        assert o.open > 0 and o.visible > 0, f"non-positive order resting: {o!r}"
                        assert o.visible <= o.open and o.filled + o.open == o.quantity
                        assert o.price == price and o.side is side
                        assert self._orders.get(o.order_id) is o, "resting order not indexed"
                        assert o.order_id not in seen
                        seen.add(o.order_id)
            assert kept == self._kept_empty, "kept empty level count out of date"
            stops = [o for o in self._orders.values() if o.pending]
            assert len(stops) == self._stop_count, "stop count mismatch"
            assert len(seen) + len(stops) == len(self._orders), "orders index holds dead orders"


def _hashed_table() -> dict[str, Order]:
    """An empty dict for the order index whose table stores each entry's hash beside its key.

    CPython (3.11+) keeps a dict whose keys are all ``str`` in a compact table that stores no
    hashes: a probe that meets another key reads that key's string object to get its hash (cached
    in the string). In a book of many orders those strings are spread over the heap, so a probe
    that collides costs a cache miss; ``_orders`` is probed by every add (is the id free?), cancel
    and removal. Entering one key of another type once makes the table a general one, which keeps
    the hash in the entry (24 bytes instead of 16), so a collision is settled without touching the
    other key. The key is deleted at once and the table stays general as it grows; contents,
    order and every operation are those of any dict. Other interpreters just get an empty dict.
    """
    table: dict[object, object] = {}
    table[0] = None
    del table[0]
    return cast(dict[str, Order], table)


#: The classes whose instance dicts hold payload templates, by their tuple of keys (``_shared_keys``).
_KEY_HOLDERS: dict[tuple[str, ...], Any] = {}
#: The most room for new keys a class's shared key table starts with (CPython 3.11: 30).
_SHARED_KEYS_ROOM: Final = 30


def _shared_keys(template: dict[str, Any]) -> dict[str, Any]:
    """An equal dict (same keys, order and values) whose copies share one table of keys.

    CPython keeps the keys of an instance's ``__dict__`` in a table shared by the instances of its
    class (a "split" dict), and ``dict.copy()`` of such a dict shares that table too: copying it only
    copies the values, and freeing a copy frees no keys. A payload is a copy of a template, so this
    spares about 400 instructions per event (docs/performance.md, session 9). A copy is an ordinary
    ``dict``; setting a key the template lacks, or deleting one, turns it into a combined dict, with
    the same result. Where the interpreter cannot share the keys (more than 30 of them), the
    attribute dict is combined and simply costs what a copy of ``template`` costs.
    """
    keys = tuple(template)
    cls = _KEY_HOLDERS.get(keys)
    if cls is None:  # one class per key tuple: its instances' dicts share one table of keys
        cls = _KEY_HOLDERS[keys] = type("PayloadKeys", (), {"__module__": __name__})
    holder = cls()
    for key, value in template.items():
        setattr(holder, key, value)
    # A copy's values array has a slot per key plus the table's spare room for new attributes, which
    # starts at 30 and shrinks by one with every instance made (CPython 3.11). With the keys all
    # entered, throwaway instances shrink it to one slot: a copy of a 7-key level template then
    # copies and frees 8 slots, not 30, and costs less than copying an ordinary dict (~170
    # instructions per event less; docs/performance.md, session 12). Values, keys and order are
    # unchanged; other versions of CPython ignore this.
    for _ in range(_SHARED_KEYS_ROOM):
        cls()
    shared: dict[str, Any] = holder.__dict__
    return shared


def _trade_of(row: _TradeRow) -> Trade:
    """The ``Trade`` a history row stands for (the fields of ``_TRADE_ROW_FIELDS``, in order; the
    taker's side as ``taker is buyer`` or, in a heard trade's row, as its ``Side``)."""
    trade: Trade = _new_object(Trade)
    (
        trade.number,
        trade.price,
        trade.quantity,
        trade.maker_order_id,
        trade.maker_user_id,
        trade.taker_order_id,
        trade.taker_user_id,
        buy,
        trade.timestamp,
        trade.sequence,
    ) = row
    trade.taker_side = buy if type(buy) is not bool else BUY if buy else SELL
    return trade


def _ratio(value: Decimal) -> tuple[int, int]:
    """``(num, den)`` with ``value == num / den`` exactly and ``den`` a power of ten."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int), "fee units are finite"
    if exponent >= 0:
        return int(value), 1
    return int(value.scaleb(-exponent, _EXACT)), 10**-exponent


def _name(member: Enum) -> str:
    """The string value of one of our ``str`` enums, without Enum's slow ``value`` descriptor."""
    value: str = member._value_
    return value


def _checked_id(order_id: object) -> str:
    if not isinstance(order_id, str):
        raise InvalidOrderError(f"order_id must be a string, not {type(order_id).__name__}")
    return order_id


def _check_expiry(value: object, now: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOrderError(f"expiry_time must be a number of seconds, not {type(value).__name__}")
    expiry = float(value)
    if expiry != expiry or expiry in (float("inf"), float("-inf")):
        raise InvalidOrderError("expiry_time must be finite")
    if expiry <= now:
        raise InvalidOrderError(f"expiry_time {value!r} is not in the future (now {now!r})")
    return expiry


def _report_handler_failure(handler: EventHandler, event_type: EventType, exc: Exception) -> None:
    _LOG.error("event handler %r failed on %s: %s", handler, event_type.name, exc, exc_info=exc)
