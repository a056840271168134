"""A market shard's side of account/market sharding: routed commands, the sweep, the settlement outbox.

In a split deployment (docs/scale-out.md, "Phase 2") the account shard holds a user's funds before an
order reaches a book and sends them along with the command (``funding``); the market shard's
:class:`~manticore_matching.Exchange` credits them, runs the command, and then **sweeps**: every user
the command touched gets their whole *available* balance on the market shard taken back. What is
left on the market shard is exactly what its books hold for live orders. Each sweep is reported as a
**settlement** (:func:`settlement`), kept in the :class:`Outbox` until the account shard says it has
applied it.

A settlement is a plain JSON object::

    {"source": <market shard>, "seq": <its journal position>, "prev": <seq of the previous settlement
     of this shard, 0 for the first>, "routed": [<account shard>, <its position>] | None,
     "order_id": str | None, "order": {...} | None, "error": {"type", "code", "message"} | None,
     "users": {user: {asset: {"returned": str, "held": str}}}, "ended": [order ids]}

``returned`` is what the sweep gave back (add it to the user's available balance at the account),
``held`` what the market shard holds for the user in that asset now (absolute). ``ended`` lists the
orders the command's events named that are no longer live. ``prev`` chains the settlements so that the
account applies them gap-free and in order, and de-duplicates by ``seq``.

Everything here is deterministic: it is derived from the journal record and the book's events, so a
replay rebuilds the same outbox.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from manticore_orderbook import EventType, OrderBook
from manticore_risk import RiskManager

__all__ = ["Outbox", "ended_orders", "settlement", "sweep"]

_ID_KEYS = ("order_id", "maker_order_id", "taker_order_id")
_STALE: dict[str, Any] = {"stale": True}


class Outbox:
    """Settlements not yet applied by the account shard, and the routed commands already applied.

    ``done[source][n]`` is the position of the record that applied the account shard ``source``'s
    command at its position ``n``; entries at or below ``below[source]`` (the account says every route
    up to there is settled) are forgotten, and a command that old is answered as stale."""

    __slots__ = ("below", "done", "last", "pending")

    def __init__(self) -> None:
        self.pending: dict[int, dict[str, Any]] = {}
        self.last = 0
        self.done: dict[str, dict[int, int]] = {}
        self.below: dict[str, int] = {}

    def lookup(self, source: str, n: int) -> dict[str, Any] | None:
        """The settlement of an already applied routed command (``{"stale": True}`` when it is too old
        to be kept, or pruned because the account applied it), or None for a new command."""
        if n <= self.below.get(source, 0):
            return _STALE
        position = self.done.get(source, {}).get(n)
        if position is None:
            return None
        found: dict[str, Any] = self.pending.get(position, _STALE)
        return found

    def note_route(self, source: str, n: int, below: int, acked: int, position: int) -> None:
        """Remember a routed command applied at ``position``; forget what the account says is settled
        (routes up to ``below``) or applied (settlements up to ``acked``)."""
        if below > self.below.get(source, 0):
            self.below[source] = below
            done = self.done.get(source)
            if done:
                for old in [key for key in done if key <= below]:
                    del done[old]
        self.done.setdefault(source, {})[n] = position
        for seq in [seq for seq in self.pending if seq <= acked]:
            del self.pending[seq]

    def add(self, entry: dict[str, Any]) -> None:
        """Append a settlement (its ``prev`` is set here)."""
        entry["prev"] = self.last
        self.last = entry["seq"]
        self.pending[entry["seq"]] = entry

    def after(self, seq: int) -> list[dict[str, Any]]:
        """The pending settlements after ``seq``, oldest first."""
        return [entry for position, entry in self.pending.items() if position > seq]

    def export(self) -> dict[str, Any]:
        """JSON state for the checkpoint."""
        return {
            "pending": list(self.pending.values()),
            "last": self.last,
            "done": {source: [[n, p] for n, p in done.items()] for source, done in self.done.items()},
            "below": dict(self.below),
        }

    def load(self, state: dict[str, Any]) -> None:
        """Replace the state with a checkpoint's :meth:`export`."""
        self.pending = {int(entry["seq"]): entry for entry in state.get("pending", [])}
        self.last = int(state.get("last", 0))
        self.done = {
            source: {int(n): int(p) for n, p in pairs} for source, pairs in state.get("done", {}).items()
        }
        self.below = {source: int(value) for source, value in state.get("below", {}).items()}


def ended_orders(book: OrderBook, events: list[tuple[EventType, Any]]) -> list[str]:
    """The orders ``events`` name that are not live in ``book`` now, in the order first named."""
    seen: dict[str, None] = {}
    for _event_type, data in events:
        for key in _ID_KEYS:
            value = data.get(key)
            if isinstance(value, str):
                seen[value] = None
        many = data.get("order_ids")
        if isinstance(many, list):
            for value in many:
                if isinstance(value, str):
                    seen[value] = None
    return [order_id for order_id in seen if book.get_order(order_id) is None]


def sweep(risk: RiskManager, users: list[str]) -> dict[str, dict[str, dict[str, str]]]:
    """Take every listed user's available balances out of ``risk`` (a withdrawal each); return per
    user per asset ``{"returned", "held"}`` (exact decimal strings) for every asset the user has."""
    report: dict[str, dict[str, dict[str, str]]] = {}
    for user in users:
        assets: dict[str, dict[str, str]] = {}
        for asset, amounts in risk.balances(user).items():
            available = Decimal(amounts["available"])
            if available > 0:
                risk.withdraw(user, asset, available)
            assets[asset] = {"returned": amounts["available"], "held": amounts["held"]}
        if assets:
            report[user] = assets
    return report


def settlement(
    source: str,
    seq: int,
    routed: list[Any] | None,
    order_id: str | None,
    order: dict[str, Any] | None,
    error: dict[str, Any] | None,
    users: dict[str, dict[str, dict[str, str]]],
    ended: list[str],
) -> dict[str, Any]:
    """A settlement object (see the module docstring; ``prev`` is set by :meth:`Outbox.add`)."""
    return {
        "source": source,
        "seq": seq,
        "prev": 0,
        "routed": routed,
        "order_id": order_id,
        "order": order,
        "error": error,
        "users": users,
        "ended": ended,
    }
