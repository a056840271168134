"""Instructions per command of the storage path, counted by valgrind: ``python -m
benchmarks.storage_instructions [--batches 1,20,200] [--commands N] [--baseline-src DIR] [--python PATH]``.

Two figures, each repeatable to well under a percent whatever else the machine does (wall-clock and CPU
timings on the shared machines move by 10-30%):

* **writer**: the write-behind writer's work per command (``StorageManager._write_batch``: row
  building, the batch's collapse, the driver's ``executemany``, the commit), at fixed batch sizes
  (``--batches``; the server's paced load gathers ~50-150 commands per batch, a flood up to 2,000).
  The batches are written in the measuring thread, so the sizes do not depend on thread scheduling.
  Counted as the difference between a run that writes ``--commands`` commands and one that writes
  none (capture, prefill and set-up are the same in both), divided by ``--commands``.
* **command path**: what an attached persister adds to each book command (the book's change log, the
  persister's capture into flat tuples, the hand-over), counted inside the book's ``add_order`` and
  ``cancel_order`` (callgrind's ``--toggle-collect`` on the compiled build's entry points, so
  everything they call, the persister included, is counted) with and without a persister; the
  difference divided by the commands. Needs the compiled book.

The commands are the realistic mix of :mod:`benchmarks.storage` (``--quick`` sizes: 500 resting orders
prefilled, then ~60% resting adds, ~30% cancels, ~10% orders through 1-5 levels, each with a user id),
captured once per run by a persister that keeps its units. SQLite only (a fresh file per run).

``--python`` (default ``.venv-compiled/bin/python``: the compiled book, as users get it) runs every
count; ``manticore_storage`` is taken from this tree's ``src`` (or ``--baseline-src DIR``'s, for a
side-by-side row) through ``PYTHONPATH``, so edits count without rebuilding the compiled venv.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.envs import REPO

#: Entry points of the compiled book whose calls the command-path count covers.
_ENTRY_POINTS = ("CPyPy_book___OrderBook___add_order", "CPyPy_book___OrderBook___cancel_order")
_TOTAL = re.compile(r"(?:Collected|I\s+refs):\s*([\d,]+)")

#: Runs in the measured interpreter. ``mode`` is ``writer`` (write ``count`` timed commands in batches
#: of ``batch``), ``book`` (the commands without storage) or ``persisted`` (with a persister).
_CHILD = """
import sys, tempfile
from pathlib import Path
sys.path.append({repo!r})
from benchmarks.storage import StorageSizes, build_commands, new_book
from manticore_storage import StorageManager

mode, count, batch = {mode!r}, {count}, {batch}
scratch = Path(tempfile.mkdtemp())
commands = build_commands(StorageSizes.quick(), 20240601)
units = []
book = new_book()
if mode != "book":
    capture = StorageManager(f"sqlite:///{{scratch / 'capture.db'}}")
    capture.attach(book, deliver=units.append)

def run(ops, start):
    add, cancel = book.add_order, book.cancel_order
    for n, command in enumerate(ops, start):
        if len(command) == 1:
            cancel(command[0])
        else:
            side, price, quantity, order_id = command
            add(side, price, quantity, order_id, user_id=f"user{{n % 97}}")

run(commands.prefill, 0)
prefill = units[:]
run(commands.ops, 0)
if mode == "writer":
    timed = units[len(prefill) : len(prefill) + count]
    storage = StorageManager(f"sqlite:///{{scratch / 'write.db'}}")
    storage.attach(new_book(), deliver=lambda unit: None)
    storage._write_batch(prefill)
    for start in range(0, len(timed), batch):
        storage._write_batch(timed[start : start + batch])
"""


def _overlay(src: Path) -> Path:
    """A directory holding only ``src``'s ``manticore_storage`` (for PYTHONPATH: the interpreter's own
    book, compiled or not, stays the one it has installed)."""
    overlay = Path(tempfile.mkdtemp(prefix="storage-overlay-"))
    (overlay / "manticore_storage").symlink_to((src / "manticore_storage").resolve())
    return overlay


def _count(python: str, overlay: Path, mode: str, count: int, batch: int, toggle: bool = False) -> int:
    options = ["--callgrind-out-file=/dev/null"]
    if toggle:
        options += ["--collect-atstart=no", *(f"--toggle-collect={name}" for name in _ENTRY_POINTS)]
    code = _CHILD.format(repo=str(REPO), mode=mode, count=count, batch=batch)
    env = dict(os.environ, PYTHONPATH=str(overlay))
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", *options, python, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
    )
    found = _TOTAL.findall(out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"valgrind run failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return int(found[-1].replace(",", ""))


def writer_per_command(python: str, overlay: Path, batch: int, commands: int, base: int) -> float:
    """The writer's instructions per command at batches of ``batch`` (``base``: the run writing none)."""
    return (_count(python, overlay, "writer", commands, batch) - base) / commands


def command_path_per_command(python: str, overlay: Path) -> float:
    """Instructions an attached persister adds to each book command (inside add_order/cancel_order)."""
    from benchmarks.storage import StorageSizes, build_commands

    commands = build_commands(StorageSizes.quick(), 20240601)
    n = len(commands.prefill) + len(commands.ops)
    with_storage = _count(python, overlay, "persisted", 0, 1, toggle=True)
    without = _count(python, overlay, "book", 0, 1, toggle=True)
    return (with_storage - without) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=str(REPO / ".venv-compiled" / "bin" / "python"))
    parser.add_argument("--batches", default="1,20,200", help="writer batch sizes, in commands")
    parser.add_argument("--commands", type=int, default=2_000, help="writer: timed commands per count")
    parser.add_argument("--baseline-src", type=Path, help="another src tree, measured first")
    parser.add_argument("--no-command-path", action="store_true", help="count the writer only")
    args = parser.parse_args(argv)
    trees = [("current", REPO / "src")]
    if args.baseline_src is not None:
        trees.insert(0, ("baseline", args.baseline_src))
    batches = [int(b) for b in args.batches.split(",") if b]
    print("| tree | part | instructions/command |")
    print("|---|---|---:|")
    for name, src in trees:
        overlay = _overlay(src)
        base = _count(args.python, overlay, "writer", 0, 1)
        for batch in batches:
            value = writer_per_command(args.python, overlay, batch, args.commands, base)
            print(f"| {name} | writer, batches of {batch} | {value:,.0f} |", flush=True)
        if not args.no_command_path:
            value = command_path_per_command(args.python, overlay)
            print(f"| {name} | command path (persister attached) | {value:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
