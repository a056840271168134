"""Random command streams over every order type, shared by the state-transfer and storage tests.

A stream is a list of plain dicts (JSON-serialisable, so a child process can replay it): ``{"op": "add",
"args": {...}}``, ``{"op": "cancel", "order_id": ...}``, ``{"op": "modify", ...}``, ``{"op": "tick",
"seconds": ...}`` (advances the clock, letting GTD orders expire) and ``{"op": "expire"}``. Prices sit on a
0.5 tick around 100 and quantities on a 0.1 lot, so books cross, sweep, refill icebergs and trigger stops.
"""

from __future__ import annotations

import random
from typing import Any

from manticore_orderbook import InvalidOrderError, OrderBook

TICK = "0.5"
LOT = "0.1"
START = 1_700_000_000.0


class Clock:
    """A settable clock: starts at ``START`` and moves only when told."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def new_book(symbol: str = "TEST/USD", clock: Clock | None = None, **kwargs: Any) -> OrderBook:
    """A book on the streams' grid with small fees, so fees and decimals get exercised."""
    return OrderBook(
        symbol,
        tick_size=TICK,
        lot_size=LOT,
        maker_fee_rate="0.001",
        taker_fee_rate="0.002",
        clock=clock or Clock(),
        **kwargs,
    )


def _price(rng: random.Random, centre: float = 100.0) -> str:
    return str(centre + rng.randint(-8, 8) * 0.5)


def _qty(rng: random.Random, high: int = 30) -> str:
    return f"{rng.randint(1, high) / 10:.1f}"


def make_stream(seed: int, length: int) -> list[dict[str, Any]]:
    """A reproducible list of ``length`` commands (ids ``o1``, ``o2`` ...; some orders get generated ids)."""
    rng = random.Random(seed)
    commands: list[dict[str, Any]] = []
    ids: list[str] = []
    users = ["alice", "bob", "carol"]
    for n in range(length):
        roll = rng.random()
        if roll < 0.55 or not ids:
            order_id: str | None = f"o{n}" if rng.random() < 0.85 else None
            args: dict[str, Any] = {
                "side": rng.choice(["buy", "sell"]),
                "quantity": _qty(rng),
                "user_id": rng.choice(users),
            }
            kind = rng.random()
            if kind < 0.55:
                args["price"] = _price(rng)
                args["time_in_force"] = rng.choice(["GTC", "GTC", "GTC", "IOC", "FOK"])
            elif kind < 0.62:
                args["price"] = _price(rng)
                args["time_in_force"] = "GTD"
                args["expiry_time"] = START + rng.randint(1, 40)
            elif kind < 0.68:
                args["price"] = None
            elif kind < 0.76:
                args["price"] = _price(rng)
                args["order_type"] = "iceberg"
                args["quantity"] = _qty(rng, 60)
                args["displayed_quantity"] = _qty(rng, 5)
                if float(args["displayed_quantity"]) > float(args["quantity"]):
                    args["displayed_quantity"] = args["quantity"]
            elif kind < 0.82:
                args["price"] = _price(rng)
                args["order_type"] = "post_only"
            elif kind < 0.88:
                args["order_type"] = rng.choice(["stop_limit", "stop_market"])
                args["stop_price"] = _price(rng)
                args["price"] = _price(rng) if args["order_type"] == "stop_limit" else None
            elif kind < 0.94:
                args["order_type"] = "trailing_stop"
                args["price"] = None
                if rng.random() < 0.5:
                    args["trail_value"] = rng.choice(["1", "1.5", "2"])
                else:
                    args["trail_value"] = rng.choice(["1", "2.5"])
                    args["trail_is_percent"] = True
            else:
                args["price"] = _price(rng)
                args["self_trade_prevention"] = rng.choice(
                    ["cancel_newest", "cancel_oldest", "cancel_both", "decrement"]
                )
            if order_id is not None:
                args["order_id"] = order_id
                ids.append(order_id)
            commands.append({"op": "add", "args": args})
        elif roll < 0.75:
            commands.append({"op": "cancel", "order_id": rng.choice(ids)})
        elif roll < 0.9:
            command: dict[str, Any] = {"op": "modify", "order_id": rng.choice(ids)}
            what = rng.random()
            if what < 0.4:
                command["new_quantity"] = _qty(rng)
            elif what < 0.8:
                command["new_price"] = _price(rng)
            else:
                command["new_price"] = _price(rng)
                command["new_quantity"] = _qty(rng)
            commands.append(command)
        elif roll < 0.97:
            commands.append({"op": "tick", "seconds": rng.randint(1, 6)})
        else:
            commands.append({"op": "expire"})
    return commands


def apply(book: OrderBook, clock: Clock, command: dict[str, Any]) -> object:
    """Run one command; invalid ones (a modify of a market order, say) are answered and change nothing."""
    op = command["op"]
    try:
        if op == "add":
            return book.add_order(**command["args"])
        if op == "cancel":
            return book.cancel_order(command["order_id"])
        if op == "modify":
            kwargs = {k: v for k, v in command.items() if k.startswith("new_")}
            return book.modify_order(command["order_id"], **kwargs)
        if op == "tick":
            clock.now += command["seconds"]
            return None
        if op == "expire":
            return book.clean_expired_orders()
    except InvalidOrderError as exc:
        return f"rejected: {exc}"
    raise ValueError(f"unknown op {op!r}")
