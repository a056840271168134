"""How to make an acknowledged order survive ``kill -9``: the journal versus synchronous storage.

Measures acknowledged order commands per second on this machine, side by side in one run:

- ``journal, one client``: Exchange.place_order then wait_durable, one at a time (one fsync per order);
- ``journal, 64 in flight``: 64 orders placed, then wait for the last (what many concurrent HTTP clients
  get from group commit);
- ``sync storage, SQLite``: an OrderBook with StorageManager attached in ``sync`` mode (one transaction
  and fsync per command, the alternative design);
- ``sync storage, PostgreSQL`` when ``--postgres-url`` is given.

Run: ``python -m benchmarks.durability [--orders N] [--postgres-url URL]``; writes
docs/benchmarks-durability.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from manticore_matching import Exchange, MarketConfig
from manticore_orderbook import OrderBook
from manticore_storage import StorageManager

MARKET = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.001"), Decimal("0.001"), Decimal("0.002")
)


def _orders(count: int, seed: int = 1) -> list[tuple[str, str, str, str]]:
    rng = random.Random(seed)
    result = []
    for _ in range(count):
        side = rng.choice(["buy", "sell"])
        price = str(Decimal(30000) + Decimal("0.5") * rng.randint(-40, 40))
        result.append(
            (rng.choice(["alice", "bob"]), side, price, str(Decimal("0.001") * rng.randint(1, 500)))
        )
    return result


def _journal(count: int, in_flight: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        exchange = Exchange(directory, markets=[MARKET], checkpoint_every=0)
        exchange.open()
        for user in ("alice", "bob"):
            exchange.deposit(user, "USD", "10000000000")
            exchange.deposit(user, "BTC", "1000000")
        orders = _orders(count)
        started = time.perf_counter()
        pending = 0
        last = 0
        for user, side, price, quantity in orders:
            last = exchange.place_order(user, "BTC/USD", side, quantity, price=price).position
            pending += 1
            if pending >= in_flight:
                exchange.wait_durable(last)
                pending = 0
        exchange.wait_durable(last)
        elapsed = time.perf_counter() - started
        exchange.close()
    return count / elapsed


def _replay(count: int) -> float:
    """Journal records replayed per second when the server restarts after a crash (no checkpoint)."""
    with tempfile.TemporaryDirectory() as directory:
        exchange = Exchange(directory, markets=[MARKET], checkpoint_every=0, fsync=False)
        exchange.open()
        for user in ("alice", "bob"):
            exchange.deposit(user, "USD", "10000000000")
            exchange.deposit(user, "BTC", "1000000")
        for user, side, price, quantity in _orders(count):
            exchange.place_order(user, "BTC/USD", side, quantity, price=price)
        exchange.wait_durable(exchange.journal.appended)
        exchange.journal.close()  # a crash: no checkpoint
        assert exchange.storage is not None
        exchange.storage.close()
        assert exchange.directory_lock is not None
        exchange.directory_lock.release()  # as the kernel does for a dead process
        restarted = Exchange(directory, markets=[MARKET], checkpoint_every=0, fsync=False)
        started = time.perf_counter()
        restarted.open()
        elapsed = time.perf_counter() - started
        records = restarted.replayed_records
        restarted.close()
    return records / elapsed


def _sync_storage(count: int, url_for: Callable[[Path], str]) -> float:
    with tempfile.TemporaryDirectory() as directory:
        storage = StorageManager(url_for(Path(directory)))
        book = OrderBook(
            "BTC/USD", tick_size="0.5", lot_size="0.001", maker_fee_rate="0.001", taker_fee_rate="0.002"
        )
        storage.attach(book, mode="sync")
        started = time.perf_counter()
        for user, side, price, quantity in _orders(count):
            book.add_order(side, price, quantity, user_id=user)
        elapsed = time.perf_counter() - started
        storage.close()
    return count / elapsed


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        for table in ("manticore_failed_events", "manticore_trades", "manticore_orders", "manticore_markets"):
            connection.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
        connection.execute(text("DROP TABLE IF EXISTS manticore_schema_version CASCADE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks-durability.md"))
    args = parser.parse_args()
    cases: list[tuple[str, Callable[[], float]]] = [
        ("journal, one client (fsync per order)", lambda: _journal(args.orders, 1)),
        ("journal, 64 in flight (group commit)", lambda: _journal(args.orders, 64)),
        ("sync storage, SQLite", lambda: _sync_storage(args.orders, lambda d: f"sqlite:///{d / 'sync.db'}")),
    ]
    if args.postgres_url:
        url = args.postgres_url

        def postgres() -> float:
            _reset_postgres(url)
            return _sync_storage(args.orders, lambda _d: url)

        cases.append(("sync storage, PostgreSQL", postgres))
    results: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(args.repeats):  # interleaved, so that machine noise hits every case alike
        for name, run in cases:
            results[name].append(run())
    replay = [_replay(args.orders) for _ in range(args.repeats)]
    baseline = statistics.median(results[cases[2][0]])
    lines = [
        "# Durability: journal versus synchronous storage",
        "",
        f"`python -m benchmarks.durability --orders {args.orders} --repeats {args.repeats}`: "
        "acknowledged limit orders per second (median of the repeats, interleaved), pure-Python book, "
        "this 2-core machine.",
        "",
        "| how an order is made durable | orders/s (median) | runs | vs sync SQLite |",
        "|---|---:|---|---:|",
    ]
    for name, _ in cases:
        values = results[name]
        median = statistics.median(values)
        runs = ", ".join(f"{value:,.0f}" for value in values)
        lines.append(f"| {name} | {median:,.0f} | {runs} | {median / baseline:.1f}x |")
    lines += [
        "",
        f"Restart after a crash (no checkpoint): {statistics.median(replay):,.0f} journal records "
        f"replayed per second (median; runs {', '.join(f'{value:,.0f}' for value in replay)}), "
        "storage catch-up included.",
    ]
    text = "\n".join(lines) + "\n"
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
