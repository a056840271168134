"""manticore_matching: the exchange service core - many markets, risk -> book, a command journal.

See docs/architecture.md for how durability, replay and stream publication fit together.
"""

from .config import (
    DEFAULT_MARKETS,
    DEFAULT_RISK_LIMITS,
    ConfigError,
    MarketConfig,
    load_markets,
    load_risk_limits,
)
from .demand import Demand
from .errors import (
    ExchangeError,
    InvalidCommand,
    MarketExists,
    OrderNotFound,
    OrderRejected,
    ServiceUnavailable,
    UnknownMarket,
)
from .exchange import Exchange, Receipt
from .journal import CommandLog, Journal, JournalClosed, JournalCorrupt
from .lock import DataDirectoryLock, DataDirectoryLocked

__all__ = [
    "DEFAULT_MARKETS",
    "DEFAULT_RISK_LIMITS",
    "ConfigError",
    "DataDirectoryLock",
    "DataDirectoryLocked",
    "Demand",
    "Exchange",
    "ExchangeError",
    "InvalidCommand",
    "CommandLog",
    "Journal",
    "JournalClosed",
    "JournalCorrupt",
    "MarketConfig",
    "MarketExists",
    "OrderNotFound",
    "OrderRejected",
    "Receipt",
    "ServiceUnavailable",
    "UnknownMarket",
    "load_markets",
    "load_risk_limits",
]
