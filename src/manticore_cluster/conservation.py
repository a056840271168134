"""Conservation of money across an account shard and its market shards (phase 2, docs/scale-out.md).

:func:`check` takes the account shard's state and each market shard's exchange (or, over NATS, their
exported views: :func:`market_view`) and raises ``AssertionError`` naming the first broken rule:

* every market shard passes ``RiskManager.check_invariants`` and holds no *available* balance (the sweep
  after each command returns it);
* the account's state after applying every settlement still in the market shards' outboxes (what is
  in flight towards it) mirrors each market shard's holds exactly, per shard, user and asset;
* per asset: ``sum(available + held)`` at the account (held = in transit + on market shards) ``+`` the
  market shards' fees ``==`` deposits ``-`` withdrawals at the account.

With ``quiescent=True`` (no route pending, every settlement applied) the account itself, not the
projection, must satisfy the last two.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypedDict

from manticore_matching import Exchange

from .account import AccountState

__all__ = ["MarketView", "check", "market_view"]

ZERO = Decimal(0)


class MarketView(TypedDict):
    """What the checker reads of a market shard: ``held[user][asset]``, ``available`` the same,
    ``fees[asset]``, ``pending`` (its outbox settlements, oldest first), ``invariant_error`` (None or
    the message of its risk invariant check)."""

    held: dict[str, dict[str, str]]
    available: dict[str, dict[str, str]]
    fees: dict[str, str]
    pending: list[dict[str, Any]]
    invariant_error: str | None


def market_view(exchange: Exchange) -> MarketView:
    """The :class:`MarketView` of a market-shard exchange (call it under no command)."""
    state = exchange.risk.export_state()
    held: dict[str, dict[str, str]] = {}
    available: dict[str, dict[str, str]] = {}
    for row in state["accounts"]:
        held.setdefault(row["user_id"], {})[row["asset"]] = row["held"]
        available.setdefault(row["user_id"], {})[row["asset"]] = row["available"]
    error = None
    try:
        exchange.risk.check_invariants()
    except AssertionError as exc:
        error = str(exc) or "risk invariants broken"
    outbox = exchange.outbox
    return {
        "held": held,
        "available": available,
        "fees": {asset: str(amount) for asset, amount in exchange.risk.fees_collected().items()},
        "pending": [] if outbox is None else outbox.after(0),
        "invariant_error": error,
    }


def check(account: AccountState, markets: dict[str, MarketView], *, quiescent: bool = False) -> None:
    """Raise AssertionError unless money is conserved (see the module docstring). ``markets``: market
    shard name -> its view."""
    account.check_invariants()
    for shard, view in markets.items():
        assert view["invariant_error"] is None, f"market shard {shard}: {view['invariant_error']}"
        for user, assets in view["available"].items():
            for asset, amount in assets.items():
                assert Decimal(amount) == 0, f"market shard {shard}: {user!r} has {amount} {asset} available"
    if quiescent:
        assert not account.routes, f"routes still pending: {sorted(account.routes)}"
        for shard, view in markets.items():
            late = [e["seq"] for e in view["pending"] if e["seq"] > account.applied.get(shard, 0)]
            assert not late, f"settlements of {shard} not applied: {late}"
        projected = account
    else:
        projected = account.copy()
        entries = [entry for view in markets.values() for entry in view["pending"]]
        record = projected.settle_record(0.0, entries)
        if record is not None:
            record["n"] = projected.position
            projected.apply(record)
        for shard, view in markets.items():
            late = [e["seq"] for e in view["pending"] if e["seq"] > projected.applied.get(shard, 0)]
            assert not late, f"settlements of {shard} do not chain: {late}"
    for shard, view in markets.items():
        mirror = projected.mirror.get(shard, {})
        keys = {(u, a) for u, assets in view["held"].items() for a in assets}
        keys |= {(u, a) for u, assets in mirror.items() for a in assets}
        for user, asset in keys:
            theirs = Decimal(view["held"].get(user, {}).get(asset, "0"))
            ours = mirror.get(user, {}).get(asset, ZERO)
            assert theirs == ours, f"{shard} holds {theirs} {asset} of {user!r}, the account says {ours}"
    totals: dict[str, Decimal] = {}
    tables = [projected.available, projected.transit, *projected.mirror.values()]
    for table in tables:
        for amounts in table.values():
            for name, value in amounts.items():
                totals[name] = totals.get(name, ZERO) + value
    for view in markets.values():
        for asset, fee in view["fees"].items():
            totals[asset] = totals.get(asset, ZERO) + Decimal(fee)
    for asset in set(totals) | set(account.net):
        got, net = totals.get(asset, ZERO), account.net.get(asset, ZERO)
        assert got == net, f"{asset}: balances + held + fees {got} != deposits - withdrawals {net}"
