"""The account shard leader's side of phase 2: gateway commands in, routes out, settlements back.

:class:`AccountServer` serves an opened :class:`~manticore_cluster.account_shard.AccountLedger` on the
account shard's subjects with the gateway protocol (:mod:`.protocol`), so a gateway talks to it as to a
phase-1 shard:

* ``place_order``, ``modify_order``, ``cancel_order``, ``cancel_order_by_client_id``: the ledger checks
  and journals a ``route``; once it is durable the route is sent to the leader of the market shard that
  owns the symbol (its ``<prefix>.cmd.<market shard>`` subject, op ``routed``), re-sent with the same
  body until a leader answers (the market shard de-duplicates by ``(account shard, position)``); its
  answer carries the market shard's settlements, which the ledger journals (de-duplicated by
  ``(market shard, seq)``); once that is durable the gateway gets the market's answer: the receipt
  ``{"position": <route position>, "order_id", "order"}`` or the market's refusal (same error class,
  code and message as the embedded exchange).
* ``deposit``, ``withdraw``: journaled here, answered when durable.
* reads: ``balances`` (available, and held = in transit + on market shards), ``markets``, and
  ``risk_limits`` (the configured limits, which a gateway's Binance surface publishes).

**Outbox.** Pending routes are state (they are in the log): on :meth:`start` (a new leader) every
pending route is sent again, and a route whose delivery failed is retried every ``retry_interval``.
Settlements a market shard makes on its own (GTD expiry) are pulled: every ``pull_interval`` the
server asks each market shard for its settlements after the last one applied (query ``settlements``).
Every message is derived from durable state and every receiver de-duplicates, so re-sending after a
failover is harmless: a route waiting for a market shard's leader that died is re-sent the moment its
successor announces itself (:mod:`.leader_news`), not after the attempt timeout.

Every command is journaled under the request's ``cmd`` as its command id (:mod:`.account_shard`): a
gateway retry (``"retry": true``) of a request journaled before, by this leader or its predecessor, is
answered with that command's result (a deposit or withdrawal once durable, a route once settled) and
never journaled twice. A retried place with a client order id that the account already routed is
recognised by that name too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from decimal import Decimal
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from manticore_matching import (
    ExchangeError,
    InvalidCommand,
    OrderNotFound,
    ServiceUnavailable,
    UnknownMarket,
)

from . import protocol
from .account_feed import BalanceFeed
from .account_shard import AccountLedger
from .leader_news import LeaderChanged, LeaderNews
from .server import REPEAT_WINDOW

__all__ = ["ACCOUNT_COMMANDS", "ACCOUNT_QUERIES", "AccountServer"]

log = logging.getLogger("manticore_cluster")

ACCOUNT_COMMANDS = frozenset(
    {"place_order", "modify_order", "cancel_order", "cancel_order_by_client_id", "deposit", "withdraw"}
)
ACCOUNT_QUERIES = frozenset({"balances", "markets", "require_market", "risk_limits", "component_health"})
#: The kind of record each command journals (its command id names one kind only).
_KINDS = {
    "place_order": "place",
    "modify_order": "modify",
    "cancel_order": "cancel",
    "cancel_order_by_client_id": "cancel",
    "deposit": "deposit",
    "withdraw": "withdraw",
}
#: Balance messages per NATS message (~200 bytes each: well inside NATS's 1 MB default payload).
_BALANCES_PER_MESSAGE = 1000
_ROUTE_OPS = frozenset({"place_order", "modify_order", "cancel_order", "cancel_order_by_client_id"})


class AccountServer:
    """Serves ``ledger`` as the account shard ``shard`` on ``nc`` (see the module doc)."""

    def __init__(
        self,
        nc: Client,
        ledger: AccountLedger,
        shard: str,
        prefix: str,
        *,
        attempt_timeout: float = 2.0,
        pull_interval: float = 0.5,
        durable_timeout: float = 30.0,
    ) -> None:
        self.nc = nc
        self.ledger = ledger
        self.shard = shard
        self.prefix = prefix
        self.attempt_timeout = attempt_timeout
        self.pull_interval = pull_interval
        self.durable_timeout = durable_timeout
        self._subscriptions: list[Subscription] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        #: route position -> the task delivering it (one at a time per route)
        self._delivering: dict[int, asyncio.Task[None]] = {}
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: list[asyncio.Future[None]] = []
        #: settlements received that do not apply yet (an earlier one of their shard is on its way)
        self._early: dict[tuple[str, int], dict[str, Any]] = {}
        self.commands = 0
        self.deliveries = 0
        #: market shard -> its leader announcements (routes in flight are re-sent at once on one)
        self._news: dict[str, LeaderNews] = {}
        #: each touched user's balances after every durable change, on the account's market-data subject
        self.feed = BalanceFeed(ledger.state, self._publish_balances)

    async def start(self) -> None:
        """Subscribe, resend every pending route, start pulling settlements."""
        if self._running:
            return
        self._running = True
        self._loop = asyncio.get_running_loop()
        self.ledger.durable_listeners.append(self._durable_from_journal_thread)
        self.ledger.commit_listeners.append(self._on_commit)
        nc = self.nc
        self._subscriptions = [
            await nc.subscribe(protocol.cmd_subject(self.prefix, self.shard), cb=self._on_command),
            await nc.subscribe(protocol.query_subject(self.prefix, self.shard), cb=self._on_query),
        ]
        for shard in sorted({shard for _config, shard in self.ledger.state.markets.values()}):
            subject = protocol.leader_subject(self.prefix, shard)
            self._subscriptions.append(await nc.subscribe(subject, cb=self._on_leader))
        await nc.flush()
        for position in sorted(self.ledger.state.routes):
            self._deliver_soon(position)
        self._spawn(self._pull_forever())
        log.info("account shard %s: serving on %s", self.shard, protocol.cmd_subject(self.prefix, self.shard))

    async def stop(self) -> None:
        """Unsubscribe and stop delivering (pending routes stay in the log for the next leader)."""
        if not self._running:
            return
        self._running = False
        with contextlib.suppress(ValueError):
            self.ledger.durable_listeners.remove(self._durable_from_journal_thread)
        with contextlib.suppress(ValueError):
            self.ledger.commit_listeners.remove(self._on_commit)
        self.feed.clear()
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions = []
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._delivering.clear()

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ gateway commands

    async def _on_command(self, msg: Msg) -> None:
        reply = msg.reply
        try:
            request = protocol.decode_request(msg.data, ACCOUNT_COMMANDS)
        except protocol.ProtocolError as exc:
            if reply:
                await self.nc.publish(reply, protocol.encode_error(exc))
            return
        self._spawn(self._command(request, reply))

    async def _command(self, request: protocol.Request, reply: str | None) -> None:
        try:
            result = await self._run(request)
            body = protocol.encode_ok(result)
        except Exception as exc:
            if not isinstance(exc, ExchangeError | protocol.ProtocolError):
                log.exception("account shard %s: command failed", self.shard)
            body = protocol.encode_error(exc)
        self.commands += 1
        if reply and self._running:
            with contextlib.suppress(Exception):
                await self.nc.publish(reply, body)

    async def _run(self, request: protocol.Request) -> dict[str, Any]:
        ledger = self.ledger
        args = request.args
        op = request.op
        cmd = request.cmd
        if request.retry:
            # The same request again (a gateway's retry after a timeout or a failover): the command
            # journaled under its id the first time, by this leader or a predecessor, answers it.
            position = ledger.repeated(cmd, _KINDS[op])
            if position is not None:
                if op in ("deposit", "withdraw"):
                    await self._durable(position)
                    return _transfer_receipt(position)
                return await self._result(position)
        if op in ("deposit", "withdraw"):
            record = getattr(ledger, op)(args["user_id"], args["asset"], args["amount"], command_id=cmd)
            await self._durable(record["n"])
            return _transfer_receipt(record["n"])
        if op == "place_order" and (request.retry or args.get("client_order_id") is not None):
            found = self._routed_before(args, None if request.retry else REPEAT_WINDOW)
            if found is not None:
                return await self._result(found)
        if op == "place_order":
            record = ledger.place(
                args.pop("user_id"),
                args.pop("symbol"),
                args.pop("side"),
                args.pop("quantity"),
                command_id=cmd,
                **args,
            )
        elif op in ("cancel_order", "cancel_order_by_client_id"):
            try:
                if op == "cancel_order":
                    record = ledger.cancel(args.get("user_id"), args.get("order_id"), command_id=cmd)
                else:
                    record = ledger.cancel(args["user_id"], None, args.get("client_order_id"), command_id=cmd)
            except OrderNotFound:
                found = self._cancelled_before(args) if request.retry else None
                if found is None:
                    raise
                return await self._result(found)
        else:
            record = ledger.modify(
                args.get("user_id"),
                args.get("order_id"),
                command_id=cmd,
                new_price=args.get("new_price"),
                new_quantity=args.get("new_quantity"),
                new_expiry_time=args.get("new_expiry_time"),
            )
        return await self._result(record["n"])

    def _routed_before(self, args: dict[str, Any], window: float | None) -> int | None:
        """The route position of this user's latest place under this client order id (pending,
        settled, or refused by the market), if it is the same order (and, with a ``window``, was
        journaled at most ``window`` seconds ago); None otherwise."""
        user, name = args.get("user_id"), args.get("client_order_id")
        if not isinstance(user, str) or not isinstance(name, str):
            return None
        state = self.ledger.state
        position = state.routed_names.get((user, name))
        if position is None:
            return None
        record = self.ledger.journal.record_at(position)
        if record is None or record.get("op") != "route":
            return None
        if window is not None and time.time() - float(record["ts"]) > window:
            return None
        action = record["action"]
        for key in ("symbol", "side"):
            if action.get(key) != args.get(key):
                return None
        if not _same_number(action.get("quantity"), args.get("quantity")) or not _same_number(
            action.get("price"), args.get("price")
        ):
            return None
        if window is not None and self._cancelled_by_user(f"MC-{position}"):
            return None  # its user cancelled it: the name is being reused, not the order repeated
        return position

    def _cancelled_by_user(self, order_id: str) -> bool:
        """Whether a kept settlement says a cancel command of its user ended ``order_id``."""
        for entry in reversed(self.ledger.state.results.values()):
            order = entry.get("order") or {}
            if order.get("order_id") == order_id and order.get("status") == "cancelled":
                return order.get("reason") == "user"
        return False

    def _cancelled_before(self, args: dict[str, Any]) -> int | None:
        """The route position of a successful cancel of this user's order (by id or name) among the
        kept answers: a retried cancel whose first attempt went through gets its answer."""
        user = args.get("user_id")
        state = self.ledger.state
        for position in reversed(state.results):
            entry = state.results[position]
            order = entry.get("order") or {}
            if entry["error"] is not None or order.get("status") != "cancelled":
                continue
            if user is not None and order.get("user_id") != user:
                continue
            if order.get("order_id") == args.get("order_id") or (
                args.get("client_order_id") is not None
                and order.get("client_order_id") == args.get("client_order_id")
            ):
                return int(position)
        return None

    async def _result(self, position: int) -> dict[str, Any]:
        """Wait until the route at ``position`` is settled here (delivering it meanwhile) and durable;
        its receipt, or raise the market's refusal."""
        await self._durable(position)
        state = self.ledger.state
        while position not in state.results:
            if position not in state.routes:
                raise InvalidCommand(f"route {position} is not known")
            task = self._deliver_soon(position)
            await asyncio.shield(task)
        await self._durable(self.ledger.journal.appended)
        entry = state.results[position]
        error = entry["error"]
        if error is not None:
            raise protocol.error_of(error)
        return {"position": position, "order_id": entry["order_id"], "order": entry["order"], "result": {}}

    async def _durable(self, position: int) -> None:
        """Wait until the account journal has made ``position`` durable (woken by the ledger's
        durability callback; checked at least every 50 ms in case it is not wired)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.durable_timeout
        journal = self.ledger.journal
        while journal.durable < position:
            if not journal.healthy:
                raise ServiceUnavailable("the account journal failed")
            if loop.time() > deadline:
                raise ServiceUnavailable("the account journal did not make the command durable in time")
            woken = loop.create_future()
            self._woken.append(woken)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(woken, 0.05)

    def _durable_from_journal_thread(self, _position: int) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._woken:
            loop.call_soon_threadsafe(self._wake)
        if self.feed.pending:
            loop.call_soon_threadsafe(self._release_balances)

    def _wake(self) -> None:
        woken, self._woken = self._woken, []
        for future in woken:
            if not future.done():
                future.set_result(None)

    # ------------------------------------------------------------------ balance messages

    def _on_commit(self, record: dict[str, Any], users: list[str]) -> None:
        """A ledger commit listener: snapshot the touched users' balances (released once durable)."""
        self.feed.note(record, users)
        loop = self._loop
        if users and loop is not None and self.ledger.journal.durable >= int(record["n"]):
            loop.call_soon_threadsafe(self._release_balances)  # durable before it was noted

    def _release_balances(self) -> None:
        if self._running:
            self.feed.release(self.ledger.journal.durable)

    def _publish_balances(self, position: int, messages: list[dict[str, Any]]) -> None:
        """Publish released balance messages on the account shard's market-data subject (which every
        split gateway follows), at most :data:`_BALANCES_PER_MESSAGE` to a NATS message, in order."""
        subject = protocol.md_subject(self.prefix, self.shard)
        for start in range(0, len(messages), _BALANCES_PER_MESSAGE):
            body = protocol.encode_batch(position, messages[start : start + _BALANCES_PER_MESSAGE])
            self._spawn(self.nc.publish(subject, body))

    # ------------------------------------------------------------------ routes out, settlements in

    def _deliver_soon(self, position: int) -> asyncio.Task[None]:
        task = self._delivering.get(position)
        if task is None or task.done():
            task = self._spawn(self._deliver(position))
            self._delivering[position] = task
        return task

    async def _deliver(self, position: int) -> None:
        """Send the route until its market shard's leader answers; journal the settlements."""
        state = self.ledger.state
        pause = 0.02
        while self._running and position in state.routes:
            message = state.message(position)
            shard = message.pop("shard")
            body = protocol.encode_request(f"{self.shard}:{position}", "routed", message, retry=True)
            news = self._news_of(shard)
            try:
                msg = await news.request(
                    self.nc, protocol.cmd_subject(self.prefix, shard), body, self.attempt_timeout, position
                )
                result = protocol.decode_reply(msg.data)
                self.deliveries += 1
                self._settle(result["result"]["settlements"])
                if position not in state.routes:
                    break
            except LeaderChanged:
                pause = 0.02
                continue  # sent to the market leader that died: to the new one at once
            except (
                NoRespondersError,
                NatsTimeout,
                asyncio.TimeoutError,
                nats.errors.ConnectionReconnectingError,
            ):
                pass  # no market leader now, or it did not answer in time: the same route again
            except ExchangeError as exc:
                log.warning("account shard %s: route %d refused by %s: %r", self.shard, position, shard, exc)
            await news.pause(pause, position)  # woken, oldest route first, by a new market leader
            pause = min(1.0, pause * 2)
        await self._durable(self.ledger.journal.appended)

    def _news_of(self, shard: str) -> LeaderNews:
        news = self._news.get(shard)
        if news is None:
            news = self._news[shard] = LeaderNews()
        return news

    async def _on_leader(self, msg: Msg) -> None:
        """A market shard's new leader serves: re-send the routes waiting for its predecessor now."""
        shard = msg.subject.rsplit(".", 1)[-1]
        self._news_of(shard).announced()

    def _settle(self, entries: list[dict[str, Any]]) -> None:
        """Journal what applies of ``entries`` and of the early ones kept from before; keep the rest
        (each market shard's reply carries only its own settlement, which may overtake another's)."""
        early = self._early
        for entry in entries:
            if isinstance(entry, dict) and "seq" in entry:
                early[(entry["source"], entry["seq"])] = entry
        if not early:
            return
        self.ledger.settle(list(early.values()))
        applied = self.ledger.state.applied
        for key in [key for key in early if key[1] <= applied.get(key[0], 0)]:
            del early[key]
        if len(early) > 100_000:  # never expected: the pull recovers whatever is dropped
            early.clear()

    async def _pull_forever(self) -> None:
        shards = sorted({shard for _config, shard in self.ledger.state.markets.values()})
        while self._running:
            await asyncio.sleep(self.pull_interval)
            for shard in shards:
                after = self.ledger.state.applied.get(shard, 0)
                body = protocol.encode_request(f"{self.shard}:pull", "settlements", {"after": after})
                try:
                    msg = await self.nc.request(
                        protocol.query_subject(self.prefix, shard), body, timeout=self.attempt_timeout
                    )
                    self._settle(protocol.decode_reply(msg.data))
                except Exception as exc:  # no leader now: next round
                    log.debug("account shard %s: pull from %s failed: %r", self.shard, shard, exc)
            for position in sorted(self.ledger.state.routes):
                self._deliver_soon(position)

    # ------------------------------------------------------------------ reads

    async def _on_query(self, msg: Msg) -> None:
        reply = msg.reply
        if not reply:
            return
        try:
            request = protocol.decode_request(msg.data, ACCOUNT_QUERIES)
            state = self.ledger.state
            if request.op == "balances":
                result: Any = {"balances": state.balances(request.args["user_id"])}
            elif request.op == "markets":
                result = {symbol: config.to_dict() for symbol, (config, _shard) in state.markets.items()}
            elif request.op == "require_market":
                symbol = request.args.get("symbol")
                if symbol not in state.markets:
                    raise UnknownMarket(f"there is no market {str(symbol)[:64]!r}")
                result = None
            elif request.op == "risk_limits":
                result = dataclasses.asdict(state.limits)
            else:
                result = {"status": "ok", "journal": {"appended": self.ledger.journal.appended}}
            body = protocol.encode_ok(result)
        except Exception as exc:
            body = protocol.encode_error(exc)
        await self.nc.publish(reply, body)


def _transfer_receipt(position: int) -> dict[str, Any]:
    return {"position": position, "order_id": None, "order": None, "result": {}}


def held_total(ledger: AccountLedger, asset: str) -> Decimal:
    """Sum over users of what is held of ``asset`` (for monitoring)."""
    state = ledger.state
    return sum((state.held(user, asset) for user in state.users()), Decimal(0))


def _same_number(stored: object, given: object) -> bool:
    """Whether a journaled decimal string and a request's number are the same value (None = None)."""
    if stored is None or given is None:
        return stored is None and given is None
    try:
        return Decimal(str(stored)) == Decimal(str(given))
    except ArithmeticError:
        return False
