"""RiskManager: pre-trade checks and a ledger of available and held funds settled from book events.

See docs/risk.md for the rules. In one paragraph: every user has, per asset, an ``available`` and a
``held`` amount. An order about to enter a book passes :meth:`RiskManager.check_and_reserve`, which
checks it and, if approved, moves the funds it may need from available to held (buys hold quote, sells
base) in the same pass (:meth:`RiskManager.check_order` then :meth:`RiskManager.reserve` do the same in
two calls). The book's events, delivered to :meth:`RiskManager.on_event`, settle every trade from
those holds, return surpluses, and release what is left when an order ends. Money is conserved
exactly: for every asset, the sum over users of available + held plus the fees collected always equals
deposits minus withdrawals.

Not thread-safe: call it from one thread, or under the lock that serialises your order entry (its
``check_order`` reads books, and books deliver events to it under their own locks).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Final

from manticore_orderbook import EventType, OrderBook, OrderType, SelfTradePrevention, TimeInForce, rules

from .amounts import ZERO, amount_str, mul, parse_amount
from .checks import PreTradeChecks, check_grid, check_now, check_user_id
from .decisions import Decision
from .errors import InsufficientFunds
from .holds import hold_asset, market_sweep, new_order_hold
from .ledger import Ledger, UserId
from .limits import RiskLimits
from .markets import Market
from .order_spec import OrderSpec, parse_order
from .rate_limit import RateLimiter
from .settlement import Settlement
from .state import build_state, export_state
from .tracking import OrderRegistry, TrackedOrder, required_hold
from .units import add_units, from_units, read_units, same_amount

__all__ = ["Number", "RiskManager"]

#: A price or quantity argument: Decimal, int, str or float (read as the decimal it prints as). The
#: public methods are typed ``... | object`` where they answer a wrong type with a decision or a
#: ``ValueError`` rather than a ``TypeError`` (the mypyc build checks declared argument types).
Number = Decimal | int | str | float | object

#: The fast path's vocabulary (check_and_reserve): exact spellings only ("buy", "sell", "BUY", "SELL" and
#: these); anything else (other cases, spaces, the book's enums) takes the general path, which reads
#: every spelling.
#: Time in force -> whether a LIMIT order with it can rest (the book's rule; None is GTC). GTD takes the
#: general path.
_TIF_RESTS: Final[dict[str | None, bool]] = {None: rules.may_rest(OrderType.LIMIT, TimeInForce.GTC, True)}
for _tif in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK):
    for _spelling in (_tif.value.lower(), _tif.value.upper()):
        _TIF_RESTS[_spelling] = rules.may_rest(OrderType.LIMIT, _tif, True)
#: Whether a GTC (or no time in force) LIMIT order can rest: the fast path's common case.
_GTC_RESTS: Final = rules.may_rest(OrderType.LIMIT, TimeInForce.GTC, True)
#: Read from a C static in the compiled build (an imported name is a module-dict lookup per use).
_DECIMAL: Final = Decimal
_APPROVED: Final[Decision] = {"approved": True, "reason": "", "code": ""}
_STP_WORDS: Final = frozenset(mode.value for mode in SelfTradePrevention)
#: How many event strings :meth:`RiskManager._units` remembers (per market and kind) before it starts again.
_PARSED_MAX: Final = 4096
_TRADE_EXECUTED: Final = EventType.TRADE_EXECUTED
_ORDER_ADDED: Final = EventType.ORDER_ADDED
#: Event types the manager does not need; on_event returns at once (the general dispatch would too).
_ORDER_FILLED: Final = EventType.ORDER_FILLED
_LEVEL_ADDED: Final = EventType.PRICE_LEVEL_ADDED
_LEVEL_CHANGED: Final = EventType.PRICE_LEVEL_CHANGED
_LEVEL_REMOVED: Final = EventType.PRICE_LEVEL_REMOVED


class RiskManager:
    """Pre-trade risk checks and the funds ledger of an exchange (see the module docstring).

    Args:
        limits: the limits of :meth:`check_order` / :meth:`check_modify` (default: none).
    """

    __slots__ = (
        "_accounts",
        "_by_id",
        "_by_user",
        "_checks",
        "_last_market",
        "_ledger",
        "_limiter",
        "_limits",
        "_markets",
        "_max_open",
        "_registry",
        "_settlement",
    )

    #: The event types :meth:`on_event` acts on. ``subscribe_all`` is the simple wiring; subscribing to
    #: these only (``for t in RiskManager.EVENT_TYPES: manager.subscribe(t, risk.on_event)``) spares
    #: the book building payloads nobody else reads (ORDER_FILLED, the price level events).
    EVENT_TYPES: ClassVar[tuple[EventType, ...]] = (
        EventType.ORDER_ADDED,
        EventType.TRADE_EXECUTED,
        EventType.ORDER_MODIFIED,
        EventType.ORDER_TRIGGERED,
        EventType.ORDER_CANCELLED,
        EventType.ORDER_EXPIRED,
        EventType.BOOK_CLEARED,
    )

    def __init__(self, limits: RiskLimits | object | None = None) -> None:
        if limits is None:
            limits = RiskLimits()
        if not isinstance(limits, RiskLimits):
            raise ValueError(f"limits must be RiskLimits, not {type(limits).__name__}")
        self._limits = limits
        self._max_open = limits.max_open_orders  # read per order: a native attribute, not RiskLimits'
        self._markets: dict[str, Market] = {}
        # The market of the last symbol looked up on a hot path (markets are never removed, so it stays
        # right): one string comparison instead of a dict look-up while orders come for one market.
        self._last_market: Market | None = None
        self._ledger = Ledger()
        self._registry = OrderRegistry()
        self._limiter: RateLimiter | None = None
        if limits.rate_limit_orders is not None and limits.rate_limit_window is not None:
            self._limiter = RateLimiter(limits.rate_limit_orders, limits.rate_limit_window)
        self._checks = PreTradeChecks(self._markets, self._registry, self._ledger, limits, self._limiter)
        self._settlement = Settlement(self._markets, self._registry, self._ledger)
        # The ledger's and the registry's tables, read on every order (they stay the same objects).
        self._accounts = self._ledger.accounts()
        self._by_id = self._registry.by_id
        self._by_user = self._registry.by_user

    @property
    def limits(self) -> RiskLimits:
        """The manager's limits (fixed at construction)."""
        return self._limits

    # ------------------------------------------------------------------ markets

    def register_market(
        self,
        symbol: str | object,
        base_asset: str | object,
        quote_asset: str | object,
        book: OrderBook | object,
        limits: RiskLimits | object | None = None,
    ) -> None:
        """Make a market known: ``symbol`` (the book's), its base and quote assets and its book.

        The book must give exact numbers (``number_format="str"`` or ``"decimal"``); its fee rates are
        read now (``book.fee_rates``). ``limits``, if given, replace the
        manager's per-order limits (quantity, notional, price band) for this market; the per-user limits
        (open orders, rate) are always the manager's. Subscribe :meth:`on_event` to the book's event
        manager (``book.event_manager.subscribe_all(risk.on_event)``), once per manager. Raises
        ``ValueError`` for a symbol already registered or an unusable market (see
        :class:`~manticore_risk.markets.Market`).
        """
        if isinstance(symbol, str) and symbol in self._markets:
            raise ValueError(f"market {symbol!r} is already registered")
        market = Market(symbol, base_asset, quote_asset, book, limits)
        if market.symbol in self._markets:
            raise ValueError(f"market {symbol!r} is already registered")
        market.use_limits(self._limits)
        self._markets[market.symbol] = market

    # ------------------------------------------------------------------ money in and out

    def deposit(
        self, user_id: UserId | object, asset: str | object, amount: Decimal | str | int | object
    ) -> None:
        """Add ``amount`` (> 0; Decimal, int or str, not float) of ``asset`` to the user's available
        balance. Raises ``ValueError`` (nothing changed) for a bad amount, asset or user id."""
        user = check_user_id(user_id)
        self._ledger.deposit(user, _check_asset(asset), parse_amount(amount))

    def withdraw(
        self, user_id: UserId | object, asset: str | object, amount: Decimal | str | int | object
    ) -> None:
        """Take ``amount`` (> 0) of ``asset`` out of the user's available balance. Raises
        :class:`InsufficientFunds` when less is available and ``ValueError`` for a bad argument; nothing
        is changed then."""
        user = check_user_id(user_id)
        self._ledger.withdraw(user, _check_asset(asset), parse_amount(amount))

    # ------------------------------------------------------------------ checks

    def check_order(
        self,
        *,
        user_id: UserId | object,
        symbol: str | object,
        side: str | object,
        order_type: str | object,
        price: Number | None,
        quantity: Number,
        stop_price: Number | None = None,
        now: float | object,
        time_in_force: str | object | None = None,
        self_trade_prevention: str | object | None = None,
    ) -> Decision:
        """Decide whether an order may be sent: ``{"approved", "reason", "code"}``. Never raises.

        ``side``, ``order_type``, ``time_in_force`` and ``self_trade_prevention`` are strings in any
        case or the book's enums; prices and quantity Decimal, int, str (or float, read as it prints);
        ``now`` the caller's clock in seconds (the rate limiter's only time source). ``time_in_force``
        (default GTC) exempts IOC/FOK orders from ``max_open_orders``; ``self_trade_prevention``
        (default: the book's) tells a market buy's bound whether the user's own orders may be skipped.
        Pass the same ``now`` to :meth:`reserve` and use it as the book's clock for the command.

        Rejection codes: see :data:`manticore_risk.CODES` and docs/risk.md. Nothing changes except that
        an approval is counted by the rate limiter.
        """
        return self._checks.admit(
            user_id,
            symbol,
            side,
            order_type,
            price,
            quantity,
            stop_price,
            now,
            time_in_force,
            self_trade_prevention,
        )[0]

    def check_modify(
        self,
        order_id: object,
        new_price: Number | None = None,
        new_quantity: Number | None = None,
        *,
        now: float | object,
    ) -> Decision:
        """Decide whether a live order may be modified (same shape as :meth:`check_order`, never raises).

        ``new_quantity`` is the new total quantity, as in ``OrderBook.modify_order``. A larger hold (a
        higher buy price, a larger quantity) needs the difference available; the quantity, notional and
        price-band limits apply to a modify that changes the price or grows the quantity; the rate
        limit applies to every modify. Code ``unknown_order`` for an order that is not live. The hold
        itself changes when the book publishes ORDER_MODIFIED.
        """
        return self._checks.check_modify(order_id, new_price, new_quantity, now)

    # ------------------------------------------------------------------ holds

    def check_and_reserve(
        self,
        order_id: str | object,
        *,
        user_id: UserId | object,
        symbol: str | object,
        side: str | object,
        order_type: str | object,
        price: Number | None,
        quantity: Number,
        stop_price: Number | None = None,
        now: float | object,
        time_in_force: str | object | None = None,
        self_trade_prevention: str | object | None = None,
    ) -> Decision:
        """:meth:`check_order` and, when it approves, :meth:`reserve` in one pass (the order is parsed
        and, for a market order, its sweep bounded once): returns the decision; an approved order's
        funds are held under ``order_id``. Use ``now`` as the book's clock for the command.

        Raises ``ValueError`` (nothing changed) for an ``order_id`` that is empty, not a string or
        already tracked; everything else about the order is reported in the decision, as by
        :meth:`check_order`. A rejection changes nothing; an approval is counted by the rate limiter.
        """
        return self.check_and_reserve_positional(
            order_id,
            user_id,
            symbol,
            side,
            order_type,
            price,
            quantity,
            stop_price,
            now,
            time_in_force,
            self_trade_prevention,
        )

    def check_and_reserve_positional(
        self,
        order_id: str | object,
        user_id: UserId | object,
        symbol: str | object,
        side: str | object,
        order_type: str | object,
        price: Number | None,
        quantity: Number,
        stop_price: Number | None,
        now: float | object,
        time_in_force: str | object | None,
        self_trade_prevention: str | object | None,
    ) -> Decision:
        """:meth:`check_and_reserve` with every argument given by position, in this order: the same
        decision, hold and errors. The exchange's entry (``manticore_matching.apply``): a compiled
        method called with eleven keywords matches each keyword's name per call (~900-2,000
        instructions per order); positions cost none of that."""
        # The fast path: a plain limit order that passes every check (the exchange's common case).
        # It decides exactly as the general path below and holds the same amount; anything it does not
        # cover, and every rejection, goes to the general path, before which nothing has changed.
        market = self._last_market
        if type(symbol) is str:
            name: str = symbol
            if market is None or name != market.symbol:
                market = self._markets.get(name)
                if market is not None:
                    self._last_market = market
        else:
            market = None
        if (
            market is not None
            and stop_price is None
            and (type(price) is _DECIMAL or type(price) is str)
            and (type(quantity) is _DECIMAL or type(quantity) is str)
            and type(user_id) is str
            and type(now) is float
            and type(order_id) is str
            and type(order_type) is str
            and (order_type == "limit" or order_type == "LIMIT")
            and type(side) is str
            and (time_in_force is None or type(time_in_force) is str)
            and (
                self_trade_prevention is None
                or (type(self_trade_prevention) is str and self_trade_prevention in _STP_WORDS)
            )
        ):
            # The vocabularies by string comparison (the common spellings first), not dict look-ups.
            word: str = side
            is_buy: bool | None = None
            if word == "buy" or word == "BUY":
                is_buy = True
            elif word == "sell" or word == "SELL":
                is_buy = False
            if time_in_force is None or time_in_force == "GTC":
                rests: bool | None = _GTC_RESTS
            else:
                rests = _TIF_RESTS.get(time_in_force)
            if (
                is_buy is not None
                and rests is not None
                and order_id
                and now - now == 0.0  # finite: inf - inf and nan - nan are nan
            ):
                try:
                    held = self._fast_limit(order_id, user_id, market, is_buy, rests, price, quantity, now)
                except ArithmeticError:
                    held = False  # an amount beyond the exact context: the general path reports it
                if held:
                    return _APPROVED.copy()
        new_id = self._check_new_id(order_id)
        decision, admission = self._checks.admit(
            user_id,
            symbol,
            side,
            order_type,
            price,
            quantity,
            stop_price,
            now,
            time_in_force,
            self_trade_prevention,
        )
        if admission is not None:
            self._hold(new_id, admission.user, admission.market, admission.spec, admission.need)
        return decision

    def _fast_limit(
        self,
        order_id: str,
        user: str,
        market: Market,
        is_buy: bool,
        rests: bool,
        price: Decimal | str,
        quantity: Decimal | str,
        now: float,
    ) -> bool:
        """Approve and hold a LIMIT order the way :meth:`check_and_reserve`'s general path would, and
        return True; or return False, having changed nothing, whenever any check might fail (the
        general path then decides and words the rejection). The checks are the general path's for a
        limit order: positive finite numbers on the grid, the quantity, price band and notional limits,
        max open orders (orders that can rest), the available balance and the rate limit (last: it is
        the only check that records something).

        Price and quantity become integer units of the market: ``str`` of the Decimal read by
        :func:`~.units.read_units` (exact; a whole number of ticks and lots is the grid check), or,
        for what that does not read (an exponent, more places than the units, NaN, an infinity), the
        grid divisions, exact in any context (a NaN or an infinity leaves a non-zero remainder or
        raises: the general path then reports it). Everything after is integer arithmetic, the hold
        included (``price x quantity x margin`` in quote units)."""
        # Price and quantity in the market's units: a plain decimal string (the exchange's record gives
        # its strings; ``str`` of a Decimal is exact) parses in one native pass (read_units). Anything
        # else of a Decimal (an exponent, more places than the units, NaN) takes the Decimal division,
        # exact in any context; anything else of a string, the general path (it reads every spelling).
        price_units, price_read = read_units(price if type(price) is str else str(price), market.price_exp)
        quantity_units, quantity_read = read_units(
            quantity if type(quantity) is str else str(quantity), market.quantity_exp
        )
        if price_read and quantity_read:
            if price_units % market.tick_units or quantity_units % market.lot_units:
                return False  # off the grid
        elif isinstance(price, Decimal) and isinstance(quantity, Decimal):
            ticks, rest = divmod(price, market.tick_size)
            if rest:
                return False
            lots, rest = divmod(quantity, market.lot_size)
            if rest:
                return False
            price_units = int(ticks) * market.tick_units
            quantity_units = int(lots) * market.lot_units
        else:
            return False
        if price_units <= 0 or quantity_units <= 0:
            return False
        cap = market.max_quantity
        if cap is not None and from_units(quantity_units, market.quantity_exp) > cap:
            return False
        band = market.price_band
        if band is not None:
            last = market.book.last_trade_ticks
            banded = True
            if last is not None:
                market.band_units(band, last)
            else:
                reference = market.reference()  # the mid price, or None for an empty book: no band
                banded = reference is not None
                if reference is not None:
                    market.band(band, reference)
            if banded and (price_units < market.band_low_units or price_units > market.band_high_units):
                return False
        cap = market.max_notional
        if cap is not None:
            notional = mul(
                from_units(price_units, market.price_exp), from_units(quantity_units, market.quantity_exp)
            )
            if notional > cap:
                return False
        mine = self._by_user.get(user)
        if rests and mine is not None:
            max_open = self._max_open
            if max_open is not None and len(mine) >= max_open:
                return False
        if is_buy:
            # Small factors first: mypyc multiplies natively only while both factors are below 2**30.
            need = price_units * (quantity_units * market.hold_factor)
            asset = market.quote
            exp = market.quote_exp
        else:
            need = quantity_units
            asset = market.base
            exp = market.quantity_exp
        assets = self._accounts.get(user)
        if assets is None:
            return False
        balance = assets.get(asset)
        if balance is None:
            return False
        # The balance may count in finer units than the market (Balance.scale; its call only then).
        scale = 1 if balance.exp == exp else balance.scale(exp)
        held = need if scale == 1 else need * scale  # in the balance's units
        if not balance.covers(held):
            return False
        # Every check but the rate limit passed: track the order (as _hold does; the quantity's Decimal is
        # made from its units if ever read). One look-up tests the id and inserts it: an id already
        # tracked leaves the table as it was and goes to the general path (its ValueError).
        order = TrackedOrder(
            order_id,
            market,
            user,
            is_buy,
            "limit",
            None,
            None,
            None,
            asset,
            market.margin,
            price_units,
            quantity_units,
        )
        by_id = self._by_id
        if by_id.setdefault(order_id, order) is not order:
            return False
        limiter = self._limiter
        if limiter is not None and not limiter.take(user, now):
            del by_id[order_id]
            return False
        # Approved (and counted by the rate limiter): hold the funds.
        order.hold_units = need
        order.balance = balance
        # What fills pay the order in (the other asset): linked now, one dict read, rather than on its
        # first fill by Ledger.balance (two; it creates the balance when missing: None stays lazy).
        order.proceeds = assets.get(market.base if is_buy else market.quote)
        balance.take_available(held)
        balance.held_units += held
        # The rest of OrderRegistry.add, with the user's orders already looked up (no expiry: not GTD).
        self._registry.placed = order
        if mine is None:
            self._by_user[user] = {order_id: order}
        else:
            mine[order_id] = order
        return True

    def reserve(
        self,
        order_id: str | object,
        *,
        user_id: UserId | object,
        symbol: str | object,
        side: str | object,
        order_type: str | object,
        price: Number | None,
        quantity: Number,
        stop_price: Number | None = None,
        time_in_force: str | object | None = None,
        self_trade_prevention: str | object | None = None,
        now: float | object | None = None,
    ) -> Decimal:
        """Hold the funds of an order about to be sent to the book; return the amount held (quote for a
        buy, base for a sell).

        Applies no limits (it also serves to replay a journal of approved commands); call it after an
        approved :meth:`check_order` with the same arguments. A market buy's hold is its sweep bound
        computed from the book now (pass ``now`` as to ``check_order`` so that orders about to expire
        are left out). Raises ``ValueError`` for invalid arguments, an unknown market, an order type
        that cannot be held for, or an ``order_id`` already tracked; :class:`InsufficientFunds` when the
        hold exceeds the available balance (impossible right after an approval). Nothing is changed
        when it raises.
        """
        new_id = self._check_new_id(order_id)
        user = check_user_id(user_id)
        market = self._markets.get(symbol) if isinstance(symbol, str) else None
        if market is None:
            raise ValueError(f"there is no market {symbol!r}")
        seconds = None if now is None else check_now(now)
        spec = parse_order(
            side, order_type, price, quantity, stop_price, time_in_force, self_trade_prevention
        )
        check_grid(market, spec)
        swept = None
        if spec.order_type == "market" and spec.is_buy:
            swept = market_sweep(self._registry, market, user, spec, seconds)
        return self._hold(new_id, user, market, spec, new_order_hold(market, spec, swept))

    def _check_new_id(self, order_id: object) -> str:
        if not isinstance(order_id, str) or not order_id:
            raise ValueError("order_id must be a non-empty string")
        if order_id in self._registry.by_id:
            raise ValueError(f"order {order_id!r} already has a hold")
        return order_id

    def _hold(self, order_id: str, user: UserId, market: Market, spec: OrderSpec, hold: Decimal) -> Decimal:
        """Hold ``hold`` for a new order and track it; InsufficientFunds (nothing changed) if the user's
        available balance is smaller."""
        asset = hold_asset(market, spec.is_buy)
        available = self._ledger.available(user, asset)
        if hold > available:
            raise InsufficientFunds(
                f"order {order_id!r} needs {amount_str(hold)} {asset} held, user {user!r} has "
                f"{amount_str(available)} available"
            )
        order = TrackedOrder(
            order_id,
            market,
            user,
            spec.is_buy,
            spec.order_type,
            spec.price,
            spec.stop_price,
            spec.quantity,
            asset,
            market.margin,
        )
        order.hold = hold
        self._ledger.hold(user, asset, hold)
        self._registry.add(order)
        return hold

    def release_unplaced(self, order_id: str | object) -> bool:
        """Give back the hold of an order the book did not take (``add_order`` raised) and forget it.

        Returns False, changing nothing, when the order is not tracked or the book has already
        announced it (its ORDER_ADDED arrived: it is live, and its own events will release it).
        """
        order = self._registry.by_id.get(order_id) if isinstance(order_id, str) else None
        if order is None or order.seen:
            return False
        self._settlement.finish(order)
        return True

    # ------------------------------------------------------------------ events

    def on_event(self, event_type: object, data: dict[str, Any]) -> None:
        """The book event handler: ``book.event_manager.subscribe_all(risk.on_event)``.

        Settles trades and releases holds (see :mod:`manticore_risk.settlement`); ignores event types it
        does not need, books it does not know and events it has already applied. Raises
        :class:`RiskError` only after applying an event that broke the ledger's contract.
        """
        if event_type is _TRADE_EXECUTED:
            if not self._fast_trade(data):
                self._settlement.on_event(event_type, data)
        elif event_type is _ORDER_ADDED:
            # As Settlement applies it, without the dispatch: the order is in the book; note its expiry.
            symbol = data.get("symbol")
            if not isinstance(symbol, str):
                return
            name: str = symbol
            market = self._last_market
            if market is None or name != market.symbol:
                market = self._markets.get(name)
                if market is None:
                    return
                self._last_market = market
            sequence = data.get("sequence")
            if isinstance(sequence, int):
                if sequence <= market.last_sequence:
                    return
                market.last_sequence = sequence
            order_id = data.get("order_id")
            order = self._registry.placed  # the order just placed: the same id object, no look-up
            if order is None or order.order_id is not order_id:
                order = self._by_id.get(order_id) if isinstance(order_id, str) else None
            if order is None or order.symbol != name:
                return
            order.seen = True
            expiry = data.get("expiry_time")
            if expiry is not None and expiry != order.expiry:
                order.expiry = float(expiry)
                self._registry.note_expiry(order)
        elif (
            event_type is not _ORDER_FILLED
            and event_type is not _LEVEL_ADDED
            and event_type is not _LEVEL_CHANGED
            and event_type is not _LEVEL_REMOVED
        ):  # identities, not ``in`` a tuple: that compares with ``==`` (a call per member)
            self._settlement.on_event(event_type, data)

    def _fast_trade(self, data: dict[str, Any]) -> bool:
        """Settle a TRADE_EXECUTED between two tracked limit orders exactly as
        :meth:`~.settlement.Settlement._trade` does and return True; or return False, having changed
        nothing, for anything else (an unknown market or order, a market buy, a repeated event, a
        payment the holds do not cover, an amount that is not a plain decimal in the market's units, an
        order kept in finer units): the general settlement then applies it.

        For a buy: the notional plus its fee and the surplus of its hold over what its open quantity
        still needs leave the hold; the fee and the notional leave the ledger's quote of the buyer, the
        surplus returns to available. For a sell: the quantity leaves its hold. Then the base goes to
        the buyer, notional minus fee to the seller, both fees to the fee account. All in integer units
        of the market (see :class:`~.markets.Market`)."""
        symbol = data.get("symbol")
        if type(symbol) is not str:
            return False
        name: str = symbol  # typed: compared natively below
        market = self._last_market
        if market is None or name != market.symbol:
            market = self._markets.get(name)
            if market is None:
                return False
            self._last_market = market
        sequence = data.get("sequence")
        if type(sequence) is not int or sequence <= market.last_sequence:
            return False
        by_id = self._by_id
        buy_id = data.get("buy_order_id")
        sell_id = data.get("sell_order_id")
        if type(buy_id) is not str or type(sell_id) is not str:
            return False
        buy_key: str = buy_id
        sell_key: str = sell_id
        # The taker is usually the order just placed (the same id object): one look-up less.
        placed = self._registry.placed
        if placed is not None and placed.order_id is buy_key:
            buy: TrackedOrder | None = placed
            sell = by_id.get(sell_key)
        elif placed is not None and placed.order_id is sell_key:
            buy = by_id.get(buy_key)
            sell = placed
        else:
            buy = by_id.get(buy_key)
            sell = by_id.get(sell_key)
        if buy is None or sell is None or buy.symbol != name or sell.symbol != name:
            return False
        quote_exp = market.quote_exp
        quantity_exp = market.quantity_exp
        if (
            not buy.priced  # a market buy: its hold is a bound, not a formula
            or not buy.standard_margin
            or buy.price_exp != market.price_exp
            or buy.open_exp != quantity_exp
            or buy.hold_exp != quote_exp
            or sell.open_exp != quantity_exp
            or sell.hold_exp != quantity_exp
        ):
            return False
        text = data.get("price")
        if text is market.last_price_text:  # the previous trade's string (a sweep through one level)
            price = market.last_price_units
        else:
            found = self._units(market.price_cache, text, market.price_exp)
            if found is None:
                return False
            price = found
            market.last_price_text = text
            market.last_price_units = price
        # Read as (units, ok) pairs: no int object per amount in the compiled build.
        text = data.get("quantity")  # rarely the same string twice: parsed, not cached
        if type(text) is not str:
            return False
        quantity, ok = read_units(text, quantity_exp)
        if not ok:
            return False
        fee = data.get("maker_fee")
        if type(fee) is not str:
            return False
        maker_fee, ok = read_units(fee, quote_exp)
        if not ok:
            return False
        fee = data.get("taker_fee")
        if type(fee) is not str:
            return False
        taker_fee, ok = read_units(fee, quote_exp)
        if not ok:
            return False
        notional = price * (quantity * market.notional_factor)  # small factors first (native)
        maker = data.get("maker_order_id")
        buyer_makes = False
        if isinstance(maker, str):
            maker_key: str = maker
            buyer_makes = maker_key == buy_key
        if buyer_makes:
            buyer_fee, seller_fee = maker_fee, taker_fee
        else:
            buyer_fee, seller_fee = taker_fee, maker_fee
        buy_open = buy.open_units - quantity
        buy_need = buy.price_units * (buy_open * market.hold_factor)
        given = buy.hold_units - buy_need  # the payment and the surplus
        buy_release = given - (notional + buyer_fee)
        sell_open = sell.open_units - quantity
        if sell.hold_units - quantity != sell_open or buy_open < 0 or buy_release < 0 or sell_open < 0:
            return False
        ledger = self._ledger
        buyer_pays = buy.balance
        if buyer_pays is None:
            buyer_pays = buy.balance = ledger.balance(buy.user_id, buy.asset)
        buyer_gets = buy.proceeds
        if buyer_gets is None:
            buyer_gets = buy.proceeds = ledger.balance(buy.user_id, market.base)
        seller_pays = sell.balance
        if seller_pays is None:
            seller_pays = sell.balance = ledger.balance(sell.user_id, sell.asset)
        seller_gets = sell.proceeds
        if seller_gets is None:
            seller_gets = sell.proceeds = ledger.balance(sell.user_id, market.quote)
        pool = market.fee_pool  # the ledger's own pool, linked once (a call and a dict read)
        if pool is None:
            pool = market.fee_pool = ledger.fee_pool(market.quote)
        # Each balance may count in finer units than the market (another market's): scale into them
        # (Balance.scale, called only when the exponents differ: the common case is a compare).
        buyer_scale = 1 if buyer_pays.exp == quote_exp else buyer_pays.scale(quote_exp)
        buyer_gets_scale = 1 if buyer_gets.exp == quantity_exp else buyer_gets.scale(quantity_exp)
        seller_scale = 1 if seller_pays.exp == quantity_exp else seller_pays.scale(quantity_exp)
        seller_gets_scale = 1 if seller_gets.exp == quote_exp else seller_gets.scale(quote_exp)
        pool_scale = 1 if pool.exp == quote_exp else pool.scale(quote_exp)
        # Everything is known: apply it.
        market.last_sequence = sequence
        proceeds = notional - seller_fee
        fees = maker_fee + taker_fee
        base = quantity
        if buyer_scale != 1:  # (a multiplication by 1 of a large int is not native: skip it)
            given *= buyer_scale
            buy_release *= buyer_scale
        buyer_pays.held_units -= given
        buyer_pays.add_available(buy_release)
        buy.hold_units = buy_need
        buy.open_units = buy_open
        buyer_gets.add_available(base if buyer_gets_scale == 1 else base * buyer_gets_scale)
        seller_pays.held_units -= base if seller_scale == 1 else base * seller_scale
        sell.hold_units = sell_open
        sell.open_units = sell_open
        seller_gets.add_available(proceeds if seller_gets_scale == 1 else proceeds * seller_gets_scale)
        pool.add_available(fees if pool_scale == 1 else fees * pool_scale)
        registry = self._registry
        if not buy_open:
            registry.remove(buy)
        if not sell_open:
            registry.remove(sell)
        return True

    @staticmethod
    def _units(cache: dict[str, int], value: object, exp: int) -> int | None:
        """A price or quantity string of an event in units of ``10**-exp``, remembered in ``cache`` (the
        same strings come back: a level's price, an order's quantity; at most :data:`_PARSED_MAX`);
        None when it is not a plain decimal string with at most ``exp`` places."""
        if type(value) is not str:
            return None
        found = cache.get(value)
        if found is not None:
            return found
        units, ok = read_units(value, exp)
        if not ok:
            return None
        if len(cache) >= _PARSED_MAX:
            cache.clear()
        cache[value] = units
        return units

    # ------------------------------------------------------------------ queries

    def balances(self, user_id: UserId) -> dict[str, dict[str, str]]:
        """``{asset: {"available": str, "held": str}}`` for the user (exact decimal strings), in the
        order the assets first appeared; ``{}`` for an unknown user."""
        return {
            asset: {"available": amount_str(b.available), "held": amount_str(b.held)}
            for asset, b in self._ledger.accounts().get(user_id, {}).items()
        }

    def fees_collected(self) -> dict[str, Decimal]:
        """Fees collected so far per asset (net of maker rebates paid)."""
        return {asset: _plain(amount) for asset, amount in self._ledger.fees.items()}

    def total(self, asset: str) -> Decimal:
        """Sum over users of available + held of ``asset`` plus the fees collected in it; always equal to
        the deposits minus the withdrawals of ``asset``."""
        return _plain(self._ledger.total(asset))

    def open_order_count(self, user_id: UserId) -> int:
        """Number of the user's live orders with a hold (resting, or stops waiting), over all markets."""
        return len(self._registry.of_user(user_id))

    def orders(self, user_id: UserId | None = None) -> list[dict[str, Any]]:
        """The orders funds are held for (all, or the user's), oldest first: ``order_id, symbol,
        user_id, side, order_type, price, quantity, open_quantity, asset, hold`` (decimal strings)."""
        source = self._registry.by_id if user_id is None else self._registry.of_user(user_id)
        return [
            {
                "order_id": o.order_id,
                "symbol": o.symbol,
                "user_id": o.user_id,
                "side": "buy" if o.is_buy else "sell",
                "order_type": o.order_type,
                "price": None if o.price is None else amount_str(o.price),
                "quantity": amount_str(o.quantity),
                "open_quantity": amount_str(o.open),
                "asset": o.asset,
                "hold": amount_str(o.hold),
            }
            for o in source.values()
        ]

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if the ledger is inconsistent: an asset whose balances plus fees differ
        from its net deposits, a negative amount, a held balance that is not the sum of its orders'
        holds, or an order whose hold is not what its open quantity needs. For tests and monitoring."""
        ledger = self._ledger
        for asset in ledger.assets():
            total, net = ledger.total(asset), ledger.net_deposits.get(asset, ZERO)
            assert total == net, f"{asset}: balances + fees {total} != deposits - withdrawals {net}"
        holds: dict[tuple[UserId, str], tuple[int, int]] = {}
        for order in self._registry.by_id.values():
            if not order.market_buy and not self._hold_is_required(order):
                raise AssertionError(f"order {order.order_id}: hold {order.hold} != {required_hold(order)}")
            key = (order.user_id, order.asset)
            units, exp = holds.get(key, (0, 0))
            holds[key] = add_units(units, exp, order.hold_units, order.hold_exp)
        for user_id, assets in ledger.accounts().items():
            for asset, balance in assets.items():
                assert balance.avail >= 0, f"{user_id!r} {asset}: available {balance.available} < 0"
                assert balance.held_units >= 0, f"{user_id!r} {asset}: held {balance.held} < 0"
                units, exp = holds.pop((user_id, asset), (0, 0))
                assert same_amount(balance.held_units, balance.exp, units, exp), (
                    f"{user_id!r} {asset}: held {balance.held} != orders {from_units(units, exp)}"
                )
        assert not any(units for units, _ in holds.values()), f"holds without a balance: {holds}"

    def _hold_is_required(self, order: TrackedOrder) -> bool:
        """Whether ``order``'s hold is what its open quantity needs (:func:`required_hold`), in integers
        when the order counts in its market's units."""
        if not order.is_buy:
            return same_amount(order.hold_units, order.hold_exp, order.open_units, order.open_exp)
        market = self._markets.get(order.symbol)
        if (
            market is not None
            and order.priced
            and order.standard_margin
            and order.price_exp == market.price_exp
            and order.open_exp == market.quantity_exp
            and order.hold_exp == market.quote_exp
        ):
            return order.hold_units == order.price_units * order.open_units * market.hold_factor
        return order.hold == required_hold(order)

    def count_command(self, user_id: UserId, now: float) -> None:
        """Count one approved order command (a place or a modify) of ``user_id`` at ``now`` against the
        rate limit, as an approval by :meth:`check_order` / :meth:`check_modify` does. For replaying a
        journal of approved commands, whose checks do not run again; nothing without a rate limit."""
        if self._limiter is not None:
            self._limiter.record(user_id, now)

    # ------------------------------------------------------------------ state

    def export_state(self) -> dict[str, Any]:
        """The ledger, tracked orders and rate-limiter window as a JSON-serialisable dict (see
        docs/risk.md). Markets and limits are configuration and not included."""
        return export_state(self._ledger, self._registry, self._limiter)

    def restore_state(self, state: dict[str, Any] | object) -> None:
        """Replace the ledger, tracked orders and rate-limiter window with ``state`` (from
        :meth:`export_state`). The markets of its orders must be registered; the books should hold the
        same live orders (restore them from the same moment). Raises ``ValueError`` and changes nothing
        when ``state`` is malformed or inconsistent (negative amounts, holds that do not add up, money
        not conserved)."""
        ledger, registry, rate_entries = build_state(state, self._markets)
        self._ledger.replace_with(ledger)
        self._registry.replace_with(registry)
        if self._limiter is not None:
            self._limiter.load(rate_entries)
        for market in self._markets.values():
            market.last_sequence = market.book.sequence
            market.fee_pool = None  # the ledger's pools were replaced: link the new one on use


def _check_asset(asset: object) -> str:
    if not isinstance(asset, str) or not asset:
        raise ValueError(f"asset must be a non-empty string, got {asset!r}")
    return asset


def _plain(amount: Decimal) -> Decimal:
    """``amount`` without the trailing zeros of the ledger's units (``0.0500000000`` -> ``0.05``), as the
    Decimals the queries returned before the ledger counted in integer units."""
    return Decimal(amount_str(amount))
