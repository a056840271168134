"""Random exchange command streams (deposits, every order type, cancels, modifies, clock ticks).

A stream is a list of JSON-ready dicts so that a child process can run it. :func:`run` applies commands
to an :class:`Exchange` and swallows the errors a client may legitimately get (rejections, unknown
orders): those commands change nothing, which the tests check separately.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from manticore_matching import Exchange, ExchangeError, MarketConfig
from manticore_matching.feed import fill_view
from manticore_matching.formatting import money

START = 1_700_000_000.0
MARKETS = (
    MarketConfig("BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.1"), Decimal("0.001"), Decimal("0.002")),
    MarketConfig(
        "ETH/USD", "ETH", "USD", Decimal("0.01"), Decimal("0.01"), Decimal("-0.0005"), Decimal("0.002")
    ),
)
USERS = ("alice", "bob", "carol")


class Clock:
    """A settable clock."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def new_exchange(data_dir: Path, clock: Clock, **kwargs: Any) -> Exchange:
    return Exchange(data_dir, markets=MARKETS, clock=clock, fsync=False, **kwargs)


def crash_releases_lock(exchange: Exchange) -> None:
    """What the kernel does when the process holding ``exchange`` dies: its data directory lock and its
    ownership of the storage database go."""
    assert exchange.directory_lock is not None
    exchange.directory_lock.release()
    if exchange.storage is not None:
        exchange.storage.release_ownership()


def crashed_journal_with_a_trade(data_dir: Path, clock: Clock) -> tuple[Path, list[bytes]]:
    """Open an exchange in ``data_dir``, fund alice and bob, let them trade 1 BTC at 100, then crash
    it (journal closed without a checkpoint, lock released): its one journal segment and that
    segment's lines (each with its newline)."""
    exchange = new_exchange(data_dir, clock)
    exchange.open()
    for user in ("alice", "bob"):
        exchange.deposit(user, "USD", "10000")
        exchange.deposit(user, "BTC", "10")
    exchange.place_order("alice", "BTC/USD", "sell", "1", price="100")
    exchange.place_order("bob", "BTC/USD", "buy", "1", price="100")
    exchange.wait_durable(exchange.journal.appended, 10)
    exchange.journal.close()
    crash_releases_lock(exchange)
    (segment,) = exchange.journal.segments()
    return segment, segment.read_bytes().splitlines(keepends=True)


def make_stream(seed: int, length: int) -> list[dict[str, Any]]:
    """``length`` reproducible commands; the first ones fund every user."""
    rng = random.Random(seed)
    commands: list[dict[str, Any]] = []
    for user in USERS:
        for asset, amount in (("USD", "100000"), ("BTC", "50"), ("ETH", "500")):
            commands.append({"op": "deposit", "user_id": user, "asset": asset, "amount": amount})
    placed = 0
    for _ in range(length):
        roll = rng.random()
        if roll < 0.6 or placed == 0:
            placed += 1
            symbol = rng.choice(["BTC/USD", "BTC/USD", "ETH/USD"])
            centre, tick, lot = (
                (100, Decimal("0.5"), Decimal("0.1"))
                if symbol == "BTC/USD"
                else (20, Decimal("0.01"), Decimal("0.01"))
            )
            args: dict[str, Any] = {
                "user_id": rng.choice(USERS),
                "symbol": symbol,
                "side": rng.choice(["buy", "sell"]),
                "quantity": str(lot * rng.randint(1, 30)),
            }
            price = str(centre + tick * rng.randint(-8, 8))
            kind = rng.random()
            if kind < 0.55:
                args.update(price=price, time_in_force=rng.choice(["GTC", "GTC", "IOC", "FOK"]))
            elif kind < 0.62:
                args.update(price=price, time_in_force="GTD", expiry_time=START + rng.randint(1, 400))
            elif kind < 0.68:
                args.update(order_type="market")
            elif kind < 0.76:
                args.update(
                    price=price, order_type="iceberg", displayed_quantity=str(lot * rng.randint(1, 5))
                )
                args["quantity"] = str(lot * rng.randint(6, 40))
            elif kind < 0.82:
                args.update(price=price, order_type="post_only")
            elif kind < 0.86:
                args.update(
                    price=price, order_type="stop_limit", stop_price=str(centre + tick * rng.randint(-8, 8))
                )
            elif kind < 0.88:
                args.update(order_type="stop_market", stop_price=str(centre + tick * rng.randint(-8, 8)))
            elif kind < 0.9:
                args.update(order_type="trailing_stop", trail_value=str(tick * rng.randint(1, 4)))
                if args["side"] == "buy" or rng.random() < 0.5:  # a buy needs its protection limit
                    args["price"] = price
            else:
                args.update(
                    price=price,
                    self_trade_prevention=rng.choice(
                        ["cancel_newest", "cancel_oldest", "cancel_both", "decrement"]
                    ),
                )
            if rng.random() < 0.3:  # a small pool of names: duplicates among live orders are refused
                args["client_order_id"] = f"c{rng.randint(1, 6)}"
            commands.append({"op": "place", **args})
        elif roll < 0.78:
            commands.append(
                {"op": "cancel", "user_id": rng.choice(USERS), "order_id": f"MC-{rng.randint(1, placed)}"}
            )
        elif roll < 0.9:
            change: dict[str, Any] = {
                "op": "modify",
                "user_id": rng.choice(USERS),
                "order_id": f"MC-{rng.randint(1, placed)}",
            }
            if rng.random() < 0.5:
                change["new_quantity"] = str(Decimal("0.1") * rng.randint(1, 40))
            else:
                change["new_price"] = str(100 + Decimal("0.5") * rng.randint(-8, 8))
            commands.append(change)
        elif roll < 0.97:
            commands.append({"op": "tick", "seconds": rng.randint(1, 60)})
        else:
            commands.append({"op": "expire"})
    return commands


def apply(exchange: Exchange, clock: Clock, command: dict[str, Any]) -> int | None:
    """Run one command; return its journal position, or None if it was refused (and changed nothing)."""
    args = dict(command)
    op = args.pop("op")
    try:
        if op == "deposit":
            return exchange.deposit(**args).position
        if op == "place":
            return exchange.place_order(**args).position
        if op == "cancel":
            return exchange.cancel_order(args["user_id"], args["order_id"]).position
        if op == "modify":
            user = args.pop("user_id")
            order_id = args.pop("order_id")
            return exchange.modify_order(user, order_id, **args).position
        if op == "tick":
            clock.now += args["seconds"]
            return None
        if op == "expire":
            exchange.expire_due()
            return None
    except ExchangeError:
        return None
    raise AssertionError(f"unknown op {op}")


def state(exchange: Exchange) -> dict[str, Any]:
    """Everything that must survive a restart: books, ledger, counters."""
    return {
        "books": {symbol: exchange.book(symbol).export_state() for symbol in exchange.markets},
        "risk": exchange.risk.export_state(),
        "next_order_no": exchange._next_order_no,
        "live_client_ids": sorted(
            f"{user}/{name}={oid}" for (user, name), oid in exchange._live_client_ids.items()
        ),
        "markets": [config.to_dict() for config in exchange.markets.values()],
    }


def expected_fill_message(data: dict[str, Any]) -> dict[str, Any]:
    """The private ``fill`` message of an ORDER_FILLED event ``data`` as the contract writes it:
    ``fill_view`` (quote asset USD), the fee as money, then the order's progress, keys in that order."""
    return {
        "type": "fill",
        "user_id": data["user_id"],
        **fill_view(data, "USD"),  # type: ignore[arg-type]
        "fee": money(data["fee"]),
        "status": data["status"],
        "filled_quantity": data["filled_quantity"],
        "remaining_quantity": data["remaining_quantity"],
    }
