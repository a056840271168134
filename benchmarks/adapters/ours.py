"""Adapter for our engine: ``manticore_orderbook`` from this repository (``pip install -e .`` for the
pure-Python build, ``.venv-compiled`` for the compiled one). The book is built with its defaults
(``OrderBook(symbol=..., event_manager=em)``: tick and lot 0.00000001, float outputs), so the
user-convention prices (two decimals) and quantities (three) are on its grid."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from benchmarks.adapters._common import (
    EventCounter,
    NativeOp,
    lots_of,
    manticore_converter,
    manticore_native,
    snapshot_summary,
    subscribe_all,
)
from benchmarks.workloads import Op
from manticore_orderbook import EventManager, EventType, OrderBook

LABEL = "manticore (ours)"
SUPPORTS_EVENTS = True
SYMBOL = "BTC/USD"

_book: Any = None
_counter: EventCounter | None = None
_lot = Decimal(1)


def describe() -> dict[str, Any]:
    """Version and import location of the engine (the run checks it is this repository's ``src/``)."""
    import manticore_orderbook
    import manticore_orderbook.book

    return {
        "version": str(getattr(manticore_orderbook, "__version__", "dev")),
        "file": str(manticore_orderbook.__file__),
        "compiled": str(manticore_orderbook.book.__file__).endswith((".so", ".pyd")),
        "event_types": len(list(EventType)),
        "how_subscribed": "OrderBook(symbol, event_manager=em); em.subscribe(t, handler) for t in EventType",
    }


def setup(subscriber: bool) -> None:
    """A fresh book wired to its own EventManager; with ``subscriber`` one counting handler on every type."""
    global _book, _counter
    manager = EventManager()
    _book = OrderBook(symbol=SYMBOL, event_manager=manager)
    _counter = None
    if subscriber:
        _counter = EventCounter()
        subscribe_all(manager.subscribe, list(EventType), _counter.handler)


native = manticore_native


def converter(meta: dict[str, Any]) -> tuple[Callable[[Op], NativeOp], bool]:
    """``(convert, keywords)`` for a workload (see :func:`manticore_converter`); float, str and Decimal
    inputs are all passed as they are."""
    global _lot
    _lot = lots_of(meta)
    return manticore_converter(meta)


def bound() -> tuple[Callable[..., Any], Callable[[Any], Any]]:
    """``(book.add_order, book.cancel_order)``."""
    return _book.add_order, _book.cancel_order


def add(side: str, price: int, qty: int, oid: int) -> Any:
    """Add a limit order (price in ticks, quantity in lots, integer id)."""
    return _book.add_order(side, float(price), float(qty), f"o{oid}")


def cancel(oid: int) -> bool:
    """Cancel by integer id; True when the order was live."""
    return bool(_book.cancel_order(f"o{oid}"))


def summary() -> dict[str, int]:
    """Final book from ``get_snapshot(depth=None)`` (full depth)."""
    return snapshot_summary(_book.get_snapshot(depth=None), "order_count", _lot)


def event_counts() -> dict[str, int]:
    """Deliveries to the counting subscriber, by event type name (empty without a subscriber)."""
    return _counter.by_name() if _counter is not None else {}


def teardown() -> None:
    """Drop the book and the subscriber."""
    global _book, _counter
    _book = None
    _counter = None
