"""Errors of the exchange service. Each has a machine-readable ``code`` and the HTTP status it maps to.

A command that raises one of these has changed nothing and was not journaled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

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
    """Base class. ``code`` names the reason for machines, ``status`` is the HTTP status to answer,
    ``headers`` are extra HTTP headers for the answer (e.g. ``Retry-After``)."""

    code = "error"
    status = 400

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers (none by default)."""
        return {}


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
    """Risk refused the order; ``code`` is the risk check's code (e.g. ``insufficient_balance``).

    The status is 422, except ``rate_limited``: 429 with ``retry_after`` (seconds until the same
    request would pass the rate check) and ``rate_limit`` (approvals per window) when risk gave them.
    """

    code = "rejected"
    status = 422

    def __init__(
        self,
        message: str,
        code: str | None = None,
        *,
        retry_after: float | None = None,
        rate_limit: int | None = None,
    ) -> None:
        super().__init__(message, code)
        if self.code == "rate_limited":
            self.status = 429
        self.retry_after = retry_after
        self.rate_limit = rate_limit

    @classmethod
    def from_decision(cls, decision: Mapping[str, object]) -> OrderRejected:
        """The error for a risk rejection (a ``manticore_risk.Decision`` that is not approved)."""
        retry_after = decision.get("retry_after")
        rate_limit = decision.get("rate_limit")
        return cls(
            str(decision.get("reason") or "refused by risk"),
            str(decision.get("code") or "rejected"),
            retry_after=float(retry_after) if isinstance(retry_after, (int, float)) else None,
            rate_limit=rate_limit if isinstance(rate_limit, int) else None,
        )

    @property
    def headers(self) -> dict[str, str]:
        """``Retry-After`` (whole seconds, at least 1) and ``X-RateLimit-Limit`` /
        ``X-RateLimit-Remaining`` for a rate-limit refusal; nothing otherwise."""
        if self.code != "rate_limited":
            return {}
        wait = 1.0 if self.retry_after is None else self.retry_after
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        if self.rate_limit is not None:
            headers["X-RateLimit-Limit"] = str(self.rate_limit)
            headers["X-RateLimit-Remaining"] = "0"
        return headers


class ServiceUnavailable(ExchangeError):
    """The journal cannot make commands durable; nothing is acknowledged until it can."""

    code = "unavailable"
    status = 503
