"""What a command releases once durable: its storage units and stream messages, in journal order.

Nothing leaves the process before the command's journal record is on disk: :class:`Release` queues
each command's storage units and messages under its journal position, and the journal's writer thread
(:meth:`Release.on_durable`) hands them on when the position becomes durable: a round's units to
storage (in one call), then messages to the stream listeners (each command's to the per-command
listeners, then the whole round's to the round listeners in one call), then the position to the
durability listeners. After the units of a round it submits the journal position of the last
command they belong to (:meth:`~manticore_storage.StorageManager.submit_journal_position`), which
storage commits in the same transaction as their rows: a restart replays the journal without
submitting those units again.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from manticore_storage import StorageManager

from .demand import Demand, Wanted

__all__ = [
    "BatchListener",
    "Entry",
    "Listener",
    "Listeners",
    "RecordEntry",
    "RecordListener",
    "Release",
    "RoundListener",
]

log = logging.getLogger("manticore_matching")

#: ``listener(messages)``: one durable command's stream messages.
Listener = Callable[[list[dict[str, Any]]], None]
#: ``listener(position, messages)``: one durable command's journal position and stream messages.
BatchListener = Callable[[int, list[dict[str, Any]]], None]
#: ``listener(position, batches)``: one durable round: its last journal position and the stream
#: messages of its commands (one list per command that has any, in journal order; maybe none).
RoundListener = Callable[[int, list[list[dict[str, Any]]]], None]
#: ``(journal position, storage units, stream messages, clock reading)`` of one command.
Entry = tuple[int, list[Any], list[dict[str, Any]], float]
#: ``listener(records)``: the fill records (:data:`~.feed.FILL_RECORD`) or trade records
#: (:data:`~.feed.TRADE_RECORD`) of one durable round, in journal order (never an empty list).
RecordListener = Callable[[list[tuple[Any, ...]]], None]
#: ``(journal position, fill records, trade records)`` of one command that has any.
RecordEntry = tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]


class Release:
    """The queue of commands waiting for durability, and who is told when they are durable."""

    __slots__ = (
        "_released_changed",
        "batch_listeners",
        "demands",
        "durable_listeners",
        "fill_listeners",
        "listeners",
        "records",
        "released",
        "round_listeners",
        "trade_listeners",
        "unreleased",
    )

    def __init__(self) -> None:
        self.unreleased: deque[Entry] = deque()
        self.listeners: list[Listener] = []
        self.batch_listeners: list[BatchListener] = []
        self.round_listeners: list[RoundListener] = []
        self.durable_listeners: list[Callable[[int], None]] = []
        self.fill_listeners: list[RecordListener] = []
        self.trade_listeners: list[RecordListener] = []
        #: The fill and trade records of the queued commands that have any, in journal order.
        self.records: deque[RecordEntry] = deque()
        #: Every stream listener (per command, batch or round) with its demand (None: every message).
        self.demands: list[tuple[object, Demand | None]] = []
        #: Every command up to this journal position has been handed on (units to storage).
        self.released = 0
        self._released_changed = threading.Condition()

    def wait_released(self, position: int, timeout: float | None = None) -> bool:
        """Block until :meth:`on_durable` has handed on every command up to ``position`` (its units
        are in storage's queue); False on timeout."""
        with self._released_changed:
            return self._released_changed.wait_for(lambda: self.released >= position, timeout)

    def wanted(self) -> Wanted | None:
        """What the stream listeners read, together (None: there is no stream listener)."""
        demands = list(self.demands)
        return Wanted(demand for _, demand in demands) if demands else None

    def on_durable(self, position: int, storage: StorageManager | None) -> None:
        """Release every queued command up to ``position`` (the journal's writer thread calls this)."""
        unreleased = self.unreleased
        entries: list[Entry] = []
        while unreleased and unreleased[0][0] <= position:
            entries.append(unreleased.popleft())
        if storage is not None:
            # The round's units first, in journal order and in one call, then the journal position
            # of the last command that had any (committed with their rows: a restart need not submit
            # them again).
            submitted: Entry | None = None
            round_units: list[Any] = []
            for entry in entries:
                units = entry[1]
                if units:
                    round_units += units
                    submitted = entry
            if submitted is not None:
                storage.submit_many(round_units)
                storage.submit_journal_position(submitted[0], submitted[3])
        rounds: list[list[dict[str, Any]]] | None = [] if self.round_listeners else None
        # The listeners of the round, copied once (a listener added or removed meanwhile counts from
        # the next round).
        listeners = tuple(self.listeners)
        batch_listeners = tuple(self.batch_listeners)
        for released, _, batch, _ in entries:
            if batch:
                for listener in listeners:
                    try:
                        listener(batch)
                    except Exception:
                        log.exception("stream listener failed")
                for batch_listener in batch_listeners:
                    try:
                        batch_listener(released, batch)
                    except Exception:
                        log.exception("stream listener failed")
                if rounds is not None:
                    rounds.append(batch)
        records = self.records
        if records and records[0][0] <= position:
            self._release_records(position)
        with self._released_changed:
            self.released = position
            self._released_changed.notify_all()
        if rounds is not None:
            for round_listener in list(self.round_listeners):
                try:
                    round_listener(position, rounds)
                except Exception:
                    log.exception("stream listener failed")
        for durable_listener in list(self.durable_listeners):
            try:
                durable_listener(position)
            except Exception:
                log.exception("durability listener failed")

    def _release_records(self, position: int) -> None:
        """The fill and trade records of the commands up to ``position``, in one call per listener."""
        records = self.records
        fills: list[tuple[Any, ...]] = []
        trades: list[tuple[Any, ...]] = []
        while records and records[0][0] <= position:
            _, command_fills, command_trades = records.popleft()
            fills += command_fills
            trades += command_trades
        for listeners, round_records in ((self.fill_listeners, fills), (self.trade_listeners, trades)):
            if round_records:
                for record_listener in list(listeners):
                    try:
                        record_listener(round_records)
                    except Exception:
                        log.exception("stream listener failed")


class Listeners:
    """Who an exchange tells about durable commands (the exchange's ``_release`` is a :class:`Release`).

    Every stream listener may name a :class:`~manticore_matching.demand.Demand`: what it reads of the
    messages. Without one it is given every message; with one, at least the messages it names (the
    exchange builds only what some listener reads: :mod:`manticore_matching.demand`)."""

    _release: Release

    def add_listener(self, listener: Listener, demand: Demand | None = None) -> None:
        """Call ``listener(messages)`` with each durable command's stream messages, in journal order,
        from the journal's writer thread (see :mod:`manticore_matching.feed` for the shapes)."""
        self._release.listeners.append(listener)
        self._add_demand(listener, demand)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        if listener in self._release.listeners:
            self._release.listeners.remove(listener)
        self._drop_demand(listener)

    def add_batch_listener(self, listener: BatchListener, demand: Demand | None = None) -> None:
        """Like :meth:`add_listener`, with each command's journal position first:
        ``listener(position, messages)`` (positions rise; commands without messages are skipped)."""
        self._release.batch_listeners.append(listener)
        self._add_demand(listener, demand)

    def remove_batch_listener(self, listener: BatchListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._release.batch_listeners:
            self._release.batch_listeners.remove(listener)
        self._drop_demand(listener)

    def add_round_listener(self, listener: RoundListener, demand: Demand | None = None) -> None:
        """Call ``listener(position, batches)`` once per durable round, from the journal's writer thread:
        ``position`` is the round's last journal position, ``batches`` the stream messages of its
        commands (one list per command that has any, in journal order; an empty list when none has).
        Called after the round's per-command listeners and storage's hand-off, before the durability
        listeners: one call (one hand-off to another thread) per round instead of one per command."""
        self._release.round_listeners.append(listener)
        self._add_demand(listener, demand)

    def remove_round_listener(self, listener: RoundListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._release.round_listeners:
            self._release.round_listeners.remove(listener)
        self._drop_demand(listener)

    def add_fill_listener(self, listener: RecordListener) -> None:
        """Call ``listener(records)`` with the fill records (:data:`~.feed.FILL_RECORD` tuples: ``(user_id,
        order_id, trade_id, price, quantity, fee)``) of every durable fill, once per durable round that
        has any, in journal order, from the journal's writer thread: after the round's per-command
        and batch listeners, before its round and durability listeners. For a reader of every fill
        that needs a few of its values (the Binance fill ledger): a record is one tuple, where a
        ``fill`` message for every fill is a dict of 16 keys built on the command path."""
        self._release.fill_listeners.append(listener)
        self._add_demand(listener, Demand(fill_records=True))

    def remove_fill_listener(self, listener: RecordListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._release.fill_listeners:
            self._release.fill_listeners.remove(listener)
        self._drop_demand(listener)

    def add_trade_listener(self, listener: RecordListener) -> None:
        """Like :meth:`add_fill_listener`, for every durable trade of every market: ``listener(records)``
        with :data:`~.feed.TRADE_RECORD` tuples ``(symbol, price, quantity, timestamp, taker_side,
        sequence, trade_id)`` (the candles' reader: a trade message's values but its ``type``)."""
        self._release.trade_listeners.append(listener)
        self._add_demand(listener, Demand(trade_records=True))

    def remove_trade_listener(self, listener: RecordListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._release.trade_listeners:
            self._release.trade_listeners.remove(listener)
        self._drop_demand(listener)

    def demand_changed(self) -> None:
        """Tell the exchange that a listener's :class:`~manticore_matching.demand.Demand` changed; it
        applies from the next command on."""
        self._listeners_changed()

    def _add_demand(self, listener: object, demand: Demand | None) -> None:
        self._release.demands.append((listener, demand))
        self._listeners_changed()

    def _drop_demand(self, listener: object) -> None:
        demands = self._release.demands
        for index, (known, _) in enumerate(demands):
            if known == listener:
                del demands[index]
                break
        self._listeners_changed()

    def _listeners_changed(self) -> None:
        """Called after a stream listener or its demand changed (the exchange builds stream messages
        only while some listener reads them)."""

    def add_durable_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(position)`` from the journal's writer thread each time commands up to
        ``position`` become durable (after their messages went to the stream listeners)."""
        self._release.durable_listeners.append(listener)

    def remove_durable_listener(self, listener: Callable[[int], None]) -> None:
        """Stop calling ``listener``."""
        if listener in self._release.durable_listeners:
            self._release.durable_listeners.remove(listener)
