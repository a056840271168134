"""Comparing a book's live orders with storage's: what is missing on either side, what differs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .records import Market, exact

__all__ = ["Mismatch", "ReconcileReport", "compare"]

#: Fields compared, with the grid each is on ("price", "quantity" or None for plain values).
_FIELDS: tuple[tuple[str, str | None], ...] = (
    ("side", None),
    ("price", "price"),
    ("quantity", "quantity"),
    ("filled_quantity", "quantity"),
    ("remaining_quantity", "quantity"),
    ("stop_price", "price"),
    ("expiry_time", None),
    ("priority", None),
    ("pending", None),
)


@dataclass(frozen=True)
class Mismatch:
    """One field of one order that differs: the book's value and storage's."""

    order_id: str
    field: str
    book: object
    storage: object


@dataclass
class ReconcileReport:
    """The outcome of :meth:`~manticore_storage.StorageManager.reconcile`.

    ``missing_in_storage``: live in the book, not live in storage. ``missing_in_book``: live in storage,
    not in the book. ``mismatches``: orders live on both sides whose fields differ.
    """

    symbol: str
    checked: int = 0
    missing_in_storage: list[str] = field(default_factory=list)
    missing_in_book: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing_in_storage or self.missing_in_book or self.mismatches)

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "ok": self.ok,
            "checked": self.checked,
            "missing_in_storage": self.missing_in_storage,
            "missing_in_book": self.missing_in_book,
            "mismatches": [m.__dict__ for m in self.mismatches],
            "repaired": self.repaired,
        }


def _value(order: Mapping[str, Any], name: str, grid: str | None, market: Market) -> object:
    if name == "pending":
        return order.get("status") == "pending"
    value = order.get(name)
    if grid is None or value is None:
        return value
    return exact(value, market.price_grid() if grid == "price" else market.quantity_grid(), name)


def compare(
    symbol: str,
    book_orders: Iterable[Mapping[str, Any]],
    stored: Mapping[str, Mapping[str, Any]],
    market: Market,
) -> ReconcileReport:
    """Compare the book's live orders (``export_state()["orders"]``) with stored live orders by id."""
    report = ReconcileReport(symbol)
    seen: set[str] = set()
    for order in book_orders:
        order_id = str(order["order_id"])
        seen.add(order_id)
        report.checked += 1
        row = stored.get(order_id)
        if row is None:
            report.missing_in_storage.append(order_id)
            continue
        for name, grid in _FIELDS:
            mine, theirs = _value(order, name, grid, market), _value(row, name, grid, market)
            if mine != theirs:
                report.mismatches.append(Mismatch(order_id, name, mine, theirs))
    report.missing_in_book = sorted(order_id for order_id in stored if order_id not in seen)
    return report
