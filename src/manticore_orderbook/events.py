"""The event manager: who listens to which event type, and delivery that survives failing handlers.

Handlers are callables ``handler(event_type, data)``. For one event type they run in the order they
were subscribed (``subscribe_all`` counts as subscribing to every type at that moment). A handler that
raises is logged on the ``manticore_orderbook.events`` logger; when the event came from an
:class:`~manticore_orderbook.OrderBook`, the book also publishes an ``ERROR`` event about it. Neither
the book nor the other handlers are affected.

One manager may serve several books; every event carries its book's ``symbol`` and ``sequence``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .enums import EventType, parse_event_type

__all__ = ["EventHandler", "EventManager"]

EventHandler = Callable[[EventType, dict[str, Any]], object]

#: What a book queues with each event's data: the handler when its type has exactly one (else None),
#: the type, and the type's handlers.
Route = tuple[EventHandler | None, EventType, tuple[EventHandler, ...]]

_LOG = logging.getLogger("manticore_orderbook.events")

#: Position of each event type in the handler table (the declaration order of EventType).
EVENT_INDEX: dict[EventType, int] = {event_type: i for i, event_type in enumerate(EventType)}
ALL_EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)


class EventManager:
    """Keeps the subscriptions and delivers events to them.

    ``handlers`` is a list indexed by ``EVENT_INDEX`` whose items are tuples of handlers; it is
    replaced item by item (copy on write) so that a delivery in progress never sees a half-made change
    and books can read it without locking. ``routes`` follows it item by item: None where a type has
    no handler, else ``(lone, event_type, handlers[i])`` (``lone`` the handler when there is exactly
    one, else None), made once per subscription change so that a book queues an event without making
    a tuple for it and delivers to a lone handler without indexing its tuple.
    """

    __slots__ = ("_lock", "handlers", "routes")

    def __init__(self) -> None:
        self.handlers: list[tuple[EventHandler, ...]] = [() for _ in ALL_EVENT_TYPES]
        self.routes: list[Route | None] = [None for _ in ALL_EVENT_TYPES]
        self._lock = threading.Lock()

    def _set(self, index: int, handlers: tuple[EventHandler, ...]) -> None:
        """Replace one type's handlers and its route (the caller holds the lock)."""
        self.handlers[index] = handlers
        if handlers:
            lone = handlers[0] if len(handlers) == 1 else None
            self.routes[index] = (lone, ALL_EVENT_TYPES[index], handlers)
        else:
            self.routes[index] = None

    def subscribe(self, event_type: EventType | str, handler: EventHandler) -> None:
        """Call ``handler(event_type, data)`` for every event of ``event_type`` from now on.

        Subscribing the same handler twice to one type calls it twice. Raises ``ValueError`` for an
        unknown event type and ``TypeError`` for a handler that is not callable.
        """
        index = EVENT_INDEX[parse_event_type(event_type)]
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        with self._lock:
            self._set(index, (*self.handlers[index], handler))

    def subscribe_all(self, handler: EventHandler) -> None:
        """Subscribe ``handler`` to every event type."""
        for event_type in ALL_EVENT_TYPES:
            self.subscribe(event_type, handler)

    def unsubscribe(self, event_type: EventType | str, handler: EventHandler) -> bool:
        """Remove one subscription of ``handler`` to ``event_type``; return whether there was one."""
        index = EVENT_INDEX[parse_event_type(event_type)]
        with self._lock:
            current = list(self.handlers[index])
            if handler not in current:
                return False
            current.remove(handler)
            self._set(index, tuple(current))
        return True

    def unsubscribe_all(self, handler: EventHandler) -> int:
        """Remove every subscription of ``handler``; return how many there were."""
        removed = 0
        for event_type in ALL_EVENT_TYPES:
            while self.unsubscribe(event_type, handler):
                removed += 1
        return removed

    def has_subscribers(self, event_type: EventType | str) -> bool:
        """Whether any handler listens to ``event_type``."""
        return bool(self.handlers[EVENT_INDEX[parse_event_type(event_type)]])

    def subscriber_count(self, event_type: EventType | str | None = None) -> int:
        """Number of subscriptions to ``event_type``, or to all types together when it is None."""
        if event_type is None:
            return sum(len(h) for h in self.handlers)
        return len(self.handlers[EVENT_INDEX[parse_event_type(event_type)]])

    def publish(self, event_type: EventType | str, data: dict[str, Any]) -> int:
        """Deliver one event to its handlers now; return how many handlers raised.

        Books deliver their own events; this is for applications that publish on the same manager.
        """
        member = parse_event_type(event_type)
        return len(deliver(self.handlers[EVENT_INDEX[member]], member, data))


def deliver(
    handlers: Iterable[EventHandler], event_type: EventType, data: dict[str, Any]
) -> list[tuple[EventHandler, Exception]]:
    """Call each handler in order; return the (handler, exception) pairs of those that raised."""
    failures: list[tuple[EventHandler, Exception]] = []
    for handler in handlers:
        try:
            handler(event_type, data)
        except Exception as exc:  # a handler must never break the book or the other handlers
            _LOG.exception("event handler %r failed on %s", handler, event_type.name)
            failures.append((handler, exc))
    return failures
