"""WebSocket fan-out: public book and trade channels per market, and each user's private channel.

Protocol (JSON text frames). The client sends::

    {"op": "subscribe", "channel": "book", "symbol": "BTC/USD"}
    {"op": "subscribe", "channel": "trades", "symbol": "BTC/USD"}
    {"op": "auth", "api_key": ..., "timestamp": ..., "signature": ...}   # signed like GET /ws with no body
    {"op": "auth", "token": ...}                                           # or a session token
    {"op": "subscribe", "channel": "private"}                              # after auth
    {"op": "unsubscribe", "channel": ..., "symbol": ...}
    {"op": "ping"}
    {"op": "order.place" | "order.modify" | "order.cancel", "id": ..., ...}   # after auth: order entry

Order entry is handled by :mod:`manticore_api.routes.stream` (answers ``{"type": "response", "id", "status",
"result" | "error"}``, each once its command is durable; see docs/api.md); its answers share the
connection's queue with the stream frames.

The server answers ``subscribed``/``unsubscribed``/``authenticated``/``pong``/``error`` frames and
then streams: on a book subscription a ``snapshot`` (``symbol, sequence, bids, asks``) followed by
``book`` diffs (see :mod:`manticore_matching.feed`). Diffs whose ``last_sequence`` is at most the
snapshot's ``sequence`` are already in it; after that each diff's ``first_sequence`` must be the
previous ``last_sequence + 1``, otherwise the client has missed something and re-subscribes.
``trade`` frames on the trades channel; ``order``, ``fill`` and ``balances`` frames on the private
channel, each only to the user it is about: an ``order`` frame carries the user's own order (with its
``client_order_id``), a ``fill`` frame the user's own side of a trade (``trade_id, symbol, order_id,
client_order_id, side, role, price, quantity, fee, fee_asset, timestamp`` and the order's ``status,
filled_quantity, remaining_quantity`` after it), never the counterparty's user or order. A client that
does not read fast enough (more than ``max_queue`` frames pending) is disconnected with close code 1013
and resynchronises on reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from manticore_matching import Demand

from .jsontext import dumps_text
from .reads import AsyncReads

__all__ = ["FrameQueue", "StreamConnection", "StreamHub"]

_PRIVATE_TYPES = frozenset({"order", "fill", "balances"})


class FrameQueue:
    """A connection's outgoing frames, first in first out, at most ``maxsize`` of them (no limit when
    ``maxsize`` is 0 or less).

    The part of :class:`asyncio.Queue`'s interface a connection uses, with its behaviour
    (``put_nowait`` raising :class:`asyncio.QueueFull`, ``get_nowait`` raising
    :class:`asyncio.QueueEmpty`, ``get`` waking readers one per frame in the order they began waiting,
    ``empty``, ``qsize``, ``full``) at a fraction of its cost per frame: a deque, and a future per reader
    only while the queue is empty (``asyncio.Queue`` also counts unfinished tasks and goes through
    several methods per frame). :meth:`wait` and :attr:`items` let a single reader take frames without
    a coroutine call per frame. Loop thread only."""

    __slots__ = ("_waiters", "items", "maxsize")

    def __init__(self, maxsize: int) -> None:
        #: The frames, oldest first.
        self.items: deque[str | None] = deque()
        self.maxsize = maxsize
        self._waiters: deque[asyncio.Future[None]] = deque()

    def qsize(self) -> int:
        return len(self.items)

    def empty(self) -> bool:
        return not self.items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self.items)

    def put_nowait(self, frame: str | None) -> None:
        """Append ``frame`` and wake the longest-waiting reader; :class:`asyncio.QueueFull` when full."""
        items = self.items
        if 0 < self.maxsize <= len(items):
            raise asyncio.QueueFull
        items.append(frame)
        if self._waiters:
            self._wake_one()

    def get_nowait(self) -> str | None:
        """The oldest frame, removed; :class:`asyncio.QueueEmpty` if there is none."""
        if not self.items:
            raise asyncio.QueueEmpty
        return self.items.popleft()

    async def get(self) -> str | None:
        """The oldest frame, removed, once there is one."""
        if not self.items:
            await self.wait()
        return self.items.popleft()

    async def wait(self) -> None:
        """Return once the queue holds a frame (at once if it does), without taking it."""
        items = self.items
        while not items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()  # nothing if a frame had woken it already: that wake-up is passed on
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                if items and not waiter.cancelled():
                    self._wake_one()
                raise

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class StreamConnection:
    """One WebSocket client: what it subscribed to, who it is, and its outgoing queue."""

    __slots__ = ("_send", "closed", "overflowed", "queue", "subscriptions", "user_id")

    def __init__(self, send: Any, max_queue: int = 10_000) -> None:
        self._send = send
        self.queue = FrameQueue(max_queue)
        self.subscriptions: set[tuple[str, str]] = set()
        self.user_id: str | None = None
        self.closed = False
        self.overflowed = False

    def push(self, message: dict[str, Any] | str) -> None:
        """Queue a frame; a full queue marks the connection as too slow (it is closed)."""
        if self.closed:
            return
        frame = message if isinstance(message, str) else dumps_text(message)
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True
            self.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.get_nowait()
                self.queue.put_nowait(None)

    async def pump(self, write_queued: Callable[[deque[str | None]], int] | None = None) -> None:
        """Send queued frames until the connection closes (run as a task), one by one through the
        connection's send callable. With ``write_queued``, the frames queued by the time the sender
        runs are offered to it first: it writes the frames at the head of the queue in one go and
        removes them (the number written; each stays queued until written, so the queue's limit
        counts it), or returns 0 when they must go one by one (e.g. the socket cannot write at once)."""
        queue = self.queue
        items = queue.items
        send = self._send
        while True:
            if not items:
                await queue.wait()
                continue
            if write_queued is not None and write_queued(items):
                continue
            frame = items.popleft()
            if frame is None:
                return
            await send(frame)


class StreamHub:
    """Routes each durable command's messages to the connections that asked for them.

    :attr:`demand` names what the subscriptions read (the book diffs and trades of the markets with a
    subscriber, the private messages of the users with one); it is updated on every change of
    subscriptions, and :attr:`on_demand` (the exchange's ``demand_changed``) is called then. A book
    subscription turns its market's diffs on before its snapshot is read, so every diff after the
    snapshot is built."""

    def __init__(self, reads: AsyncReads, max_queue: int = 10_000) -> None:
        self.reads = reads
        #: Frames a connection may have pending before it is closed as too slow (1013).
        self.max_queue = max_queue
        self._channels: dict[tuple[str, str], set[StreamConnection]] = {}
        self._users: dict[str, set[StreamConnection]] = {}
        self._connections: set[StreamConnection] = set()
        self.messages_published = 0
        self.demand = Demand()
        self.on_demand: Callable[[], None] | None = None
        #: Book subscriptions waiting for their snapshot, by market (their diffs are built already).
        self._opening: dict[str, int] = {}

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def add(self, connection: StreamConnection) -> None:
        self._connections.add(connection)

    def remove(self, connection: StreamConnection) -> None:
        """Forget a connection and all its subscriptions."""
        self._connections.discard(connection)
        for key in connection.subscriptions:
            if key[0] == "private":
                self._users.get(key[1], set()).discard(connection)
            else:
                self._channels.get(key, set()).discard(connection)
        connection.subscriptions.clear()
        connection.closed = True
        self._refresh_demand()

    def _refresh_demand(self) -> None:
        """Recompute :attr:`demand` from the subscriptions and tell the exchange if it changed."""
        demand = self.demand
        books = {
            symbol for (channel, symbol), targets in self._channels.items() if channel == "book" and targets
        }
        books.update(self._opening)
        trades = {
            symbol for (channel, symbol), targets in self._channels.items() if channel == "trades" and targets
        }
        users = {user for user, targets in self._users.items() if targets}
        if (books, trades, users) == (demand.books, demand.trades, demand.users):
            return
        demand.books, demand.trades, demand.users = books, trades, users
        if self.on_demand is not None:
            self.on_demand()

    async def subscribe(
        self, connection: StreamConnection, channel: str, symbol: str | None
    ) -> dict[str, Any]:
        """Add a subscription and return the acknowledgement frame; the book channel also queues a
        snapshot. Raises ValueError with a client-facing message on a bad request.

        The reads are awaited before the subscription is added (nothing is awaited after), so the
        subscriber gets the acknowledgement, then the snapshot, then the messages published after it;
        on the embedded exchange nothing is awaited at all."""
        if channel == "private":
            if connection.user_id is None:
                raise ValueError('authenticate first: send {"op": "auth", ...}')
            connection.subscriptions.add(("private", connection.user_id))
            self._users.setdefault(connection.user_id, set()).add(connection)
            self._refresh_demand()
            return {"type": "subscribed", "channel": "private"}
        if channel not in ("book", "trades"):
            raise ValueError("channel must be book, trades or private")
        if not isinstance(symbol, str) or symbol not in await self.reads.markets():
            raise ValueError(f"unknown market {str(symbol)[:40]!r}")
        snapshot = await self._snapshot(symbol) if channel == "book" else None
        if connection.closed:
            self._refresh_demand()
            return {}
        key = (channel, symbol)
        connection.subscriptions.add(key)
        self._channels.setdefault(key, set()).add(connection)
        self._refresh_demand()
        acknowledgement = {"type": "subscribed", "channel": channel, "symbol": symbol}
        if snapshot is not None:
            connection.push(acknowledgement)
            connection.push({"type": "snapshot", **snapshot})
            return {}
        return acknowledgement

    async def _snapshot(self, symbol: str) -> dict[str, Any]:
        """``symbol``'s book snapshot, read after its diffs are turned on (they stay on meanwhile)."""
        self._opening[symbol] = self._opening.get(symbol, 0) + 1
        self._refresh_demand()
        try:
            return await self.reads.get_snapshot(symbol)
        finally:
            left = self._opening.pop(symbol) - 1
            if left:
                self._opening[symbol] = left

    def unsubscribe(self, connection: StreamConnection, channel: str, symbol: str | None) -> dict[str, Any]:
        key = ("private", connection.user_id or "") if channel == "private" else (channel, str(symbol))
        connection.subscriptions.discard(key)
        if key[0] == "private":
            self._users.get(key[1], set()).discard(connection)
        else:
            self._channels.get(key, set()).discard(connection)
        self._refresh_demand()
        return {"type": "unsubscribed", "channel": channel, "symbol": symbol}

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Deliver one command's messages (called on the loop thread, in journal order)."""
        for message in batch:
            kind = message["type"]
            if kind in _PRIVATE_TYPES:
                targets = self._users.get(message["user_id"])
            else:
                targets = self._channels.get(("book" if kind == "book" else "trades", message["symbol"]))
            if not targets:
                continue
            frame = dumps_text(message)
            self.messages_published += 1
            for connection in list(targets):
                connection.push(frame)

    async def close(self) -> None:
        """Ask every connection's sender to stop."""
        for connection in list(self._connections):
            connection.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                connection.queue.put_nowait(None)
