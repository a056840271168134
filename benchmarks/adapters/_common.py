"""Pieces shared by the two Manticore-API adapters (ours and manticore-orderbook 1.0.1).

Standard library only: imported inside each engine's own virtualenv.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from benchmarks.workloads import CANCEL, Op

__all__ = ["EventCounter", "manticore_native", "snapshot_summary", "subscribe_all"]


class EventCounter:
    """A subscriber that only counts deliveries per event type (the cheapest useful handler).

    Subscribe :attr:`handler`, a plain function ``(event_type, data)``: manticore-orderbook 1.0.1 reads
    the handler's ``__name__`` in ``subscribe``, so a callable object would be rejected there.
    """

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}
        counts = self.counts

        def handler(event_type: Any, data: Any) -> None:
            counts[event_type] = counts.get(event_type, 0) + 1

        self.handler: Callable[[Any, Any], None] = handler

    def by_name(self) -> dict[str, int]:
        """Counts keyed by the event type's name (``"TRADE_EXECUTED"``...)."""
        return {str(getattr(k, "name", k)): v for k, v in sorted(self.counts.items(), key=lambda kv: str(kv))}


def manticore_native(op: Op) -> tuple[bool, Any]:
    """Arguments for ``add_order(side, price, quantity, order_id)`` / ``cancel_order(order_id)``.

    Prices and quantities are passed as floats (integer-valued: tick and lot size 1), as the integration
    guide does; order ids as strings ``"o<id>"``. Both Manticore engines get identical arguments.
    """
    kind, side, price, qty, oid = op
    if kind == CANCEL:
        return True, f"o{oid}"
    return False, (side, float(price), float(qty), f"o{oid}")


def snapshot_summary(
    snapshot: Mapping[str, Any], count_key: str | Callable[[Mapping[str, Any]], int]
) -> dict[str, int]:
    """Orders, lots and levels per side from a ``get_snapshot()`` dict (bids/asks lists of levels).

    Quantities are summed exactly (as Decimals of their ``str``) and must be whole lots; a fractional
    total is reported as -1 so that the check fails visibly.
    """
    out: dict[str, int] = {}
    for key, levels in (("bid", snapshot.get("bids", [])), ("ask", snapshot.get("asks", []))):
        total = sum((Decimal(str(level["quantity"])) for level in levels), Decimal(0))
        out[f"{key}_levels"] = len(levels)
        out[f"{key}_orders"] = sum(_count(level, count_key) for level in levels)
        out[f"{key}_qty"] = int(total) if total == total.to_integral_value() else -1
    return out


def _count(level: Mapping[str, Any], count_key: str | Callable[[Mapping[str, Any]], int]) -> int:
    if callable(count_key):
        return count_key(level)
    return int(level[count_key])


def subscribe_all(subscribe: Callable[[Any, Any], None], event_types: Iterable[Any], handler: Any) -> int:
    """Subscribe ``handler`` to every member of ``event_types``; return how many subscriptions succeeded."""
    n = 0
    for event_type in event_types:
        subscribe(event_type, handler)
        n += 1
    return n
