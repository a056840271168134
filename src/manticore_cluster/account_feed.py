"""The account shard's balance messages: each touched user's balances after every durable change.

In a split deployment the account shard owns the users' money, so it, not a market shard, tells the
gateways about balances. :class:`BalanceFeed` takes each live record the account ledger journals
(deposit, withdrawal, the hold of a route, a settlement; see
:attr:`~.account_shard.AccountLedger.commit_listeners`) and snapshots the balances of the users it
touched **when it is applied**, so a message shows the state after that record and nothing later.
:meth:`BalanceFeed.release` hands over the snapshots of the records the journal has made durable, in
journal order, as one batch of stream messages shaped as the embedded exchange's::

    {"type": "balances", "user_id": ..., "balances": {asset: {"available", "held"}}, "transfer": bool}

``transfer`` is true for a deposit or withdrawal (a Binance ``balanceUpdate``), false otherwise; a
gateway removes it before a native WebSocket frame. Within one release a user's consecutive
non-transfer snapshots are merged into the latest (the client sees the latest durable state), never
across a transfer. Nothing is released before it is durable; what a leader had not released when it
died is not sent again (as the embedded server's frames after a crash).

Call :meth:`BalanceFeed.note` and :meth:`BalanceFeed.release` on one thread (the account server's
event loop, where the ledger's commands run).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from .account import AccountState

__all__ = ["BalanceFeed"]


class BalanceFeed:
    """Balance messages of ``state``'s durable changes, handed to ``send(position, messages)``
    (position: the journal position of the last record in the batch)."""

    def __init__(self, state: AccountState, send: Callable[[int, list[dict[str, Any]]], None]) -> None:
        self._state = state
        self._send = send
        self._pending: deque[tuple[int, list[dict[str, Any]]]] = deque()

    @property
    def pending(self) -> bool:
        """Whether snapshots wait for their records' durability."""
        return bool(self._pending)

    def note(self, record: dict[str, Any], users: list[str]) -> None:
        """Snapshot the balances of ``users`` right after ``record`` (journaled at ``record["n"]``) was
        applied (an :class:`~.account_shard.AccountLedger` commit listener)."""
        if not users:
            return
        transfer = record["op"] in ("deposit", "withdraw")
        balances = self._state.balances
        self._pending.append(
            (
                int(record["n"]),
                [
                    {"type": "balances", "user_id": user, "balances": balances(user), "transfer": transfer}
                    for user in users
                ],
            )
        )

    def release(self, durable: int) -> None:
        """Send the snapshots of the records up to position ``durable`` (one batch, journal order)."""
        pending = self._pending
        batch: list[dict[str, Any]] = []
        merge_into: dict[str, int] = {}  # user -> index in batch of their latest non-transfer message
        position = 0
        while pending and pending[0][0] <= durable:
            position, messages = pending.popleft()
            for message in messages:
                user = message["user_id"]
                index = merge_into.get(user)
                if message["transfer"]:
                    merge_into.pop(user, None)
                    batch.append(message)
                elif index is not None:
                    batch[index] = message
                else:
                    merge_into[user] = len(batch)
                    batch.append(message)
        if batch:
            self._send(position, batch)

    def clear(self) -> None:
        """Forget what was not released (a leader stopping)."""
        self._pending.clear()
