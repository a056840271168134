"""Storage writer CPU benchmark: ``python -m benchmarks.storage_writer [--quick] [--postgres-url URL]
[--baseline-src DIR] [--repeats N] [--writer thread|process] [--out FILE]``.

Measures the CPU time the write-behind writer thread spends per command (per unit of storage work), the
cost the serving process pays for keeping the SQL read model current. The thread's CPU clock
(``time.pthread_getcpuclockid`` of the writer thread, read from the benchmark's thread) runs from the
first timed unit until ``storage.flush()`` returns; it includes the time spent inside the database
driver (SQLite's C code, psycopg's), whether or not the GIL was held.

The units are captured once, untimed: the realistic mix of :mod:`benchmarks.storage` (resting adds
near the top, cancels, limit orders through 1-5 levels; every order with a user id) on a book with a
persister attached whose ``deliver`` keeps the units. Every run then submits the same units into a
fresh database, in two patterns:

* **paced**: the way the exchange hands units over under HTTP load: the journal's writer thread
  submits the units of each group commit together, here ``--group`` units every ``group / --rate``
  seconds (default 2 units every 2 ms: 1,000 commands/s, the rate the server reached when the
  writer cost ~150 µs per order);
* **flood**: every unit submitted at once (the writer's throughput limit; a replay after a restart).

After each run storage must reconcile with the book that produced the units and hold no failed events.

``--baseline-src DIR`` runs the same measurement in a child process with ``PYTHONPATH=DIR`` (a ``src``
tree of another revision, e.g. ``git archive <rev> src | tar -x -C /tmp/base``), interleaved with the
current tree's runs repeat by repeat, and reports the ratio. Every figure is the median of the repeats
(the slowest and fastest in brackets). CPU time is much less sensitive to a shared machine than
wall-clock time, but cache and frequency effects remain: compare runs taken side by side.

``--writer`` chooses the current tree's writer (``StorageManager(writer=...)``; the default is its
``"auto"``): with the writer process, the thread's CPU is only the hand-off (gathering and pickling
the batches), and the process's own CPU per command, as it reports it, is in a column beside it.

Writes a Markdown report to ``--out`` (default ``benchmarks/.build/storage-writer.md``) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.envs import BUILD, REPO

#: The measured patterns: name -> (units per group, groups per second or 0 for "all at once").
PATTERNS = ("paced", "flood")


def _capture(quick: bool, scratch: Path) -> tuple[Any, list[Any], list[Any]]:
    """Run the mix on a book with a persister that keeps its units: (book, prefill units, timed units)."""
    from benchmarks.storage import StorageSizes, build_commands, new_book
    from manticore_storage import StorageManager

    sizes = StorageSizes.quick() if quick else StorageSizes.full()
    commands = build_commands(sizes, 20240601)
    units: list[Any] = []
    storage = StorageManager(f"sqlite:///{scratch / 'capture.db'}")
    book = new_book()
    storage.attach(book, deliver=units.append)

    def run(ops: list[Any]) -> None:
        for n, command in enumerate(ops):
            if len(command) == 1:
                book.cancel_order(command[0])
            else:
                side, price, quantity, order_id = command
                book.add_order(side, price, quantity, order_id, user_id=f"user{n % 97}")

    run(commands.prefill)
    prefill = units[:]
    units.clear()
    run(commands.ops)
    storage.close()
    return book, prefill, units[:]


def _reset(url: str) -> None:
    from sqlalchemy import create_engine, text

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for table in (
                "manticore_failed_events",
                "manticore_trades",
                "manticore_orders",
                "manticore_markets",
                "manticore_schema_version",
            ):
                connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
    finally:
        engine.dispose()


def _writer_clock() -> int:
    for thread in threading.enumerate():
        if thread.name == "manticore-storage-writer" and thread.ident is not None:
            return time.pthread_getcpuclockid(thread.ident)
    raise RuntimeError("no storage writer thread")


def measure(
    url: str,
    pattern: str,
    quick: bool,
    rate: float,
    group: int,
    gather_delay: float | None = None,
    writer: str | None = None,
) -> dict[str, Any]:
    """One run: submit the captured units into a fresh database at ``url``; the writer thread's CPU per
    unit and, with the writer process (``writer``, the current tree's choice), the process's as it
    reports it."""
    from benchmarks.storage import new_book
    from manticore_storage import StorageManager

    with tempfile.TemporaryDirectory() as scratch:
        book, prefill, units = _capture(quick, Path(scratch))
        _reset(url)
        options: dict[str, Any] = {} if gather_delay is None else {"gather_delay": gather_delay}
        if writer is not None:
            options["writer"] = writer
        storage = StorageManager(url, **options)
        try:
            storage.attach(new_book(), deliver=lambda _unit: None)  # the market row and the writer
            for unit in prefill:
                storage.submit(unit)
            storage.flush()
            thread = storage._writer
            assert thread is not None
            clock = _writer_clock()
            process = getattr(storage, "_process", None)  # the writer process (absent before it)
            child0 = 0.0 if process is None else process.cpu_seconds
            batches0 = thread.batches
            cpu0, wall0 = time.clock_gettime(clock), time.perf_counter()
            if pattern == "flood":
                for unit in units:
                    storage.submit(unit)
            else:
                interval = group / rate
                due = time.perf_counter()
                for start in range(0, len(units), group):
                    due += interval
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    for unit in units[start : start + group]:
                        storage.submit(unit)
            storage.flush()
            cpu, wall = time.clock_gettime(clock) - cpu0, time.perf_counter() - wall0
            batches = thread.batches - batches0
            child = 0.0 if process is None else process.cpu_seconds - child0
            report = storage.reconcile(book)
            failed = storage.get_failed_events()
        finally:
            storage.close()
    return {
        "pattern": pattern,
        "units": len(units),
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_us_per_unit": cpu / len(units) * 1e6,
        "process_cpu_us_per_unit": child / len(units) * 1e6,
        "batches": batches,
        "units_per_batch": len(units) / max(batches, 1),
        "ok": report.ok and not failed,
    }


def _child(args: argparse.Namespace) -> None:
    result = measure(
        args.url, args.pattern, args.quick, args.rate, args.group, args.gather_delay, args.writer
    )
    print(json.dumps(result))


def _run_child(src: Path, url: str, pattern: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(REPO)])
    command = [
        sys.executable,
        "-m",
        "benchmarks.storage_writer",
        "--child",
        "--url",
        url,
        "--pattern",
        pattern,
        "--rate",
        str(args.rate),
        "--group",
        str(args.group),
    ]
    if args.quick:
        command.append("--quick")
    if args.gather_delay is not None and src == REPO / "src":
        command += ["--gather-delay", str(args.gather_delay)]
    if args.writer is not None and src == REPO / "src":
        command += ["--writer", args.writer]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):,.1f} [{min(values):,.1f}-{max(values):,.1f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 5,000-command stream instead of 30,000")
    parser.add_argument("--postgres-url", default=os.environ.get("MANTICORE_TEST_POSTGRES_URL"))
    parser.add_argument("--baseline-src", type=Path, help="a src tree to compare with (run side by side)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000.0, help="paced: commands per second")
    parser.add_argument("--group", type=int, default=2, help="paced: units per group commit")
    parser.add_argument("--patterns", default=",".join(PATTERNS))
    parser.add_argument(
        "--gather-delay", type=float, help="the current tree's StorageManager(gather_delay=...)"
    )
    parser.add_argument(
        "--writer",
        choices=("thread", "process"),
        help="the current tree's StorageManager(writer=...): with the process, the thread's CPU is the "
        "hand-off alone and the process's is reported beside it",
    )
    parser.add_argument("--out", type=Path, default=BUILD / "storage-writer.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--pattern", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="storage-writer-"))
    backends = [("SQLite", f"sqlite:///{scratch / 'bench.db'}")]
    if args.postgres_url:
        backends.append(("PostgreSQL", args.postgres_url))
    trees = [("current", REPO / "src")]
    if args.baseline_src is not None:
        trees.insert(0, ("baseline", args.baseline_src.resolve()))
    patterns = [p for p in args.patterns.split(",") if p]
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    ok = True
    for repeat in range(args.repeats):
        for backend, url in backends:
            for pattern in patterns:
                for tree, src in trees:
                    result = _run_child(src, url, pattern, args)
                    results.setdefault((backend, pattern, tree), []).append(result)
                    ok = ok and bool(result["ok"])
                    print(
                        f"repeat {repeat + 1}: {backend} {pattern} {tree}: "
                        f"{result['cpu_us_per_unit']:.1f} us/unit, "
                        f"{result['units_per_batch']:.1f} units/batch",
                        file=sys.stderr,
                    )
    lines = [
        "# Storage writer: CPU per command",
        "",
        f"`python -m benchmarks.storage_writer {' '.join(argv if argv is not None else sys.argv[1:])}` "
        f"at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.repeats} repeats, medians "
        f"[min-max]. Paced: {args.group} units every {args.group / args.rate * 1000:.1f} ms "
        f"({args.rate:,.0f} commands/s).",
        "",
        "| database | pattern | tree | commands | writer thread CPU µs/command "
        "| writer process CPU µs/command | batches | commands/batch | wall s | checks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (backend, pattern, tree), runs in results.items():
        lines.append(
            f"| {backend} | {pattern} | {tree} | {runs[0]['units']:,} | "
            f"{_median([r['cpu_us_per_unit'] for r in runs])} | "
            f"{_median([r.get('process_cpu_us_per_unit', 0.0) for r in runs])} | "
            f"{statistics.median(r['batches'] for r in runs):,.0f} | "
            f"{statistics.median(r['units_per_batch'] for r in runs):,.1f} | "
            f"{statistics.median(r['wall_s'] for r in runs):.2f} | "
            f"{'ok' if all(r['ok'] for r in runs) else 'FAIL'} |"
        )
    if len(trees) == 2:
        lines += ["", "| database | pattern | baseline / current (CPU per command) |", "|---|---|---|"]
        for backend, _ in backends:
            for pattern in patterns:
                base = statistics.median(
                    r["cpu_us_per_unit"] for r in results[(backend, pattern, "baseline")]
                )
                cur = statistics.median(r["cpu_us_per_unit"] for r in results[(backend, pattern, "current")])
                lines.append(f"| {backend} | {pattern} | {base / cur:.2f}x |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
