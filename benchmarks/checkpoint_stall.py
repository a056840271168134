"""How long an automatic checkpoint blocks the command path, at 100,000 resting orders (issue 17).

Builds an :class:`~manticore_matching.Exchange` (file journal with fsync, SQLite storage: what
``manticore serve`` runs) holding ``--orders`` resting limit orders of 250 funded users, through the
real API (``deposit``, ``place_order``), with ``checkpoint_every`` set so that the automatic checkpoint
falls due at the 100th command of the measured run. The run then alternates ``place_order`` (a new
resting order) and ``cancel_order`` (of that order) and times every call (the command path: the exchange
lock is held for the whole call) and every acknowledgement (call + ``wait_durable``), until the
checkpoint is complete and 200 more commands have passed.

Modes: ``sync`` (``background_checkpoints=False``: the checkpoint runs inside the command that reaches
the count, as before session 12) and ``background`` (the fork-based checkpoint). Reported per mode, as
the median of ``--runs`` runs: the longest command call and acknowledgement while the checkpoint was
in progress, the longest call in the 100 commands before it (the machine's noise floor), and the
checkpoint's total time (trigger to installed and journal segments retired). Also the largest CPU time
of the command thread in one call while the checkpoint ran (``max_call_cpu``: what the command path
itself spent, whatever the machine's load; ``other_call_cpu``: the same without the call that started
the checkpoint) and, for ``background``, the fork: its wall time and the
forking thread's CPU time (kernel included; the command thread waits for it). The acknowledgement
latency (call + durable) of the commands: median of the 100 before the checkpoint
(``noise_ack_p50``), median and p99 while the writer ran (``writer_ack_p50``, ``writer_ack_p99``: the
journal's fsyncs in that phase are what the writer's scheduling priority decides, docs/performance.md
session 15). ``--pin CPU`` runs the process (so the writer it forks) on one core, as ``make
bench-server`` pins the server. Wall clock on a shared machine: read the wall figures as orders of
magnitude.

Run: ``.venv/bin/python -m benchmarks.checkpoint_stall [--orders 100000 --runs 3 --modes sync,background
--pin 0]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.exchange import LIMITS, MARKET
from manticore_matching import Exchange

USERS = 250
WARMUP = 100
AFTER = 200


def build(directory: Path, count: int, background: bool, stages: dict[str, float]) -> Exchange:
    """An open exchange with ``count`` resting orders whose next checkpoint falls due after WARMUP
    more records."""
    records = 1 + 2 * USERS + count  # the market, the deposits, the orders

    def hook(stage: str, _position: int) -> None:
        stages[stage] = time.perf_counter()

    exchange = Exchange(
        directory,
        markets=[MARKET],
        risk_limits=LIMITS,
        checkpoint_every=records + WARMUP,
        background_checkpoints=background,
        checkpoint_hook=hook,
    )
    exchange.open()
    for i in range(USERS):
        exchange.deposit(f"user{i}", "USD", "100000000000")
        exchange.deposit(f"user{i}", "BTC", "10000000")
    rng = random.Random(1)
    for n in range(count):
        user = f"user{n % USERS}"
        if n % 2:
            exchange.place_order(user, "BTC/USD", "buy", "0.01", price=str(29000 + rng.randrange(1800) / 2))
        else:
            exchange.place_order(user, "BTC/USD", "sell", "0.01", price=str(30100 + rng.randrange(1800) / 2))
    exchange.wait_durable(exchange.journal.appended)
    assert exchange.journal.appended == records, "every order rests"
    return exchange


def run(count: int, mode: str) -> dict[str, float]:
    """One measured run; the figures in milliseconds."""
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        exchange = build(Path(scratch) / "data", count, mode == "background", stages)
        gc.collect()
        before = exchange._checkpoint_position
        calls: list[tuple[float, float, float, float]] = []  # (start, call, acknowledgement, call CPU)
        usage: list[tuple[int, float]] = []  # the process's (minor faults, system CPU) before each command
        index = 0
        done_at: int | None = None
        fork = (0.0, 0.0)
        writer: Any = None
        order_id: str | None = None
        while done_at is None or index < done_at + AFTER:
            user = f"user{index % USERS}"
            for cancel in (False, True):
                own = resource.getrusage(resource.RUSAGE_SELF)
                usage.append((own.ru_minflt, own.ru_stime))
                started, cpu = time.perf_counter(), time.thread_time()
                if cancel:
                    receipt = exchange.cancel_order(user, order_id)
                else:
                    receipt = exchange.place_order(user, "BTC/USD", "buy", "0.01", price="28000")
                    order_id = receipt.order_id
                called, used = time.perf_counter(), time.thread_time() - cpu
                exchange.wait_durable(receipt.position)
                calls.append((started, called - started, time.perf_counter() - started, used))
            index += 2
            flight = exchange._flight
            if flight is not None:
                fork = (flight.fork_seconds, flight.fork_cpu_seconds)
                writer = flight
            if (
                done_at is None
                and exchange._checkpoint_position != before
                and not exchange.checkpoint_in_flight
            ):
                done_at = index
            if index > 2_000_000:
                raise RuntimeError("the checkpoint never completed")
        trigger = WARMUP - 1  # the command whose record reaches checkpoint_every
        trigger_start = calls[trigger][0]
        end = stages.get("retired", calls[done_at - 1][0] + calls[done_at - 1][2])
        window = [c for c in calls[trigger:] if c[0] <= end]
        writing = sorted(c[2] for c in window if c[0] <= stages.get("written", end)) or [0.0]
        quiet = sorted(c[2] for c in calls[: trigger - 1])
        # The process's own minor faults and system CPU (the serving side of copy-on-write), per
        # command: the commands before the checkpoint against those while the writer ran.
        written = stages.get("written", end)
        during = [i for i in range(trigger + 1, len(calls) - 1) if calls[i][0] <= written]
        last = during[-1] + 1 if during else trigger + 2
        first_100ms = max(
            (i for i in range(trigger + 1, len(calls)) if calls[i][0] <= calls[trigger][0] + 0.1),
            default=trigger + 1,
        )
        span = max(1, last - (trigger + 1))
        writer_usage = writer.writer_usage if writer is not None else None
        call_cpu_quiet = sorted(c[3] for c in calls[: trigger - 1])
        call_cpu_writer = sorted(calls[i][3] for i in during) or [0.0]
        call_cpu_after = sorted(c[3] for c in calls[done_at:]) or [0.0]
        result = {
            "noise_max_call": max(c[1] for c in calls[: trigger - 1]) * 1000,
            "max_call": max(c[1] for c in window) * 1000,
            "max_ack": max(c[2] for c in window) * 1000,
            "trigger_call": calls[trigger][1] * 1000,
            "max_call_cpu": max(c[3] for c in window) * 1000,
            "other_call_cpu": max((c[3] for c in window[1:]), default=0.0) * 1000,
            "fork": fork[0] * 1000,
            "fork_cpu": fork[1] * 1000,
            "commands_during": float(len(window)),
            "noise_ack_p50": quiet[len(quiet) // 2] * 1000,
            "writer_ack_p50": writing[len(writing) // 2] * 1000,
            "writer_ack_p99": writing[min(len(writing) - 1, len(writing) * 99 // 100)] * 1000,
            "total": (end - trigger_start) * 1000,
            "noise_faults": (usage[trigger - 1][0] - usage[0][0]) / (trigger - 1),
            "writer_faults": (usage[last][0] - usage[trigger + 1][0]) / span,
            "faults_100ms": float(usage[first_100ms + 1][0] - usage[trigger + 1][0]),
            "fork_faults": float(usage[trigger + 1][0] - usage[trigger][0]),
            "noise_sys_us": (usage[trigger - 1][1] - usage[0][1]) / (trigger - 1) * 1e6,
            "writer_sys_us": (usage[last][1] - usage[trigger + 1][1]) / span * 1e6,
            "noise_cpu_us": call_cpu_quiet[len(call_cpu_quiet) // 2] * 1e6,
            "after_cpu_us": call_cpu_after[len(call_cpu_after) // 2] * 1e6,
            "writer_cpu_us": call_cpu_writer[len(call_cpu_writer) // 2] * 1e6,
            "writer_cpu_p90": call_cpu_writer[len(call_cpu_writer) * 9 // 10] * 1e6,
            "child_faults": float(writer_usage.ru_minflt) if writer_usage else 0.0,
            "child_cpu": (writer_usage.ru_utime + writer_usage.ru_stime) * 1000 if writer_usage else 0.0,
            "child_sys": writer_usage.ru_stime * 1000 if writer_usage else 0.0,
        }
        exchange.close(checkpoint=False)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="sync,background")
    parser.add_argument(
        "--pin", type=int, default=None, help="run on this CPU only (as make bench-server pins the server)"
    )
    args = parser.parse_args()
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    print(f"{args.orders} resting orders, median of {args.runs} runs, wall clock (shared machine), ms")
    keys = [
        "trigger_call",
        "max_call",
        "max_ack",
        "noise_max_call",
        "max_call_cpu",
        "other_call_cpu",
        "fork",
        "fork_cpu",
        "total",
        "commands_during",
        "noise_ack_p50",
        "writer_ack_p50",
        "writer_ack_p99",
        "noise_faults",
        "writer_faults",
        "faults_100ms",
        "fork_faults",
        "noise_sys_us",
        "writer_sys_us",
        "noise_cpu_us",
        "after_cpu_us",
        "writer_cpu_us",
        "writer_cpu_p90",
        "child_faults",
        "child_cpu",
        "child_sys",
    ]
    print(f"{'mode':<11}" + "".join(f" {key:>15}" for key in keys))
    for mode in args.modes.split(","):
        results: list[dict[str, Any]] = [run(args.orders, mode) for _ in range(args.runs)]
        for result in results:
            print(f"  {mode:<9}" + "".join(f"{result[key]:>16.1f}" for key in keys), flush=True)
        print(f"{mode:<11}" + "".join(f"{statistics.median(r[key] for r in results):>16.1f}" for key in keys))


if __name__ == "__main__":
    main()
