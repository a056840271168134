"""Adapter for ``limit-order-book==2.0.0`` (PyPI): a C++ book (sdist, compiled on install) behind ctypes.

Its Python API (``limit_order_book.LimitOrderBook``): ``limit(side, order_id, quantity, price)`` with
``side`` True for buy, unsigned integer ids, quantities (uint32) and prices (uint64); ``cancel(order_id)``;
``has``, ``count_buy/count_sell``, ``volume_buy/volume_sell``, ``best_buy/best_sell``. There are no events,
no trade reports and no return values: it maintains the book only. Cancelling an unknown id raises a C++
exception through the C API, which aborts the process, so workloads only ever cancel live orders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from limit_order_book import LimitOrderBook

from benchmarks.workloads import AGGRESSIVE, CANCEL, Op

LABEL = "limit-order-book 2.0.0 (C++)"
SUPPORTS_EVENTS = False

_book: Any = None


def describe() -> dict[str, Any]:
    """Version and import location."""
    import importlib.metadata

    import limit_order_book

    return {
        "version": importlib.metadata.version("limit-order-book"),
        "file": str(limit_order_book.__file__),
        "event_types": 0,
        "how_subscribed": "no event API",
    }


def setup(subscriber: bool) -> None:
    """A fresh book (``subscriber`` is not supported and must be False)."""
    global _book
    if subscriber:
        raise ValueError("limit-order-book has no event API")
    _book = LimitOrderBook()


def native(op: Op) -> tuple[bool, Any]:
    """``limit(side_is_buy, order_id, quantity, price)`` / ``cancel(order_id)`` arguments."""
    kind, side, price, qty, oid = op
    if kind == CANCEL:
        return True, oid
    return False, (side == "buy", oid, qty, price)


def converter(meta: dict[str, Any]) -> tuple[Callable[[Op], tuple[bool, Any]], bool]:
    """``(convert, keywords)``: always positional integer calls (its only API).

    In a user-convention workload the integers are cents and thousandths, and an aggressive order is an
    IOC limit, which this library does not have: it is sent as a limit for exactly the quantity the IOC
    order fills (known from the reference book, ``meta["ioc_filled"]``), so it trades the same and never
    rests, in one call. That spares it the cancel of the remainder: the most favourable reading.
    """
    if not meta.get("convention"):
        return native, False
    filled: dict[int, int] = meta["ioc_filled"]

    def convert(op: Op) -> tuple[bool, Any]:
        kind, side, price, qty, oid = op
        if kind == CANCEL:
            return True, oid
        if kind == AGGRESSIVE:
            qty = filled[oid]
        return False, (side == "buy", oid, qty, price)

    return convert, False


def bound() -> tuple[Callable[..., Any], Callable[[Any], Any]]:
    """``(book.limit, book.cancel)``."""
    return _book.limit, _book.cancel


def add(side: str, price: int, qty: int, oid: int) -> None:
    """Add a limit order (price in ticks, quantity in lots, integer id)."""
    _book.limit(side == "buy", oid, qty, price)


def cancel(oid: int) -> bool:
    """Cancel by id; returns whether it was live (checked with ``has`` first: unknown ids abort)."""
    if not _book.has(oid):
        return False
    _book.cancel(oid)
    return True


def summary() -> dict[str, int]:
    """Orders and lots per side (the library exposes no way to list price levels)."""
    return {
        "bid_orders": int(_book.count_buy()),
        "ask_orders": int(_book.count_sell()),
        "bid_qty": int(_book.volume_buy()),
        "ask_qty": int(_book.volume_sell()),
    }


def event_counts() -> dict[str, int]:
    """No events."""
    return {}


def teardown() -> None:
    """Drop the book (its ``__del__`` frees the C++ object)."""
    global _book
    _book = None
