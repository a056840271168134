"""Run the whole benchmark suite and write the report: ``python -m benchmarks.run [--quick]``.

1. Make each engine's interpreter ready (:mod:`benchmarks.envs`: creates and installs the competitors'
   virtualenvs on first use).
2. Generate the workloads (:mod:`benchmarks.workloads`, seeded) and pickle them under
   ``benchmarks/.build/workloads/``.
3. Run every (repeat, workload, engine, subscriber) combination as its own worker process
   (:mod:`benchmarks.worker`), one at a time, engines interleaved inside each repeat so that slow drifts
   of the machine hit all engines alike; then one memory measurement per (engine, workload).
4. Save the raw results (``benchmarks/.build/results-<full|quick>.json``) and write the report
   (:mod:`benchmarks.report`): ``docs/benchmarks.md`` and ``docs/benchmarks*.png`` for the full run,
   ``benchmarks/.build/quick/`` for ``--quick`` unless ``--out`` says otherwise.

Exit status: 0 when every run of our engine succeeded and matched the reference book, 1 otherwise, 2 when
an engine that was asked for is not available.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from benchmarks import report
from benchmarks.envs import BUILD, ENGINES, REPO, EngineUnavailable, ensure, worker_env
from benchmarks.report import DISTURBED_SHARE
from benchmarks.workloads import Sizes, Workload, build_all

OURS = ("ours", "ours_compiled")

#: Workloads that also run with a subscriber on every event type (for engines that have events).
SUBSCRIBER_WORKLOADS = (
    "user_mix",
    "user_mix_str",
    "user_mix_decimal",
    "user_deep",
    "add_only",
    "cancel_heavy",
    "mix",
    "deep_sweeps",
)
#: Per (engine, workload role) cap on repeats, for combinations too slow to repeat within the time budget.
#: manticore-orderbook 1.0.1 needs ~tens of seconds just to build a 100,000-level book.
REPEAT_CAPS = {("legacy", "scale_large"): 1}
JOB_TIMEOUT_S = 1_200
#: Other processes using less than this share of one core count as a quiet machine.
QUIET_THRESHOLD = 0.15
#: Longest wait for a quiet machine before each job of the full run (the quick run does not wait), and the
#: most the whole run spends waiting.
SETTLE_S = 20.0
SETTLE_BUDGET_S = 300.0


@dataclass(frozen=True)
class Job:
    """One worker process: an engine on a workload, in one mode, in one repeat."""

    engine: str
    workload: str
    role: str
    path: Path
    mode: str
    subscriber: bool
    repeat: int

    def label(self) -> str:
        """Short description for the progress bar."""
        sub = " +sub" if self.subscriber else ""
        return f"r{self.repeat + 1} {self.engine:<6} {self.workload}{sub} [{self.mode}]"


def _roles(workloads: Sequence[Workload]) -> dict[str, str]:
    """Workload name -> role: its own name, except the scaling pair (``scale_small``/``scale_large``)."""
    roles = {wl.name: wl.name for wl in workloads}
    scale = sorted(
        (wl for wl in workloads if "scale_levels" in wl.meta), key=lambda w: w.meta["scale_levels"]
    )
    if len(scale) == 2:
        roles[scale[0].name] = "scale_small"
        roles[scale[1].name] = "scale_large"
    return roles


def plan(
    workloads: Sequence[Workload],
    paths: dict[str, Path],
    engines: dict[str, dict[str, Any]],
    repeats: int,
    memory: bool,
) -> list[Job]:
    """Every job of the run, in execution order."""
    roles = _roles(workloads)
    jobs: list[Job] = []
    for repeat in range(repeats):
        for wl in workloads:
            role = roles[wl.name]
            for key, info in engines.items():
                if repeat >= REPEAT_CAPS.get((key, role), repeats):
                    continue
                variants = [False]
                if info.get("event_types", 0) and wl.name in SUBSCRIBER_WORKLOADS:
                    variants.append(True)
                for sub in variants:
                    jobs.append(Job(key, wl.name, role, paths[wl.name], "time", sub, repeat))
    if memory:
        for wl in workloads:
            for key in engines:
                jobs.append(Job(key, wl.name, roles[wl.name], paths[wl.name], "memory", False, 0))
    return jobs


def run_job(job: Job, python: str, settle_s: float = 0.0, clock: str = "wall") -> dict[str, Any]:
    """Run one worker; its JSON result plus the job's identity, or an ``error`` entry.

    With ``settle_s`` > 0 it first waits (up to that many seconds) for the other processes on the
    machine to go quiet. It records ``foreign_cpu_share``: CPU time used by *other* processes while the
    worker ran, per second of wall time (0 = the machine was ours; 1 = another process kept a core busy).
    """
    adapter = ENGINES[job.engine].adapter
    cmd = [python, "-m", "benchmarks.worker", "--engine", adapter, "--workload", str(job.path)]
    cmd += ["--mode", job.mode, "--clock", clock] + (["--subscriber"] if job.subscriber else [])
    ident: dict[str, Any] = {
        "engine": job.engine,
        "workload": job.workload,
        "role": job.role,
        "mode": job.mode,
        "subscriber": job.subscriber,
        "repeat": job.repeat,
    }
    if settle_s > 0:
        ident["waited_s"] = _wait_for_quiet(settle_s)
    busy_before, children_before = _busy_cpu_s(), _children_cpu_s()
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=worker_env(), capture_output=True, text=True, timeout=JOB_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {**ident, "error": f"timed out after {JOB_TIMEOUT_S} s"}
    wall = time.perf_counter() - started
    if busy_before is not None:
        busy_after = _busy_cpu_s()
        if busy_after is not None:
            foreign = (busy_after - busy_before) - (_children_cpu_s() - children_before)
            ident["foreign_cpu_share"] = round(max(0.0, foreign) / max(wall, 1e-9), 3)
    ident["stderr"] = _stderr_digest(proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        return {**ident, "error": f"exit status {proc.returncode}: {tail}", "wall_s": wall}
    try:
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {**ident, "error": f"no JSON result; stdout tail: {proc.stdout[-500:]!r}", "wall_s": wall}
    return {**result, **ident, "wall_s": wall}


def _busy_cpu_s() -> float | None:
    """Machine-wide non-idle CPU seconds so far (Linux ``/proc/stat``), or None elsewhere."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait
    busy = sum(ticks[:3]) + sum(ticks[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    """CPU seconds used by this process and its finished children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _wait_for_quiet(limit_s: float, threshold: float = QUIET_THRESHOLD) -> float:
    """Wait until other processes use less than ``threshold`` of a core over 0.15 s (at most ``limit_s``).

    Returns the seconds waited.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        busy0, own0, t0 = _busy_cpu_s(), _children_cpu_s(), time.perf_counter()
        if busy0 is None:
            break
        time.sleep(0.15)
        busy1, own1 = _busy_cpu_s(), _children_cpu_s()
        if busy1 is None:
            break
        if (busy1 - busy0 - (own1 - own0)) / (time.perf_counter() - t0) < threshold:
            break
    return round(time.perf_counter() - start, 2)


def _stderr_digest(stderr: str, limit: int = 5) -> dict[str, int]:
    """The most frequent distinct lines an engine printed to stderr, with counts (tracebacks excluded)."""
    counts: dict[str, int] = {}
    for line in stderr.splitlines():
        line = line.strip()
        if line:
            counts[line[:200]] = counts.get(line[:200], 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
    return dict(top)


def _loadavg() -> float | None:
    """1-minute load average (None where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = 0
    return {"cpu": cpu, "cores": cores, "platform": platform.platform(), "python": sys.version.split()[0]}


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        rev = out.stdout.strip() or "unknown"
        return rev + ("+uncommitted src changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (well under a minute)")
    parser.add_argument("--repeats", type=int, help="runs per combination (default 7, --quick: 1)")
    parser.add_argument(
        "--out", type=Path, help="report directory (default docs/, --quick: benchmarks/.build/quick)"
    )
    parser.add_argument(
        "--engines",
        help=f"comma-separated subset of {','.join(ENGINES)} (default: all; ours_compiled when built)",
    )
    parser.add_argument("--workloads", help="comma-separated subset of workload names (default: all)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--seed", type=int, default=20240601, help="workload seed")
    parser.add_argument(
        "--settle",
        type=float,
        help=f"longest wait for a quiet machine before each job, s (default {SETTLE_S:g}, --quick: 0)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time ops by the wall clock (default) or by the worker thread's CPU time (a busy machine)",
    )
    args = parser.parse_args(argv)

    console = Console()
    started = time.perf_counter()
    load_start = _loadavg()
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 7)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    tag = "quick" if args.quick else "full"
    settle_s = args.settle if args.settle is not None else (0.0 if args.quick else SETTLE_S)
    out_dir = args.out if args.out is not None else (BUILD / "quick" if args.quick else REPO / "docs")
    if load_start is not None and load_start > 0.5:
        console.log(
            f"[yellow]load average {load_start:.2f}: other work on this machine will make the timings "
            "noisy[/yellow]"
        )
    explicit = args.engines is not None
    wanted = [e.strip() for e in (args.engines or ",".join(ENGINES)).split(",") if e.strip()]
    unknown = [e for e in wanted if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(unknown)}")

    engines: dict[str, dict[str, Any]] = {}
    with console.status("preparing engines...") as status:
        for key in wanted:
            status.update(f"preparing {key}...")
            try:
                engines[key] = ensure(key, log=lambda msg: console.log(msg))
            except EngineUnavailable as exc:
                if ENGINES[key].optional and not explicit:
                    console.log(f"[yellow]skipping[/yellow] {exc}")
                    continue
                console.print(f"[red]engine unavailable[/red]: {exc}")
                return 2
            console.log(f"{key}: {engines[key]['version']} ({engines[key]['python']})")

    sizes = Sizes.quick() if args.quick else Sizes.full()
    with console.status("generating workloads..."):
        workloads = build_all(sizes, seed=args.seed)
        if args.workloads:
            names = {w.strip() for w in args.workloads.split(",")}
            workloads = [wl for wl in workloads if wl.name in names or _roles(workloads)[wl.name] in names]
        paths: dict[str, Path] = {}
        for wl in workloads:
            paths[wl.name] = BUILD / "workloads" / tag / f"{wl.name}.pkl"
            wl.save(paths[wl.name])
    console.log(f"{len(workloads)} workloads generated (seed {args.seed}, {tag} sizes)")

    jobs = plan(workloads, paths, engines, repeats, memory=not args.no_memory)
    results: list[dict[str, Any]] = []
    waited = 0.0
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("benchmarks", total=len(jobs))
        for job in jobs:
            progress.update(task, description=job.label())
            wait = min(settle_s, max(0.0, SETTLE_BUDGET_S - waited))
            result = run_job(job, engines[job.engine]["python"], settle_s=wait, clock=args.clock)
            waited += float(result.get("waited_s", 0.0))
            results.append(result)
            if "error" in result:
                progress.console.print(f"[red]FAILED[/red] {job.label()}: {result['error']}")
            elif result.get("problems"):
                problems = "; ".join(result["problems"][:4])
                progress.console.print(f"[yellow]MISMATCH[/yellow] {job.label()}: {problems}")
            progress.advance(task)

    data: dict[str, Any] = {
        "meta": {
            "tag": tag,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "repeats": repeats,
            "repeat_caps": {f"{e}/{r}": n for (e, r), n in REPEAT_CAPS.items()},
            "settle_s": settle_s,
            "settle_waited_s": round(waited, 1),
            "disturbed_threshold": DISTURBED_SHARE,
            "seed": args.seed,
            "clock": args.clock,
            "machine": _machine(),
            "revision": _git_revision(),
            "duration_s": 0.0,
            "command": "python -m benchmarks.run"
            + (" --quick" if args.quick else "")
            + (" --clock cpu" if args.clock == "cpu" else ""),
        },
        "engines": engines,
        "workloads": {
            wl.name: {
                "title": wl.title,
                "description": wl.description,
                "role": _roles(workloads)[wl.name],
                "expected": wl.expected,
                **{key: value for key, value in wl.meta.items() if key != "ioc_filled"},
            }
            for wl in workloads
        },
        "runs": results,
    }
    data["meta"]["duration_s"] = round(time.perf_counter() - started, 1)
    data["meta"]["loadavg"] = [x for x in (load_start, _loadavg()) if x is not None]
    raw = BUILD / f"results-{tag}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(data, indent=1))
    written = report.write_report(data, out_dir)
    console.log(f"raw results: {raw.relative_to(REPO)}")
    for path in written:
        console.log(f"wrote {path}")
    console.print(report.console_summary(data))

    ours_bad = [r for r in results if r["engine"] in OURS and ("error" in r or r.get("problems"))]
    if ours_bad:
        console.print(f"[red]{len(ours_bad)} run(s) of our engine failed or mismatched the reference[/red]")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
