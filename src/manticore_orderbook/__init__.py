"""manticore_orderbook: an exact, deterministic, fast price-time priority limit order book.

Pass your :class:`EventManager` to the book (``OrderBook(symbol, event_manager=em)``): a book created
without one publishes to its own manager, ``book.event_manager``, and your manager hears nothing.
"""

from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES

from . import book as _book
from . import rules
from .book import OrderBook
from .enums import EventType, OrderType, SelfTradePrevention, Side, TimeInForce
from .errors import DuplicateOrderIdError, InvalidOrderError, OrderBookError, OrderNotFoundError
from .events import EventHandler, EventManager
from .model import Order, PriceLevel, Trade
from .payloads import (
    BookClearedPayload,
    ErrorPayload,
    OrderCancelledPayload,
    OrderExpiredPayload,
    OrderFilledPayload,
    OrderModifiedPayload,
    OrderPayload,
    OrderTriggeredPayload,
    PriceLevelPayload,
    TradePayload,
)

__all__ = [
    "BookClearedPayload",
    "ErrorPayload",
    "OrderCancelledPayload",
    "OrderExpiredPayload",
    "OrderFilledPayload",
    "OrderModifiedPayload",
    "OrderPayload",
    "OrderTriggeredPayload",
    "PriceLevelPayload",
    "TradePayload",
    "COMPILED",
    "DuplicateOrderIdError",
    "EventHandler",
    "EventManager",
    "EventType",
    "InvalidOrderError",
    "Order",
    "OrderBook",
    "OrderBookError",
    "OrderNotFoundError",
    "OrderType",
    "PriceLevel",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
    "Trade",
    "rules",
]

__version__ = "0.1.0"

#: True when the book's modules are the mypyc-compiled extension modules, False for the pure-Python
#: source (see setup.py: ``MANTICORE_BUILD``, and docs/performance.md).
COMPILED: bool = (_book.__file__ or "").endswith(tuple(_EXTENSION_SUFFIXES))
