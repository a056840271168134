"""Storage benchmark: ``python -m benchmarks.storage [--quick] [--postgres-url URL] [--profile]``.

Measures :mod:`manticore_storage` in one run, every figure the median over a few repeats:

1. **Persist throughput**: events persisted per second on SQLite (and PostgreSQL when a URL is given with
   ``--postgres-url`` or ``MANTICORE_TEST_POSTGRES_URL``), with a write-behind persister and with a
   synchronous one, on the realistic mix of :mod:`benchmarks.workloads` (~60% resting adds near the top,
   ~30% cancels of live orders, ~10% limit orders priced through 1-5 levels). The clock runs from the
   first timed command until ``storage.flush()`` returns. Events are counted two ways: the events
   storage persists (types in ``PERSISTED_EVENTS``) and the book's sequence advance (every event,
   price-level events included).
2. **Book overhead** (SQLite): the same commands with no subscriber, with a no-op subscriber on every
   event type, and with the write-behind persister; book-side time (until the last command returns),
   the CPU time of the book thread over it, the events still uncommitted at that moment, and the time
   until the flush completes. The write-behind runs are shared with part 1.
3. **Restore**: a book of 1,000,000 resting orders (20,000 with ``--quick``) over many price levels is
   written through a write-behind persister (build time reported separately), then
   ``storage.restore(empty_book)`` is timed and the restored book is checked against the original
   (order count, full-depth snapshot, and a digest of ``export_state()``).

After every persisted run storage is checked with ``storage.reconcile(book)`` and for failed events.
The full run waits (up to 20 s, 300 s in all) for a quiet machine before each run and records the share
of a core other processes used during it.

``--profile`` runs cProfile instead of the benchmark: on the book thread and on the write-behind
writer thread during one SQLite mix run, and on one restore. It prints the top functions and writes
the full listings to ``benchmarks/.build/storage-profile-*.txt``.

The full run writes ``docs/benchmarks-storage.md``; ``--quick`` (well under a minute) writes
``benchmarks/.build/storage-quick.md`` unless ``--out`` says otherwise. Raw results go to
``benchmarks/.build/storage-results-<full|quick>.json``. Exit status: 0 when every run succeeded and
every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import hashlib
import io
import json
import os
import pstats
import random
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
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
)
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.envs import BUILD, REPO
from benchmarks.run import (
    SETTLE_S,
    _busy_cpu_s,
    _children_cpu_s,
    _git_revision,
    _loadavg,
    _machine,
    _wait_for_quiet,
)
from benchmarks.workloads import CANCEL, Sizes, mix
from manticore_orderbook import EventType, OrderBook
from manticore_storage import PERSISTED_EVENTS, StorageManager

__all__ = ["Backend", "Commands", "StorageSizes", "main"]

SYMBOL = "BTC/USD"
TICK = "0.01"
LOT = "0.0001"
#: Float divisors turning integer ticks / lots into the float that prints as the exact grid value.
PRICE_DIV = 100
QTY_DIV = 10_000
MAKER_FEE = "0.0002"
TAKER_FEE = "0.0007"
POSTGRES_ENV = "MANTICORE_TEST_POSTGRES_URL"
#: Tables dropped before each PostgreSQL run (children first).
POSTGRES_TABLES = (
    "manticore_failed_events",
    "manticore_trades",
    "manticore_orders",
    "manticore_markets",
    "manticore_schema_version",
)
WORK_DIR = BUILD / "storage"
PERSIST_TARGET = 0.5
RESTORE_TARGET_S = 10.0
#: Longest wait for a quiet machine before each run of the full benchmark, and the most the run waits in all.
SETTLE_BUDGET_S = 300.0
#: Orders restored under ``--profile`` (cProfile makes the restore ~2.5x slower).
PROFILE_RESTORE_ORDERS = 200_000
#: Setups of a stream run: no storage, a no-op subscriber on every event type, the two persister modes.
SETUPS = ("none", "noop", "write_behind", "sync")

#: A prepared command: ``(order_id,)`` is a cancel, ``(side, price, quantity, order_id)`` an add.
Command = tuple[Any, ...]


@dataclass(frozen=True)
class StorageSizes:
    """How big every part of the storage benchmark is."""

    prefill: int  # resting orders written (untimed) before the timed commands
    levels_per_side: int  # price band of the prefill
    stream_ops: int  # timed commands: no storage, no-op subscriber, write-behind
    sync_ops: int  # timed commands in sync mode (a prefix of the same stream): one commit each
    restore_orders: int
    restore_levels_per_side: int
    repeats: int
    restore_repeats: int

    @classmethod
    def full(cls) -> StorageSizes:
        """The published run."""
        return cls(
            prefill=2_000,
            levels_per_side=250,
            stream_ops=30_000,
            sync_ops=3_000,
            restore_orders=1_000_000,
            restore_levels_per_side=50_000,
            repeats=5,
            restore_repeats=3,
        )

    @classmethod
    def quick(cls) -> StorageSizes:
        """A smoke run that finishes well under a minute."""
        return cls(
            prefill=500,
            levels_per_side=100,
            stream_ops=5_000,
            sync_ops=500,
            restore_orders=20_000,
            restore_levels_per_side=2_000,
            repeats=2,
            restore_repeats=2,
        )


@dataclass
class Commands:
    """The generated stream, ready to call, with the events it is known to produce."""

    prefill: list[Command]
    ops: list[Command]
    kinds: dict[str, int]
    #: ``n_ops -> (persisted events, sequence advance)`` for the prefixes that are timed.
    events: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Backend:
    """A database to persist into: SQLite (a fresh file per run) or PostgreSQL (tables dropped per run)."""

    name: str
    url: str

    def reset(self) -> None:
        """Remove everything a previous run stored."""
        if self.name == "sqlite":
            path = Path(self.url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            return
        engine = create_engine(self.url)
        try:
            with engine.begin() as connection:
                for table in POSTGRES_TABLES:
                    connection.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
        finally:
            engine.dispose()

    def ensure_exists(self) -> None:
        """Create the PostgreSQL database the URL names if the server does not have it yet."""
        if self.name == "sqlite":
            return
        url = make_url(self.url)
        name = url.database or ""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"benchmark database name {name!r}: use letters, digits and underscores")
        engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                query = text("SELECT 1 FROM pg_database WHERE datname = :name")
                if connection.execute(query, {"name": name}).scalar() is None:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()

    def version(self) -> str:
        """The database's version string."""
        if self.name == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                return f"PostgreSQL {connection.execute(text('SHOW server_version')).scalar()}"
        finally:
            engine.dispose()

    def size_bytes(self) -> int | None:
        """Size of the stored data (SQLite: the file plus its WAL)."""
        if self.name != "sqlite":
            return None
        path = self.url.removeprefix("sqlite:///")
        return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


# ------------------------------------------------------------------------------------------ set-up
def new_book() -> OrderBook:
    """The benchmark's market: tick 0.01, lot 0.0001, maker/taker fees 2/7 bp, wall clock."""
    return OrderBook(SYMBOL, tick_size=TICK, lot_size=LOT, maker_fee_rate=MAKER_FEE, taker_fee_rate=TAKER_FEE)


def _prepare(op: tuple[int, str, int, int, int]) -> Command:
    kind, side, price, qty, oid = op
    if kind == CANCEL:
        return (f"o{oid}",)
    return (side, price / PRICE_DIV, qty / QTY_DIV, f"o{oid}")


def build_commands(sizes: StorageSizes, seed: int) -> Commands:
    """The realistic mix of :func:`benchmarks.workloads.mix`, with the events each timed prefix produces."""
    wl_sizes = dataclasses.replace(
        Sizes.full(),
        mix_prefill=sizes.prefill,
        mix_ops=sizes.stream_ops,
        mix_levels_per_side=sizes.levels_per_side,
    )
    workload = mix(wl_sizes, seed)
    commands = Commands(
        prefill=[_prepare(op) for op in workload.prefill],
        ops=[_prepare(op) for op in workload.ops],
        kinds={k: workload.meta[f"n_{k}"] for k in ("add", "cancel", "aggressive")},
    )
    commands.events = count_events(commands, sorted({sizes.stream_ops, sizes.sync_ops}))
    return commands


def apply_commands(book: OrderBook, commands: Sequence[Command]) -> None:
    """Send ``commands`` to ``book`` (the timed loop: the same for every setup)."""
    add, cancel = book.add_order, book.cancel_order
    for command in commands:
        if len(command) == 1:
            cancel(command[0])
        else:
            add(*command)


def count_events(commands: Commands, prefixes: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Persisted events and sequence advance of each timed prefix (an untimed replay with a counter)."""
    book = new_book()
    apply_commands(book, commands.prefill)
    persisted = [0]

    def counter(_event_type: EventType, _data: dict[str, Any]) -> None:
        persisted[0] += 1

    for event_type in PERSISTED_EVENTS:
        book.event_manager.subscribe(event_type, counter)
    start, done = book.sequence, 0
    counts: dict[int, tuple[int, int]] = {}
    for n in sorted(prefixes):
        apply_commands(book, commands.ops[done:n])
        done = n
        counts[n] = (persisted[0], book.sequence - start)
    return counts


def _noop(_event_type: EventType, _data: dict[str, Any]) -> None:
    """The no-op subscriber."""


# ------------------------------------------------------------------------------------------ stream runs
def run_stream(setup: str, commands: Commands, n_ops: int, backend: Backend | None) -> dict[str, Any]:
    """One timed pass of the first ``n_ops`` commands with ``setup`` (see :data:`SETUPS`)."""
    book = new_book()
    storage: StorageManager | None = None
    ops = commands.ops[:n_ops]
    result: dict[str, Any] = {"setup": setup, "backend": backend.name if backend else None, "n_ops": n_ops}
    try:
        if setup in ("write_behind", "sync"):
            assert backend is not None
            backend.reset()
            storage = StorageManager(backend.url)
            # The prefill goes through a write-behind persister, so storage holds the starting book.
            storage.attach(book, mode="write_behind")
            apply_commands(book, commands.prefill)
            storage.flush()
            if setup == "sync":
                storage.detach(book)
                storage.attach(book, mode="sync")
        else:
            if setup == "noop":
                book.event_manager.subscribe_all(_noop)
            apply_commands(book, commands.prefill)
        seq0 = book.sequence
        gc.collect()
        started, cpu_started = time.perf_counter(), time.thread_time()
        apply_commands(book, ops)
        book_done, cpu_done = time.perf_counter(), time.thread_time()
        queued = 0
        if storage is not None:
            queued = storage.get_pending_write_count()
            storage.flush()
        flushed = time.perf_counter()
        persisted, advance = commands.events[n_ops]
        result.update(
            book_s=book_done - started,
            book_cpu_s=cpu_done - cpu_started,
            queued_at_book_done=queued,
            total_s=flushed - started,
            persisted_events=persisted,
            sequence_advance=book.sequence - seq0,
        )
        problems = []
        if book.sequence - seq0 != advance:
            problems.append(f"sequence advanced {book.sequence - seq0}, expected {advance}")
        if storage is not None:
            report = storage.reconcile(book)
            if not report.ok:
                problems.append(f"reconcile: {report}")
            failed = storage.get_failed_events()
            if failed:
                problems.append(f"{len(failed)} failed events, first: {failed[0]['error']}")
        if problems:
            result["problems"] = problems
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if storage is not None:
            storage.close()
    return result


# ------------------------------------------------------------------------------------------ restore
def restore_orders(sizes: StorageSizes, seed: int) -> list[dict[str, Any]]:
    """``batch_add_orders`` items: resting, non-crossing orders spread over many levels, random order."""
    rng = random.Random(seed)
    mid = 3_000_000  # ticks: 30,000.00
    levels = sizes.restore_levels_per_side
    items = []
    for i in range(sizes.restore_orders):
        side = "buy" if rng.random() < 0.5 else "sell"
        offset = 1 + rng.randrange(levels)
        price = mid - offset if side == "buy" else mid + offset
        items.append(
            {
                "side": side,
                "price": price / PRICE_DIV,
                "quantity": rng.randint(1, 10_000) / QTY_DIV,
                "order_id": f"r{i}",
                "user_id": f"u{rng.randrange(1000)}",
            }
        )
    return items


def state_digest(book: OrderBook) -> str:
    """SHA-256 of ``export_state()`` (every live order with all its fields, and the counters)."""
    state = book.export_state()
    digest = hashlib.sha256()
    for key in ("symbol", "sequence", "last_trade_price", "trade_count", "generated_order_count"):
        digest.update(repr((key, state[key])).encode())
    for order in state["orders"]:
        digest.update(repr(sorted(order.items())).encode())
    return digest.hexdigest()


def _snapshot(book: OrderBook) -> dict[str, Any]:
    snapshot = book.get_snapshot(depth=None)
    snapshot.pop("timestamp", None)
    return snapshot


@dataclass
class RestoreDB:
    """A database holding the restore benchmark's book, and what the restored book must equal."""

    backend: Backend
    orders: int
    levels: int
    build_book_s: float
    build_flush_s: float
    db_bytes: int | None
    snapshot: dict[str, Any]
    digest: str


def build_restore_db(backend: Backend, sizes: StorageSizes, seed: int, batch: int = 1_000) -> RestoreDB:
    """Write the restore benchmark's book through a write-behind persister (adds in batches of ``batch``)."""
    items = restore_orders(sizes, seed)
    backend.reset()
    book = new_book()
    storage = StorageManager(backend.url)
    try:
        storage.attach(book, mode="write_behind")
        gc.collect()
        started = time.perf_counter()
        for i in range(0, len(items), batch):
            book.batch_add_orders(items[i : i + batch])
        book_done = time.perf_counter()
        storage.flush()
        flushed = time.perf_counter()
    finally:
        storage.close()
    del items
    snapshot = _snapshot(book)
    return RestoreDB(
        backend=backend,
        orders=len(book),
        levels=len(snapshot["bids"]) + len(snapshot["asks"]),
        build_book_s=book_done - started,
        build_flush_s=flushed - started,
        db_bytes=backend.size_bytes(),
        snapshot=snapshot,
        digest=state_digest(book),
    )


def run_restore(db: RestoreDB) -> dict[str, Any]:
    """Time ``storage.restore(empty_book)`` and check the result against the original book."""
    result: dict[str, Any] = {"backend": db.backend.name, "orders": db.orders}
    storage = StorageManager(db.backend.url)
    book: OrderBook | None = new_book()
    try:
        assert book is not None
        gc.collect()
        started = time.perf_counter()
        restored = storage.restore(book)
        result["restore_s"] = time.perf_counter() - started
        problems = []
        if restored != db.orders or len(book) != db.orders:
            problems.append(f"restored {restored} orders, book holds {len(book)}, expected {db.orders}")
        if _snapshot(book) != db.snapshot:
            problems.append("full-depth snapshot differs from the original book's")
        if state_digest(book) != db.digest:
            problems.append("export_state() differs from the original book's")
        if problems:
            result["problems"] = problems
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        storage.close()
        book = None
        gc.collect()
    return result


# ------------------------------------------------------------------------------------------ profiling
class WriterProfiler:
    """Profiles every transaction a storage manager's writer makes, in whatever thread makes it.

    :meth:`install` wraps the manager's (private) ``_write_units`` before :meth:`StorageManager.attach`
    hands it to the write-behind writer thread: cProfile only sees the thread that enables it. Nothing
    is recorded until :meth:`start`.
    """

    def __init__(self) -> None:
        self.profile = cProfile.Profile()
        self.active = False

    def start(self) -> None:
        """Record from the next transaction on (into a fresh profile)."""
        self.profile = cProfile.Profile()
        self.active = True

    @contextmanager
    def install(self, storage: StorageManager) -> Iterator[None]:
        """Wrap ``storage``'s transaction function while the block runs."""
        original: Callable[[list[Any]], None] = storage._write_units

        def write_units(units: list[Any]) -> None:
            if not self.active:
                original(units)
                return
            profile = self.profile
            profile.enable()
            try:
                original(units)
            finally:
                profile.disable()

        storage._write_units = write_units  # type: ignore[method-assign]
        try:
            yield
        finally:
            del storage._write_units


def profile_summary(profile: cProfile.Profile, title: str, path: Path, top: int = 25) -> str:
    """Write the full listing to ``path``; return the top functions by own time with shares of the total."""
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(filename).name}:{line}" if line else filename
        rows.append((tottime, cumtime, calls, f"{name} ({where})"))
    by_own = sorted(rows, reverse=True)[:top]
    by_cum = sorted(rows, key=lambda r: -r[1])[:top]
    out = [f"## {title}: {total:.2f} s profiled", "", "top by own time:", ""]
    out += [
        f"{own / total:6.1%} own {cum / total:6.1%} cum {calls:>9,}  {fn}" for own, cum, calls, fn in by_own
    ]
    out += ["", "top by cumulative time:", ""]
    out += [
        f"{cum / total:6.1%} cum {own / total:6.1%} own {calls:>9,}  {fn}" for own, cum, calls, fn in by_cum
    ]
    summary = "\n".join(out)
    listing = io.StringIO()
    pstats.Stats(profile, stream=listing).sort_stats("tottime").print_stats(80)
    pstats.Stats(profile, stream=listing).sort_stats("cumulative").print_stats(80)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary + "\n\n" + listing.getvalue())
    return summary


def run_profiles(sizes: StorageSizes, commands: Commands, seed: int, console: Console) -> None:
    """cProfile the book thread and the writer thread of a write-behind SQLite run, and one restore."""
    backend = Backend("sqlite", f"sqlite:///{WORK_DIR / 'profile.db'}")
    backend.reset()
    book = new_book()
    storage = StorageManager(backend.url)
    writer, book_profile = WriterProfiler(), cProfile.Profile()
    with writer.install(storage):
        storage.attach(book, mode="write_behind")
        apply_commands(book, commands.prefill)
        storage.flush()
        writer.start()  # the prefill is not part of the profile
        started = time.perf_counter()
        book_profile.enable()
        apply_commands(book, commands.ops)
        book_profile.disable()
        storage.flush()
        console.log(f"profiled write-behind run: {time.perf_counter() - started:.2f} s")
    storage.close()
    for prof, title, name in (
        (book_profile, "book thread, write-behind persister attached (SQLite mix)", "book"),
        (writer.profile, "write-behind writer thread (SQLite mix)", "writer"),
    ):
        console.print(profile_summary(prof, title, BUILD / f"storage-profile-{name}.txt"))
    db = build_restore_db(backend, sizes, seed)
    console.log(f"restore database: {db.orders:,} orders, built in {db.build_flush_s:.1f} s")
    storage = StorageManager(backend.url)
    restore_profile = cProfile.Profile()
    book = new_book()
    gc.collect()
    restore_profile.enable()
    storage.restore(book)
    restore_profile.disable()
    storage.close()
    title = f"storage.restore() of {db.orders:,} orders (SQLite)"
    console.print(profile_summary(restore_profile, title, BUILD / "storage-profile-restore.txt"))
    backend.reset()


# ------------------------------------------------------------------------------------------ report
def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _spread(values: Sequence[float], fmt: str) -> str:
    """``median [min-max]`` (or ``n/a``)."""
    if not values:
        return "n/a"
    text_ = format(statistics.median(values), fmt)
    if len(values) > 1:
        text_ += f" [{format(min(values), fmt)}-{format(max(values), fmt)}]"
    return text_


class Foreign:
    """Measures the share of a core other processes used while a run was going (Linux ``/proc/stat``)."""

    def __init__(self) -> None:
        self.busy, self.own, self.started = _busy_cpu_s(), _children_cpu_s(), time.perf_counter()

    def share(self) -> float | None:
        """Other processes' CPU seconds per wall second since construction (None where unknown)."""
        busy = _busy_cpu_s()
        if busy is None or self.busy is None:
            return None
        foreign = (busy - self.busy) - (_children_cpu_s() - self.own)
        return round(max(0.0, foreign) / max(time.perf_counter() - self.started, 1e-9), 3)


class Settle:
    """Waits for a quiet machine before each run (at most ``limit_s``), within a total ``budget_s``."""

    def __init__(self, limit_s: float, budget_s: float = SETTLE_BUDGET_S) -> None:
        self.limit_s = limit_s
        self.budget_s = budget_s
        self.waited = 0.0

    def wait(self) -> None:
        """Wait until other processes use less than a small share of a core, or the limit passes."""
        limit = min(self.limit_s, max(0.0, self.budget_s - self.waited))
        if limit > 0:
            self.waited += _wait_for_quiet(limit)


def _ok(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if "error" not in r]


def _select(data: dict[str, Any], setup: str, backend: str | None) -> list[dict[str, Any]]:
    return _ok([r for r in data["streams"] if r["setup"] == setup and r["backend"] == backend])


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    """Medians and ratios used by the report and the console summary."""
    none = _select(data, "none", None)
    noop = _select(data, "noop", None)
    wb = _select(data, "write_behind", "sqlite")
    out: dict[str, Any] = {}
    book_none = _median([r["n_ops"] / r["book_s"] for r in none])
    book_noop = _median([r["n_ops"] / r["book_s"] for r in noop])
    book_wb = _median([r["n_ops"] / r["book_s"] for r in wb])
    if book_none and book_wb:
        out["persister_vs_none"] = book_wb / book_none
    if book_noop and book_wb:
        out["persister_vs_noop"] = book_wb / book_noop
    if book_none and book_noop:
        out["noop_vs_none"] = book_noop / book_none
    restores = [r["restore_s"] for r in _ok(data["restores"])]
    if restores:
        out["restore_s"] = statistics.median(restores)
    return out


def render_markdown(data: dict[str, Any]) -> str:
    """The report page."""
    meta = data["meta"]
    sizes = meta["sizes"]
    machine = meta["machine"]
    summary = summarise(data)
    lines = [
        "# Storage benchmarks",
        "",
        f"Generated by `{meta['command']}`"
        + (f" (PostgreSQL URL from `${POSTGRES_ENV}`)" if meta.get("postgres_from_env") else "")
        + f" on {meta['date']} (revision {meta['revision']}, "
        f"{meta['duration_s']:.0f} s). Do not edit by hand; see `benchmarks/README.md`.",
        "",
        f"Machine: {machine['cpu']}, **{machine['cores']} cores, shared and noisy** (other jobs run on it; "
        f"load average {' -> '.join(str(x) for x in meta['loadavg'])} over the run), {machine['platform']}, "
        f"Python {machine['python']}, {', '.join(meta['databases'])}. Pure-Python build of the order book "
        "(`.venv`). Every figure is the median of "
        f"{sizes['repeats']} repeats (restore: {sizes['restore_repeats']}), with the slowest and fastest "
        "repeat in brackets; setups are interleaved within each repeat. " + _noise_note(data),
        "",
        "## Targets",
        "",
        "| target | goal | result |",
        "|---|---|---|",
    ]
    ratio = summary.get("persister_vs_none")
    if ratio is not None:
        verdict = "PASS" if ratio >= PERSIST_TARGET else "**FAIL**"
        lines.append(
            "| book throughput with the write-behind persister vs no persister (SQLite, book-side time) "
            f"| >= {PERSIST_TARGET}x | {ratio:.2f}x {verdict} |"
        )
    restore_s = summary.get("restore_s")
    if restore_s is not None:
        verdict = "PASS" if restore_s < RESTORE_TARGET_S and sizes["restore_orders"] >= 1_000_000 else ""
        if restore_s >= RESTORE_TARGET_S:
            verdict = "**FAIL**"
        elif sizes["restore_orders"] < 1_000_000:
            verdict = f"(only {sizes['restore_orders']:,} orders in this run)"
        lines.append(
            f"| restore of {sizes['restore_orders']:,} resting orders (SQLite) | < {RESTORE_TARGET_S:g} s "
            f"| {restore_s:.2f} s {verdict} |"
        )
    kinds = meta["kinds"]
    lines += [
        "",
        "## 1. Events persisted per second",
        "",
        f"The realistic mix: the book starts with {sizes['prefill']:,} resting orders (written to storage "
        f"untimed, within {sizes['levels_per_side']} ticks of the mid), then {sizes['stream_ops']:,} "
        f"commands ({kinds['add']:,} resting adds near the top, {kinds['cancel']:,} cancels of live "
        f"orders, {kinds['aggressive']:,} limit orders priced through 1-5 levels); sync mode runs the first "
        f"{sizes['sync_ops']:,} of them (one commit per command). Tick 0.01, lot 0.0001, maker/taker fees. "
        "Time: from the first command until `storage.flush()` returns. *Persisted events* are the "
        "events storage writes (orders added/cancelled, fills, trades); *book events* the book's sequence "
        "advance, which also counts the price-level events storage does not write. After each run "
        "`storage.reconcile(book)` must be clean and no event may have failed.",
        "",
        "| database | mode | commands | persisted events | book events | time to flush (s) "
        "| persisted events/s | book events/s | commands/s | checks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend in meta["backends"]:
        for setup in ("write_behind", "sync"):
            runs = [r for r in data["streams"] if r["setup"] == setup and r["backend"] == backend]
            ok = _ok(runs)
            if not runs:
                continue
            first = (ok or runs)[0]
            persisted = first.get("persisted_events", 0)
            advance = first.get("sequence_advance", 0)
            lines.append(
                f"| {_db_label(backend)} | {setup.replace('_', '-')} | {first['n_ops']:,} | {persisted:,} "
                f"| {advance:,} | {_spread([r['total_s'] for r in ok], '.2f')} "
                f"| {_spread([persisted / r['total_s'] for r in ok], ',.0f')} "
                f"| {_spread([advance / r['total_s'] for r in ok], ',.0f')} "
                f"| {_spread([r['n_ops'] / r['total_s'] for r in ok], ',.0f')} | {_checks(runs)} |"
            )
    if meta.get("postgres_skipped"):
        lines += ["", f"PostgreSQL: skipped ({meta['postgres_skipped']})."]
    lines += [
        "",
        "## 2. Book throughput with a persister attached (SQLite)",
        "",
        f"The same {sizes['stream_ops']:,} commands. *Book-side* time runs until the last command returns; "
        "*until flush* until everything is committed (the write-behind runs are those of part 1). "
        "Ratios compare book-side throughput with the no-persister setup. *Book thread CPU* is the CPU "
        "time of the thread sending the commands over the book-side interval (the rest of the interval it "
        "did not run: waiting for the GIL or for room in the write queue). *Uncommitted* is "
        "`storage.get_pending_write_count()` when the last command returned: the events the writer "
        "thread had not committed yet.",
        "",
        "| setup | book-side commands/s | book-side time (s) | book thread CPU (s) | uncommitted "
        "| time until flush (s) | commands/s until flush | vs none | checks |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {
        "none": "no persister, no subscriber",
        "noop": "no-op subscriber on every event type",
        "write_behind": "write-behind persister",
    }
    none_rate = _median([r["n_ops"] / r["book_s"] for r in _select(data, "none", None)])
    for setup, backend in (("none", None), ("noop", None), ("write_behind", "sqlite")):
        runs = [r for r in data["streams"] if r["setup"] == setup and r["backend"] == backend]
        ok = _ok(runs)
        if not runs:
            continue
        rate = _median([r["n_ops"] / r["book_s"] for r in ok])
        vs = f"{rate / none_rate:.2f}x" if rate and none_rate else "n/a"
        lines.append(
            f"| {labels[setup]} | {_spread([r['n_ops'] / r['book_s'] for r in ok], ',.0f')} "
            f"| {_spread([r['book_s'] for r in ok], '.3f')} "
            f"| {_spread([r['book_cpu_s'] for r in ok], '.3f')} "
            f"| {_spread([r['queued_at_book_done'] for r in ok], ',.0f') if backend else '-'} "
            f"| {_spread([r['total_s'] for r in ok], '.3f')} "
            f"| {_spread([r['n_ops'] / r['total_s'] for r in ok], ',.0f')} | {vs} | {_checks(runs)} |"
        )
    if "persister_vs_noop" in summary:
        lines += [
            "",
            "Write-behind persister vs the no-op subscriber (book-side): "
            f"{summary['persister_vs_noop']:.2f}x; "
            f"no-op subscriber vs none: {summary.get('noop_vs_none', 0):.2f}x.",
        ]
    restore = data.get("restore_db")
    lines += ["", "## 3. Restore", ""]
    if restore:
        runs = data["restores"]
        size = restore["db_bytes"]
        size_text = f", database {size / 1e6:,.0f} MB" if size else ""
        lines += [
            f"{restore['orders']:,} resting orders (random sides, {restore['levels']:,} price levels, "
            "1,000 distinct users) added with `batch_add_orders` in batches of 1,000 while a write-behind "
            f"persister was attached{size_text}. Restore: `storage.restore(OrderBook(...))` into an empty "
            "book, then checked: order count, full-depth snapshot and a digest of `export_state()` "
            "(every order field, priorities, counters) equal to the original book's.",
            "",
            "| orders | build: book-side (s) | build: until flush (s) | restore (s) | restored orders/s "
            "| checks |",
            "|---|---|---|---|---|---|",
            f"| {restore['orders']:,} | {restore['build_book_s']:.1f} | {restore['build_flush_s']:.1f} "
            f"| {_spread([r['restore_s'] for r in _ok(runs)], '.2f')} "
            f"| {_spread([r['orders'] / r['restore_s'] for r in _ok(runs)], ',.0f')} | {_checks(runs)} |",
        ]
    else:
        lines.append(f"Not run: {data.get('restore_error', 'skipped')}.")
    problems = _all_problems(data)
    if problems:
        lines += ["", "## Problems", ""] + [f"* {p}" for p in problems]
    return "\n".join(lines) + "\n"


def _noise_note(data: dict[str, Any]) -> str:
    """How busy the rest of the machine was during the runs."""
    meta = data["meta"]
    shares = [
        float(r["foreign_cpu_share"])
        for r in [*data["streams"], *data["restores"]]
        if r.get("foreign_cpu_share") is not None
    ]
    text_ = ""
    if meta.get("settle_s"):
        text_ += (
            f"Before each run the benchmark waited up to {meta['settle_s']:g} s for a quiet machine "
            f"({meta['settle_waited_s']:g} s in all). "
        )
    if shares:
        text_ += (
            f"Other processes used {statistics.median(shares):.0%} of one core during the median run "
            f"(at most {max(shares):.0%})."
        )
    return text_


def _db_label(backend: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(backend, backend)


def _checks(runs: Sequence[dict[str, Any]]) -> str:
    bad = sum(1 for r in runs if "error" in r or r.get("problems"))
    return "ok" if not bad else f"**{bad} of {len(runs)} failed**"


def _one_line(message: str, limit: int = 300) -> str:
    """The first line of ``message``, shortened to ``limit`` characters."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _all_problems(data: dict[str, Any]) -> list[str]:
    out = []
    for r in data["streams"]:
        label = f"{r['setup']} {r['backend'] or ''}".strip()
        if "error" in r:
            out.append(f"{label}: {_one_line(r['error'])}")
        out += [f"{label}: {_one_line(p)}" for p in r.get("problems", [])]
    for r in data["restores"]:
        if "error" in r:
            out.append(f"restore: {_one_line(r['error'])}")
        out += [f"restore: {_one_line(p)}" for p in r.get("problems", [])]
    if data.get("restore_error"):
        out.append(f"restore database: {_one_line(data['restore_error'])}")
    return out


def console_table(data: dict[str, Any]) -> Table:
    """A compact summary for the terminal."""
    table = Table(title="storage benchmark (medians)")
    for column in ("run", "commands", "book-side cmd/s", "until flush (s)", "persisted ev/s"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for backend, setup in [(None, "none"), (None, "noop")] + [
        (b, s) for b in data["meta"]["backends"] for s in ("write_behind", "sync")
    ]:
        ok = _select(data, setup, backend)
        if not ok:
            continue
        table.add_row(
            f"{setup} {backend or ''}".strip(),
            f"{ok[0]['n_ops']:,}",
            f"{_median([r['n_ops'] / r['book_s'] for r in ok]):,.0f}",
            f"{_median([r['total_s'] for r in ok]):.2f}",
            f"{_median([r['persisted_events'] / r['total_s'] for r in ok]):,.0f}" if backend else "-",
        )
    restores = _ok(data["restores"])
    if restores:
        table.add_row(
            f"restore {restores[0]['orders']:,} orders",
            "",
            "",
            f"{_median([r['restore_s'] for r in restores]):.2f}",
            "",
        )
    return table


# ------------------------------------------------------------------------------------------ main
def _masked(url: str) -> str:
    """``url`` with any password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def _command_line(args: Sequence[str]) -> str:
    """The command that ran, with any database password hidden."""
    shown = []
    for i, arg in enumerate(args):
        if i and args[i - 1] == "--postgres-url":
            arg = _masked(arg)
        elif arg.startswith("--postgres-url="):
            arg = "--postgres-url=" + _masked(arg.split("=", 1)[1])
        shown.append(arg)
    return " ".join([".venv/bin/python -m benchmarks.storage", *shown])


def _postgres_url(arg: str | None) -> str | None:
    return arg or os.environ.get(POSTGRES_ENV) or None


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.storage", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run (well under a minute)")
    parser.add_argument(
        "--postgres-url",
        help=f"also measure PostgreSQL (default: ${POSTGRES_ENV}); its manticore_* tables are dropped",
    )
    parser.add_argument(
        "--repeats", type=int, help="repeats of every run (default 5 and 3 restores, --quick: 2)"
    )
    parser.add_argument(
        "--restore-orders",
        type=int,
        help="orders in the restore book (default 1,000,000; --quick 20,000; --profile 200,000)",
    )
    parser.add_argument("--no-restore", action="store_true", help="skip part 3")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the writer, book and restore instead"
    )
    parser.add_argument(
        "--out", type=Path, help="report file (default docs/benchmarks-storage.md, --quick: .build)"
    )
    parser.add_argument("--seed", type=int, default=20240601, help="workload seed")
    parser.add_argument(
        "--settle",
        type=float,
        help=f"longest wait for a quiet machine before each run, s (default {SETTLE_S:g}, --quick: 0)",
    )
    args = parser.parse_args(argv)

    console = Console()
    started = time.perf_counter()
    load_start = _loadavg()
    sizes = StorageSizes.quick() if args.quick else StorageSizes.full()
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error("--repeats must be at least 1")
        sizes = dataclasses.replace(sizes, repeats=args.repeats, restore_repeats=args.repeats)
    restore_n = args.restore_orders
    if restore_n is None and args.profile and not args.quick:
        restore_n = PROFILE_RESTORE_ORDERS
    if restore_n is not None:
        if restore_n < 1:
            parser.error("--restore-orders must be at least 1")
        levels = max(1, min(sizes.restore_levels_per_side, restore_n // 20))
        sizes = dataclasses.replace(sizes, restore_orders=restore_n, restore_levels_per_side=levels)
    tag = "quick" if args.quick else "full"
    revision = _git_revision()  # the code this run imports (src/ may change while it runs)
    settle = Settle(args.settle if args.settle is not None else (0.0 if args.quick else SETTLE_S))

    with console.status("generating the command stream..."):
        commands = build_commands(sizes, args.seed)
    persisted, advance = commands.events[sizes.stream_ops]
    console.log(
        f"{len(commands.ops):,} commands ({commands.kinds}); {persisted:,} persisted events, "
        f"{advance:,} book events"
    )
    if args.profile:
        run_profiles(sizes, commands, args.seed, console)
        return 0

    backends = [Backend("sqlite", f"sqlite:///{WORK_DIR / 'bench.db'}")]
    pg_url = _postgres_url(args.postgres_url)
    pg_skipped = None
    if pg_url:
        backends.append(Backend("postgresql", pg_url))
    else:
        pg_skipped = f"no --postgres-url and ${POSTGRES_ENV} is not set"
        console.log(f"[yellow]PostgreSQL skipped[/yellow]: {pg_skipped}")
    databases = []
    for backend in backends:
        try:
            backend.ensure_exists()
            databases.append(backend.version())
        except Exception as exc:
            console.print(f"[red]{backend.name} unavailable[/red]: {exc}")
            return 1

    jobs: list[tuple[str, Backend | None, int]] = []
    for _ in range(sizes.repeats):
        jobs += [("none", None, sizes.stream_ops), ("noop", None, sizes.stream_ops)]
        for backend in backends:
            jobs += [("write_behind", backend, sizes.stream_ops), ("sync", backend, sizes.sync_ops)]
    data: dict[str, Any] = {"streams": [], "restores": []}
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(
            "stream runs", total=len(jobs) + (0 if args.no_restore else 1 + sizes.restore_repeats)
        )
        for setup, backend, n_ops in jobs:
            progress.update(
                task, description=f"{setup} {backend.name if backend else ''} ({n_ops:,} commands)"
            )
            settle.wait()
            foreign = Foreign()
            result = run_stream(setup, commands, n_ops, backend)
            result["foreign_cpu_share"] = foreign.share()
            data["streams"].append(result)
            if "error" in result or result.get("problems"):
                progress.console.print(
                    f"[red]FAILED[/red] {setup}: {result.get('error') or result['problems']}"
                )
            progress.advance(task)
        if not args.no_restore:
            sqlite_backend = Backend("sqlite", f"sqlite:///{WORK_DIR / 'restore.db'}")
            progress.update(
                task, description=f"building the restore database ({sizes.restore_orders:,} orders)"
            )
            try:
                db = build_restore_db(sqlite_backend, sizes, args.seed)
                data["restore_db"] = {
                    k: v for k, v in dataclasses.asdict(db).items() if k not in ("backend", "snapshot")
                }
                progress.console.log(
                    f"restore database: {db.orders:,} orders, {db.levels:,} levels, book-side "
                    f"{db.build_book_s:.1f} s, until flush {db.build_flush_s:.1f} s"
                )
                progress.advance(task)
                for _ in range(sizes.restore_repeats):
                    progress.update(task, description=f"restoring {db.orders:,} orders")
                    settle.wait()
                    foreign = Foreign()
                    result = run_restore(db)
                    result["foreign_cpu_share"] = foreign.share()
                    data["restores"].append(result)
                    if "error" in result or result.get("problems"):
                        progress.console.print(
                            f"[red]FAILED[/red] restore: {result.get('error') or result['problems']}"
                        )
                    else:
                        progress.console.log(f"restore: {result['restore_s']:.2f} s")
                    progress.advance(task)
                del db
            except Exception as exc:
                data["restore_error"] = f"{type(exc).__name__}: {exc}"
                progress.console.print(f"[red]FAILED[/red] restore database: {data['restore_error']}")
            finally:
                sqlite_backend.reset()
    for backend in backends:
        backend.reset()

    data["meta"] = {
        "tag": tag,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": _command_line(sys.argv[1:] if argv is None else argv),
        "postgres_from_env": bool(pg_url and not args.postgres_url),
        "sizes": dataclasses.asdict(sizes),
        "kinds": commands.kinds,
        "seed": args.seed,
        "machine": _machine(),
        "revision": revision,
        "databases": databases,
        "backends": [b.name for b in backends],
        "postgres_skipped": pg_skipped,
        "duration_s": round(time.perf_counter() - started, 1),
        "settle_s": settle.limit_s,
        "settle_waited_s": round(settle.waited, 1),
        "loadavg": [x for x in (load_start, _loadavg()) if x is not None],
    }
    raw = BUILD / f"storage-results-{tag}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(data, indent=1))
    out = (
        args.out
        if args.out is not None
        else (BUILD / "storage-quick.md" if args.quick else REPO / "docs" / "benchmarks-storage.md")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(data))
    console.print(console_table(data))
    console.log(f"raw results: {raw.relative_to(REPO)}; report: {out}")
    problems = _all_problems(data)
    if problems:
        console.print(f"[red]{len(problems)} problem(s)[/red]:\n" + "\n".join(problems[:20]))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
