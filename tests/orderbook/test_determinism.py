"""Determinism (DESIGN.md section 3.2): the same commands and clock give the same events, byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import OrderBook

from .support import FakeClock, Recorder

Command = tuple[str, dict[str, Any]]


def random_commands(seed: int, count: int) -> list[Command]:
    """A seeded stream that uses every order type, time in force and self-trade-prevention mode."""
    rng = random.Random(seed)
    commands: list[Command] = []
    users = ["alice", "bob", "carol", None]
    now = 1_000.0
    for _ in range(count):
        side = rng.choice(["buy", "sell"])
        price = rng.randint(95, 105)
        quantity = rng.choice(["0.1", "0.2", "0.3", 1, 0.5])
        common = {"side": side, "quantity": quantity, "user_id": rng.choice(users)}
        roll = rng.random()
        if roll < 0.35:
            tif = rng.choice(["GTC", "IOC", "FOK", "GTD"])
            kwargs = dict(common, price=price, time_in_force=tif)
            if tif == "GTD":
                kwargs["expiry_time"] = now + rng.choice([1, 5, 20])
            kwargs["self_trade_prevention"] = rng.choice(
                ["none", "cancel_newest", "cancel_oldest", "cancel_both", "decrement"]
            )
            commands.append(("add", kwargs))
        elif roll < 0.42:
            commands.append(("add", dict(common, price=None)))
        elif roll < 0.47:
            commands.append(("add", dict(common, price=price, order_type="POST_ONLY")))
        elif roll < 0.52:
            commands.append(("add", dict(common, price=price, quantity=3, displayed_quantity="0.5")))
        elif roll < 0.57:
            limit = rng.choice([None, price])
            commands.append(("add", dict(common, price=limit, stop_price=rng.randint(95, 105))))
        elif roll < 0.60:
            commands.append(("add", dict(common, price=None, trail_value=rng.choice([1, 2]))))
        elif roll < 0.62:
            commands.append(("add", dict(common, price=None, trail_value=5, trail_is_percent=True)))
        elif roll < 0.77:
            commands.append(("cancel", {"index": rng.randint(0, 10**6)}))
        elif roll < 0.87:
            commands.append(
                (
                    "modify",
                    {
                        "index": rng.randint(0, 10**6),
                        "new_price": rng.choice([None, price]),
                        "new_quantity": rng.choice([None, "0.1", 2]),
                    },
                )
            )
        elif roll < 0.92:
            seconds = rng.choice([0.5, 1, 3])
            now += seconds
            commands.append(("tick", {"seconds": seconds}))
        elif roll < 0.94:
            commands.append(("clean", {}))
        elif roll < 0.97:
            commands.append(("batch", {"orders": [dict(common, price=price), dict(common, price=price + 1)]}))
        else:
            commands.append(("add", dict(common, price="not a price")))  # rejected
    return commands


def run(commands: list[Command]) -> tuple[str, OrderBook]:
    """Apply ``commands`` to a fresh book; return the JSON of everything observable, and the book."""
    clock = FakeClock(1_000.0)
    book = OrderBook(
        "DET/USD", clock=clock, tick_size="1", lot_size="0.1", maker_fee_rate="0.001", taker_fee_rate="0.002"
    )
    recorder = Recorder()
    book.event_manager.subscribe_all(recorder)
    ids: list[str] = []
    results: list[Any] = []
    for name, kwargs in commands:
        try:
            if name == "add":
                ids.append(book.add_order(**kwargs))
                results.append(ids[-1])
            elif name == "batch":
                batch = book.batch_add_orders(kwargs["orders"])
                ids.extend(batch)
                results.append(batch)
            elif name == "cancel":
                results.append(book.cancel_order(ids[kwargs["index"] % len(ids)] if ids else "none"))
            elif name == "modify":
                order_id = ids[kwargs["index"] % len(ids)] if ids else "none"
                results.append(book.modify_order(order_id, kwargs["new_price"], kwargs["new_quantity"]))
            elif name == "tick":
                clock.advance(kwargs["seconds"])
            elif name == "clean":
                results.append(book.clean_expired_orders())
        except ValueError as exc:
            results.append(f"rejected: {type(exc).__name__}")
    observed = {
        "events": [[event_type.value, data] for event_type, data in recorder.events],
        "results": results,
        "snapshot": book.get_snapshot(),
        "orders": book.get_orders(),
        "trades": book.get_trade_history(limit=None),
        "statistics": book.get_statistics(),
    }
    return json.dumps(observed, sort_keys=True, default=str), book


def test_same_commands_and_clock_give_byte_identical_events() -> None:
    commands = random_commands(seed=2024, count=1500)
    first, book = run(commands)
    second, _ = run(commands)
    assert first == second
    book.check_invariants()
    assert '"trade_executed"' in first and '"order_triggered"' in first and '"order_expired"' in first


@settings(max_examples=25)
@given(seed=st.integers(min_value=0, max_value=2**32), count=st.integers(min_value=1, max_value=150))
def test_any_random_stream_is_deterministic(seed: int, count: int) -> None:
    commands = random_commands(seed, count)
    assert run(commands)[0] == run(commands)[0]


_CHILD = """
import hashlib, sys
sys.path.insert(0, {root!r})
from tests.orderbook.test_determinism import random_commands, run
print(hashlib.sha256(run(random_commands(7, 800))[0].encode()).hexdigest())
"""


def test_events_do_not_depend_on_hash_randomisation() -> None:
    root = str(Path(__file__).resolve().parents[2])
    digests = set()
    for hash_seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run(
            [sys.executable, "-c", _CHILD.format(root=root)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(out.stdout.strip())
    digests.add(hashlib.sha256(run(random_commands(7, 800))[0].encode()).hexdigest())
    assert len(digests) == 1
