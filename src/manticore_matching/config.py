"""Market definitions: what a market is, the built-in defaults, and loading them from TOML.

A TOML file lists markets as an array of tables, and may set the risk limits in a ``[risk]`` table::

    [[markets]]
    symbol = "BTC/USD"
    base_asset = "BTC"
    quote_asset = "USD"
    tick_size = "0.01"        # strings keep decimals exact; numbers are accepted too
    lot_size = "0.00001"
    maker_fee_rate = "0.001"
    taker_fee_rate = "0.002"

    [risk]                    # every key optional; see manticore_risk.RiskLimits
    price_band = "0.10"
    max_open_orders = 500
    rate_limit_orders = 100
    rate_limit_window = 1.0
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from manticore_risk import RiskLimits

__all__ = [
    "DEFAULT_MARKETS",
    "DEFAULT_RISK_LIMITS",
    "ConfigError",
    "MarketConfig",
    "load_markets",
    "load_risk_limits",
]

_SYMBOL = re.compile(r"^[A-Z0-9]{1,16}/[A-Z0-9]{1,16}$")
_ASSET = re.compile(r"^[A-Z0-9]{1,16}$")
_MAX_FEE_RATE = Decimal("0.1")


class ConfigError(ValueError):
    """A market definition is invalid (the message names the field)."""


def _decimal(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ConfigError(f"{what} must be a decimal number")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{what} must be a decimal number, not {value!r}") from None
    if not number.is_finite():
        raise ConfigError(f"{what} must be finite")
    return number


@dataclass(frozen=True)
class MarketConfig:
    """One market: symbol ``BASE/QUOTE``, its price/quantity grid and fee rates (fractions of notional).

    Raises :class:`ConfigError` when a field is invalid: symbols are upper-case ``BASE/QUOTE``, tick and
    lot sizes positive, fee rates between -0.1 and 0.1 (a negative maker rate is a rebate; the taker rate
    must cover it).
    """

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    lot_size: Decimal
    maker_fee_rate: Decimal = Decimal(0)
    taker_fee_rate: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not _SYMBOL.match(self.symbol):
            raise ConfigError(f"symbol must look like BTC/USD, not {self.symbol!r}")
        for name in ("base_asset", "quote_asset"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _ASSET.match(value):
                raise ConfigError(f"{name} must be 1-16 upper-case letters or digits")
        if self.symbol != f"{self.base_asset}/{self.quote_asset}":
            raise ConfigError("symbol must be base_asset/quote_asset")
        for name in ("tick_size", "lot_size", "maker_fee_rate", "taker_fee_rate"):
            object.__setattr__(self, name, _decimal(getattr(self, name), name))
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ConfigError("tick_size and lot_size must be positive")
        for name in ("maker_fee_rate", "taker_fee_rate"):
            if abs(getattr(self, name)) > _MAX_FEE_RATE:
                raise ConfigError(f"{name} must be between -0.1 and 0.1")
        if self.taker_fee_rate < 0 or self.maker_fee_rate + self.taker_fee_rate < 0:
            raise ConfigError("taker_fee_rate must be >= 0 and cover any maker rebate")

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form; numbers as exact decimal strings."""
        return {
            "symbol": self.symbol,
            "base_asset": self.base_asset,
            "quote_asset": self.quote_asset,
            "tick_size": str(self.tick_size),
            "lot_size": str(self.lot_size),
            "maker_fee_rate": str(self.maker_fee_rate),
            "taker_fee_rate": str(self.taker_fee_rate),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MarketConfig:
        """Build from a mapping such as :meth:`to_dict` returns; unknown keys raise ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError("a market must be a table/object")
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ConfigError(f"unknown market fields: {', '.join(sorted(map(str, unknown)))}")
        missing = {"symbol", "base_asset", "quote_asset", "tick_size", "lot_size"} - set(data)
        if missing:
            raise ConfigError(f"missing market fields: {', '.join(sorted(missing))}")
        return cls(**dict(data))


DEFAULT_MARKETS: tuple[MarketConfig, ...] = (
    MarketConfig(
        "BTC/USD", "BTC", "USD", Decimal("0.01"), Decimal("0.00001"), Decimal("0.001"), Decimal("0.002")
    ),
    MarketConfig(
        "ETH/USD", "ETH", "USD", Decimal("0.01"), Decimal("0.0001"), Decimal("0.001"), Decimal("0.002")
    ),
    MarketConfig(
        "ETH/BTC", "ETH", "BTC", Decimal("0.00001"), Decimal("0.0001"), Decimal("0.001"), Decimal("0.002")
    ),
)


#: What the server applies when the config file sets no ``[risk]`` table: a 10% fat-finger band, 500 live
#: orders and 100 orders (or modifies) per second per user.
DEFAULT_RISK_LIMITS = RiskLimits(
    price_band=Decimal("0.10"), max_open_orders=500, rate_limit_orders=100, rate_limit_window=1.0
)


def _read(path: Path) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def load_risk_limits(path: Path) -> RiskLimits:
    """The ``[risk]`` table of a TOML file as RiskLimits (DEFAULT_RISK_LIMITS when there is none)."""
    table = _read(path).get("risk")
    if table is None:
        return DEFAULT_RISK_LIMITS
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [risk] must be a table")
    allowed = set(RiskLimits.__dataclass_fields__)
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown [risk] keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("max_order_quantity", "max_order_notional", "price_band"):
            values[key] = _decimal(value, key)
        else:
            values[key] = value
    try:
        return RiskLimits(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: [risk]: {exc}") from None


def load_markets(path: Path) -> tuple[MarketConfig, ...]:
    """Markets from a TOML file (see the module docstring). Raises ConfigError naming the problem."""
    document = _read(path)
    entries = document.get("markets")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path} must define at least one [[markets]] table")
    markets = []
    for index, entry in enumerate(entries):
        try:
            markets.append(MarketConfig.from_dict(entry))
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{path}: market {index + 1}: {exc}") from None
    symbols = [market.symbol for market in markets]
    if len(set(symbols)) != len(symbols):
        raise ConfigError(f"{path}: a symbol is defined twice")
    return tuple(markets)
