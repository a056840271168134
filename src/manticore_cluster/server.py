"""The leader's side of the gateway protocol: a real :class:`~manticore_matching.Exchange` served over NATS.

:class:`CommandServer` subscribes the shard's command and query subjects (:mod:`.protocol`) and
answers them from the exchange; it publishes every durable command's stream messages on the shard's
market-data subject, in journal order; it runs the GTD expiry timer (gateways run none). The shard
process starts it when it becomes the leader and stops it when it loses the lease.

Contracts:

* A command runs on the server's event loop when its request arrives, in arrival order (the exchange's
  own validation, risk checks and journal, exactly as the embedded server runs it), and is answered
  only once the journal has made it durable (``journal.durable >= position``, waited for without
  blocking the loop: many commands share one journal commit). A command that raises is answered at
  once with the error (it changed nothing).
* Reads of memory are answered on the loop; reads that may go to storage (history, fills, orders by
  client id, health) run in a worker thread, as the embedded server runs them.
* The market-data subject carries one message per durable command that has stream messages:
  ``{"position", "messages"}`` in journal order (positions rise; a gap means messages were missed, e.g.
  across a change of leader).

**Command ids**: every command runs with the request's ``cmd`` as its command id
(:mod:`manticore_matching.command_ids`): the exchange journals it with the command and remembers the
command's receipt under it (rebuilt by replay and kept in checkpoints, for 300 s of exchange time), so a
request sent again with the same ``cmd`` - to this leader, or to its successor after a failover - is
answered with the original receipt and applied once. This covers every command (place, modify,
cancel, deposit, withdraw, create_market). The rules below remain for a repeated request whose ``cmd``
is not remembered (its first attempt was journaled by a leader without command ids, or longer ago
than the window):

**Retries** (``"retry": true``, set by the gateway on the second and later attempts of one request,
with the same body) are answered from the exchange's state where the first attempt may have been
applied already, so that a retry never applies a command twice:

* ``place_order`` with a ``client_order_id``: if the user has a live or recently finished order
  (:meth:`~manticore_matching.Exchange.recent_order_by_client_id`: the last 10,000 finished orders) by
  that name for the same symbol, side, quantity and price, the answer is that order's current state
  (201, as the first placement would have answered), never ``duplicate_client_order_id``. The gateway
  gives every order placed without a client order id a generated one, so a placement is always
  retried safely. A retry that matches no such order is placed as new (the first attempt never
  arrived). The one ambiguity: a user who reuses a client order id for an identical order right after
  the previous order of that name ended, and whose first attempt is lost, gets the previous order.
* ``place_order`` with a ``client_order_id``, not marked as a retry (a client repeating its placement
  through another gateway after its gateway died): the same rule, for an order placed at most
  :data:`REPEAT_WINDOW` seconds ago.
* ``cancel_order`` / ``cancel_order_by_client_id``: ``order_not_found`` while the user's order by that
  id/name is recently finished with status ``cancelled`` is answered as a successful cancel.
* ``create_market``: ``market_exists`` with the same configuration is answered as created.
* Everything else (modify, deposit, withdraw) relies on its command id alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from manticore_matching import (
    Exchange,
    ExchangeError,
    MarketConfig,
    MarketExists,
    OrderNotFound,
    Receipt,
    ServiceUnavailable,
)
from manticore_storage import trade_history

from . import protocol
from .protocol import COMMANDS, QUERIES, Request

__all__ = ["CommandServer"]

log = logging.getLogger("manticore_cluster")

#: The keys of a fill event that an order's state after a command does not carry.
#: Seconds after a placement during which the same order sent again under the same client order id -
#: by a client retrying at another gateway after its gateway died, so not marked as a retry - is
#: answered with the order placed the first time instead of being placed (or refused) again.
REPEAT_WINDOW = 60.0
_FILL_ONLY = frozenset({"fill_price", "fill_quantity", "trade_id", "is_maker", "fee"})
#: Reads that may query storage: run in a worker thread.
_STORAGE_QUERIES = frozenset(
    {
        "get_order",
        "get_order_by_client_id",
        "order_history",
        "fills",
        "component_health",
        "stored_trades",
        "trade_rows",
        "flush_storage",
    }
)
#: Reads of a gateway's Binance surface (:meth:`CommandServer._surface_query`).
_SURFACE_QUERIES = frozenset({"risk_limits", "stored_trades", "trade_rows", "flush_storage"})
#: Rows per page of ``trade_rows`` (well under NATS's 1 MiB per message).
TRADE_PAGE = 2000


class CommandServer:
    """Serves ``exchange`` as shard ``shard`` on the NATS connection ``nc`` (see the module doc).

    Args:
        nc: a connected NATS client (the server's event loop is the one ``nc`` runs on).
        exchange: an opened exchange (its journal may be the file journal or a JetStream one).
        shard: the shard's name (a NATS subject token).
        prefix: the subject prefix (one or more tokens).
        expiry_interval: seconds between GTD expiry sweeps.
        durable_timeout: seconds a command may wait for durability before it is answered 503.
    """

    def __init__(
        self,
        nc: Client,
        exchange: Exchange,
        shard: str,
        prefix: str,
        *,
        expiry_interval: float = 0.25,
        durable_timeout: float = 30.0,
    ) -> None:
        self.nc = nc
        self.exchange = exchange
        self.shard = shard
        self.prefix = prefix
        self.expiry_interval = expiry_interval
        self.durable_timeout = durable_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: list[Subscription] = []
        #: (position, reply subject, reply body, deadline), positions ascending.
        self._waiting: deque[tuple[int, str, bytes, float]] = deque()
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.commands = 0
        self.queries = 0

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._running

    async def start(self) -> None:
        """Subscribe the command and query subjects, follow the exchange's durable commands, start the
        expiry timer. Call it on the loop of ``nc``."""
        if self._running:
            return
        self._loop = asyncio.get_running_loop()
        self._outbox_ready = asyncio.Event()
        exchange = self.exchange
        exchange.add_batch_listener(self._batch_from_journal_thread)
        exchange.add_durable_listener(self._durable_from_journal_thread)
        self._running = True
        self._tasks = [
            asyncio.create_task(self._send_forever(), name=f"manticore-md-{self.shard}"),
            asyncio.create_task(self._tick_forever(), name=f"manticore-expiry-{self.shard}"),
        ]
        nc = self.nc
        self._subscriptions = [
            await nc.subscribe(protocol.cmd_subject(self.prefix, self.shard), cb=self._on_command),
            await nc.subscribe(protocol.query_subject(self.prefix, self.shard), cb=self._on_query),
        ]
        await nc.flush()
        log.info(
            "shard %s: serving commands on %s", self.shard, protocol.cmd_subject(self.prefix, self.shard)
        )

    async def stop(self) -> None:
        """Unsubscribe, stop the timer and the market-data sender (what is queued is sent first).

        Commands still waiting for durability are not answered: the gateway retries them at the next
        leader, which answers from the journal (see the module doc)."""
        if not self._running:
            return
        self._running = False
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions = []
        self.exchange.remove_batch_listener(self._batch_from_journal_thread)
        self.exchange.remove_durable_listener(self._durable_from_journal_thread)
        self._outbox_ready.set()
        for task in self._tasks:
            if task.get_name().startswith("manticore-expiry"):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._waiting.clear()
        with contextlib.suppress(Exception):
            await self.nc.flush()

    # ------------------------------------------------------------------ commands

    async def _on_command(self, msg: Msg) -> None:
        reply = msg.reply
        try:
            request = protocol.decode_request(msg.data, COMMANDS)
            receipt = self._run(request)
        except Exception as exc:
            if not isinstance(exc, ExchangeError | protocol.ProtocolError):
                log.exception("shard %s: command failed", self.shard)
            if reply:
                self._send(reply, protocol.encode_error(exc))
            return
        self.commands += 1
        if not reply:
            return
        assert self._loop is not None
        body = protocol.encode_ok(protocol.receipt_result(receipt))
        deadline = self._loop.time() + self.durable_timeout
        journal = self.exchange.journal
        if journal.durable >= receipt.position:
            self._send(reply, body)
        else:
            self._waiting.append((receipt.position, reply, body, deadline))
            self._release(journal.durable)  # it may have become durable meanwhile

    def _run(self, request: Request) -> Receipt:
        """Run one command on the exchange; a retry first looks for the effect of an earlier attempt."""
        exchange = self.exchange
        args = request.args
        op = request.op
        if request.retry and (original := exchange.command_receipt(request.cmd)) is not None:
            return original
        if op == "create_market":
            config = MarketConfig.from_dict(args["config"])
            try:
                return exchange.create_market(config, command_id=request.cmd)
            except MarketExists:
                if request.retry and exchange.markets.get(config.symbol) == config:
                    return self._current()
                raise
        if op == "routed":  # a market shard (phase 2): answered with the route's own settlement
            entry = exchange.routed(**args)
            stale = bool(entry.get("stale"))
            position = exchange.journal.appended if stale else int(entry["seq"])
            return Receipt(position, result={"stale": stale, "settlements": [] if stale else [entry]})
        if op == "expire_due":
            count = exchange.expire_due()
            return Receipt(exchange.journal.appended, result={"expired": count})
        if op == "place_order" and (request.retry or args.get("client_order_id") is not None):
            found = self._placed_before(args, None if request.retry else REPEAT_WINDOW)
            if found is not None:
                return self._current(found["order_id"], found)
        method: Callable[..., Receipt] = getattr(exchange, op)
        try:
            return method(**args, command_id=request.cmd)
        except OrderNotFound:
            if request.retry and op in ("cancel_order", "cancel_order_by_client_id"):
                found = self._cancelled_before(op, args)
                if found is not None:
                    return self._current(found["order_id"], found)
            raise

    def _current(self, order_id: str | None = None, order: dict[str, Any] | None = None) -> Receipt:
        """A receipt for state that exists already: acknowledged once everything journaled so far is
        durable (the earlier attempt may still be on its way to disk)."""
        return Receipt(self.exchange.journal.appended, order_id, order)

    def _placed_before(self, args: dict[str, Any], window: float | None) -> dict[str, Any] | None:
        """The user's live or recent order named like this placement, if it is the same order (and,
        with a ``window``, was placed at most ``window`` seconds ago)."""
        user_id, client_order_id = args.get("user_id"), args.get("client_order_id")
        if client_order_id is None:
            return None
        order = self.exchange.recent_order_by_client_id(user_id, client_order_id)
        if order is None:
            return None
        if window is not None:
            placed_at = order.get("order_timestamp", order.get("timestamp"))
            if not isinstance(placed_at, int | float) or time.time() - placed_at > window:
                return None
            if order.get("status") == "cancelled" and order.get("reason") == "user":
                return None  # cancelled by its user: the name is being reused, not the order repeated
        side = args.get("side")
        same = (
            order.get("symbol") == args.get("symbol")
            and isinstance(side, str)
            and order.get("side") == side.lower()
            and _same_number(order.get("quantity"), args.get("quantity"))
            and _same_number(order.get("price"), args.get("price"))
        )
        if not same:
            return None
        # A finished order's last state is its last event (a fill's keys too): shape it like the
        # order a placement answers with.
        return {key: value for key, value in order.items() if key not in _FILL_ONLY}

    def _cancelled_before(self, op: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """The user's recently finished order this cancel names, if it ended cancelled."""
        exchange = self.exchange
        user_id = args.get("user_id")
        if op == "cancel_order_by_client_id":
            order = exchange.recent_order_by_client_id(user_id, args.get("client_order_id"))
        else:
            order_id = args.get("order_id")
            found = exchange.get_order(user_id, order_id) if isinstance(order_id, str) else None
            order = found
        if order is None or order.get("status") != "cancelled":
            return None
        return order

    # ------------------------------------------------------------------ durability

    def _durable_from_journal_thread(self, position: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release, position)

    def _release(self, position: int) -> None:
        waiting = self._waiting
        while waiting and waiting[0][0] <= position:
            _, reply, body, _ = waiting.popleft()
            self._send(reply, body)

    def _fail_overdue(self) -> None:
        """Answer 503 to commands that waited too long, or to all of them once the journal failed."""
        waiting = self._waiting
        if not waiting:
            return
        assert self._loop is not None
        now = self._loop.time()
        failed = not self.exchange.journal.healthy
        while waiting and (failed or waiting[0][3] <= now):
            _, reply, _, _ = waiting.popleft()
            message = (
                "the command journal cannot write"
                if failed
                else "the command could not be made durable in time"
            )
            self._send(reply, protocol.encode_error(ServiceUnavailable(message)))

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.expiry_interval)
            self._fail_overdue()
            try:
                self.exchange.expire_due()
            except ServiceUnavailable:
                log.error("shard %s: expiry sweep skipped: the journal cannot write", self.shard)
            except Exception:
                log.exception("shard %s: expiry sweep failed", self.shard)

    # ------------------------------------------------------------------ reads

    async def _on_query(self, msg: Msg) -> None:
        reply = msg.reply
        if not reply:
            return
        try:
            request = protocol.decode_request(msg.data, QUERIES)
        except protocol.ProtocolError as exc:
            self._send(reply, protocol.encode_error(exc))
            return
        self.queries += 1
        if request.op in _STORAGE_QUERIES:
            assert self._loop is not None
            task = self._loop.create_task(self._answer_in_thread(reply, request))
            task.add_done_callback(_log_failure)
            return
        self._send(reply, self._answer(request))

    async def _answer_in_thread(self, reply: str, request: Request) -> None:
        assert self._loop is not None
        body = await self._loop.run_in_executor(None, self._answer, request)
        self._send(reply, body)

    def _answer(self, request: Request) -> bytes:
        exchange = self.exchange
        try:
            if request.op == "markets":
                result: Any = {symbol: config.to_dict() for symbol, config in exchange.markets.items()}
            elif request.op in _SURFACE_QUERIES:
                result = self._surface_query(request)
            else:
                result = getattr(exchange, request.op)(**request.args)
            return protocol.encode_ok(result)
        except Exception as exc:
            if not isinstance(exc, ExchangeError):
                log.exception("shard %s: read %s failed", self.shard, request.op)
            return protocol.encode_error(exc)

    def _surface_query(self, request: Request) -> Any:
        """The reads of a gateway's Binance surface (risk limits, the stored trade history, a storage
        flush), answered from this exchange's storage (in a worker thread)."""
        exchange = self.exchange
        args = request.args
        if request.op == "risk_limits":
            return dataclasses.asdict(exchange.risk.limits)
        storage = exchange.storage
        if storage is None:
            raise ServiceUnavailable("the shard has no storage")
        flushed = storage.flush(10.0)
        if request.op == "flush_storage":
            return flushed
        if request.op == "trade_rows":
            limit = min(int(args.get("limit", TRADE_PAGE)), TRADE_PAGE)
            return trade_history.trade_rows(storage.engine, int(args["offset"]), limit)
        symbol = str(args["symbol"])
        exchange.require_market(symbol)
        from_no = args.get("from_no")
        first = None if from_no is None else f"{exchange.book(symbol).order_id_prefix}T{int(from_no)}"
        return trade_history.stored_trades(
            storage.engine, symbol, first, args.get("start_ms"), args.get("end_ms"), int(args["limit"])
        )

    # ------------------------------------------------------------------ sending

    def _batch_from_journal_thread(self, position: int, messages: list[dict[str, Any]]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            body = protocol.encode_batch(position, messages)
            loop.call_soon_threadsafe(self._send, protocol.md_subject(self.prefix, self.shard), body)

    def _send(self, subject: str, body: bytes) -> None:
        """Queue a publication; one task sends them in order."""
        if len(body) > self.nc.max_payload:
            body = protocol.encode_error(ServiceUnavailable("the answer is larger than NATS carries"))
        self._outbox.append((subject, body))
        self._outbox_ready.set()

    async def _send_forever(self) -> None:
        outbox = self._outbox
        while True:
            if not outbox:
                if not self._running:
                    return
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            while outbox:
                subject, body = outbox.popleft()
                try:
                    await self.nc.publish(subject, body)
                except Exception:
                    log.exception("shard %s: publish on %s failed", self.shard, subject)


def _same_number(stored: object, given: object) -> bool:
    """Whether an order's stored decimal string and a request's number are the same value (both None
    counts as the same)."""
    if stored is None or given is None:
        return stored is None and given is None
    try:
        left = Decimal(str(stored))
        right = Decimal(repr(given)) if isinstance(given, float) else Decimal(str(given))
    except (InvalidOperation, ValueError):
        return False
    return left == right


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a read failed", exc_info=task.exception())
