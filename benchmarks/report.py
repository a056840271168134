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

__all__ = [
    "DISTURBED_SHARE",
    "Targets",
    "console_summary",
    "headline_targets",
    "main",
    "targets",
    "write_report",
]

ENGINE_ORDER = ("ours", "ours_compiled", "legacy", "lob")
OURS = ("ours", "ours_compiled")
ENGINE_COLORS = {"ours": "#1f77b4", "ours_compiled": "#2ca02c", "legacy": "#d62728", "lob": "#7f7f7f"}
KINDS = ("add", "cancel", "aggressive")
#: A run during which other processes used more than this share of a core is "disturbed".
DISTURBED_SHARE = 0.25
#: The user-convention workloads (issue 14's headline rows), then the positional ones.
USER_ROLES = ("user_mix", "user_mix_str", "user_mix_decimal", "user_deep")
WORKLOAD_ORDER = (
    *USER_ROLES,
    "add_only",
    "cancel_heavy",
    "mix",
    "deep_sweeps",
    "scale_small",
    "scale_large",
)


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


def ratio_spread(
    data: dict[str, Any], engine: str, other: str, role: str, subscriber: bool
) -> tuple[float | None, float | None, float | None]:
    """``other``'s time over ``engine``'s: (ratio of the medians, lowest and highest per-repeat ratio).

    The per-repeat ratios pair the two engines' runs of the same repeat (they ran interleaved); the
    range is None when fewer than two repeats pair up.
    """
    mine = {r["repeat"]: r["ns_per_op"] for r in _ok_runs(data, engine, role, subscriber)}
    theirs = {r["repeat"]: r["ns_per_op"] for r in _ok_runs(data, other, role, subscriber)}
    median = _ratio(per_op_ns(data, other, role, subscriber), per_op_ns(data, engine, role, subscriber))
    paired = [theirs[k] / mine[k] for k in mine.keys() & theirs.keys() if mine[k]]
    if len(paired) < 2:
        return median, None, None
    return median, min(paired), max(paired)


def _x_spread(values: tuple[float | None, float | None, float | None]) -> str:
    median, low, high = values
    text = _x(median)
    if low is not None and high is not None:
        text += f" [{low:.2f}-{high:.2f}]"
    return text


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


def headline_targets(data: dict[str, Any]) -> list[Targets]:
    """Issue 14's targets on the user-convention workloads, per variant of our engine present.

    Each target has a bound per build (mypyc, pure Python); a build without one shows its figure with
    no verdict. Ratios are the ratio of the medians with the per-repeat range in brackets.
    """
    variants = _ours(data)
    small, large = _levels_label(data)

    def speedup(
        other: str, role: str, sub: bool, bounds: dict[str, float]
    ) -> Callable[[str], tuple[str, bool | None]]:
        def measure(ours: str) -> tuple[str, bool | None]:
            spread = ratio_spread(data, ours, other, role, sub)
            bound = bounds.get(ours)
            return _x_spread(spread), (_ge(spread[0], bound) if bound is not None else None)

        return measure

    def scaling(ours: str) -> tuple[str, bool | None]:
        r = _ratio(per_op_ns(data, ours, "scale_large"), per_op_ns(data, ours, "scale_small"))
        return _x(r), _le(r, 2.0)

    def p99_add(ours: str) -> tuple[str, bool | None]:
        p99 = latency_ns(data, ours, "user_mix", "add", "p99")
        return ("n/a", None) if p99 is None else (f"{p99 / 1000:.2f} µs", p99 < 20_000)

    compiled_only = "ours_compiled"
    specs: list[tuple[str, str, Callable[[str], tuple[str, bool | None]]]] = [
        (
            "user mix, no subscriber: speed vs manticore-orderbook 1.0.1",
            "mypyc >= 12x; pure >= 5x",
            speedup("legacy", "user_mix", False, {"ours_compiled": 12.0, "ours": 5.0}),
        ),
        (
            "user mix, no subscriber: speed vs limit-order-book 2.0.0 (C++)",
            "mypyc >= 1.0x (stretch 1.5x)",
            speedup("lob", "user_mix", False, {compiled_only: 1.0}),
        ),
        (
            "user mix, subscriber on every event: speed vs manticore-orderbook 1.0.1",
            "mypyc >= 5x; pure >= 2x",
            speedup("legacy", "user_mix", True, {"ours_compiled": 5.0, "ours": 2.0}),
        ),
        (
            "user deep sweeps (100-400 fills per order): speed vs limit-order-book 2.0.0",
            "mypyc >= 0.5x",
            speedup("lob", "user_deep", False, {compiled_only: 0.5}),
        ),
        (f"per-op cost of the (positional) mix at {large} vs {small} levels", "<= 2x", scaling),
        ("p99 add latency, user mix (resting adds)", "< 20 µs", p99_add),
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


def _targets_table(
    data: dict[str, Any], rows_of: Callable[[dict[str, Any]], list[Targets]] = targets
) -> list[str]:
    variants = _ours(data)
    if not variants:
        return ["Our engine was not part of this run."]
    header = ["target", "goal", *[f"{_label(data, v)}" for v in variants]]
    rows = [
        [t.name, t.target, *[f"{m} {_verdict(p, m)}" for m, p in (t.results[v] for v in variants)]]
        for t in rows_of(data)
    ]
    return _table(header, rows)


def _verdict(passed: bool | None, measured: str = "n/a") -> str:
    if passed is None:
        return "not measured" if measured == "n/a" else "(no target)"
    return "PASS" if passed else "**FAIL**"


def _headline_section(data: dict[str, Any]) -> list[str]:
    """The user-convention workloads: targets, then every engine's µs/op and our ratios."""
    roles = [r for r in USER_ROLES if r in _roles(data)]
    if not roles:
        return []
    engines = _engines(data)
    pairs = [(o, e) for o in _ours(data) for e in engines if e not in OURS]
    header = ["workload", *[f"{_label(data, e)} µs/op" for e in engines]]
    header += [f"{_short(o)} vs {e}" for o, e in pairs]
    rows = []
    for role, name, sub in _throughput_rows(data):
        if role not in roles:
            continue
        cells = [name] + [_us_spread(data, e, role, sub) for e in engines]
        cells += [_x_spread(ratio_spread(data, o, e, role, sub)) for o, e in pairs]
        rows.append(cells)
    convention = _workload(data, roles[0]).get("convention", {})
    return [
        "## Headline: the book called the way users call it",
        "",
        "The workloads users see (issue 14): `OrderBook(symbol=..., event_manager=em)` with the book's",
        "defaults, and every order an `add_order(side=..., price=..., quantity=..., order_id=...,",
        'user_id=..., time_in_force="GTC")` call with keyword arguments; prices of '
        f"{convention.get('price_decimals', 2)} decimals around",
        f"10,000.00, quantities of up to {convention.get('quantity_decimals', 3)} decimals; aggressive "
        "orders are IOC limits at a protection price.",
        "The same order stream is passed as floats, as `str` and as `Decimal`. Competitors get it as close",
        "as their APIs allow (see Engines). Ratios: the competitor's median time over ours (above 1x we",
        "are faster), the range of the per-repeat ratios in brackets; times: median [fastest-slowest",
        "repeat].",
        "",
        "### Targets (issue 14)",
        "",
        *_targets_table(data, headline_targets),
        "",
        "### Throughput",
        "",
        *_table(header, rows),
        "",
    ]


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
        if role in USER_ROLES:
            continue
        cells = [name] + [_us_spread(data, e, role, sub) for e in engines]
        cells += [_x(_ratio(per_op_ns(data, e, role, sub), per_op_ns(data, o, role, sub))) for o, e in pairs]
        rows.append(cells)
    if not rows:
        return []
    return [
        "## Throughput (positional calls)",
        "",
        "The earlier workloads (issue 2): `add_order(side, price, quantity, order_id)` called positionally",
        "with integral float prices and quantities (the user-convention rows are in the headline above).",
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
    lines: list[str] = []
    for role, what in (
        ("user_deep", "an IOC limit called as users do that makes 100-400 fills (whole levels)"),
        ("deep_sweeps", "a positional limit that empties 20-100 whole levels"),
    ):
        if role not in _roles(data):
            continue
        wl = _workload(data, role)
        fills_per_sweep = wl["expected"]["trades"] / max(1, wl["n_aggressive"])
        rows = []
        for e in _engines(data):
            for sub in (False, True):
                mean = latency_ns(data, e, role, "aggressive", "mean", sub)
                if mean is None:
                    continue
                rows.append(
                    [
                        _label(data, e) + (" + subscriber" if sub else ""),
                        _us(mean, 1),
                        _us(mean / fills_per_sweep, 2),
                    ]
                )
        lines += [
            f"### {wl['title'].capitalize()}",
            "",
            f"Each sweep is {what}: {fills_per_sweep:.0f} maker fills per sweep on average.",
            "",
            *_table(["engine", "µs per sweep (mean)", "µs per fill"], rows),
            "",
        ]
    return lines


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
    for role in ("user_mix", "mix"):
        for e in _engines(data):
            runs = _ok_runs(data, e, role, True)
            if not runs:
                continue
            counts = runs[0]["events"]
            per_op = runs[0]["events_per_op"]
            detail = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
            rows.append([_workload(data, role)["title"], _label(data, e), f"{per_op:.2f}", detail])
    if not rows:
        return []
    return [
        "### Events delivered in the mixes (subscriber on every event type)",
        "",
        *_table(["workload", "engine", "events per op", "by type"], rows),
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
        "(prices integer ticks, quantities 1-100 lots, aggressive orders up to 250 lots; in the user",
        "workloads cents and thousandths, 0.001-2.000 resting and up to 5.000 aggressive) and fed",
        "identically to every engine through one small adapter each (`benchmarks/adapters/`). The ops are",
        "converted to each engine's native call arguments before timing. Books are pre-filled before the",
        "clock starts.",
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
    "ours_compiled": "the same source compiled with mypyc, what `pip install .` gives "
    "(`MANTICORE_BUILD=compiled pip install .` into `.venv-compiled` by `make compiled`). Same adapter "
    "and calls as the pure-Python build.",
    "ours": "this repository's `src/manticore_orderbook`, run from the project's `.venv` (editable install, "
    'always the pure-Python source). Built with its defaults: `OrderBook(symbol="BTC/USD", '
    "event_manager=em)` (tick and lot 0.00000001, so two- and three-decimal inputs are on its grid). User "
    'workloads: `add_order(side=..., price=..., quantity=..., order_id="o<n>", user_id="u<n mod 50>", '
    'time_in_force="GTC")` (IOC for aggressive orders) with float, `str` or `Decimal` values as they '
    "come; the other workloads `add_order(side, price, quantity, order_id)` positionally with integral "
    "floats; `cancel_order(order_id)`.",
    "legacy": "the PyPI package whose API ours copies, in its own venv (`benchmarks/.venvs/legacy`; its "
    "top-level package is also called `manticore_orderbook`). Same calls and arguments as ours, except "
    "that its `str` and `Decimal` user workloads get the same values as floats (converted before timing): "
    "it takes floats only. Given its most favourable reasonable configuration: `enable_logging=False` on "
    "the book and the event manager, and INFO logging disabled process-wide (by default it formats and "
    "prints log lines on every add and cancel).",
    "lob": "a C++ book behind a ctypes binding, compiled from the sdist by pip in its own venv "
    "(`benchmarks/.venvs/lob`). Called as `LimitOrderBook().limit(side_is_buy, id, qty, price)` and "
    "`cancel(id)` with integer ids, ticks and lots (cents and thousandths in the user workloads). It has "
    "no IOC: a user workload's IOC order is sent as a limit for exactly the quantity it fills (taken from "
    "the reference book), so it trades the same and never rests, in one call instead of a limit plus a "
    "cancel of the remainder. It has no events and reports no trades, so it does strictly less work per "
    "operation than the Manticore engines; no subscriber rows for it.",
}

COMPETITOR_FINDINGS = """## Notes on the competitor libraries

Observed while building this suite (with each library's public API only):

**manticore-orderbook 1.0.1**
- Float arithmetic leaks into the book: selling 0.3 against buys of 0.1 and 0.2 at the same price leaves a
  resting bid of `2.7755575615628914e-17` (a dust order that never goes away by itself). With whole-number
  quantities its final books match the reference; with the user workloads' three-decimal quantities they
  do not (level totals off the 0.001 grid, and dust orders left behind after sweeps): see the
  correctness cross-check.
- It takes floats only: a `str` price raises `TypeError` in `add_order`, and a `Decimal` order is
  accepted but raises `TypeError` (`float * Decimal`) when it trades.
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
        "- Clock: "
        + (
            "each worker thread's CPU time (`--clock cpu`, `time.thread_time_ns`), for a machine too busy "
            "for stable wall times: it leaves out the time other processes held the core, not their effect "
            "on the caches."
            if meta.get("clock") == "cpu"
            else "the wall clock (`time.perf_counter_ns`)."
        ),
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
    ]
    lines += _headline_section(data)
    lines += [
        "## Earlier targets (issue 2: positional calls, integral prices)",
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
    fig = plt.figure(figsize=(18, 10))
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
        [
            name.replace(" + subscriber", "\n+ sub")
            .replace(" @ ", "\n@ ")
            .replace(" (", "\n(")
            .replace(" sweeps", "\nsweeps")
            for _, name, _ in rows
        ],
        fontsize=7,
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
    rows = headline_targets(data) + targets(data)
    variants = list(rows[0].results) if rows else []
    for t in rows:
        cells = [
            f"{measured} " + colors[passed](_verdict(passed, measured).strip("*"))
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
