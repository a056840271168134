"""The gateway's side of the protocol: :class:`RemoteExchange`, the exchange a gateway's API talks to.

It has the methods of :class:`~manticore_matching.Exchange` that the native API (``manticore_api``)
calls, each implemented as a request to the shard's current leader (:mod:`.protocol`), so the API
code runs unchanged on top of it:

* **Reads** (``get_snapshot``, ``balances``, ``open_orders``, ``get_order``, ``fills``, ``markets``
  ...): :meth:`read` awaits one on the caller's event loop (what the API's handlers do, through
  :class:`~.gateway_reads.RemoteReads`), so the loop serves other requests while it waits. The
  synchronous methods block the caller's thread for the round trip (~0.2-0.5 ms on loopback); on an
  event loop's thread they give up after ``loop_deadline`` (503) rather than the full retry deadline.
* **Commands** (``place_order``, ``modify_order``, ``cancel_order`` ...) return at once, before the
  leader has answered: a :class:`~manticore_matching.Receipt` whose ``position`` is a local *ticket*
  (rising per gateway) and whose other fields are filled in from the reply. The caller waits for the
  ticket (:meth:`wait_ticket`, what ``GatewayService.durable`` awaits), which returns once the leader
  has answered (after the command is durable) or raises the leader's error (the same exception class,
  code and message as the embedded exchange raises at the call). So a gateway's many concurrent
  requests share the leader's journal commits, and the event loop never waits for the shard.

The NATS connection runs on a private event loop in a daemon thread (:meth:`open` starts it);
market-data listeners (:meth:`add_listener`) are called from that thread, in journal order, as the
embedded exchange calls them from its journal thread.

**Retries**: a request that gets no answer is sent again, with the same body marked as a retry, until a
leader answers or ``deadline`` seconds pass (then ServiceUnavailable, 503): always when no leader was
subscribed (the request was not delivered), after a timeout or a 503 answer, and **at once when a new
leader announces itself** while the request waits for an answer or between attempts
(:mod:`.leader_news`: oldest first; a request in flight at a leader's death does not wait for its
attempt timeout).
Every request has an id (``cmd``, 32 hex digits, generated per client request and the same on each
of its attempts); a command's id is its command id on the leader, which journals it and answers a
repetition with the original result without applying it again, also after a failover (see :mod:`.server` and
:mod:`manticore_matching.command_ids`). A placement without a ``client_order_id`` gets a generated one
(``gw-`` and 32 hex digits), which the leader's older retry rule (by client order id) needs; the order
then carries that id where the embedded server would show none.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from manticore_matching import Demand, MarketConfig, Receipt, ServiceUnavailable

from . import natsconf, protocol
from .leader_news import LeaderChanged, LeaderNews
from .natsconf import NatsOptions

__all__ = ["GENERATED_CLIENT_PREFIX", "RemoteExchange"]

log = logging.getLogger("manticore_cluster")

#: The prefix of the client order ids a gateway generates for orders placed without one.
GENERATED_CLIENT_PREFIX = "gw-"
Listener = Callable[[list[dict[str, Any]]], None]


class RemoteExchange:
    """The exchange of shard ``shard``, reached over NATS (see the module doc).

    Args:
        servers: NATS URL(s) (a list is the cluster's seeds).
        shard: the shard's name.
        prefix: the subject prefix (see :mod:`.protocol`).
        attempt_timeout: seconds one attempt waits for an answer (a command's answer waits for its
            durability, so keep it well above the journal's commit time).
        deadline: seconds after which a request that no leader answered fails with ServiceUnavailable
            (set it above the lease TTL plus the standby's catch-up).
        connect_deadline: seconds :meth:`open` tries to reach NATS (ConnectionError then); once
            connected, the connection reconnects forever (:func:`.natsconf.connect`).
        loop_deadline: the deadline of a read called on an event loop's thread (see :meth:`call`).
    """

    def __init__(
        self,
        servers: str | list[str],
        shard: str,
        prefix: str = "mc",
        *,
        attempt_timeout: float = 5.0,
        deadline: float = 30.0,
        connect_deadline: float = 15.0,
        loop_deadline: float = 2.0,
    ) -> None:
        self.loop_deadline = loop_deadline
        self.servers = servers
        self.connect_deadline = connect_deadline
        self.shard = shard
        self.prefix = prefix
        self.attempt_timeout = attempt_timeout
        self.deadline = deadline
        self._cmd_subject = protocol.cmd_subject(prefix, shard)
        self._query_subject = protocol.query_subject(prefix, shard)
        self._md_subject = protocol.md_subject(prefix, shard)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._listeners: list[Listener] = []
        self._tickets: dict[int, tuple[concurrent.futures.Future[Any], float]] = {}
        self._ticket_numbers = itertools.count(1)
        self._issued = 0
        self.last_position = 0
        self.retries = 0
        #: the shard's leader announcements (requests in flight are re-sent at once on one)
        self.leader_news = LeaderNews()
        self.gaps = 0

    # ------------------------------------------------------------------ life cycle

    def open(self) -> None:
        """Start the NATS thread and connect: ConnectionError when NATS cannot be reached within
        ``connect_deadline`` seconds, ClusterConfigError for a bad prefix."""
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(target=self._run, args=(loop, ready), name="manticore-nats", daemon=True)
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            ready.result(timeout=30)
        except BaseException:
            self.close()
            raise

    def _run(self, loop: asyncio.AbstractEventLoop, ready: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(loop)

        async def connect() -> None:
            servers = (self.servers,) if isinstance(self.servers, str) else tuple(self.servers)
            options = NatsOptions(servers=servers, prefix=self.prefix, name=f"manticore-gateway-{self.shard}")
            try:
                nc = await asyncio.wait_for(natsconf.connect(options), self.connect_deadline)
            except asyncio.TimeoutError:
                raise ConnectionError(
                    f"cannot reach NATS at {', '.join(servers)} within {self.connect_deadline:g} s"
                ) from None
            await nc.subscribe(self._md_subject, cb=self._on_batch)
            await nc.subscribe(protocol.leader_subject(self.prefix, self.shard), cb=self._on_leader)
            await nc.flush()
            self._nc = nc

        try:
            loop.run_until_complete(connect())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def close(self) -> None:
        """Drain the connection and stop the NATS thread (tickets still open fail)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive() and not loop.is_closed():
            nc = self._nc
            if nc is not None:
                future = asyncio.run_coroutine_threadsafe(nc.close(), loop)
                try:
                    future.result(timeout=10)
                except Exception:
                    log.warning("closing the NATS connection failed", exc_info=True)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        self._loop = self._thread = self._nc = None

    def __enter__(self) -> RemoteExchange:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    async def request(self, op: str, args: dict[str, Any], deadline: float | None = None) -> Any:
        """Send ``op`` (a command or a read) with keyword arguments ``args`` to the leader, retrying as
        the module doc says until ``deadline`` seconds (default: the exchange's) have passed; return its
        result or raise its error. Runs on the NATS thread's loop."""
        nc = self._nc
        if nc is None:
            raise ServiceUnavailable("the gateway is not connected to NATS")
        subject = self._cmd_subject if op in protocol.COMMANDS else self._query_subject
        loop = asyncio.get_running_loop()
        first_sent = loop.time()
        give_up = first_sent + (self.deadline if deadline is None else deadline)
        cmd = uuid.uuid4().hex
        maybe_delivered = False
        pause = 0.02
        while True:
            body = protocol.encode_request(cmd, op, args, retry=maybe_delivered)
            wait = max(0.01, min(self.attempt_timeout, give_up - loop.time()))
            try:
                msg = await self.leader_news.request(nc, subject, body, wait, first_sent)
                return protocol.decode_reply(msg.data)
            except LeaderChanged:
                maybe_delivered = True  # sent to the leader that died: to the new one at once
                self.retries += 1
                continue
            except NoRespondersError:
                pass  # no leader is subscribed (none elected yet): try again after the pause below
            except (
                ServiceUnavailable,
                NatsTimeout,
                asyncio.TimeoutError,
                nats.errors.ConnectionReconnectingError,
            ):
                maybe_delivered = True  # the leader recognises the repetition by its cmd (see .server)
            if loop.time() + pause >= give_up:
                raise ServiceUnavailable(f"no leader of shard {self.shard} answered")
            self.retries += 1
            await self.leader_news.pause(pause, first_sent)  # woken, oldest first, by a new leader
            pause = min(0.5, pause * 2)

    def call(self, op: str, deadline: float | None = None, **args: Any) -> Any:
        """:meth:`request` from any thread but the NATS thread, blocking until it returns. Called on a
        thread that runs an event loop (the API's, whose in-memory reads are synchronous), the deadline
        is at most ``loop_deadline``: during a failover such reads answer 503 quickly instead of
        stopping the loop (and every other request of the gateway) for the whole retry deadline."""
        loop = self._loop
        if loop is None:
            raise ServiceUnavailable("the gateway is not connected to NATS")
        if threading.current_thread() is self._thread:
            raise RuntimeError("RemoteExchange.call would block its own NATS thread")
        if _on_event_loop():
            deadline = min(self.loop_deadline, self.deadline if deadline is None else deadline)
        future = asyncio.run_coroutine_threadsafe(self.request(op, args, deadline), loop)
        return future.result(
            timeout=(self.deadline if deadline is None else deadline) + self.attempt_timeout + 5
        )

    async def read(self, op: str, **args: Any) -> Any:
        """:meth:`request` awaited on the caller's event loop (any loop but the NATS thread's): the loop
        goes on serving while the request waits for its answer, a leader, or the deadline."""
        return await asyncio.wrap_future(self.start_read(op, **args))

    def start_read(self, op: str, **args: Any) -> concurrent.futures.Future[Any]:
        """:meth:`request` started on the NATS thread from any thread, without waiting: its future."""
        loop = self._loop
        if loop is None:
            raise ServiceUnavailable("the gateway is not connected to NATS")
        return asyncio.run_coroutine_threadsafe(self.request(op, args), loop)

    def _submit(self, op: str, args: dict[str, Any]) -> Receipt:
        """Send a command without waiting: its receipt, whose ``position`` is the ticket to wait for."""
        loop = self._loop
        if loop is None:
            raise ServiceUnavailable("the gateway is not connected to NATS")
        ticket = next(self._ticket_numbers)
        receipt = Receipt(ticket)
        future = asyncio.run_coroutine_threadsafe(self._command(op, args, receipt), loop)
        self._tickets[ticket] = (future, time.monotonic())
        self._issued += 1
        if self._issued % 1024 == 0:
            self._forget_abandoned()
        return receipt

    async def _command(self, op: str, args: dict[str, Any], receipt: Receipt) -> None:
        answer = protocol.receipt_from_result(await self.request(op, args))
        # The receipt was handed out before the answer came: fill it in before the ticket resolves
        # (its position stays the ticket, which is what the caller waits for).
        object.__setattr__(receipt, "order_id", answer.order_id)
        object.__setattr__(receipt, "order", answer.order)
        object.__setattr__(receipt, "result", answer.result)

    def ticket(self, position: int) -> concurrent.futures.Future[Any]:
        """The future of command ticket ``position`` (resolved when the leader answered; its exception
        is the leader's error). KeyError for an unknown or already collected ticket."""
        return self._tickets[position][0]

    async def wait_ticket(self, position: int) -> None:
        """Wait (on the caller's event loop) until ticket ``position`` is answered; raise its error.
        The ticket is collected."""
        entry = self._tickets.get(position)
        if entry is None:
            return
        try:
            await asyncio.wrap_future(entry[0])
        finally:
            self._tickets.pop(position, None)

    def ticket_done(self, position: int) -> bool:
        """True (and the ticket is collected) once ticket ``position`` was answered successfully; False
        while it waits or when it failed (wait for it to get the error)."""
        entry = self._tickets.get(position)
        if entry is None:
            return True
        future = entry[0]
        if not future.done() or future.exception() is not None:
            return False
        del self._tickets[position]
        return True

    def _forget_abandoned(self) -> None:
        """Collect answered tickets nobody waited for within a minute (their connection went away)."""
        cutoff = time.monotonic() - 60
        for ticket, (future, created) in list(self._tickets.items()):
            if created < cutoff and future.done():
                self._tickets.pop(ticket, None)

    async def _on_leader(self, _msg: Msg) -> None:
        self.leader_news.announced()

    # ------------------------------------------------------------------ market data

    async def _on_batch(self, msg: Msg) -> None:
        try:
            position, messages = protocol.decode_batch(msg.data)
        except protocol.ProtocolError:
            log.error("a malformed market-data message on %s", msg.subject)
            return
        if self.last_position and position != self.last_position + 1 and position > self.last_position:
            self.gaps += 1
        self.last_position = max(self.last_position, position)
        for listener in list(self._listeners):
            try:
                listener(messages)
            except Exception:
                log.exception("stream listener failed")

    def add_listener(self, listener: Listener, demand: Demand | None = None) -> None:
        """Call ``listener(messages)`` with each durable command's stream messages, in journal order,
        from the NATS thread (as :meth:`manticore_matching.Exchange.add_listener`). ``demand`` is
        accepted for that method's signature: a gateway passes on every message the shard
        published, so each listener still filters what it reads."""
        self._listeners.append(listener)

    def demand_changed(self) -> None:
        """As :meth:`manticore_matching.Exchange.demand_changed`: nothing to rebuild here (the shard's
        leader builds its messages for every gateway; see :meth:`add_listener`)."""

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ------------------------------------------------------------------ commands

    def place_order(
        self,
        user_id: str,
        symbol: str,
        side: str,
        quantity: object,
        price: object = None,
        order_type: str = "limit",
        time_in_force: str | None = None,
        expiry_time: object = None,
        stop_price: object = None,
        displayed_quantity: object = None,
        trail_value: object = None,
        trail_is_percent: bool = False,
        self_trade_prevention: str | None = None,
        client_order_id: str | None = None,
    ) -> Receipt:
        """:meth:`manticore_matching.Exchange.place_order` on the leader (a generated client order id
        when none is given, see the module doc)."""
        if client_order_id is None:
            client_order_id = GENERATED_CLIENT_PREFIX + uuid.uuid4().hex
        return self._submit(
            "place_order",
            {
                "user_id": user_id,
                "symbol": symbol,
                "side": side,
                "quantity": quantity,
                "price": price,
                "order_type": order_type,
                "time_in_force": time_in_force,
                "expiry_time": expiry_time,
                "stop_price": stop_price,
                "displayed_quantity": displayed_quantity,
                "trail_value": trail_value,
                "trail_is_percent": trail_is_percent,
                "self_trade_prevention": self_trade_prevention,
                "client_order_id": client_order_id,
            },
        )

    def modify_order(
        self,
        user_id: str | None,
        order_id: object,
        new_price: object = None,
        new_quantity: object = None,
        new_expiry_time: object = None,
    ) -> Receipt:
        """:meth:`manticore_matching.Exchange.modify_order` on the leader."""
        return self._submit(
            "modify_order",
            {
                "user_id": user_id,
                "order_id": order_id,
                "new_price": new_price,
                "new_quantity": new_quantity,
                "new_expiry_time": new_expiry_time,
            },
        )

    def cancel_order(self, user_id: str | None, order_id: object) -> Receipt:
        """:meth:`manticore_matching.Exchange.cancel_order` on the leader."""
        return self._submit("cancel_order", {"user_id": user_id, "order_id": order_id})

    def cancel_order_by_client_id(self, user_id: str, client_order_id: object) -> Receipt:
        """:meth:`manticore_matching.Exchange.cancel_order_by_client_id` on the leader."""
        return self._submit(
            "cancel_order_by_client_id", {"user_id": user_id, "client_order_id": client_order_id}
        )

    def deposit(self, user_id: str, asset: str, amount: object) -> Receipt:
        """:meth:`manticore_matching.Exchange.deposit` on the leader."""
        return self._submit("deposit", {"user_id": user_id, "asset": asset, "amount": amount})

    def withdraw(self, user_id: str, asset: str, amount: object) -> Receipt:
        """:meth:`manticore_matching.Exchange.withdraw` on the leader."""
        return self._submit("withdraw", {"user_id": user_id, "asset": asset, "amount": amount})

    def create_market(self, config: MarketConfig) -> Receipt:
        """:meth:`manticore_matching.Exchange.create_market` on the leader."""
        return self._submit("create_market", {"config": config.to_dict()})

    def expire_due(self) -> int:
        """:meth:`manticore_matching.Exchange.expire_due` on the leader (blocking until durable)."""
        result = protocol.receipt_from_result(self.call("expire_due")).result
        return int(result.get("expired", 0))

    # ------------------------------------------------------------------ reads

    @property
    def trade_sources(self) -> list[RemoteExchange]:
        """The shards whose stored trades (``trade_rows``) make up the trade history: this one."""
        return [self]

    @property
    def markets(self) -> dict[str, MarketConfig]:
        """Market configs by symbol, in creation order (read from the leader)."""
        answer = self.call("markets")
        return {symbol: MarketConfig.from_dict(config) for symbol, config in answer.items()}

    def require_market(self, symbol: object) -> None:
        """UnknownMarket unless ``symbol`` is a market."""
        self.call("require_market", symbol=symbol)

    def get_snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        """See :meth:`manticore_matching.Exchange.get_snapshot`."""
        result: dict[str, Any] = self.call("get_snapshot", symbol=symbol, depth=depth)
        return result

    def recent_trades(self, symbol: str, limit: int = 100) -> list[dict[str, Any]]:
        """See :meth:`manticore_matching.Exchange.recent_trades`."""
        result: list[dict[str, Any]] = self.call("recent_trades", symbol=symbol, limit=limit)
        return result

    def balances(self, user_id: str) -> dict[str, Any]:
        """See :meth:`manticore_matching.Exchange.balances`."""
        result: dict[str, Any] = self.call("balances", user_id=user_id)
        return result

    def open_orders(self, user_id: str, symbol: str | None = None) -> list[dict[str, Any]]:
        """See :meth:`manticore_matching.Exchange.open_orders`."""
        result: list[dict[str, Any]] = self.call("open_orders", user_id=user_id, symbol=symbol)
        return result

    def get_order(self, user_id: str | None, order_id: str) -> dict[str, Any] | None:
        """See :meth:`manticore_matching.Exchange.get_order`."""
        result: dict[str, Any] | None = self.call("get_order", user_id=user_id, order_id=order_id)
        return result

    def get_order_by_client_id(self, user_id: str, client_order_id: str) -> dict[str, Any] | None:
        """See :meth:`manticore_matching.Exchange.get_order_by_client_id`."""
        result: dict[str, Any] | None = self.call(
            "get_order_by_client_id", user_id=user_id, client_order_id=client_order_id
        )
        return result

    def recent_order_by_client_id(self, user_id: object, client_order_id: object) -> dict[str, Any] | None:
        """See :meth:`manticore_matching.Exchange.recent_order_by_client_id`."""
        result: dict[str, Any] | None = self.call(
            "recent_order_by_client_id", user_id=user_id, client_order_id=client_order_id
        )
        return result

    def order_history(
        self, user_id: str, symbol: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """See :meth:`manticore_matching.Exchange.order_history`."""
        result: list[dict[str, Any]] = self.call("order_history", user_id=user_id, symbol=symbol, limit=limit)
        return result

    def fills(self, user_id: str, symbol: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """See :meth:`manticore_matching.Exchange.fills`."""
        result: list[dict[str, Any]] = self.call("fills", user_id=user_id, symbol=symbol, limit=limit)
        return result

    def statistics(self) -> dict[str, Any]:
        """The leader's counters (:meth:`manticore_matching.Exchange.statistics`)."""
        result: dict[str, Any] = self.call("statistics")
        return result

    def journal_state(self) -> dict[str, Any]:
        """The leader's journal (:meth:`manticore_matching.Exchange.journal_state`)."""
        result: dict[str, Any] = self.call("journal_state")
        return result

    def component_health(self) -> dict[str, Any]:
        """The leader's part of the health report (:meth:`manticore_matching.Exchange.component_health`);
        one attempt only (ServiceUnavailable at once while no leader answers: health must not wait)."""
        result: dict[str, Any] = self.call("component_health", deadline=self.attempt_timeout)
        return result


def _on_event_loop() -> bool:
    """Whether the calling thread is running an asyncio event loop (a synchronous call blocks it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
