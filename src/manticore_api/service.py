"""The exchange as the server runs it: the Exchange plus auth, on one asyncio loop.

:class:`ExchangeService` is what the HTTP and WebSocket handlers talk to. Commands run on the loop
thread (each takes microseconds); acknowledgements wait asynchronously for the journal's group commit
(:meth:`ExchangeService.durable`), so many requests share one ``fsync``. A timer expires GTD orders.
Each durable round's stream messages and position arrive from the journal's writer thread and are
handed to the loop in one call (one wake-up per round, not per command), where
:class:`~manticore_api.streams.StreamHub` fans the messages out before the round's acknowledgements
are released. The exchange builds only the messages the hub's subscriptions read (its
:class:`~manticore_matching.Demand`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from manticore_auth import AuthManager
from manticore_matching import Exchange, ServiceUnavailable

from .handoff import LoopHandoff
from .reads import AsyncReads
from .streams import StreamHub

if TYPE_CHECKING:
    from .binance.history import TradeHistory

__all__ = ["ExchangeService"]

log = logging.getLogger("manticore_api")


class ExchangeService:
    """Binds an opened :class:`Exchange` and an :class:`AuthManager` to the running event loop.

    Args:
        exchange: an opened exchange (the service closes it in :meth:`stop`).
        auth: the user and key store.
        require_auth: False only for the loopback-only development mode (see ``manticore serve``).
        expiry_interval: seconds between GTD expiry sweeps; each also answers every waiting command
            ServiceUnavailable once the journal has failed.
    """

    def __init__(
        self,
        exchange: Exchange,
        auth: AuthManager,
        *,
        require_auth: bool = True,
        expiry_interval: float = 0.25,
    ) -> None:
        self.exchange = exchange
        #: Reads for handlers on the loop (a gateway's await the shard: :mod:`.reads`).
        self.reads = self.make_reads()
        self.auth = auth
        self.require_auth = require_auth
        self.expiry_interval = expiry_interval
        self.hub = StreamHub(self.reads)
        self.started_at = time.time()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Commands waiting for durability: (position, number, future, deadline on the loop's clock).
        self._waiters: list[tuple[int, int, asyncio.Future[None], float]] = []
        self._waiter_no = 0
        #: The one timer that times out overdue waiters, and when it fires.
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._deadline_at = 0.0
        self._timer: asyncio.Task[None] | None = None
        self.commands = 0
        self._handoff = LoopHandoff(lambda: self._loop, self.hub.publish)

    def make_reads(self) -> AsyncReads:
        """The awaitable reads of :attr:`exchange` (a service over a remote exchange overrides it)."""
        return AsyncReads(self.exchange)

    def trade_history(self) -> TradeHistory:
        """What the Binance surface reads beside the native API (limits, stored trades): the exchange's
        own here (:mod:`.binance.history`)."""
        from .binance.history import TradeHistory

        return TradeHistory(self.exchange)

    async def start(self) -> None:
        """Attach to the running loop: the durable rounds' callback, the expiry timer."""
        self._loop = asyncio.get_running_loop()
        self.hub.on_demand = self.exchange.demand_changed
        self.exchange.add_round_listener(self._round_from_journal_thread, self.hub.demand)
        self._timer = asyncio.create_task(self._expire_forever(), name="manticore-expiry")

    async def stop(self) -> None:
        """Stop the timer, close the streams and the exchange (writing a checkpoint)."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        await self.hub.close()
        self.exchange.close()  # its last rounds still release their waiters
        self.exchange.remove_round_listener(self._round_from_journal_thread)

    # ------------------------------------------------------------------ acknowledgements

    async def durable(self, position: int, timeout: float = 30.0) -> None:
        """Wait until the command at ``position`` is durable; ServiceUnavailable on timeout or failure."""
        journal = self.exchange.journal
        if journal.durable >= position:
            return
        if not journal.healthy:
            raise ServiceUnavailable("the command journal cannot write")
        loop = self._loop
        assert loop is not None
        future: asyncio.Future[None] = loop.create_future()
        self._waiter_no = number = self._waiter_no + 1
        deadline = loop.time() + timeout
        waiters = self._waiters
        entry = (position, number, future, deadline)
        if not waiters or waiters[-1][0] <= position:  # the usual case: positions come in order
            waiters.append(entry)  # (number rises, so the list stays sorted)
        else:
            bisect.insort(waiters, entry)
        durable = journal.durable  # it may have become durable meanwhile (the journal's thread)
        if waiters[0][0] <= durable:
            self._release_waiters(durable)
        # One timer for every waiter (not one each: a timer per request is a heap push and a cancel).
        if self._deadline_timer is None or deadline < self._deadline_at:
            self._time_out_at(deadline)
        await future

    def _time_out_at(self, deadline: float) -> None:
        assert self._loop is not None
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        self._deadline_at = deadline
        self._deadline_timer = self._loop.call_at(deadline, self._time_out_waiters)

    def _time_out_waiters(self) -> None:
        """Answer ServiceUnavailable to every waiter past its deadline; set the timer for the next."""
        assert self._loop is not None
        self._deadline_timer = None
        now = self._loop.time()
        waiting = []
        for entry in self._waiters:
            if entry[3] > now:
                waiting.append(entry)
            elif not entry[2].done():
                entry[2].set_exception(ServiceUnavailable("the command could not be made durable in time"))
        self._waiters = waiting
        if waiting:
            self._time_out_at(min(entry[3] for entry in waiting))

    def is_durable(self, position: int) -> bool:
        """True once the command at ``position`` is durable (no waiting; :meth:`durable` waits)."""
        return self.exchange.journal.durable >= position

    def _round_from_journal_thread(self, position: int, batches: list[list[dict[str, Any]]]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_round, position, batches)

    def _on_round(self, position: int, batches: list[list[dict[str, Any]]]) -> None:
        """A durable round on the loop: its messages to the streams, then its acknowledgements.

        The hub is given the messages only while it has a subscription (its :attr:`StreamHub.demand`
        names one, or is None somewhere: everything): without one, ``publish`` finds no connection for
        any message (the other listeners' demands may still make the exchange build them)."""
        hub = self.hub
        demand = hub.demand
        books, trades, users = demand.books, demand.trades, demand.users
        if books is None or trades is None or users is None or books or trades or users:
            publish = hub.publish
            for batch in batches:
                publish(batch)
        self._release_waiters(position)

    def _release_waiters(self, position: int) -> None:
        waiters = self._waiters
        count = 0
        for entry in waiters:
            if entry[0] > position:
                break
            count += 1
            if not entry[2].done():
                entry[2].set_result(None)
        if count:
            del waiters[:count]

    # ------------------------------------------------------------------ streams and timers

    def _from_journal_thread(self, batch: list[dict[str, Any]]) -> None:
        """One command's messages from a remote exchange's thread (a gateway's feed) to the loop."""
        self._handoff.put(batch)

    def _fail_waiters_if_journal_failed(self) -> None:
        """Answer every waiting command with ServiceUnavailable once the journal has failed: a failed
        journal makes nothing durable any more, so they would otherwise wait for their timeout."""
        if self._waiters and not self.exchange.journal.healthy:
            waiters, self._waiters = self._waiters, []
            for _position, _number, future, _deadline in waiters:
                if not future.done():
                    future.set_exception(ServiceUnavailable("the command journal cannot write"))

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self.expiry_interval)
            self._fail_waiters_if_journal_failed()
            try:
                self.exchange.expire_due()
            except ServiceUnavailable:
                log.error("expiry sweep skipped: the journal cannot write")
            except Exception:
                log.exception("expiry sweep failed")

    def health(self) -> dict[str, Any]:
        """The health report: ``status`` ok/degraded and the state of each component."""
        parts = self.exchange.component_health()
        journal, storage = parts["journal"], parts["storage"]
        return {
            "status": "ok" if storage["ok"] and journal["ok"] else "degraded",
            "components": {
                "journal": journal,
                "storage": storage,
                "streams": {"connections": self.hub.connection_count},
            },
            "markets": list(self.exchange.markets),
            "orders_resting": parts["orders_resting"],
            "uptime_seconds": round(time.time() - self.started_at, 3),
        }
