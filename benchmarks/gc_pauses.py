"""The cyclic collector's pauses with a large resting book: how long each collection stops the process
while 100,000+ resting orders live in the heap, under the server's collector policy.

One in-process :class:`~manticore_matching.Exchange` (storage on, as ``manticore serve`` runs it) and an
:class:`~manticore_api.service.ExchangeService` awaiting durability, as in :mod:`benchmarks.exchange`.
The collector policy is applied once the users are funded (as the server applies it once the exchange
is open), so every resting order of the run is created after it, as in a server that has been up for a
while. Then:

1. **fill**: ``--tasks`` tasks (one user each) place ``--resting`` non-crossing limit orders (buys
   below 30,000, sells above, spread over 8,000 prices);
2. **churn**: ``--churn`` rounds per run, each task placing a new resting order and cancelling its own
   oldest one (the book keeps its size and its oldest orders, those created in the fill, die); every
   ``--cross-every``-th round places a small crossing order instead of the new resting one (trades,
   partial fills).

Every collection is measured with :data:`gc.callbacks` (wall clock from ``start`` to ``stop`` and the
collecting thread's CPU time, which preemption does not inflate), by generation and by phase. Reported
at the end:

* per generation: collections, longest pause, p99, pauses over 10 ms (wall and thread CPU);
* ``next full collection``: a ``gc.collect()`` timed after the run: what the next automatic full
  collection would cost at that moment (the policy's gen-2 threshold decides when it comes);
* memory: RSS and the frozen generation's size after every tenth of the churn (flat when nothing
  leaks), and **leaked cyclic garbage**: after the run, ``gc.collect()``, then ``gc.unfreeze()`` and
  ``gc.collect()`` again: what the second one finds unreachable was cyclic garbage that had been frozen
  (the collector never frees it while frozen).

Run::

    python -m benchmarks.gc_pauses --policy server --resting 200000 --churn 3000
    python -m benchmarks.gc_pauses --policy refreeze --resting 200000 --churn 3000
    python -m benchmarks.gc_pauses --policy refreeze --thresholds 2000,4,1000  # another gen-2 bound

``--policy server`` is ``GcPolicy(refreeze=False)`` (freeze once after start-up), ``refreeze`` is
``GcPolicy()`` (the default of ``manticore serve``: the survivors of every full collection are frozen
too), ``default`` leaves CPython's collector as it starts. Wall-clock figures only; on a busy machine
read the thread-CPU columns.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import gc
import os
import random
import resource
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from manticore_api.gcpolicy import GcPolicy
from manticore_api.service import ExchangeService
from manticore_auth import AuthManager
from manticore_matching import Exchange, MarketConfig, OrderNotFound, OrderRejected
from manticore_orderbook import COMPILED
from manticore_risk import RiskLimits

__all__ = ["main"]

MARKET = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.001"), Decimal("0.001"), Decimal("0.002")
)
#: The server's price band; open orders per user and the rate limit raised so that they never refuse.
LIMITS = RiskLimits(
    price_band=Decimal("0.10"),
    max_open_orders=10_000_000,
    rate_limit_orders=10_000_000,
    rate_limit_window=1.0,
)


class PauseLog:
    """Every collection's generation, wall milliseconds, thread-CPU milliseconds and phase."""

    def __init__(self, objects: bool = False) -> None:
        self.phase = "start"
        self.pauses: list[tuple[int, float, float, str]] = []
        self.objects: list[tuple[int, int, str]] = []
        self._count = objects
        self._wall = 0.0
        self._cpu = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            if self._count:  # before the clocks start: counting is not part of the pause
                generation = info["generation"]
                examined = sum(len(gc.get_objects(g)) for g in range(generation + 1))
                self.objects.append((generation, examined, self.phase))
            self._wall = time.perf_counter()
            self._cpu = time.thread_time()
            return
        wall = (time.perf_counter() - self._wall) * 1000.0
        cpu = (time.thread_time() - self._cpu) * 1000.0
        self.pauses.append((info["generation"], wall, cpu, self.phase))


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _resting_price(rng: random.Random, side: str) -> str:
    offset = Decimal("0.5") * rng.randint(1, 4000)
    return str(Decimal(30000) - offset if side == "buy" else Decimal(30000) + offset)


async def _run(
    exchange: Exchange, service: ExchangeService, args: argparse.Namespace, log: PauseLog
) -> dict[str, Any]:
    tasks = args.tasks
    per_task = args.resting // tasks
    mine: list[collections.deque[str]] = [collections.deque() for _ in range(tasks)]
    memory: list[tuple[int, float, int, int]] = []

    async def place(user: int, rng: random.Random, crossing: bool = False) -> None:
        side = rng.choice(("buy", "sell"))
        if crossing:
            price = "31000" if side == "buy" else "29000"
            try:
                receipt = exchange.place_order(
                    f"u{user}", "BTC/USD", side, "0.001", price=price, time_in_force="ioc"
                )
            except OrderRejected:  # out of the price band after the market moved
                return
        else:
            receipt = exchange.place_order(
                f"u{user}", "BTC/USD", side, "0.01", price=_resting_price(rng, side)
            )
            assert receipt.order_id is not None
            mine[user].append(receipt.order_id)
        await service.durable(receipt.position)

    async def cancel(user: int) -> None:
        while mine[user]:
            order_id = mine[user].popleft()
            try:
                receipt = exchange.cancel_order(f"u{user}", order_id)
            except OrderNotFound:  # filled by a crossing order
                continue
            await service.durable(receipt.position)
            return

    async def fill(user: int) -> None:
        rng = random.Random(user)
        for _ in range(per_task):
            await place(user, rng)

    done = 0

    async def churn(user: int, rounds: int) -> None:
        nonlocal done
        rng = random.Random(1000 + user)
        for number in range(rounds):
            await place(user, rng, crossing=args.cross_every > 0 and number % args.cross_every == 0)
            await cancel(user)
            done += 1

    started = time.perf_counter()
    log.phase = "fill"
    await asyncio.gather(*(fill(user) for user in range(tasks)))
    fill_s = time.perf_counter() - started
    log.phase = "churn"
    step = max(1, args.churn // 10)
    started = time.perf_counter()
    for _ in range(0, args.churn, step):
        await asyncio.gather(*(churn(user, step) for user in range(tasks)))
        frozen = gc.get_freeze_count()
        memory.append((done, _rss_mb(), frozen, frozen + len(gc.get_objects())))
    churn_s = time.perf_counter() - started
    log.phase = "after"
    return {"fill_s": fill_s, "churn_s": churn_s, "commands": args.resting + 2 * done, "memory": memory}


def _summary(rows: list[tuple[int, float, float, str]]) -> str:
    if not rows:
        return "none"
    walls = sorted(row[1] for row in rows)
    cpus = sorted(row[2] for row in rows)
    p99 = walls[min(len(walls) - 1, int(0.99 * len(walls)))]
    return (
        f"{len(rows):5d} collections, wall max {walls[-1]:7.2f} ms p99 {p99:6.2f} ms "
        f">10 ms {sum(w > 10 for w in walls):3d}; thread CPU max {cpus[-1]:7.2f} ms "
        f">10 ms {sum(c > 10 for c in cpus):3d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", choices=("server", "refreeze", "default"), default="refreeze")
    parser.add_argument(
        "--refreeze",
        type=int,
        default=None,
        help="the generation whose collections refreeze (default: the policy's)",
    )
    parser.add_argument("--thresholds", help="gen0,gen1,gen2 (default: the policy's)")
    parser.add_argument("--resting", type=int, default=200_000)
    parser.add_argument("--churn", type=int, default=3_000, help="rounds per task")
    parser.add_argument("--cross-every", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument(
        "--objects",
        action="store_true",
        help="count the objects each collection examines (its generations' sizes at its start: "
        "what a pause is proportional to, independent of the machine's load)",
    )
    args = parser.parse_args()

    thresholds: tuple[int, int, int] | None = None
    if args.thresholds:
        gen0, gen1, gen2 = (int(x) for x in args.thresholds.split(","))
        thresholds = (gen0, gen1, gen2)
    with tempfile.TemporaryDirectory() as directory:
        exchange = Exchange(
            Path(directory) / "data", markets=[MARKET], risk_limits=LIMITS, checkpoint_every=0
        )
        exchange.open()
        auth = AuthManager(f"sqlite:///{directory}/auth.db", master_key=os.urandom(32))
        for user in range(args.tasks):
            exchange.deposit(f"u{user}", "USD", "100000000000")
            exchange.deposit(f"u{user}", "BTC", "10000000")
        exchange.wait_durable(exchange.journal.appended)
        service = ExchangeService(exchange, auth, require_auth=False)
        log = PauseLog(args.objects)

        async def main_task() -> dict[str, Any]:
            await service.start()
            try:
                if args.policy == "default":
                    policy = GcPolicy(freeze=False, thresholds=None, refreeze=None)
                else:
                    policy = GcPolicy()
                    if args.policy == "server":
                        policy = dataclasses.replace(policy, refreeze=None)
                    elif args.refreeze is not None:
                        policy = dataclasses.replace(policy, refreeze=args.refreeze)
                    if thresholds is not None:
                        policy = dataclasses.replace(policy, thresholds=thresholds)
                with policy.serving():
                    gc.callbacks.append(log.callback)
                    return await _run(exchange, service, args, log)
            finally:
                await service.stop()

        result = asyncio.run(main_task())
        log.phase = "next full"
        gc.collect()
        next_full = [row for row in log.pauses if row[3] == "next full"]
        gc.callbacks.remove(log.callback)
        frozen = gc.get_freeze_count()
        gc.unfreeze()
        leaked = gc.collect()
        resting = exchange.statistics()["orders_resting"]
        exchange.close(checkpoint=False)
        auth.close()

    print(
        f"benchmarks.gc_pauses: policy {args.policy}, thresholds {gc.get_threshold()}, "
        f"book {'compiled' if COMPILED else 'pure-Python'}, {args.tasks} tasks, {args.resting} resting, "
        f"{args.churn} churn rounds per task, {resting} resting at the end"
    )
    print(
        f"  fill {result['fill_s']:.1f} s, churn {result['churn_s']:.1f} s, "
        f"{result['commands'] / (result['fill_s'] + result['churn_s']):,.0f} commands/s"
    )
    for phase in ("fill", "churn"):
        for generation in range(3):
            rows = [row for row in log.pauses if row[3] == phase and row[0] == generation]
            print(f"  {phase:5s} gen {generation}: {_summary(rows)}")
        rows = [row for row in log.pauses if row[3] == phase]
        print(f"  {phase:5s} all  : {_summary(rows)}")
        print(
            f"  {phase:5s} collector total: wall {sum(r[1] for r in rows):,.0f} ms, "
            f"thread CPU {sum(r[2] for r in rows):,.0f} ms"
        )
        for generation in range(3) if args.objects else ():
            counts = sorted(n for g, n, p in log.objects if g == generation and p == phase)
            if counts:
                print(
                    f"  {phase:5s} gen {generation} objects examined per collection: "
                    f"max {counts[-1]:,}, median {counts[len(counts) // 2]:,}"
                )
    if next_full:
        examined = [n for g, n, p in log.objects if p == "next full"]
        print(
            f"  next full collection: wall {next_full[0][1]:.2f} ms, thread CPU {next_full[0][2]:.2f} ms"
            + (f", {examined[0]:,} objects examined" if examined else "")
        )
    print("  churn rounds done / RSS MB / frozen objects / tracked objects (frozen or not):")
    for done, rss, count, tracked in result["memory"]:
        print(f"    {done:8d}  {rss:8.1f}  {count:9d}  {tracked:9d}")
    print(
        f"  frozen at the end {frozen}; leaked cyclic garbage found after unfreeze: {leaked} objects; "
        f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000:.0f} MB"
    )


if __name__ == "__main__":
    main()
