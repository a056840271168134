"""Turn raw results into ``benchmarks.md`` (tables) and ``benchmarks.png`` (plots).

Usage: ``python -m benchmarks.report [benchmarks/.build/results-full.json] [--out docs]`` rewrites the
report from saved raw results without re-running anything.

Units: times in the tables are microseconds (µs) per operation unless a column says otherwise; the raw
results are nanoseconds. Every figure is the median over the repeats of one run; every ratio compares
engines measured in that same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

__all__ = ["DISTURBED_SHARE", "Targets", "console_summary", "main", "targets", "write_report"]

ENGINE_ORDER = ("ours", "ours_compiled", "legacy", "lob")
OURS = ("ours", "ours_compiled")
ENGINE_COLORS = {"ours": "#1f77b4", "ours_compiled": "#2ca02c", "legacy": "#d62728", "lob": "#7f7f7f"}
KINDS = ("add", "cancel", "aggressive")
#: A run during which other processes used more than this share of a core is "disturbed".
DISTURBED_SHARE = 0.25
WORKLOAD_ORDER = ("add_only", "cancel_heavy", "mix", "deep_sweeps", "scale_small", "scale_large")


# ------------------------------------------------------------------------------------------ aggregation
def _ok_runs(
    data: dict[str, Any], engine: str, role: str, subscriber: bool, mode: str = "time"
) -> list[dict[str, Any]]:
    """Successful runs of one combination; disturbed runs are left out while at least half are clean."""
    runs = [
        r
        for r in data["runs"]
        if r["engine"] == engine
        and r["role"] == role
        and r["mode"] == mode
        and r["subscriber"] == subscriber
        and "error" not in r
    ]
    clean = [r for r in runs if not _disturbed(r)]
    return clean if 2 * len(clean) >= len(runs) else runs


def _disturbed(run: dict[str, Any]) -> bool:
    return float(run.get("foreign_cpu_share", 0.0)) > DISTURBED_SHARE


def _median(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _us_spread(data: dict[str, Any], engine: str, role: str, subscriber: bool) -> str:
    """``median [min-max]`` of the throughput pass over the repeats, in µs per op."""
    values = [r["ns_per_op"] for r in _ok_runs(data, engine, role, subscriber)]
    if not values:
        return "n/a"
    text = _us(statistics.median(values))
    if len(values) > 1:
        text += f" [{_us(min(values))}-{_us(max(values))}]"
    return text


def per_op_ns(data: dict[str, Any], engine: str, role: str, subscriber: bool = False) -> float | None:
    """Median over repeats of the throughput pass's mean ns per op."""
    return _median(r["ns_per_op"] for r in _ok_runs(data, engine, role, subscriber))


def latency_ns(
    data: dict[str, Any], engine: str, role: str, kind: str, stat: str, subscriber: bool = False
) -> float | None:
    """Median over repeats of one latency statistic (``p50``, ``p99``, ``mean``...) of one op kind, ns."""
    return _median(
        r["latency_ns"][kind][stat]
        for r in _ok_runs(data, engine, role, subscriber)
        if kind in r["latency_ns"]
    )


def memory_kib(data: dict[str, Any], engine: str, role: str) -> float | None:
    """Peak RSS growth (KiB) from the memory run."""
    return _median(r["peak_growth_kib"] for r in _ok_runs(data, engine, role, False, mode="memory"))


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def _us(ns: float | None, digits: int = 2) -> str:
    return "n/a" if ns is None else f"{ns / 1000:.{digits}f}"


def _x(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def _roles(data: dict[str, Any]) -> list[str]:
    present = {w["role"] for w in data["workloads"].values()}
    return [r for r in WORKLOAD_ORDER if r in present]


def _workload(data: dict[str, Any], role: str) -> dict[str, Any]:
    for wl in data["workloads"].values():
        if wl["role"] == role:
            return dict(wl)
    raise KeyError(role)


def _engines(data: dict[str, Any]) -> list[str]:
    return [e for e in ENGINE_ORDER if e in data["engines"]]


def _ours(data: dict[str, Any]) -> list[str]:
    """Our engine's variants present in the run (pure Python and/or mypyc-compiled)."""
    return [e for e in OURS if e in data["engines"]]


def _label(data: dict[str, Any], engine: str) -> str:
    labels = {
        "ours": "manticore (ours, pure Python)",
        "ours_compiled": "manticore (ours, mypyc)",
        "legacy": f"manticore-orderbook {data['engines'].get('legacy', {}).get('version', '1.0.1')}",
        "lob": f"limit-order-book {data['engines'].get('lob', {}).get('version', '2.0.0')} (C++)",
    }
    return labels[engine]


def _short(engine: str) -> str:
    return {"ours": "ours", "ours_compiled": "ours (mypyc)", "legacy": "legacy", "lob": "lob"}[engine]


# ---------------------------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Targets:
    """One row of the targets table: the goal and, per variant of our engine, (measured, passed)."""

    name: str
    target: str
    results: dict[str, tuple[str, bool | None]]


def targets(data: dict[str, Any]) -> list[Targets]:
    """The issue's targets, evaluated on this run for each variant of our engine present.

    ``passed`` is None when something needed was not measured.
    """
    variants = _ours(data)
    levels = _levels_label(data)

    def speedup(ours: str, other: str, sub: bool, bound: float) -> tuple[str, bool | None]:
        r = _ratio(per_op_ns(data, other, "mix", sub), per_op_ns(data, ours, "mix", sub))
        return _x(r), _ge(r, bound)

    def scaling(ours: str) -> tuple[str, bool | None]:
        r = _ratio(per_op_ns(data, ours, "scale_large"), per_op_ns(data, ours, "scale_small"))
        return _x(r), _le(r, 2.0)

    def p99_add(ours: str, role: str) -> tuple[str, bool | None]:
        p99 = latency_ns(data, ours, role, "add", "p99")
        return ("n/a", None) if p99 is None else (f"{p99 / 1000:.2f} µs", p99 < 20_000)

    specs: list[tuple[str, str, Callable[[str], tuple[str, bool | None]]]] = [
        (
            "mix, no subscriber: speed vs manticore-orderbook 1.0.1",
            ">= 10x",
            lambda o: speedup(o, "legacy", False, 10.0),
        ),
        (
            "mix, no subscriber: speed vs limit-order-book (C++)",
            ">= 0.6x",
            lambda o: speedup(o, "lob", False, 0.6),
        ),
        (
            "mix, subscriber on every event: speed vs manticore-orderbook 1.0.1",
            ">= 4x",
            lambda o: speedup(o, "legacy", True, 4.0),
        ),
        (f"per-op cost of the mix at {levels[1]} vs {levels[0]} levels", "<= 2x", scaling),
        ("p99 add latency, add-only", "< 20 µs", lambda o: p99_add(o, "add_only")),
        ("p99 add latency, mix (resting adds)", "< 20 µs", lambda o: p99_add(o, "mix")),
    ]
    return [Targets(name, goal, {o: fn(o) for o in variants}) for name, goal, fn in specs]


def _ge(value: float | None, bound: float) -> bool | None:
    return None if value is None else value >= bound


def _le(value: float | None, bound: float) -> bool | None:
    return None if value is None else value <= bound


def _levels_label(data: dict[str, Any]) -> tuple[str, str]:
    out = []
    for role in ("scale_small", "scale_large"):
        try:
            out.append(f"{_workload(data, role)['scale_levels']:,}")
        except KeyError:
            out.append("?")
    return out[0], out[1]


def _targets_table(data: dict[str, Any]) -> list[str]:
    variants = _ours(data)
    if not variants:
        return ["Our engine was not part of this run."]
    header = ["target", "goal", *[f"{_label(data, v)}" for v in variants]]
    rows = [
        [t.name, t.target, *[f"{m} {_verdict(p)}" for m, p in (t.results[v] for v in variants)]]
        for t in targets(data)
    ]
    return _table(header, rows)


def _verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "**FAIL**", None: "not measured"}[passed]


# ------------------------------------------------------------------------------------------------ tables
def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _throughput_rows(data: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(role, display name, subscriber) for every throughput row."""
    rows = []
    for role in _roles(data):
        title = _workload(data, role)["title"]
        rows.append((role, title, False))
        if any(_ok_runs(data, e, role, True) for e in _engines(data)):
            rows.append((role, f"{title} + subscriber", True))
    return rows


def _throughput_section(data: dict[str, Any]) -> list[str]:
    engines = _engines(data)
    header = ["workload", *[f"{_label(data, e)} µs/op" for e in engines]]
    pairs = [(o, e) for o in _ours(data) for e in engines if e not in OURS]
    header += [f"{_short(o)} vs {e}" for o, e in pairs]
    rows = []
    for role, name, sub in _throughput_rows(data):
        cells = [name] + [_us_spread(data, e, role, sub) for e in engines]
        cells += [_x(_ratio(per_op_ns(data, e, role, sub), per_op_ns(data, o, role, sub))) for o, e in pairs]
        rows.append(cells)
    return [
        "## Throughput",
        "",
        "Mean time per operation (µs/op: total time of the timed op list / number of ops; lower is better),",
        'median of the repeats, with the fastest and slowest repeat in brackets. "ours vs X" is X\'s',
        "median time divided by ours: above 1x we are faster.",
        "",
        *_table(header, rows),
        "",
    ]


def _latency_section(data: dict[str, Any]) -> list[str]:
    engines = _engines(data)
    header = ["workload", "engine", *[f"{k} p50 / p99" for k in KINDS], "all p99.9"]
    rows = []
    for role, name, sub in _throughput_rows(data):
        for e in engines:
            if not _ok_runs(data, e, role, sub):
                continue
            cells = [name, _label(data, e)]
            for kind in KINDS:
                p50 = latency_ns(data, e, role, kind, "p50", sub)
                p99 = latency_ns(data, e, role, kind, "p99", sub)
                cells.append("-" if p50 is None else f"{_us(p50)} / {_us(p99)}")
            cells.append(_us(latency_ns(data, e, role, "all", "p999", sub)))
            rows.append(cells)
    overhead = _median(r.get("timer_overhead_ns") for r in data["runs"] if "timer_overhead_ns" in r)
    return [
        "## Latency per operation",
        "",
        "Every op timed on its own in a second pass over a freshly built book (µs, p50 / p99 by op kind,",
        'median of the repeats; "aggressive" = a limit order priced through the opposite side that sweeps',
        "levels). Each sample includes one pair of `perf_counter_ns` reads"
        + (f" (~{overhead:.0f} ns on this machine)." if overhead is not None else "."),
        "Garbage collection stays enabled, so collector pauses show up in the tails as they would in a",
        "service.",
        "",
        *_table(header, rows),
        "",
    ]


def _sweep_section(data: dict[str, Any]) -> list[str]:
    if "deep_sweeps" not in _roles(data):
        return []
    wl = _workload(data, "deep_sweeps")
    fills_per_sweep = wl["expected"]["trades"] / max(1, wl["n_aggressive"])
    rows = []
    for e in _engines(data):
        for sub in (False, True):
            mean = latency_ns(data, e, "deep_sweeps", "aggressive", "mean", sub)
            if mean is None:
                continue
            rows.append(
                [
                    _label(data, e) + (" + subscriber" if sub else ""),
                    _us(mean, 1),
                    _us(mean / fills_per_sweep, 2),
                ]
            )
    return [
        "### Deep sweeps",
        "",
        f"Each sweep empties 20-100 whole levels: {fills_per_sweep:.0f} maker fills per sweep on average.",
        "",
        *_table(["engine", "µs per sweep (mean)", "µs per fill"], rows),
        "",
    ]


def _scaling_section(data: dict[str, Any]) -> list[str]:
    if not {"scale_small", "scale_large"} <= set(_roles(data)):
        return []
    small_n, large_n = _levels_label(data)
    rows = []
    for e in _engines(data):
        small, large = per_op_ns(data, e, "scale_small"), per_op_ns(data, e, "scale_large")
        cells = [_label(data, e), _us(small), _us(large), _x(_ratio(large, small))]
        for kind in KINDS:
            cells.append(
                _x(
                    _ratio(
                        latency_ns(data, e, "scale_large", kind, "mean"),
                        latency_ns(data, e, "scale_small", kind, "mean"),
                    )
                )
            )
        rows.append(cells)
    small_wl, large_wl = _workload(data, "scale_small"), _workload(data, "scale_large")
    runs_note = _caps_note(data, "scale_large")
    return [
        "## Cost versus book size",
        "",
        f"The realistic mix ({small_wl['n_ops']:,} ops) on a book that starts with {small_n} price levels",
        f"and on one that starts with {large_n} (one order per level, inserted in random order). At the",
        f"end the books hold {small_wl['levels_after']:,} and {large_wl['levels_after']:,} levels.",
        f"Ratio = cost at {large_n} / cost at {small_n} (1x = no dependence on book size).{runs_note}",
        "",
        *_table(
            [
                "engine",
                f"µs/op @ {small_n}",
                f"µs/op @ {large_n}",
                "ratio",
                *[f"{k} mean ratio" for k in KINDS],
            ],
            rows,
        ),
        "",
    ]


def _caps_note(data: dict[str, Any], role: str) -> str:
    caps = data["meta"].get("repeat_caps", {})
    notes = [
        f" {_label(data, key.split('/')[0])} ran {n}x only here (too slow to repeat within the time budget)."
        for key, n in caps.items()
        if key.split("/")[1] == role and key.split("/")[0] in data["engines"] and n < data["meta"]["repeats"]
    ]
    return "".join(notes)


def _memory_section(data: dict[str, Any]) -> list[str]:
    engines = _engines(data)
    if not any(r["mode"] == "memory" for r in data["runs"]):
        return []
    rows = []
    for role in _roles(data):
        wl = _workload(data, role)
        cells = [wl["title"]]
        cells += [
            "n/a" if (kib := memory_kib(data, e, role)) is None else f"{kib / 1024:.1f}" for e in engines
        ]
        rows.append(cells)
    return [
        "## Peak memory",
        "",
        "Peak resident-memory growth (MiB) of a fresh process while it builds the book and runs the ops",
        "once (no subscriber): the resident high-water mark (`VmHWM`, reset just before the book is created)",
        "minus the resident size at that moment (after the workload was loaded). Counts C/C++ allocations",
        "too; values under ~1 MiB are within the noise of the allocator.",
        "",
        *_table(["workload", *[f"{_label(data, e)} MiB" for e in engines]], rows),
        "",
    ]


def _correctness_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "## Correctness cross-check",
        "",
        "After each throughput pass the engine's final book is compared with an exact integer reference book",
        "that was run alongside the generator (orders, lots and price levels per side where the engine can",
        "report them; with a subscriber also the number of TRADE_EXECUTED events vs maker fills).",
        "",
    ]
    rows = []
    for e in _engines(data):
        for role in _roles(data):
            runs = [r for r in data["runs"] if r["engine"] == e and r["role"] == role and r["mode"] == "time"]
            if not runs:
                continue
            errors = [r["error"].splitlines()[0] for r in runs if "error" in r]
            problems = sorted({p for r in runs for p in r.get("problems", [])})
            if errors:
                verdict = "run failed: " + errors[0][:120]
            elif problems:
                verdict = "mismatch: " + "; ".join(problems[:3])
            else:
                verdict = f"matches ({len(runs)} runs)"
            rows.append([_label(data, e), _workload(data, role)["title"], verdict])
    lines += _table(["engine", "workload", "result"], rows)
    lines.append("")
    return lines


def _events_section(data: dict[str, Any]) -> list[str]:
    rows = []
    for e in _engines(data):
        runs = _ok_runs(data, e, "mix", True)
        if not runs:
            continue
        counts = runs[0]["events"]
        per_op = runs[0]["events_per_op"]
        detail = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        rows.append([_label(data, e), f"{per_op:.2f}", detail])
    if not rows:
        return []
    return [
        "### Events delivered in the mix (subscriber on every event type)",
        "",
        *_table(["engine", "events per op", "by type"], rows),
        "",
    ]


def _workloads_section(data: dict[str, Any]) -> list[str]:
    rows = []
    for role in _roles(data):
        wl = _workload(data, role)
        mixdesc = f"{wl['n_add']:,} / {wl['n_cancel']:,} / {wl['n_aggressive']:,}"
        rows.append(
            [
                wl["title"],
                wl["description"],
                f"{wl['n_ops']:,}",
                mixdesc,
                f"{wl['levels_before']:,} -> {wl['levels_after']:,}",
            ]
        )
    return [
        "## Workloads",
        "",
        "Generated once per run from a fixed seed as lists of plain tuples `(kind, side, price, qty, id)`",
        "(prices integer ticks, quantities 1-100 lots, aggressive orders up to 250 lots) and fed identically",
        "to every engine through one small adapter each (`benchmarks/adapters/`). The ops are converted to",
        "each engine's native call arguments before timing. Books are pre-filled before the clock starts.",
        "",
        *_table(
            ["workload", "what", "timed ops", "adds / cancels / aggressive", "levels start -> end"], rows
        ),
        "",
    ]


def _engines_section(data: dict[str, Any]) -> list[str]:
    lines = ["## Engines", ""]
    for e in _engines(data):
        info = data["engines"][e]
        lines.append(f"- **{_label(data, e)}** (`{info['version']}`): {ENGINE_NOTES[e]}")
        if info.get("stale"):
            lines.append("  **Stale build**: `src/` changed after the last `make compiled`.")
        if e in ("ours", "legacy"):
            lines.append(f"  Subscriber wiring used: `{info.get('how_subscribed', '?')}`.")
    lines.append("")
    return lines


ENGINE_NOTES = {
    "ours_compiled": "the same source compiled with mypyc (`make compiled`, installed into "
    "`.venv-compiled`). Same adapter and calls as the pure-Python build.",
    "ours": "this repository's `src/manticore_orderbook`, run from the project's `.venv` (editable install). "
    'Called as the integration guide does: `OrderBook(symbol="BTC/USD", event_manager=em)`, '
    "`add_order(side, price, quantity, order_id)` with float prices/quantities, `cancel_order(order_id)`.",
    "legacy": "the PyPI package whose API ours copies, in its own venv (`benchmarks/.venvs/legacy`; its "
    "top-level package is also called `manticore_orderbook`). Same calls and arguments as ours. Given its "
    "most favourable reasonable configuration: `enable_logging=False` on the book and the event manager, "
    "and INFO logging disabled process-wide (by default it formats and prints log lines on every add and "
    "cancel).",
    "lob": "a C++ book behind a ctypes binding, compiled from the sdist by pip in its own venv "
    "(`benchmarks/.venvs/lob`). Called as `LimitOrderBook().limit(side_is_buy, id, qty, price)` and "
    "`cancel(id)` with integer ids, ticks and lots. It has no events and reports no trades, so it does "
    "strictly less work per operation than the Manticore engines; no subscriber rows for it.",
}

COMPETITOR_FINDINGS = """## Notes on the competitor libraries

Observed while building this suite (with each library's public API only):

**manticore-orderbook 1.0.1**
- Float arithmetic leaks into the book: selling 0.3 against buys of 0.1 and 0.2 at the same price leaves a
  resting bid of `2.7755575615628914e-17` (a dust order that never goes away by itself). The benchmark uses
  whole-number quantities, where its final books do match the reference.
- Every trade is published twice, as `TRADE` and as `TRADE_EXECUTED` (plus `ORDER_MODIFIED` for the partially
  filled maker), so a consumer subscribed to every type sees duplicate trades; trade ids are random UUIDs.
- A duplicate `order_id` is accepted silently: both orders rest under the same id. NaN and infinite
  quantities and a NaN price are accepted; zero/negative ones raise `ValueError`.
- `EventManager.subscribe` reads `handler.__name__`, so a callable object (anything but a function or
  method) fails with `AttributeError`.
- Each `OrderBook` starts a background expiry thread (`check_expiry_interval=1.0` s) that walks the book's
  order dictionary without synchronisation while the caller changes it: on large books it keeps failing
  with "Error in expiry checker: dictionary changed size during iteration" (see "Messages printed by the
  engines"), so order expiry cannot be relied on there, and the thread competes for the GIL with the
  caller.
- By default it writes INFO log lines for every add and cancel (formatted, to stderr); `enable_logging=False`
  does not silence all of them (e.g. "Cancelled order ..."), hence the process-wide `logging.disable(INFO)`
  in its adapter. Rejections are still reported as "Error adding order: ..." lines.
- `get_snapshot(depth=0)` returns an empty book (the full book is `depth=None`, the default); levels use the
  key `orderCount`.
- Adds and cancels get slower as the book grows (building a 20,000-level book averaged ~90 µs per add, a
  100,000-level one far more), which is what the cost-versus-size rows show.

**limit-order-book 2.0.0**
- The "binding" is `ctypes` over an `extern "C"` API (no pybind11); the sdist builds with plain setuptools
  and `g++ -O3 -march=native` (so the built wheel is tied to the CPU it was built on). It built without
  changes here.
- Cancelling an unknown id throws `std::out_of_range` through the C API and aborts the whole Python process
  (exit status 134), so the workloads never cancel an order that is not live.
- A duplicate order id corrupts the book: after `limit(buy, id=1, 10 @ 100)` and `limit(buy, id=1, 5 @ 101)`
  it reports 2 orders, volume 20 and best bid 100.
- Price levels live in an unbalanced binary search tree: adding levels in price order (e.g. a book built
  outward from the touch) degrades to a linked list (~62 µs per add at 20,000 levels vs ~2.4 µs in random
  order). The pre-fills here insert levels in random order, its best case.
- The Python side declares volumes as `uint32` while the C++ side uses `uint64`: three bids of 2^31 lots
  report a total volume of 2^31.
- Integer prices/quantities only, no events, no trade reports, no return values (no fills, no acks), no order
  types beyond limit/market.
"""


def _stderr_section(data: dict[str, Any]) -> list[str]:
    """What the engines printed to stderr during successful runs (summed over runs, top lines)."""
    rows = []
    for e in _engines(data):
        totals: dict[str, int] = {}
        for r in data["runs"]:
            if r["engine"] == e and "error" not in r:
                for line, n in r.get("stderr", {}).items():
                    totals[line] = totals.get(line, 0) + n
        for line, n in sorted(totals.items(), key=lambda kv: -kv[1])[:5]:
            rows.append([_label(data, e), f"{n:,}", "`" + line.replace("|", "/").replace("`", "'") + "`"])
    if not rows:
        return []
    return [
        "## Messages printed by the engines",
        "",
        "Lines written to stderr during the runs above (most frequent first, summed over all runs).",
        "",
        *_table(["engine", "times", "line"], rows),
        "",
    ]


def _method_section(data: dict[str, Any]) -> list[str]:
    meta = data["meta"]
    machine = meta["machine"]
    return [
        "## Method",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores usable, {machine['platform']}, "
        f"Python {machine['python']}.",
        f"- {meta['repeats']} repeat(s) of every combination, each a fresh worker process in the engine's "
        "own virtualenv; engines interleaved within each repeat; figures are medians over the repeats.",
        "- Each worker builds the book from the prefill, runs `gc.collect()`, then times the whole op list",
        "  with one pair of `time.perf_counter_ns` reads (throughput), checks the final book, rebuilds it",
        "  and times each op individually (latency). The timed loop is the same for every engine:",
        "  `for is_cancel, args in ops: cancel(args) if is_cancel else add(*args)` over the engine's bound",
        "  methods; the loop itself costs " + _loop_overhead_text(data) + " per op with do-nothing calls.",
        "- Memory: a separate fresh process per engine and workload (see Peak memory).",
        f"- Load average (1 min) at the start and end of the run: {_load_text(meta)}. Other work on the",
        "  machine inflates the times of whichever engine it coincides with, so before each job the",
        f"  runner waits (up to {meta.get('settle_s', 0):g} s each; "
        f"{meta.get('settle_waited_s', 0):g} s in all) for other processes",
        "  to go quiet, and it records how much CPU other processes used while each job ran. Runs where",
        f"  that exceeded {DISTURBED_SHARE:.0%} of a core are left out of the medians when at least half the",
        f"  runs are clean: {_disturbed_text(data)}.",
        f"- Workload seed {meta['seed']}; revision {meta['revision']}; "
        f"the run took {meta['duration_s'] / 60:.1f} min.",
        "",
    ]


def _disturbed_text(data: dict[str, Any]) -> str:
    timed = [r for r in data["runs"] if "error" not in r]
    bad = [r for r in timed if _disturbed(r)]
    return f"{len(bad)} of {len(timed)} runs were disturbed"


def _load_text(meta: dict[str, Any]) -> str:
    loads = meta.get("loadavg", [])
    return " / ".join(f"{x:.2f}" for x in loads) if loads else "n/a"


def _loop_overhead_text(data: dict[str, Any]) -> str:
    value = _median(r.get("loop_overhead_ns") for r in data["runs"] if "loop_overhead_ns" in r)
    return "n/a" if value is None else f"~{value:.0f} ns"


def render_markdown(data: dict[str, Any], images: Sequence[str]) -> str:
    """The whole report as Markdown."""
    meta = data["meta"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{meta['command']}` on {meta['date']} (`make bench` runs the full suite; "
        "`python -m benchmarks.report` re-renders this page from `benchmarks/.build/results-*.json`).",
        "Do not edit by hand.",
        "",
        "## Targets",
        "",
        *_targets_table(data),
        "",
    ]
    for image in images:
        lines += [f"![benchmark plots]({image})", ""]
    lines += _throughput_section(data)
    lines += _latency_section(data)
    lines += _sweep_section(data)
    lines += _scaling_section(data)
    lines += _memory_section(data)
    lines += _events_section(data)
    lines += _correctness_section(data)
    lines += _workloads_section(data)
    lines += _engines_section(data)
    lines += _method_section(data)
    lines += [COMPETITOR_FINDINGS]
    lines += _stderr_section(data)
    failures = [r for r in data["runs"] if "error" in r]
    if failures:
        lines += ["## Failed runs", ""]
        lines += [
            f"- {r['engine']} / {r['workload']} / {r['mode']}{' +sub' if r['subscriber'] else ''} "
            f"(repeat {r['repeat'] + 1}): {r['error'].splitlines()[0][:200]}"
            for r in failures
        ]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------------------------- plots
def _plot(data: dict[str, Any], path: Path) -> bool:
    """Throughput per workload (top); latency p50/p99 by op kind in the mix and cost vs book size (bottom)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        return False
    engines = _engines(data)
    rows = _throughput_rows(data)
    fig = plt.figure(figsize=(15, 10))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.1, 1.0], width_ratios=[1.3, 1.0])

    ax = fig.add_subplot(grid[0, :])
    width = 0.8 / max(1, len(engines))
    for i, e in enumerate(engines):
        xs: list[float] = []
        ys: list[float] = []
        for j, (role, _, sub) in enumerate(rows):
            v = per_op_ns(data, e, role, sub)
            if v is not None:
                xs.append(j + (i - (len(engines) - 1) / 2) * width)
                ys.append(v / 1000)
        ax.bar(xs, ys, width=width, label=_label(data, e), color=ENGINE_COLORS[e])
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(
        [name.replace(" + subscriber", "\n+ subscriber").replace(" @ ", "\n@ ") for _, name, _ in rows],
        fontsize=8,
    )
    ax.set_yscale("log")
    ax.set_ylabel("µs per operation (log scale)")
    ax.set_title("Throughput: mean time per operation (lower is better)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", which="both", alpha=0.3)

    ax = fig.add_subplot(grid[1, 0])
    for i, e in enumerate(engines):
        for k, kind in enumerate(KINDS):
            p50 = latency_ns(data, e, "mix", kind, "p50")
            p99 = latency_ns(data, e, "mix", kind, "p99")
            if p50 is None or p99 is None:
                continue
            x = k + (i - (len(engines) - 1) / 2) * width
            ax.bar(x, p99 / 1000, width=width, color=ENGINE_COLORS[e], label=_short(e) if k == 0 else None)
            ax.plot([x], [p50 / 1000], marker="_", markersize=14, color="black")
    ax.set_xticks(range(len(KINDS)))
    ax.set_xticklabels(["resting add", "cancel", "aggressive (sweep)"])
    ax.set_yscale("log")
    ax.set_ylabel("µs (log scale)")
    ax.set_title("Realistic mix: p99 latency (bars) and p50 (black ticks)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)

    ax = fig.add_subplot(grid[1, 1])
    if {"scale_small", "scale_large"} <= set(_roles(data)):
        levels = [_workload(data, r)["scale_levels"] for r in ("scale_small", "scale_large")]
        for e in engines:
            cost = [per_op_ns(data, e, r) for r in ("scale_small", "scale_large")]
            if all(y is not None for y in cost):
                ax.plot(
                    levels, [(y or 0.0) / 1000 for y in cost], "-o", color=ENGINE_COLORS[e], label=_short(e)
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("price levels in the book at the start")
        ax.set_ylabel("µs per op of the mix (log scale)")
        ax.legend(fontsize=8)
        ax.grid(which="both", alpha=0.3)
    ax.set_title("Cost versus book size")

    for axis in fig.axes:
        for which in (axis.yaxis, axis.xaxis):
            if which.get_scale() == "log":
                which.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
                which.set_minor_formatter(ticker.NullFormatter())
    meta = data["meta"]
    fig.suptitle(
        f"Manticore order book benchmarks ({meta['tag']} run, {meta['repeats']} repeat(s), {meta['date']})"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# -------------------------------------------------------------------------------------------- entry points
def write_report(data: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``benchmarks.md`` and ``benchmarks.png`` into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    png = out_dir / "benchmarks.png"
    images = []
    if _plot(data, png):
        written.append(png)
        images.append(png.name)
    md = out_dir / "benchmarks.md"
    md.write_text(render_markdown(data, images), encoding="utf-8")
    written.insert(0, md)
    return written


def console_summary(data: dict[str, Any]) -> Table:
    """The targets as a rich table, for the end of a run."""
    table = Table(title=f"Targets ({data['meta']['tag']} run, {data['meta']['repeats']} repeat(s))")
    for col in ("target", "goal", *(_short(v) for v in _ours(data))):
        table.add_column(col)
    colors: dict[bool | None, Callable[[str], str]] = {
        True: lambda s: f"[green]{s}[/green]",
        False: lambda s: f"[red]{s}[/red]",
        None: lambda s: f"[yellow]{s}[/yellow]",
    }
    rows = targets(data)
    variants = list(rows[0].results) if rows else []
    for t in rows:
        cells = [
            f"{measured} " + colors[passed](_verdict(passed).strip("*"))
            for measured, passed in (t.results[v] for v in variants)
        ]
        table.add_row(t.name, t.target, *cells)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Re-render the report from a saved raw-results file."""
    from benchmarks.envs import BUILD, REPO

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", type=Path, default=BUILD / "results-full.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args(argv)
    data = json.loads(args.results.read_text())
    for path in write_report(data, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
