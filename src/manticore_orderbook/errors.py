"""The exception hierarchy of the order book.

Every exception the book raises on purpose derives from :class:`OrderBookError`. Input mistakes also
derive from :class:`ValueError` (so ``except ValueError`` keeps working for callers of the original
library) and lookups of unknown orders from :class:`KeyError`. A command that raises has changed nothing:
neither the book nor its event sequence.
"""

from __future__ import annotations

__all__ = [
    "DuplicateOrderIdError",
    "InvalidOrderError",
    "OrderBookError",
    "OrderNotFoundError",
]


class OrderBookError(Exception):
    """Base class of every error raised by :mod:`manticore_orderbook`."""


class InvalidOrderError(OrderBookError, ValueError):
    """A command was rejected because an argument is invalid (type, grid, range, combination)."""


class DuplicateOrderIdError(InvalidOrderError):
    """An order id was given that is already used by a live order of the same book."""


class OrderNotFoundError(OrderBookError, KeyError):
    """An order id does not name a live order of the book."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "order not found"
