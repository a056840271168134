"""Instructions per replayed journal record (valgrind/callgrind, every thread), as session 9 measured them.

For each of two sizes it writes a data directory with that many ``place`` records
(:func:`benchmarks.exchange.orders`, seed 11, 16 funded users), flushes storage and closes the journal
without a checkpoint (``kill -9``), then counts the instructions of a process that only opens a copy
of it (replay and storage catch-up). The result is the difference of the two counts over the
difference of the record counts, so start-up and imports cancel out.

The counted process ends with ``os._exit`` once the exchange is closed: the interpreter's finalization
(its collections over the whole heap, which grows with the replayed state) is not part of a restart's
replay, which is what ``benchmarks.exchange`` times. ``--with-finalization`` counts it too (what this
benchmark counted until session 13: 2,000-10,000 instructions more per record).

``--forget-stored-position`` deletes storage's journal position first: the replay then captures and
submits every command's storage units again (what replay did before storage recorded its position).

Run: ``.venv-compiled/bin/python -m benchmarks.replay_instructions [--small 2000 --large 6000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.exchange import LIMITS, MARKET, _fund, orders
from manticore_matching import Exchange

_TOTAL = re.compile(r"Collected\s*:\s*([\d,]+)")


def make(directory: Path, count: int) -> None:
    """A data directory with ``count`` place records, left as a killed process leaves it."""
    exchange = Exchange(directory, markets=[MARKET], risk_limits=LIMITS, checkpoint_every=0, fsync=False)
    exchange.open()
    _fund(exchange, 16)
    for user, side, price, quantity in orders(count, 16, seed=11):
        with contextlib.suppress(Exception):
            exchange.place_order(user, "BTC/USD", side, quantity, price=price)
    exchange.wait_durable(exchange.journal.appended)
    assert exchange.storage is not None and exchange.directory_lock is not None
    exchange.storage.flush()
    exchange.journal.close()
    exchange.storage.close()
    exchange.directory_lock.release()


def open_copy(directory: Path, finalize: bool = True) -> None:
    """Open a copy of ``directory`` (the replay) and close it without a checkpoint; without
    ``finalize``, end the process right there (``os._exit``: no interpreter finalization)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "data"
        shutil.copytree(directory, copy)
        exchange = Exchange(copy, markets=[MARKET], risk_limits=LIMITS, checkpoint_every=0, fsync=False)
        exchange.open()
        print(f"replayed {exchange.replayed_records}", flush=True)
        exchange.close(checkpoint=False)
        if not finalize:
            os._exit(0)


def instructions(directory: Path, finalize: bool, out_file: Path | None = None) -> int:
    """The instructions (every thread) of a process that replays a copy of ``directory``; its callgrind
    profile goes to ``out_file`` when one is named (for ``callgrind_annotate``), else it is dropped."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={'/dev/null' if out_file is None else out_file}",
            sys.executable,
            "-m",
            "benchmarks.replay_instructions",
            "--open",
            str(directory),
            *(["--with-finalization"] if finalize else []),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = _TOTAL.findall(out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"valgrind run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=6000)
    parser.add_argument("--forget-stored-position", action="store_true")
    parser.add_argument(
        "--with-finalization",
        action="store_true",
        help="count the interpreter's finalization too (the method before session 13)",
    )
    parser.add_argument(
        "--callgrind-out",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each counted replay's callgrind profile in DIR (callgrind.out.replay-<records>)",
    )
    parser.add_argument("--open", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.open is not None:
        open_copy(args.open, finalize=args.with_finalization)
        return
    with tempfile.TemporaryDirectory() as scratch:
        counts = []
        for size in (args.small, args.large):
            directory = Path(scratch) / f"data-{size}"
            make(directory, size)
            if args.forget_stored_position:
                with contextlib.closing(sqlite3.connect(directory / "manticore.db")) as connection:
                    connection.execute("DELETE FROM manticore_journal_positions")
                    connection.commit()
            out_file = None
            if args.callgrind_out is not None:
                args.callgrind_out.mkdir(parents=True, exist_ok=True)
                out_file = args.callgrind_out.resolve() / f"callgrind.out.replay-{size}"
            counts.append(instructions(directory, args.with_finalization, out_file))
    per_record = (counts[1] - counts[0]) / (args.large - args.small)
    how = "with" if args.with_finalization else "without"
    print(
        f"replay: {per_record:,.0f} instructions per record ({args.small} and {args.large} orders, "
        f"{how} the interpreter's finalization)"
    )


if __name__ == "__main__":
    main()
