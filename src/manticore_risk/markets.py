"""A market the risk manager knows: its book, its two assets and the numbers holds are computed from."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final

from manticore_orderbook import OrderBook

from .amounts import EXACT, ZERO, add, to_decimal
from .ledger import Balance
from .limits import RiskLimits
from .units import decimals, pow10

__all__ = ["Market"]

_EXACT_FORMATS = ("str", "decimal")
#: :attr:`Market.last_price_text` before the first trade: an object no event carries.
_NO_TEXT: Final = object()


class Market:
    """One registered market.

    ``margin`` is ``1 + max(maker_fee_rate, taker_fee_rate, 0)``: a buy holds its limit price x open
    quantity x margin in quote, enough for the notional plus the highest fee it can be charged.
    ``limits`` overrides the manager's per-order limits for this market (None: use the manager's).
    ``last_sequence`` is the sequence of the last event of this book the manager applied (an event
    delivered twice, for example through two subscriptions, is applied once).
    """

    __slots__ = (
        "_band",
        "_band_ratio",
        "_band_ref",
        "_ref_price",
        "_ref_ticks",
        "_units_band",
        "_units_ticks",
        "_units_valid",
        "band_high",
        "band_high_units",
        "band_low",
        "band_low_units",
        "base",
        "book",
        "fee_pool",
        "hold_factor",
        "last_price_text",
        "last_price_units",
        "last_sequence",
        "limits",
        "lot_size",
        "lot_units",
        "margin",
        "max_notional",
        "max_quantity",
        "notional_factor",
        "price_band",
        "price_cache",
        "price_exp",
        "quantity_exp",
        "quote",
        "quote_exp",
        "symbol",
        "tick_size",
        "tick_units",
    )

    def __init__(
        self,
        symbol: str | object,
        base: str | object,
        quote: str | object,
        book: OrderBook | object,
        limits: RiskLimits | object | None,
    ) -> None:
        """Validate and describe a market. Raises ``ValueError`` when ``symbol`` is not the book's
        symbol, the assets are empty or equal, the book does not give exact numbers
        (``number_format`` must be ``"str"`` or ``"decimal"``), or the fee rates could make the fee
        account pay out more than it takes in on a trade (``maker_fee_rate + taker_fee_rate < 0``)."""
        if not isinstance(book, OrderBook):
            raise ValueError(f"book must be an OrderBook, not {type(book).__name__}")
        if not isinstance(symbol, str) or symbol != book.symbol:
            raise ValueError(f"symbol {symbol!r} is not the book's symbol {book.symbol!r}")
        if not isinstance(base, str) or not base:
            raise ValueError(f"base_asset must be a non-empty string, got {base!r}")
        if not isinstance(quote, str) or not quote:
            raise ValueError(f"quote_asset must be a non-empty string, got {quote!r}")
        if base == quote:
            raise ValueError(f"base and quote asset must differ, both are {base!r}")
        if book.number_format not in _EXACT_FORMATS:
            raise ValueError(
                f"book {symbol!r} has number_format={book.number_format!r}; the risk manager needs exact "
                "numbers: create it with number_format='str' (or 'decimal')"
            )
        maker, taker = book.fee_rates
        if add(maker, taker) < 0:
            raise ValueError(
                f"maker_fee_rate {maker} + taker_fee_rate {taker} is negative: every trade would pay out "
                "more rebate than it collects"
            )
        if limits is not None and not isinstance(limits, RiskLimits):
            raise ValueError(f"limits must be RiskLimits or None, not {type(limits).__name__}")
        self.symbol = symbol
        self.base = base
        self.quote = quote
        self.book = book
        self.limits = limits
        #: The per-order limits in force (``limits``, or the manager's: :meth:`use_limits`), read by the
        #: fast path from the market rather than from the (interpreted) ``RiskLimits``.
        self.max_quantity: Decimal | None = None
        self.max_notional: Decimal | None = None
        self.price_band: Decimal | None = None
        if isinstance(limits, RiskLimits):
            self.use_limits(limits)
        self.margin: Decimal = add(Decimal(1), max(maker, taker, ZERO))
        self.tick_size: Decimal = book.tick_size
        self.lot_size: Decimal = book.lot_size
        self.last_sequence: int = book.sequence
        self._ref_ticks: int | None = None
        self._ref_price: Decimal = ZERO
        self._band: Decimal | None = None
        self._band_ref: Decimal | None = None
        self.band_low: Decimal = ZERO
        self.band_high: Decimal = ZERO
        # Integer units of the hot paths (see .units): prices count in 10**-price_exp (the tick's
        # places), quantities and base amounts in 10**-quantity_exp (the lot's), quote amounts in
        # 10**-quote_exp, fine enough for any price x quantity x margin or fee rate of this market.
        self.price_exp = decimals(self.tick_size)
        self.quantity_exp = decimals(self.lot_size)
        margin_exp = decimals(self.margin)
        fee_exp = max(decimals(maker), decimals(taker))
        self.quote_exp = self.price_exp + self.quantity_exp + max(margin_exp, fee_exp)
        self.tick_units = int(self.tick_size.scaleb(self.price_exp, EXACT))
        self.lot_units = int(self.lot_size.scaleb(self.quantity_exp, EXACT))
        #: price units x quantity units x notional_factor = quote units of the notional
        self.notional_factor = pow10(self.quote_exp - self.price_exp - self.quantity_exp)
        #: price units x quantity units x hold_factor = quote units a buy holds (margin included)
        self.hold_factor = int(self.margin.scaleb(margin_exp, EXACT)) * pow10(
            self.quote_exp - self.price_exp - self.quantity_exp - margin_exp
        )
        self.band_low_units = 0
        self.band_high_units = 0
        # The reference band_units() computed its bounds for (valid only while _units_valid): a native
        # int and a flag, compared without boxing on every order.
        self._units_ticks = 0
        self._units_valid = False
        self._units_band: Decimal | None = None
        self._band_ratio: tuple[int, int] = (0, 1)
        #: An event's price strings in units (they repeat: a level's price).
        self.price_cache: dict[str, int] = {}
        #: The ledger's pool of the fees collected in ``quote`` (``Ledger.fee_pool``), linked by the
        #: trade fast path on its first trade; None until then, and again after the ledger's contents
        #: are replaced (``RiskManager.restore_state``), which replaces the pools.
        self.fee_pool: Balance | None = None
        #: The last trade price string the trade fast path read, and its units: a sweep's trades at one
        #: level carry the level's one string object, so an identity test spares the cache's dict read.
        #: (Not a string until the first: no payload value is this object.)
        self.last_price_text: object = _NO_TEXT
        self.last_price_units = 0

    def use_limits(self, default: RiskLimits) -> None:
        """Take the per-order limits in force: the market's own ``limits`` if it has them, else
        ``default`` (the manager's); both are frozen, so this is done once, at registration."""
        limits = self.limits if isinstance(self.limits, RiskLimits) else default
        self.max_quantity = limits.max_order_quantity
        self.max_notional = limits.max_order_notional
        self.price_band = limits.price_band

    def reference(self) -> Decimal | None:
        """The price band's reference: the book's last trade price, else its mid price, else None.

        The same number as :func:`~.liquidity.reference_price`, read from the book's last trade in ticks
        (no string, no parse) and kept until the last trade price changes."""
        ticks = self.book.last_trade_ticks
        if ticks is None:
            mid = self.book.get_mid_price()
            return None if mid is None else to_decimal(mid)
        if ticks != self._ref_ticks:
            self._ref_price = EXACT.multiply(self.tick_size, ticks)
            self._ref_ticks = ticks
        return self._ref_price

    def band(self, band: Decimal, reference: Decimal) -> tuple[Decimal, Decimal]:
        """``(reference - band x reference, reference + band x reference)``, exact; computed once per
        reference and band (also left in :attr:`band_low` / :attr:`band_high`)."""
        if reference is not self._band_ref or band is not self._band:
            width = EXACT.multiply(reference, band)
            self.band_low = EXACT.subtract(reference, width)
            self.band_high = EXACT.add(reference, width)
            # The band in whole price units: low rounded up, high rounded down (a price is whole units).
            exp = self.price_exp
            self.band_low_units = int(self.band_low.scaleb(exp, EXACT).to_integral_value(ROUND_CEILING))
            self.band_high_units = int(self.band_high.scaleb(exp, EXACT).to_integral_value(ROUND_FLOOR))
            self._band_ref = reference
            self._band = band
            self._units_valid = False  # band_units() must recompute its integers
        return self.band_low, self.band_high

    def band_units(self, band: Decimal, ticks: int) -> None:
        """Set :attr:`band_low_units` / :attr:`band_high_units` for the reference ``ticks`` x tick size (the
        book's last trade) and ``band``: the prices in whole price units within ``band`` of the
        reference, exactly as :meth:`band` bounds them, in integers. Computed once per reference and
        band."""
        if self._units_valid and ticks == self._units_ticks and band is self._units_band:
            return
        if band is not self._units_band:
            self._band_ratio = band.as_integer_ratio()
            self._units_band = band
        numerator, denominator = self._band_ratio
        reference = ticks * self.tick_units
        width = reference * numerator // denominator  # the band's width, rounded down
        self.band_low_units = reference - width
        self.band_high_units = reference + width
        self._units_ticks = ticks
        self._units_valid = True
        self._band_ref = None  # the Decimal bounds (band()) are no longer the ones in units

    def on_price_grid(self, price: Decimal) -> bool:
        """Whether ``price`` is a whole number of ticks."""
        return not EXACT.remainder(price, self.tick_size)

    def on_lot_grid(self, quantity: Decimal) -> bool:
        """Whether ``quantity`` is a whole number of lots."""
        return not EXACT.remainder(quantity, self.lot_size)
