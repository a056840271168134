"""The account shard's state machine on a command log: journal, replay, checkpoint (phase 2).

:class:`AccountLedger` is to :class:`~manticore_cluster.account.AccountState` what
:class:`~manticore_matching.Exchange` is to its books: every accepted command becomes a record with the
clock reading ``ts``, appended to a :class:`~manticore_matching.CommandLog` (the file journal, or the
account shard's JetStream subject through :class:`~manticore_cluster.log.JetStreamJournal`: fenced,
group-committed, followed by a warm standby exactly as a market shard's), and applied to the state. A
restart loads ``<data_dir>/account-checkpoint.json`` and replays the log after it; the state is a pure
function of the records, so a rebuild from the log alone gives the same state.

**Command ids** (as :mod:`manticore_matching.command_ids` for a market shard): a command given a
``command_id`` (a gateway's request ``cmd``, the same on every retry) carries it in its record
(``"cid"``); :attr:`AccountLedger.commands` remembers ``id -> position`` when the record is journaled,
in replay, and across checkpoints, so a retry after a timeout or a failover finds the command journaled
the first time (:meth:`AccountLedger.repeated`) instead of journaling it again.

Threading: one lock serialises commands; durability is waited for with :meth:`wait_durable`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from manticore_matching import CommandLog, ServiceUnavailable
from manticore_matching.command_ids import CommandResults, check_command_id
from manticore_matching.commands import Receipt
from manticore_matching.journal import JournalClosed

from .account import AccountState

__all__ = ["CHECKPOINT", "AccountLedger"]

CHECKPOINT = "account-checkpoint.json"


class AccountLedger:
    """An :class:`AccountState` journaled on ``journal`` with checkpoints in ``data_dir``.

    Commands (:meth:`place`, :meth:`cancel`, :meth:`modify`, :meth:`deposit`, :meth:`withdraw`,
    :meth:`settle`) return the record they journaled (``n`` = its position) or raise the exchange's
    errors, changing nothing; ServiceUnavailable once the journal cannot write."""

    def __init__(
        self,
        data_dir: Path | str,
        state: AccountState,
        journal: CommandLog,
        *,
        clock: Callable[[], float] = time.time,
        checkpoint_every: int = 100_000,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = state
        self.journal = journal
        self._clock = clock
        self._now = 0.0
        self._lock = threading.RLock()
        self._checkpoint_every = checkpoint_every
        self._since_checkpoint = 0
        self.replayed_records = 0
        #: recently journaled command ids (see the module doc)
        self.commands = CommandResults()
        #: called with each new durable position, from the journal's thread (see :meth:`on_durable`)
        self.durable_listeners: list[Callable[[int], None]] = []
        #: called as ``listener(record, users)`` after each live command's record is journaled (not
        #: yet durable) and applied, on the committing thread, under the command lock; ``users``: those
        #: whose balances it changed (:meth:`AccountState.touched_users`). Not called in replay.
        self.commit_listeners: list[Callable[[dict[str, Any], list[str]], None]] = []

    def on_durable(self, position: int) -> None:
        """The journal's durability callback: build the journal with it
        (``JetStreamJournal(..., on_durable=ledger.on_durable)``) to have :attr:`durable_listeners`
        called."""
        for listener in list(self.durable_listeners):
            listener(position)

    def open(self) -> None:
        """Load the checkpoint, replay the log after it (a following journal keeps yielding until its
        standby is promoted), start the journal."""
        with self._lock:
            path = self.data_dir / CHECKPOINT
            if path.exists():
                saved = orjson.loads(path.read_bytes())
                self.state.load(saved["state"])
                self.state.results.update((int(n), entry) for n, entry in saved.get("results", []))
                self.state.routed_names.update(((u, c), int(n)) for u, c, n in saved.get("routed_names", []))
                self.commands.restore_state(saved.get("commands", []))
                self._now = float(saved["time"])
            for record in self.journal.read(after=self.state.position):
                self._now = max(self._now, float(record["ts"]))
                self.state.apply(record)
                self._remember(record)
                self.replayed_records += 1
            self.journal.start()

    def close(self, *, checkpoint: bool = True) -> None:
        """Checkpoint (after the journal is durable) and close the journal."""
        with self._lock:
            try:
                if checkpoint:
                    self.checkpoint()
            finally:
                self.journal.close()

    def checkpoint(self) -> int:
        """Write the state at the journal's current position (waits for durability); return it."""
        with self._lock:
            position = self.journal.appended
            self.wait_durable(position, None)
            body = orjson.dumps(
                {
                    "time": self._now,
                    "state": self.state.export(),
                    "results": [[n, entry] for n, entry in self.state.results.items()],
                    "routed_names": [[u, c, n] for (u, c), n in self.state.routed_names.items()],
                    "commands": self.commands.export_state(),
                }
            )
            path = self.data_dir / CHECKPOINT
            temporary = path.with_suffix(".tmp")
            with temporary.open("wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(path)
            self.journal.rotate(position)
            self._since_checkpoint = 0
            return position

    def wait_durable(self, position: int, timeout: float | None = 30.0) -> bool:
        """Block until ``position`` is durable (True) or ``timeout`` passes (False)."""
        try:
            return self.journal.wait(position, timeout)
        except JournalClosed as exc:
            raise ServiceUnavailable("the account journal cannot write") from exc

    # ------------------------------------------------------------------ commands

    def _tick(self) -> float:
        self._now = max(self._clock(), self._now)
        return self._now

    def repeated(self, command_id: object, kind: str) -> int | None:
        """The position of the command journaled recently under ``command_id``, or None (not given,
        or not known). ``kind``: ``deposit``, ``withdraw``, or a route's action (``place``, ``cancel``,
        ``modify``). InvalidCommand (``duplicate_command_id``) if the id named a command of another
        kind, (``invalid_command_id``) if it is not a valid id."""
        with self._lock:
            found = self.commands.lookup(check_command_id(command_id), kind)
            return None if found is None else found.position

    def _remember(self, record: dict[str, Any]) -> None:
        command_id = record.get("cid")
        if command_id is not None:
            kind = record["action"]["kind"] if record["op"] == "route" else record["op"]
            self.commands.remember(command_id, kind, float(record["ts"]), Receipt(int(record["n"])))

    def commit(self, record: dict[str, Any], command_id: str | None = None) -> dict[str, Any]:
        """Journal and apply a record built by the state's ``*_record`` methods just now (under the
        caller's serialisation of commands), under ``command_id`` when given (see the module doc);
        return it with its position ``n``."""
        if not self.journal.healthy:
            raise ServiceUnavailable("the account journal cannot write")
        if command_id is not None:
            record["cid"] = command_id
        try:
            self.journal.append(record)  # sets record["n"]
        except JournalClosed as exc:
            raise ServiceUnavailable("the account journal cannot write") from exc
        listeners = self.commit_listeners
        users = self.state.touched_users(record) if listeners else []
        self.state.apply(record)
        for listener in listeners:
            listener(record, users)
        self._remember(record)
        self._since_checkpoint += 1
        if self._checkpoint_every and self._since_checkpoint >= self._checkpoint_every:
            self.checkpoint()
        return record

    def place(
        self,
        user_id: str,
        symbol: str,
        side: str,
        quantity: object,
        command_id: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Check and hold a new order; its ``route`` record (order id ``MC-<n>``)."""
        with self._lock:
            command_id = check_command_id(command_id)
            now = self._tick()
            record = self.state.place_record(
                now, self.journal.appended + 1, user_id, symbol, side, quantity, **kwargs
            )
            return self.commit(record, command_id)

    def cancel(
        self,
        user_id: str | None,
        order_id: object = None,
        client_order_id: object = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """The ``route`` record of a cancel."""
        with self._lock:
            command_id = check_command_id(command_id)
            record = self.state.cancel_record(self._tick(), user_id, order_id, client_order_id)
            return self.commit(record, command_id)

    def modify(
        self, user_id: str | None, order_id: object, command_id: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The ``route`` record of a modify."""
        with self._lock:
            command_id = check_command_id(command_id)
            return self.commit(
                self.state.modify_record(self._tick(), user_id, order_id, **kwargs), command_id
            )

    def deposit(
        self, user_id: str, asset: str, amount: object, command_id: str | None = None
    ) -> dict[str, Any]:
        """A deposit's record."""
        with self._lock:
            command_id = check_command_id(command_id)
            record = self.state.transfer_record(self._tick(), "deposit", user_id, asset, amount)
            return self.commit(record, command_id)

    def withdraw(
        self, user_id: str, asset: str, amount: object, command_id: str | None = None
    ) -> dict[str, Any]:
        """A withdrawal's record (OrderRejected ``insufficient_balance`` above the available balance)."""
        with self._lock:
            command_id = check_command_id(command_id)
            record = self.state.transfer_record(self._tick(), "withdraw", user_id, asset, amount)
            return self.commit(record, command_id)

    def settle(self, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Journal the market shards' settlements among ``entries`` that apply next; None if none does."""
        with self._lock:
            record = self.state.settle_record(self._tick(), entries)
            return None if record is None else self.commit(record)
