"""The exceptions of the risk manager.

Invalid arguments (a negative amount, an unknown market, a malformed state) raise ``ValueError``; the
errors below are about money and the ledger's contract.
"""

from __future__ import annotations

__all__ = ["InsufficientFunds", "RiskError"]


class RiskError(Exception):
    """Base class of the risk manager's own errors (also raised by ``on_event`` when a settlement broke
    the ledger's contract, for example a fill of an order whose hold was not enough; the book reports
    it as an ERROR event, the ledger itself stays conserved)."""


class InsufficientFunds(RiskError):
    """A user's available balance is smaller than the amount asked for (a withdrawal or a hold)."""
