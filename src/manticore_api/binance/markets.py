"""Binance symbols and number formats for Manticore's markets.

Binance names a market by its assets without a separator (``BTCUSD``); Manticore by ``BASE/QUOTE``
(``BTC/USD``). :class:`BinanceMarkets` maps between the two over the exchange's live market list (a market
created while the server runs is picked up on first use) and formats prices and quantities as decimal
strings with exactly the market's tick and lot decimals (``"29000.10"``, ``"0.01000"``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from manticore_matching import MarketConfig
from manticore_risk import RiskLimits

from .errors import BinanceError

__all__ = ["BinanceMarkets", "binance_symbol", "decimals"]

#: Binance's own upper bound when a market has no limit of its own (its filters always carry a number).
_NO_LIMIT = Decimal("9000000000")


class _HasMarkets(Protocol):
    @property
    def markets(self) -> dict[str, MarketConfig]: ...


def binance_symbol(native: str) -> str:
    """``"BTC/USD"`` -> ``"BTCUSD"``."""
    return native.replace("/", "")


def decimals(step: Decimal) -> int:
    """Digits after the point of a grid step: 0.01 -> 2, 0.00001 -> 5, 1 -> 0, 10 -> 0."""
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _fixed(value: Decimal | str | int, places: int) -> str:
    number = value if isinstance(value, Decimal) else Decimal(value)
    return f"{number:.{places}f}"


class BinanceMarkets:
    """The exchange's markets seen the Binance way.

    Args:
        exchange: anything with a ``markets`` property mapping ``BASE/QUOTE`` to :class:`MarketConfig`
            (the :class:`~manticore_matching.Exchange`); read again whenever a symbol is not known yet.
        limits: the per-order risk limits, for the LOT_SIZE / NOTIONAL maxima (None = no limits).
    """

    def __init__(self, exchange: _HasMarkets, limits: RiskLimits | None = None) -> None:
        self._exchange = exchange
        self._limits = limits or RiskLimits()
        self._by_binance: dict[str, MarketConfig] = {}
        self._by_native: dict[str, MarketConfig] = {}
        self._refresh()

    @property
    def limits(self) -> RiskLimits:
        """The risk limits the surface describes (exchangeInfo, filters)."""
        return self._limits

    def _refresh(self) -> None:
        markets = self._exchange.markets
        self._by_native = dict(markets)
        self._by_binance = {binance_symbol(symbol): config for symbol, config in markets.items()}

    def all(self) -> list[MarketConfig]:
        """Every market, in creation order."""
        self._refresh()
        return list(self._by_native.values())

    def config(self, native: str) -> MarketConfig:
        """The config of ``BASE/QUOTE``; BinanceError -1121 when there is none."""
        config = self._by_native.get(native)
        if config is None:
            self._refresh()
            config = self._by_native.get(native)
            if config is None:
                raise BinanceError(-1121, "Invalid symbol.")
        return config

    def native(self, symbol: object) -> str:
        """``"BTCUSD"`` (any case) -> ``"BTC/USD"``; BinanceError -1121 "Invalid symbol." when unknown."""
        if not isinstance(symbol, str) or not symbol or len(symbol) > 40:
            raise BinanceError(-1121, "Invalid symbol.")
        key = symbol.upper()
        config = self._by_binance.get(key)
        if config is None:
            self._refresh()
            config = self._by_binance.get(key)
            if config is None:
                raise BinanceError(-1121, "Invalid symbol.")
        return config.symbol

    def binance_symbol(self, native: str) -> str:
        """``"BTC/USD"`` -> ``"BTCUSD"`` (the market must exist; BinanceError -1121 otherwise)."""
        return binance_symbol(self.config(native).symbol)

    def price_decimals(self, native: str) -> int:
        """Digits after the point of the market's tick size."""
        return decimals(self.config(native).tick_size)

    def qty_decimals(self, native: str) -> int:
        """Digits after the point of the market's lot size."""
        return decimals(self.config(native).lot_size)

    def quote_decimals(self, native: str) -> int:
        """Digits of a quote amount (price x quantity): tick decimals plus lot decimals."""
        return self.price_decimals(native) + self.qty_decimals(native)

    def price(self, native: str, value: Decimal | str | int) -> str:
        """A price with exactly the tick's decimals: ``price("BTC/USD", "29000.1") == "29000.10"``."""
        return _fixed(value, self.price_decimals(native))

    def qty(self, native: str, value: Decimal | str | int) -> str:
        """A base quantity with exactly the lot's decimals: ``qty("BTC/USD", "0.01") == "0.01000"``."""
        return _fixed(value, self.qty_decimals(native))

    def quote(self, native: str, value: Decimal | str | int) -> str:
        """A quote amount (a notional or a fee in the quote asset) with :meth:`quote_decimals` digits."""
        return _fixed(value, self.quote_decimals(native))

    def filters(self, native: str) -> list[dict[str, Any]]:
        """The market's Binance filters: PRICE_FILTER from the tick, LOT_SIZE and MARKET_LOT_SIZE from the
        lot and the max order quantity, NOTIONAL from the max order notional (numbers as strings)."""
        config = self.config(native)
        tick, lot = config.tick_size, config.lot_size
        max_qty = self._limits.max_order_quantity or _NO_LIMIT
        max_notional = self._limits.max_order_notional or _NO_LIMIT
        price_max = _NO_LIMIT
        lot_filter = {
            "minQty": self.qty(native, lot),
            "maxQty": self.qty(native, max_qty),
            "stepSize": self.qty(native, lot),
        }
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": self.price(native, tick),
                "maxPrice": self.price(native, price_max),
                "tickSize": self.price(native, tick),
            },
            {"filterType": "LOT_SIZE", **lot_filter},
            {"filterType": "MARKET_LOT_SIZE", **lot_filter},
            {
                "filterType": "NOTIONAL",
                "minNotional": self.quote(native, tick * lot),
                "applyMinToMarket": False,
                "maxNotional": self.quote(native, max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ]
