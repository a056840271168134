"""The answer of a pre-trade check: approved, or rejected with a machine code and a human reason."""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "CODES",
    "Decision",
    "approved",
    "rejected",
]


class _DecisionFields(TypedDict):
    approved: bool
    reason: str
    code: str


class Decision(_DecisionFields, total=False):
    """``approved``; ``reason``: "" when approved, else a sentence for the user; ``code``: "" when
    approved, else one of :data:`CODES`.

    A ``rate_limited`` rejection also carries ``retry_after`` (seconds from the check's ``now`` until
    the oldest counted approval leaves the window, so that the same request would pass the rate
    check) and ``rate_limit`` (the limit, in approvals per window)."""

    retry_after: float
    rate_limit: int


#: Every rejection code and what it means.
CODES: dict[str, str] = {
    "invalid": "malformed arguments (type, sign, NaN, off the tick/lot grid, inconsistent fields)",
    "unknown_market": "no market registered under that symbol",
    "unknown_order": "check_modify of an order that is not live",
    "unsupported_order": "an order whose cost cannot be bounded (stop-market / trailing-stop buys)",
    "max_quantity": "quantity above max_order_quantity",
    "max_notional": "notional above max_order_notional",
    "price_band": "limit price (or a market order's sweep) too far from the reference price",
    "no_liquidity": "a market order while the opposite side of the book is empty",
    "max_open_orders": "the user already has max_open_orders live orders",
    "rate_limited": "the user reached rate_limit_orders within rate_limit_window seconds",
    "insufficient_balance": "available balance below the amount the order must hold",
}


def approved() -> Decision:
    """A fresh approval."""
    return {"approved": True, "reason": "", "code": ""}


def rejected(code: str, reason: str) -> Decision:
    """A rejection with ``code`` (a key of :data:`CODES`) and a human ``reason``."""
    assert code in CODES, code
    return {"approved": False, "reason": reason, "code": code}
