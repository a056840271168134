"""Binance market stream names: parse ``btcusd@depth@100ms``-style names into what they ask for.

Supported names (symbols are Binance ids, lower case on the wire; any case is accepted and the canonical
name has the symbol in lower case, the rest as Binance spells it):

- ``<symbol>@depth`` / ``@depth@1000ms`` / ``@depth@100ms``: book diffs every 1000 or 100 ms.
- ``<symbol>@depth<N>`` / ``@depth<N>@100ms`` / ``@depth<N>@1000ms`` with N in 5, 10, 20: partial books.
- ``<symbol>@trade``, ``<symbol>@aggTrade``: each trade (real time).
- ``<symbol>@kline_<interval>``: the open candle, every second.
- ``<symbol>@ticker``, ``<symbol>@miniTicker``: 24 h rolling statistics, every second.
- ``<symbol>@bookTicker``: best bid and ask, real time.
- ``!ticker@arr``, ``!miniTicker@arr``: the changed tickers of every market, every second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BinanceError
from .klines import INTERVALS
from .markets import BinanceMarkets

__all__ = ["StreamSpec", "parse_stream"]

_PARTIAL = re.compile(r"^depth(5|10|20)(?:@(100|1000)ms)?$")
_DIFF = re.compile(r"^depth(?:@(100|1000)ms)?$")
_SIMPLE = frozenset({"trade", "aggTrade", "ticker", "miniTicker", "bookTicker"})
_ALL_MARKETS = frozenset({"!ticker@arr", "!miniTicker@arr"})
MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One parsed stream.

    Attributes:
        name: the canonical stream name (what LIST_SUBSCRIPTIONS answers and combined frames carry).
        kind: ``depth`` (diffs), ``partial``, ``trade``, ``aggTrade``, ``kline``, ``ticker``,
            ``miniTicker``, ``bookTicker``, ``!ticker@arr`` or ``!miniTicker@arr``.
        native: the market's ``BASE/QUOTE`` symbol ("" for the all-market streams).
        speed_ms: the update period of ``depth`` and ``partial`` streams (100 or 1000).
        levels: the number of levels of a ``partial`` stream.
        interval: the candle interval of a ``kline`` stream.
    """

    name: str
    kind: str
    native: str = ""
    speed_ms: int = 1000
    levels: int = 0
    interval: str = ""


def _invalid(name: str) -> BinanceError:
    return BinanceError(2, f"Invalid request: unknown stream {name[:MAX_NAME]!r}")


def parse_stream(name: object, markets: BinanceMarkets) -> StreamSpec:
    """The stream ``name`` asks for. Raises BinanceError (code 2) for a malformed name or unknown market."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise _invalid(str(name))
    if name in _ALL_MARKETS:
        return StreamSpec(name, name)
    symbol, at, rest = name.partition("@")
    if not at or not symbol:
        raise _invalid(name)
    try:
        native = markets.native(symbol)
    except BinanceError:
        raise _invalid(name) from None
    canonical = f"{symbol.lower()}@{rest}"
    match = _DIFF.match(rest)
    if match:
        return StreamSpec(canonical, "depth", native, int(match.group(1) or 1000))
    match = _PARTIAL.match(rest)
    if match:
        return StreamSpec(canonical, "partial", native, int(match.group(2) or 1000), int(match.group(1)))
    if rest in _SIMPLE:
        return StreamSpec(canonical, rest, native)
    if rest.startswith("kline_") and rest[6:] in INTERVALS:
        return StreamSpec(canonical, "kline", native, interval=rest[6:])
    raise _invalid(name)
