"""Errors of the exchange service. Each has a machine-readable ``code`` and the HTTP status it maps to.

A command that raises one of these has changed nothing and was not journaled.
"""

from __future__ import annotations

__all__ = [
    "ExchangeError",
    "InvalidCommand",
    "MarketExists",
    "OrderNotFound",
    "OrderRejected",
    "ServiceUnavailable",
    "UnknownMarket",
]


class ExchangeError(Exception):
    """Base class. ``code`` names the reason for machines, ``status`` is the HTTP status to answer."""

    code = "error"
    status = 400

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidCommand(ExchangeError, ValueError):
    """An argument is invalid (type, grid, range, combination)."""

    code = "invalid"


class UnknownMarket(ExchangeError, LookupError):
    """No market has this symbol."""

    code = "unknown_market"
    status = 404


class MarketExists(ExchangeError):
    """A market with this symbol already exists."""

    code = "market_exists"
    status = 409


class OrderNotFound(ExchangeError, LookupError):
    """No live order of this user has this id (another user's order is reported the same way)."""

    code = "order_not_found"
    status = 404


class OrderRejected(ExchangeError):
    """Risk refused the order; ``code`` is the risk check's code (e.g. ``insufficient_balance``)."""

    code = "rejected"
    status = 422


class ServiceUnavailable(ExchangeError):
    """The journal cannot make commands durable; nothing is acknowledged until it can."""

    code = "unavailable"
    status = 503
