"""One measurement in a fresh process, inside the engine's own virtualenv; prints one JSON object.

Usage (from the repository root, with the engine's interpreter)::

    python -m benchmarks.worker --engine legacy --workload benchmarks/.build/workloads/full/mix.pkl \
        --mode time [--subscriber]

``--mode time`` builds the book twice from the same prefill. Pass 1 times the whole op list with a single
pair of ``time.perf_counter_ns`` reads (throughput: ``ns_per_op``), then checks the final book against the
workload's expected result. Pass 2 times every op on its own (latency percentiles per op kind, in ns;
they include the ~tens of ns of the two clock reads, reported as ``timer_overhead_ns``). Garbage
collection stays enabled, as in a real process; ``gc.collect()`` runs before each timed pass.
The ops' arguments are made :data:`CHUNK` ops at a time, untimed, just before those ops are timed, as
a caller makes its arguments just before its call: made all at once (before the prefill, as until
session 15, or after it), the arguments of a deep book's ops (100,000 orders) were evicted from the
caches by the time their op ran, and the book's cost at 100,000 levels included ~1.3 memory reads per
op of the harness's own objects (docs/performance.md, "Session 15: the deep book's arguments").

``--mode memory`` builds the book once, runs the ops without timing and reports the peak resident memory
growth in KiB: the resident high-water mark (``VmHWM``, reset just before the book is created) at the end
minus the resident size at that moment (after the workload was loaded and converted). It covers C/C++
allocations as well as Python objects.

``--clock cpu`` times with the thread's CPU time instead of the wall clock (see :data:`CLOCKS`).

``--mode describe`` prints the adapter's ``describe()`` (version, import location).

A user-convention workload (``meta["convention"]``) is called with keyword arguments where the adapter
says so (``converter(meta)`` returns ``keywords=True``): the timed loop then calls
``add(side=a[0], price=a[1], quantity=a[2], order_id=a[3], user_id=a[4], time_in_force=a[5])``, a call
site like a user's; otherwise ``add(*args)``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.workloads import KIND_NAMES, load

NativeOp = tuple[bool, Any]

#: ``--clock``: ``wall`` (``perf_counter_ns``, the default: what a caller waits) or ``cpu`` (this
#: thread's CPU time, ``thread_time_ns``: leaves out the time other processes hold the core, for a
#: machine too busy to give stable wall times; reads cost more, so latencies include more overhead).
CLOCKS: dict[str, Callable[[], int]] = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}
_clock = "wall"


def _adapter(engine: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.adapters.{engine}")


#: Ops converted to call arguments at a time, just before they are timed (see the module docstring).
CHUNK = 100


def _timed_in_chunks(
    raw_ops: Sequence[Any],
    convert: Callable[[Any], NativeOp],
    time_chunk: Callable[[Sequence[NativeOp], Callable[..., Any], Callable[[Any], Any]], Any],
    add: Callable[..., Any],
    cancel: Callable[[Any], Any],
) -> list[Any]:
    """``time_chunk``'s result for each run of :data:`CHUNK` ops, each converted just before it is timed."""
    return [
        time_chunk([convert(op) for op in raw_ops[start : start + CHUNK]], add, cancel)
        for start in range(0, len(raw_ops), CHUNK)
    ]


def _apply(ops: Sequence[NativeOp], add: Callable[..., Any], cancel: Callable[[Any], Any]) -> None:
    for is_cancel, args in ops:
        if is_cancel:
            cancel(args)
        else:
            add(*args)


def _apply_kw(ops: Sequence[NativeOp], add: Callable[..., Any], cancel: Callable[[Any], Any]) -> None:
    for is_cancel, a in ops:
        if is_cancel:
            cancel(a)
        else:
            add(side=a[0], price=a[1], quantity=a[2], order_id=a[3], user_id=a[4], time_in_force=a[5])


def _time_total(ops: Sequence[NativeOp], add: Callable[..., Any], cancel: Callable[[Any], Any]) -> int:
    """Nanoseconds to run all ``ops``: one clock read before and one after."""
    clock = CLOCKS[_clock]
    start = clock()
    for is_cancel, args in ops:
        if is_cancel:
            cancel(args)
        else:
            add(*args)
    return clock() - start


def _time_total_kw(ops: Sequence[NativeOp], add: Callable[..., Any], cancel: Callable[[Any], Any]) -> int:
    """:func:`_time_total` with keyword-argument adds (see the module docstring)."""
    clock = CLOCKS[_clock]
    start = clock()
    for is_cancel, a in ops:
        if is_cancel:
            cancel(a)
        else:
            add(side=a[0], price=a[1], quantity=a[2], order_id=a[3], user_id=a[4], time_in_force=a[5])
    return clock() - start


def _time_each_kw(
    ops: Sequence[NativeOp], add: Callable[..., Any], cancel: Callable[[Any], Any]
) -> list[int]:
    """:func:`_time_each` with keyword-argument adds."""
    clock = CLOCKS[_clock]
    out = [0] * len(ops)
    for i, (is_cancel, a) in enumerate(ops):
        start = clock()
        if is_cancel:
            cancel(a)
        else:
            add(side=a[0], price=a[1], quantity=a[2], order_id=a[3], user_id=a[4], time_in_force=a[5])
        out[i] = clock() - start
    return out


def _time_each(ops: Sequence[NativeOp], add: Callable[..., Any], cancel: Callable[[Any], Any]) -> list[int]:
    """Nanoseconds of every op, one clock pair around each call."""
    clock = CLOCKS[_clock]
    out = [0] * len(ops)
    for i, (is_cancel, args) in enumerate(ops):
        start = clock()
        if is_cancel:
            cancel(args)
        else:
            add(*args)
        out[i] = clock() - start
    return out


def _percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values."""
    if not sorted_values:
        return 0
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return int(sorted_values[rank - 1])


def _latency_stats(latencies: Sequence[int], kinds: Sequence[int]) -> dict[str, dict[str, float]]:
    """Per op kind (and ``all``): count, mean, p50, p90, p99, p99.9 and max, in ns."""
    groups: dict[str, list[int]] = {"all": list(latencies)}
    for value, kind in zip(latencies, kinds, strict=True):
        groups.setdefault(KIND_NAMES[kind], []).append(value)
    stats: dict[str, dict[str, float]] = {}
    for name, values in groups.items():
        values.sort()
        stats[name] = {
            "n": len(values),
            "mean": sum(values) / len(values) if values else 0.0,
            "p50": _percentile(values, 50),
            "p90": _percentile(values, 90),
            "p99": _percentile(values, 99),
            "p999": _percentile(values, 99.9),
            "max": values[-1] if values else 0,
        }
    return stats


def _timer_overhead() -> int:
    """Median ns between two back-to-back ``perf_counter_ns`` reads (what each latency sample includes)."""
    clock = CLOCKS[_clock]
    samples = []
    for _ in range(10_000):
        start = clock()
        samples.append(clock() - start)
    samples.sort()
    return samples[len(samples) // 2]


def _loop_overhead(ops: Sequence[NativeOp], keywords: bool = False) -> float:
    """Ns per op of the timed loop itself, with do-nothing engine calls (context for the fastest engine)."""

    def noop(*_: Any, **__: Any) -> None:
        return None

    timer = _time_total_kw if keywords else _time_total
    return timer(ops, noop, noop) / max(1, len(ops))


def _conversion(adapter: ModuleType, meta: dict[str, Any]) -> tuple[Callable[[Any], NativeOp], bool]:
    """The adapter's ``converter(meta)`` (``(convert, keywords)``), or its plain ``native`` positional."""
    if hasattr(adapter, "converter"):
        convert, keywords = adapter.converter(meta)
        return convert, bool(keywords)
    return adapter.native, False


def _check(summary: dict[str, int], expected: dict[str, int], events: dict[str, int]) -> list[str]:
    """Differences between an engine's final book and the reference (keys the engine can report)."""
    problems = [
        f"{key}: got {value}, expected {expected[key]}"
        for key, value in sorted(summary.items())
        if key in expected and value != expected[key]
    ]
    if events and "TRADE_EXECUTED" in events and events["TRADE_EXECUTED"] != expected["trades"]:
        problems.append(
            f"TRADE_EXECUTED events: got {events['TRADE_EXECUTED']}, expected {expected['trades']}"
        )
    return problems


def _rss_kib() -> int:
    """Current resident set size in KiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _reset_peak_rss() -> bool:
    """Reset this process's resident high-water mark (``VmHWM``) to the current RSS, where Linux allows.

    Needed because ``ru_maxrss`` survives ``fork``/``exec``: a worker would otherwise report its parent's
    (larger) peak.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _peak_rss_kib() -> int:
    """Peak resident set size in KiB: ``VmHWM`` from ``/proc/self/status``, else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_time(engine: str, workload_path: Path, subscriber: bool) -> dict[str, Any]:
    """Throughput pass, correctness check and latency pass; see the module docstring."""
    adapter = _adapter(engine)
    wl = load(workload_path)
    convert, keywords = _conversion(adapter, wl["meta"])
    prefill = [convert(op) for op in wl["prefill"]]
    kinds = [op[0] for op in wl["ops"]]
    apply, time_total, time_each = (
        (_apply_kw, _time_total_kw, _time_each_kw) if keywords else (_apply, _time_total, _time_each)
    )

    adapter.setup(subscriber)
    add, cancel = adapter.bound()
    apply(prefill, add, cancel)
    gc.collect()
    total_ns = sum(_timed_in_chunks(wl["ops"], convert, time_total, add, cancel))
    summary = adapter.summary()
    events = adapter.event_counts()
    adapter.teardown()
    del add, cancel
    problems = _check(summary, wl["expected"], events)

    adapter.setup(subscriber)
    add, cancel = adapter.bound()
    apply(prefill, add, cancel)
    gc.collect()
    latencies = [ns for chunk in _timed_in_chunks(wl["ops"], convert, time_each, add, cancel) for ns in chunk]
    adapter.teardown()
    del add, cancel
    ops = [convert(op) for op in wl["ops"]]

    return {
        "engine": engine,
        "workload": wl["name"],
        "mode": "time",
        "subscriber": subscriber,
        "n_ops": len(ops),
        "total_ns": total_ns,
        "ns_per_op": total_ns / max(1, len(ops)),
        "latency_ns": _latency_stats(latencies, kinds),
        "timer_overhead_ns": _timer_overhead(),
        "loop_overhead_ns": _loop_overhead(ops, keywords),
        "keywords": keywords,
        "summary": summary,
        "expected": wl["expected"],
        "events": events,
        "events_per_op": sum(events.values()) / max(1, len(ops)),
        "problems": problems,
        "python": sys.version.split()[0],
        "clock": _clock,
    }


def run_memory(engine: str, workload_path: Path) -> dict[str, Any]:
    """Peak RSS growth while building the book and running the ops once, without a subscriber."""
    adapter = _adapter(engine)
    wl = load(workload_path)
    convert, keywords = _conversion(adapter, wl["meta"])
    prefill = [convert(op) for op in wl["prefill"]]
    ops = [convert(op) for op in wl["ops"]]
    apply = _apply_kw if keywords else _apply
    gc.collect()
    peak_reset = _reset_peak_rss()
    before_kib = _rss_kib()
    adapter.setup(False)
    add, cancel = adapter.bound()
    apply(prefill, add, cancel)
    after_prefill_kib = _rss_kib()
    apply(ops, add, cancel)
    end_kib = _rss_kib()
    peak_kib = _peak_rss_kib()
    return {
        "engine": engine,
        "workload": wl["name"],
        "mode": "memory",
        "subscriber": False,
        "rss_before_kib": before_kib,
        "rss_after_prefill_kib": after_prefill_kib,
        "rss_end_kib": end_kib,
        "peak_growth_kib": max(0, peak_kib - before_kib),
        "end_growth_kib": max(0, end_kib - before_kib),
        "peak_reset": peak_reset,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run one measurement, print its JSON on one line; exit code 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", required=True, help="adapter module name: ours, legacy or lob")
    parser.add_argument("--workload", type=Path, help="pickle written by benchmarks.workloads")
    parser.add_argument("--mode", choices=("time", "memory", "describe"), default="time")
    parser.add_argument("--subscriber", action="store_true", help="subscribe a handler to every event type")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="what is timed (default wall)"
    )
    args = parser.parse_args(argv)
    global _clock
    _clock = args.clock
    if args.mode == "describe":
        result: dict[str, Any] = {"engine": args.engine, **_adapter(args.engine).describe()}
    elif args.workload is None:
        parser.error("--workload is required for --mode time/memory")
    elif args.mode == "time":
        result = run_time(args.engine, args.workload, args.subscriber)
    else:
        result = run_memory(args.engine, args.workload)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
