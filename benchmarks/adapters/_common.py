"""Pieces shared by the two Manticore-API adapters (ours and manticore-orderbook 1.0.1).

Standard library only: imported inside each engine's own virtualenv.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from benchmarks.workloads import AGGRESSIVE, CANCEL, Op

__all__ = [
    "KEYWORDS",
    "EventCounter",
    "NativeOp",
    "lots_of",
    "manticore_converter",
    "manticore_native",
    "number_maker",
    "snapshot_summary",
    "subscribe_all",
]

#: ``(is_cancel, args)``: a cancel's argument, or the positional arguments of an add (a tuple in the
#: order of :data:`KEYWORDS` when the workload is called with keyword arguments).
NativeOp = tuple[bool, Any]

#: The keyword arguments of a user-convention ``add_order`` call, in the order of its ``args`` tuple.
KEYWORDS = ("side", "price", "quantity", "order_id", "user_id", "time_in_force")


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


def number_maker(numbers: str, decimals: int) -> Callable[[int], Any]:
    """Converts an integer of ``10**-decimals`` units to the input a user passes: float, str or Decimal.

    A float is the one nearest to the decimal value (``1_000_001 / 100`` is the float ``10000.01``); a
    str and a Decimal carry exactly ``decimals`` decimals (``"10000.01"``, ``Decimal("0.125")``).
    """
    scale = 10**decimals
    if numbers == "float":
        return lambda units: units / scale
    if numbers == "str":
        return lambda units: str(Decimal(units).scaleb(-decimals))
    if numbers == "decimal":
        return lambda units: Decimal(units).scaleb(-decimals)
    raise ValueError(f"unknown kind of number input: {numbers!r}")


def lots_of(meta: Mapping[str, Any]) -> Decimal:
    """The quantity one workload lot stands for: 1, or ``10**-quantity_decimals`` in a user convention."""
    convention = meta.get("convention")
    return Decimal(1) if not convention else Decimal(1).scaleb(-int(convention["quantity_decimals"]))


def manticore_converter(
    meta: Mapping[str, Any], numbers: str | None = None
) -> tuple[Callable[[Op], NativeOp], bool]:
    """``(convert, keywords)`` for the Manticore API: :func:`manticore_native` and positional calls for
    plain workloads; for a user convention keyword arguments (:data:`KEYWORDS`) with ``numbers``
    inputs (default: the workload's own), ``user_id`` ``"u<id mod users>"`` and ``time_in_force``
    ``"GTC"``, or the convention's (IOC) for aggressive orders.
    """
    convention = meta.get("convention")
    if not convention:
        return manticore_native, False
    kind_of_number = numbers or str(convention["numbers"])
    price_of = number_maker(kind_of_number, int(convention["price_decimals"]))
    quantity_of = number_maker(kind_of_number, int(convention["quantity_decimals"]))
    users = int(convention["users"])
    aggressive_tif = str(convention["aggressive_time_in_force"])

    def convert(op: Op) -> NativeOp:
        kind, side, price, qty, oid = op
        if kind == CANCEL:
            return True, f"o{oid}"
        tif = aggressive_tif if kind == AGGRESSIVE else "GTC"
        return False, (side, price_of(price), quantity_of(qty), f"o{oid}", f"u{oid % users}", tif)

    return convert, True


def snapshot_summary(
    snapshot: Mapping[str, Any],
    count_key: str | Callable[[Mapping[str, Any]], int],
    lot: Decimal = Decimal(1),
) -> dict[str, int]:
    """Orders, lots and levels per side from a ``get_snapshot()`` dict (bids/asks lists of levels).

    Quantities are summed exactly (as Decimals of their ``str``) and must be whole multiples of ``lot``;
    a total off that grid is reported as -1 so that the check fails visibly.
    """
    out: dict[str, int] = {}
    for key, levels in (("bid", snapshot.get("bids", [])), ("ask", snapshot.get("asks", []))):
        total = sum((Decimal(str(level["quantity"])) for level in levels), Decimal(0)) / lot
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
