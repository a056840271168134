"""Instructions per operation of one workload, counted by valgrind: a figure the machine's noise cannot move.

Usage (from the repository root)::

    python -m benchmarks.instructions                      # the mypyc build (.venv-compiled), user mix
    python -m benchmarks.instructions --subscriber         # the same, a counting subscriber on every event
    python -m benchmarks.instructions --workload mix       # the positional mix of issue 2
    python -m benchmarks.instructions --python .venv/bin/python --workload add_only
    python -m benchmarks.instructions --workload scale_100000 --cache 33554432   # cache misses per op
    python -m benchmarks.instructions --workload scale_100000 --cache 0 --pages  # page walks per op

Timings on these shared 2-core machines move by 10-30% from run to run and between machines of one type;
the instruction count of the same build on the same workload is repeatable to a few parts in a million.
It is the way to tell whether a change to the hot path helps before a ``make bench`` run says by how much.
It is not a time: instructions differ in cost (a cache miss, an allocation), so confirm with timings.

How: the workload's ops run under ``valgrind --tool=callgrind`` in a fresh process, once with and once
without the timed ops (imports, workload loading and the book's prefill are the same in both runs), and
the difference is divided by the number of ops. The ``user_*`` workloads are called as in the benchmark
(keyword arguments, see :mod:`benchmarks.worker`), the others positionally. The workload pickles come
from ``benchmarks.run`` (``benchmarks/.build/workloads/full/``); missing ones are generated with the
same seed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.workloads import Sizes, build_all, load

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "benchmarks" / ".build" / "workloads" / "full"

#: Runs inside the measured interpreter: the adapter of our engine, the prefill, and the ops if asked.
_CHILD = """
import gc, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from benchmarks.adapters import ours
from benchmarks.workloads import load
wl = load(Path({workload!r}))
convert, keywords = ours.converter(wl["meta"])
prefill = [convert(op) for op in wl["prefill"]]
ours.setup({subscriber!r})
add, cancel = ours.bound()
for is_cancel, a in prefill:
    if is_cancel:
        cancel(a)
    elif keywords:
        add(side=a[0], price=a[1], quantity=a[2], order_id=a[3], user_id=a[4], time_in_force=a[5])
    else:
        add(*a)
ops = [convert(op) for op in wl["ops"]]  # after the prefill (worker.py: 100 at a time, untimed)
gc.collect()
gc.get_freeze_count()  # a marker: --cache zeroes valgrind's counters here
if not {run_ops!r}:
    pass
elif keywords:
    for is_cancel, a in ops:
        if is_cancel:
            cancel(a)
        else:
            add(side=a[0], price=a[1], quantity=a[2], order_id=a[3], user_id=a[4], time_in_force=a[5])
else:
    for is_cancel, a in ops:
        if is_cancel:
            cancel(a)
        else:
            add(*a)
gc.is_finalized(ops)  # a marker: --cache dumps valgrind's counters here
"""

_TOTAL = re.compile(r"(?:Collected|I\s+refs):\s*([\d,]+)")


def workload_path(name: str) -> Path:
    """The pickle of workload ``name``, generated (full sizes, the default seed) when missing."""
    path = WORKLOADS / f"{name}.pkl"
    if not path.exists():
        for workload in build_all(Sizes.full()):
            workload.save(WORKLOADS / f"{workload.name}.pkl")
    if not path.exists():
        raise SystemExit(f"no workload named {name!r} (see benchmarks/workloads.py)")
    return path


#: The compiled book's entry points (mypyc's wrapper names): a profile counts only inside these calls.
_ENTRY_POINTS = ("CPyPy_book___OrderBook___add_order", "CPyPy_book___OrderBook___cancel_order")


def count(python: str, workload: Path, subscriber: bool, run_ops: bool, profile: Path | None = None) -> int:
    """Instructions executed by one child process (valgrind's total).

    With ``profile`` the callgrind output is kept there and counts only the calls of the compiled
    book's ``add_order`` and ``cancel_order`` (argument parsing included; the prefill's adds too), for
    ``callgrind_annotate``.
    """
    code = _CHILD.format(root=str(ROOT), workload=str(workload), subscriber=subscriber, run_ops=run_ops)
    with tempfile.TemporaryDirectory() as tmp:
        options = [f"--callgrind-out-file={profile or tmp + '/out'}"]
        if profile is not None:
            options += ["--collect-atstart=no", *(f"--toggle-collect={name}" for name in _ENTRY_POINTS)]
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", *options, python, "-c", code],
            capture_output=True,
            text=True,
            check=False,
        )
    found = _TOTAL.findall(out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"valgrind run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


#: ``--pages``: callgrind's two data cache levels set to model this machine's data TLBs (AMD Zen 4, 4 KiB
#: pages): a "line" is a page, the first level 64 entries (the L1 DTLB holds 72), the last 3,072 entries
#: of 12 ways (the L2 DTLB). A last-level miss is then a page walk. The VM exposes no TLB counters; on
#: it a page walk costs about as much as a memory read (docs/performance.md, session 25 h1).
PAGE_MODEL: tuple[str, str] = ("--D1=262144,8,4096", "--LL=12582912,12,4096")


def cache_misses(
    python: str,
    workload: Path,
    subscriber: bool,
    last_level: int,
    profile: Path | None = None,
    pages: bool = False,
) -> dict[str, int]:
    """Instructions, L1 data read misses and last-level data read misses of the ops alone.

    Callgrind simulates this machine's 32 KiB L1 caches and a last level of ``last_level`` bytes (16
    ways; 1 MiB is the L2 here, 32 MiB the L3). Its counters are zeroed after the prefill and
    ``gc.collect()`` and read after the last op (the child's two marker calls), so the prefill, the
    workload's loading and the interpreter's exit are left out. Hash seeds are fixed. With
    ``profile`` the ops' part of the callgrind output is kept as ``PROFILE.1`` (``callgrind_annotate
    --sort=DLmr PROFILE.1`` lists the functions that miss). With ``pages`` the two levels model the
    data TLBs instead (:data:`PAGE_MODEL`; ``last_level`` is ignored) and the counts are page misses,
    reads and writes together.
    """
    code = _CHILD.format(root=str(ROOT), workload=str(workload), subscriber=subscriber, run_ops=True)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={profile or tmp + '/out'}",
                "--cache-sim=yes",
                "--I1=32768,8,64",
                *(PAGE_MODEL if pages else ("--D1=32768,8,64", f"--LL={last_level},16,64")),
                "--zero-before=gc_get_freeze_count",
                "--dump-before=gc_is_finalized",
                python,
                "-c",
                code,
            ],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        parts = [Path(f"{profile}.1")] if profile is not None else sorted(Path(tmp).glob("out.*"))
        if out.returncode != 0 or not parts:
            raise SystemExit(f"valgrind run failed ({out.returncode}):\n{out.stderr[-2000:]}")
        events: list[str] = []
        totals: list[int] = []
        for line in parts[0].read_text().splitlines():
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):  # the dump's own counts ("totals:" differs)
                totals = [int(x) for x in line.split()[1:]]
                break
    found = dict(zip(events, totals, strict=False))
    if pages:
        return {
            "instructions": found.get("Ir", 0),
            "first-level TLB misses": found.get("D1mr", 0) + found.get("D1mw", 0),
            "page walks": found.get("DLmr", 0) + found.get("DLmw", 0),
        }
    return {
        "instructions": found.get("Ir", 0),
        "L1 data misses": found.get("D1mr", 0),
        "last-level data misses": found.get("DLmr", 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=str(ROOT / ".venv-compiled" / "bin" / "python"))
    parser.add_argument(
        "--workload",
        default="user_mix",
        help="a workload name from benchmarks/workloads.py (default: the user-convention mix)",
    )
    parser.add_argument("--subscriber", action="store_true", help="one counting handler on every event type")
    parser.add_argument(
        "--profile",
        type=Path,
        help="instead, write a callgrind profile of the compiled book's add_order/cancel_order calls to "
        "this file (read it with callgrind_annotate --inclusive=yes FILE)",
    )
    parser.add_argument(
        "--cache",
        type=int,
        metavar="BYTES",
        help="instead, simulate the caches (32 KiB L1, a last level of BYTES) and print the misses per op "
        "of the ops alone (1048576: this machine's L2; 33554432: its L3, so misses are memory reads)",
    )
    parser.add_argument(
        "--pages",
        action="store_true",
        help="with --cache: model the data TLBs instead (4 KiB pages, 64 and 3,072 entries) and print "
        "page misses and page walks per op",
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    path = workload_path(args.workload)
    data = load(path)
    n_ops = len(data["ops"])
    if args.profile is not None and args.cache is None:
        calls = n_ops + len(data["prefill"])
        total = count(args.python, path, args.subscriber, run_ops=True, profile=args.profile)
        print(f"{args.profile}: {total / calls:,.0f} instructions per call inside the book's entry points")
        print(f"({calls:,} calls: the prefill's adds and the ops)")
        print(f"callgrind_annotate --inclusive=yes {args.profile} | head -60")
        return 0
    if args.cache is not None:
        misses = cache_misses(args.python, path, args.subscriber, args.cache, args.profile, args.pages)
        sub = " + subscriber" if args.subscriber else ""
        per_op = ", ".join(f"{name} {value / n_ops:,.2f}" for name, value in misses.items())
        model = "data TLBs (4 KiB pages)" if args.pages else f"last level {args.cache:,} B"
        print(f"{args.workload}{sub}, {model}, per op: {per_op} ({n_ops:,} ops)")
        return 0
    with_ops = count(args.python, path, args.subscriber, run_ops=True)
    without = count(args.python, path, args.subscriber, run_ops=False)
    per_op = (with_ops - without) / n_ops
    sub = " + subscriber" if args.subscriber else ""
    print(f"{args.workload}{sub} on {args.python}: {per_op:,.0f} instructions/op ({n_ops:,} ops)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
