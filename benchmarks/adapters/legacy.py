"""Adapter for ``manticore-orderbook==1.0.1`` (PyPI), the float-based library whose API ours copies.

Only its public API is used (the one in the integration guide): ``OrderBook``, ``EventManager``,
``EventType``, ``add_order``, ``cancel_order``, ``get_snapshot`` and ``EventManager.subscribe``. It is
given its most favourable reasonable configuration: ``enable_logging=False`` where the constructors
accept it, and INFO-level logging disabled process-wide (``logging.disable(logging.INFO)``), because the
library otherwise formats and prints log lines on every add and cancel.
"""

from __future__ import annotations

import logging
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

LABEL = "manticore-orderbook 1.0.1"
SUPPORTS_EVENTS = True
SYMBOL = "BTC/USD"

_book: Any = None
_counter: EventCounter | None = None
_lot = Decimal(1)
_how = "not set up yet"


def _quiet_kwargs() -> dict[str, Any]:
    return {"enable_logging": False}


def _make_manager() -> Any:
    try:
        return EventManager(**_quiet_kwargs())
    except TypeError:
        return EventManager()


def _make_book(manager: Any) -> tuple[Any, Any, str]:
    """Wire the book to ``manager``; fall back to the book's own manager when that is not possible."""
    for kwargs in (_quiet_kwargs(), {}):
        try:
            book = OrderBook(symbol=SYMBOL, event_manager=manager, **kwargs)
        except TypeError:
            continue
        extra = ", enable_logging=False" if kwargs else ""
        return book, manager, f"OrderBook(symbol=..., event_manager=em{extra})"
    for kwargs in (_quiet_kwargs(), {}):
        try:
            book = OrderBook(symbol=SYMBOL, **kwargs)
        except TypeError:
            continue
        own = getattr(book, "event_manager", None)
        if own is not None:
            return book, own, "OrderBook(symbol=...) then book.event_manager (no event_manager= argument)"
        return book, None, "OrderBook(symbol=...) with no reachable event manager: no events"
    raise RuntimeError("could not construct manticore_orderbook.OrderBook")


def describe() -> dict[str, Any]:
    """Version, import location and how the subscriber is wired."""
    import importlib.metadata

    import manticore_orderbook

    setup(True)
    info = {
        "version": importlib.metadata.version("manticore-orderbook"),
        "file": str(manticore_orderbook.__file__),
        "event_types": len(list(EventType)),
        "how_subscribed": f"{_how}; em.subscribe(t, handler) for t in list(EventType)",
    }
    teardown()
    return info


def setup(subscriber: bool) -> None:
    """A fresh book; with ``subscriber`` one counting handler subscribed to every ``EventType`` member."""
    global _book, _counter, _how
    logging.disable(logging.INFO)
    _book, manager, _how = _make_book(_make_manager())
    _counter = None
    if subscriber and manager is not None:
        _counter = EventCounter()
        subscribe_all(manager.subscribe, list(EventType), _counter.handler)


native = manticore_native


def converter(meta: dict[str, Any]) -> tuple[Callable[[Op], NativeOp], bool]:
    """``(convert, keywords)`` for a workload (see :func:`manticore_converter`).

    It takes floats only: a ``str`` price raises ``TypeError`` in ``add_order`` and a ``Decimal`` one
    when it trades (``float * Decimal``). So its ``str`` and ``Decimal`` workloads pass it the same
    values as floats, converted before timing, which spares it the parsing our book does.
    """
    global _lot
    _lot = lots_of(meta)
    return manticore_converter(meta, "float" if meta.get("convention") else None)


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
    """Final book from ``get_snapshot()`` (its default depth=None is the full book; depth=0 is empty)."""
    return snapshot_summary(_book.get_snapshot(), "orderCount", _lot)


def event_counts() -> dict[str, int]:
    """Deliveries to the counting subscriber, by event type name (empty without a subscriber)."""
    return _counter.by_name() if _counter is not None else {}


def teardown() -> None:
    """Drop the book and the subscriber."""
    global _book, _counter
    _book = None
    _counter = None
