"""The in-process exchange as the server drives it: durable orders per second, and restart replay.

Order entry (``orders/s``): one asyncio loop, ``--tasks`` tasks in flight, each placing a limit order
with ``Exchange.place_order`` on the loop thread and then awaiting its durability through
:class:`manticore_api.service.ExchangeService` (the server's own acknowledgement path: the journal's
group commit + fsync, the durability listener, ``call_soon_threadsafe``, the stream hub's publish).
The orders come from ``--users`` funded users, prices uniform over +-40 ticks around 30,000 (so about
half of them cross and trade, the rest rest), risk on with the server's default limits except the
per-user rate limit, raised so that it is checked but never refuses. Latency is per order, from the
call of ``place_order`` to the wake-up of its awaiting task.

Stream readers (the exchange builds only what a listener's demand names:
:mod:`manticore_matching.demand`): by default (``--readers server``) the service's hub with no WebSocket
subscriber plus listeners that read what the Binance surface's listeners read in ``manticore serve``
with no subscriber: the candles every market's trades, the fill ledger every user's fills (since session
21 as records, ``Exchange.add_trade_listener`` and ``add_fill_listener``: a tuple per trade and per fill,
no message), the market feed and the user feed nothing (the market feed names a market's book diffs
only while a stream reads its book: :mod:`manticore_api.binance.market_feed`). So every command builds
its trade and fill records but no message (before session 21: its trade and fill messages).
``--readers depth``: the same with one Binance depth subscriber on the market (the market feed then
reads its book diffs: what ``--readers server`` measured until session 20). ``--readers hub``: the
hub alone (no stream message built; a serve without the Binance surface, which ``manticore serve``
always mounts). ``--readers everything``: also a listener that reads every message (what ``manticore
serve`` built before the listeners named their demands).

Storage: the server runs with the SQL read model writer attached, so the benchmark measures both:
``storage on`` (every durable command's storage unit goes to the SQLite writer thread, as in
``manticore serve``) and ``storage off`` (the units are built by the book's persister but dropped
instead of written: what the exchange costs without the SQL writer's GIL time).

Replay (``records/s``): ``--replay-records`` place records are written, the exchange is abandoned
without a checkpoint (as ``kill -9`` leaves it), and a new exchange's ``open()`` is timed: reading the
journal, checking every record's fingerprint, rebuilding books, ledger and views, storage catch-up
included. The replayed state is compared with the state before the crash.

Builds: the headline figures are the build users get (``make run`` installs the compiled book and
compiled risk): every measurement runs in a fresh process of ``--python`` (default
``.venv-compiled/bin/python``, brought up to date with ``make compiled`` first, so that its installed
copies of the other packages are this tree's; ``--no-build`` skips that). A side row runs the
``storage on`` order entry in ``--pure-python`` (default ``.venv/bin/python``: the editable source, the
pure-Python book and risk); ``--no-pure`` skips it. Every line says which build it used.

Garbage collector: by default the order entry runs under the server's policy
(:class:`manticore_api.gcpolicy.GcPolicy`: one full collection and ``gc.freeze()`` after start-up,
its thresholds, and its refreezing while serving), applied once the users are funded, as
``manticore serve`` applies it once the exchange is open; ``--gc default`` keeps CPython's defaults
(what this benchmark measured until session 11).

Run: ``.venv/bin/python -m benchmarks.exchange`` (any interpreter of the project: it only starts the
measured ones). Options: ``--orders N`` (per repeat), ``--tasks``, ``--repeats``, ``--replay-records``,
``--storage on|off|both``, ``--profile FILE`` (cProfile of one storage-on run in this process, the loop
thread only), ``--json``, ``--instructions`` (valgrind, the same interpreters). Prints medians of the
interleaved repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from manticore_api.gcpolicy import GcPolicy
from manticore_api.service import ExchangeService
from manticore_auth import AuthManager
from manticore_matching import DEFAULT_RISK_LIMITS, Demand, Exchange, MarketConfig
from manticore_orderbook import COMPILED
from manticore_risk import RiskLimits

MARKET = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.001"), Decimal("0.001"), Decimal("0.002")
)
#: The server's default limits (price band, open orders), with a rate limit that is checked but never
#: reached by the benchmark.
LIMITS = RiskLimits(
    price_band=DEFAULT_RISK_LIMITS.price_band,
    max_open_orders=DEFAULT_RISK_LIMITS.max_open_orders,
    rate_limit_orders=10_000_000,
    rate_limit_window=1.0,
)
Order = tuple[str, str, str, str]


def orders(count: int, users: int, seed: int = 7) -> list[Order]:
    """``count`` limit orders ``(user, side, price, quantity)``: prices +-40 ticks around 30,000."""
    rng = random.Random(seed)
    names = [f"user{i}" for i in range(users)]
    result = []
    for _ in range(count):
        side = rng.choice(("buy", "sell"))
        price = str(Decimal(30000) + Decimal("0.5") * rng.randint(-40, 40))
        result.append((rng.choice(names), side, price, str(Decimal("0.001") * rng.randint(1, 500))))
    return result


def _fund(exchange: Exchange, users: int) -> None:
    for i in range(users):
        exchange.deposit(f"user{i}", "USD", "100000000000")
        exchange.deposit(f"user{i}", "BTC", "10000000")
    exchange.wait_durable(exchange.journal.appended)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _drive(
    exchange: Exchange, service: ExchangeService, work: list[Order], tasks: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    rejected = 0
    queue = iter(work)
    place = exchange.place_order
    clock = time.perf_counter

    async def client() -> None:
        nonlocal rejected
        for user, side, price, quantity in queue:
            started = clock()
            try:
                receipt = place(user, "BTC/USD", side, quantity, price=price)
            except Exception:
                rejected += 1
                continue
            await service.durable(receipt.position)
            latencies.append(clock() - started)

    started = clock()
    await asyncio.gather(*(client() for _ in range(tasks)))
    return clock() - started, latencies, rejected


def _writer_process_cpu(exchange: Exchange) -> float:
    """CPU seconds the storage writer's child process reported for its batches so far (0 where the
    writer is a thread of this process, whose time ``time.process_time`` already counts)."""
    process = getattr(exchange.storage, "_process", None)
    return 0.0 if process is None else float(process.cpu_seconds)


def add_readers(exchange: Exchange, readers: str) -> None:
    """Add the stream listeners that ``readers`` (``--readers``) names beside the service's hub: for
    ``server`` and ``depth``, one per listener of the Binance surface in ``manticore serve``, with its
    demand (each reads nothing but the messages' count: what is measured is what the exchange builds)."""
    if readers == "everything":
        exchange.add_listener(len)  # reads every message (a demand of None): all are built
    elif readers in ("server", "depth"):
        if hasattr(exchange, "add_trade_listener"):  # since session 21: records, not messages
            exchange.add_trade_listener(len)  # the candles
            exchange.add_fill_listener(len)  # the fill ledger
        else:  # the same on a tree before session 21 (a base measured with this file)
            exchange.add_listener(len, Demand(trades=None))
            exchange.add_listener(len, Demand(fills=True))
        # The market feed: a market's book diffs while a stream reads its book (depth: one does).
        exchange.add_listener(len, Demand(books=[MARKET.symbol] if readers == "depth" else ()))
        exchange.add_listener(len, Demand(users=()))  # the user feed: no user data subscriber
    elif readers != "hub":
        raise ValueError(f"unknown readers {readers!r}")


def order_entry(
    count: int,
    tasks: int,
    users: int,
    storage: bool,
    profile: Path | None = None,
    freeze: bool = False,
    gc_policy: str = "server",
    readers: str = "server",
    generated: int = 0,
    final_checkpoint: bool = True,
) -> dict[str, float]:
    """One run: ``count`` orders by ``tasks`` tasks; orders/s, p50 and p99 latency in ms, CPU time
    per order of the process (every thread) and of the storage writer's child process where it runs
    in one (its own count of its batches' CPU), up to the storage's flush of those orders.
    ``freeze``: ``gc.freeze()`` the state built before the orders (funded users, markets), as a
    server may after its start. ``gc_policy``: ``server`` applies the server's
    :class:`~manticore_api.gcpolicy.GcPolicy` before the orders (and restores CPython's thresholds
    after), ``default`` leaves the collector as CPython starts it. ``generated``: make this many orders
    (at least ``count``) and place the first ``count`` (the same orders: :func:`orders` is
    deterministic), so that two runs of different counts generate alike. ``final_checkpoint``: False
    closes the exchange without its final checkpoint (what :func:`instructions` counts: neither the
    input's generation nor the final checkpoint is per-order work)."""
    with tempfile.TemporaryDirectory() as directory:
        exchange = Exchange(
            Path(directory) / "data", markets=[MARKET], risk_limits=LIMITS, checkpoint_every=0
        )
        exchange.open()
        auth = AuthManager(f"sqlite:///{directory}/auth.db", master_key=os.urandom(32))
        _fund(exchange, users)
        if not storage:
            assert exchange.storage is not None
            exchange.storage.submit = lambda unit: None  # type: ignore[method-assign]
            exchange.storage.submit_many = lambda units: None  # type: ignore[method-assign]
        service = ExchangeService(exchange, auth, require_auth=False)
        add_readers(exchange, readers)
        work = orders(max(count, generated), users)[:count]

        cpu = 0.0

        async def main() -> tuple[float, list[float], int]:
            nonlocal cpu
            await service.start()
            thresholds = gc.get_threshold()
            policy = contextlib.ExitStack()
            try:
                if gc_policy == "server":
                    policy.enter_context(GcPolicy().serving())
                if freeze:
                    gc.collect()
                    gc.freeze()
                cpu = time.process_time() - _writer_process_cpu(exchange)
                result = await _drive(exchange, service, work, tasks)
                if storage:  # the writer's work for these orders, wherever it runs, is theirs
                    assert exchange.storage is not None
                    exchange.storage.flush()
                cpu = time.process_time() + _writer_process_cpu(exchange) - cpu
                return result
            finally:
                if not final_checkpoint:
                    exchange.close(checkpoint=False)
                await service.stop()
                policy.close()
                gc.unfreeze()
                gc.set_threshold(*thresholds)

        profiler = cProfile.Profile() if profile is not None else None
        if profiler is not None:
            profiler.enable()
        elapsed, latencies, rejected = asyncio.run(main())
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)  # type: ignore[arg-type]
        trades = exchange.statistics()
        auth.close()
    return {
        "orders_per_s": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "cpu_us": cpu / len(latencies) * 1e6,
        "rejected": rejected,
        "resting_after": trades["orders_resting"],
        "batches": trades["journal_batches"],
    }


def _state(exchange: Exchange) -> Any:
    book = exchange.book("BTC/USD")
    ledger = exchange.risk.export_state()
    ledger.pop("rate_limiter", None)  # recent request times: not journaled, not part of the state
    return (
        book.export_state(),
        ledger,
        list(exchange._markets["BTC/USD"].trades),
        list(exchange._orders.recent.items()),
        exchange._next_order_no,
    )


def replay(count: int, users: int) -> dict[str, float]:
    """Journal records replayed per second by ``open()`` after a crash (no checkpoint)."""
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / "data"
        exchange = Exchange(data, markets=[MARKET], risk_limits=LIMITS, checkpoint_every=0, fsync=False)
        exchange.open()
        _fund(exchange, users)
        for user, side, price, quantity in orders(count, users, seed=11):
            with contextlib.suppress(Exception):
                exchange.place_order(user, "BTC/USD", side, quantity, price=price)
        exchange.wait_durable(exchange.journal.appended)
        assert exchange.storage is not None
        exchange.storage.flush()
        before = _state(exchange)
        exchange.journal.close()  # kill -9: no checkpoint
        exchange.storage.close()
        assert exchange.directory_lock is not None
        exchange.directory_lock.release()  # as the kernel does for a dead process
        restarted = Exchange(data, markets=[MARKET], risk_limits=LIMITS, checkpoint_every=0, fsync=False)
        started = time.perf_counter()
        cpu = time.process_time()
        restarted.open()
        cpu = time.process_time() - cpu
        elapsed = time.perf_counter() - started
        records = restarted.replayed_records
        if _state(restarted) != before:
            raise AssertionError("the replay did not reproduce the state before the crash")
        restarted.close(checkpoint=False)
    return {"records_per_s": records / elapsed, "cpu_us": cpu / records * 1e6, "seconds": elapsed}


_TOTAL = re.compile(r"(?:Collected|I\s+refs):\s*([\d,]+)")
ROOT = Path(__file__).resolve().parents[1]


def build_name() -> str:
    """Which build this interpreter runs: the book's and risk's (compiled with mypyc or pure Python),
    and where ``manticore_matching`` comes from."""
    import manticore_matching
    import manticore_risk

    risk = "compiled" if getattr(manticore_risk, "COMPILED", False) else "pure-Python"
    source = Path(manticore_matching.__file__).resolve().parent.parent
    where = (
        "src/" if source == ROOT / "src" else "installed" if source.name == "site-packages" else str(source)
    )
    return f"book {'compiled' if COMPILED else 'pure-Python'}, risk {risk}, matching {where}"


def _valgrind(python: str, args: list[str], out_file: Path | None = None) -> int:
    """The instructions (every thread) of ``python *args`` under callgrind; its profile is written to
    ``out_file`` (for ``callgrind_annotate``) when one is named, one file per thread
    (``<out_file>-01``, ``-02``, ...: ``--separate-threads=yes``, see :func:`thread_totals`), else
    dropped."""
    target = "/dev/null" if out_file is None else str(out_file)
    threads = [] if out_file is None else ["--separate-threads=yes"]
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", *threads, f"--callgrind-out-file={target}", python, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    found = _TOTAL.findall(out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"valgrind run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


def thread_totals(out_file: Path) -> dict[int, int]:
    """The instructions of each thread (by callgrind's thread number: 1 is the main thread, the event
    loop's) in the per-thread profiles of one :func:`_valgrind` run that wrote ``out_file``."""
    totals: dict[int, int] = {}
    for part in sorted(out_file.parent.glob(f"{out_file.name}-*")):
        number = int(part.name.rsplit("-", 1)[1])
        for line in part.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                totals[number] = int(line.split()[1])
                break
    return totals


def instructions(
    python: str,
    small: int,
    large: int,
    tasks: int,
    users: int,
    storage: bool,
    gc_policy: str,
    readers: str = "server",
    keep: Path | None = None,
    whole_run: bool = False,
) -> float:
    """Instructions per order of the order-entry run (every thread) in ``python``, counted by valgrind:
    the difference between a run of ``large`` and one of ``small`` orders, divided by their difference.
    Repeatable to about a percent (the journal's batches depend on thread scheduling). ``keep``: a
    directory that receives each run's callgrind profiles, one per thread
    (``callgrind.out.orders-<count>-storage-<on|off>-<thread>``), and then the per-order figure of each
    thread is printed too.

    Both runs generate ``large`` orders (each places its first ``small`` or ``large``) and close the
    exchange without a final checkpoint, so that the difference is the order entry's own work: the
    benchmark's generation of an order (~25,000 instructions: ``random`` and ``Decimal``) and the final
    checkpoint (which grows with the state the orders leave: ~12,800 per order) are not per-order work
    (both were counted until session 22). ``whole_run``: count them as before."""
    counts = []
    files: list[Path] = []
    for count in (small, large):
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); import benchmarks.exchange as b; "
            f"b.order_entry({count}, {tasks}, {users}, {storage}, gc_policy={gc_policy!r}, "
            f"readers={readers!r}, generated={0 if whole_run else large}, "
            f"final_checkpoint={whole_run})"
        )
        out_file = None
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            out_file = keep.resolve() / f"callgrind.out.orders-{count}-storage-{'on' if storage else 'off'}"
        for stale in [] if out_file is None else out_file.parent.glob(f"{out_file.name}-*"):
            stale.unlink()  # a thread file of an earlier run would be counted with this one's
        counts.append(_valgrind(python, ["-c", code], out_file))
        if out_file is not None:
            files.append(out_file)
    if len(files) == 2:  # per thread, per order: where the instructions go
        before, after = thread_totals(files[0]), thread_totals(files[1])
        parts = ", ".join(
            f"thread {number}: {(after[number] - before.get(number, 0)) / (large - small):,.0f}"
            for number in sorted(after)
        )
        print(f"  per order by thread (1: the event loop; then the journal and storage writers): {parts}")
    return (counts[1] - counts[0]) / (large - small)


def _worker(python: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement (``job``) in a fresh process of ``python``; its result as a dict."""
    out = subprocess.run(
        [python, "-m", "benchmarks.exchange", "--job", json.dumps(job)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise SystemExit(f"{python} -m benchmarks.exchange --job {job} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _job(job: dict[str, Any]) -> dict[str, Any]:
    """The measurement a worker process runs (``--job``)."""
    if job["kind"] == "build":
        return {"build": build_name()}
    if job["kind"] == "replay":
        result: dict[str, Any] = replay(job["records"], job["users"])
    else:
        result = order_entry(
            job["orders"],
            job["tasks"],
            job["users"],
            job["storage"],
            freeze=job["freeze"],
            gc_policy=job["gc"],
            readers=job.get("readers", "server"),
        )
    result["build"] = build_name()
    return result


def _make_compiled() -> None:
    """``make compiled``: the compiled venv holds this tree's packages (a no-op when it is current)."""
    done = subprocess.run(["make", "compiled"], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"make compiled failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _print_order_entry(name: str, results: list[dict[str, Any]]) -> None:
    rates = [r["orders_per_s"] for r in results]
    p50 = statistics.median(r["p50_ms"] for r in results)
    p99 = statistics.median(r["p99_ms"] for r in results)
    rejected = sum(r["rejected"] for r in results)
    cpu = statistics.median(r["cpu_us"] for r in results)
    print(
        f"  order entry, {name}: {statistics.median(rates):>9,.0f} orders/s  p50 {p50:.2f} ms  "
        f"p99 {p99:.2f} ms  CPU {cpu:.0f} us/order  "
        f"(runs {', '.join(f'{v:,.0f}' for v in rates)}; rejected {rejected}) [{results[0]['build']}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=20_000, help="orders per order-entry run")
    parser.add_argument("--tasks", type=int, default=64, help="orders in flight")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replay-records", type=int, default=20_000)
    parser.add_argument("--storage", choices=("on", "off", "both"), default="both")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile one storage-on run to FILE")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() before the orders")
    parser.add_argument(
        "--gc",
        choices=("server", "default"),
        default="server",
        help="the collector policy of the order entry: the server's GcPolicy (default) or CPython's",
    )
    parser.add_argument(
        "--readers",
        choices=("server", "depth", "hub", "everything"),
        default="server",
        help="stream readers: what manticore serve's listeners read with no subscriber (default: every "
        "market's trades, every fill), the same with a Binance depth subscriber (the market's book "
        "diffs too), the hub alone, or everything",
    )
    parser.add_argument(
        "--python",
        default=str(ROOT / ".venv-compiled" / "bin" / "python"),
        help="the interpreter of the headline figures (default: the compiled build, .venv-compiled)",
    )
    parser.add_argument(
        "--pure-python",
        default=str(ROOT / ".venv" / "bin" / "python"),
        help="the interpreter of the pure-Python side row (default .venv)",
    )
    parser.add_argument("--no-pure", action="store_true", help="skip the pure-Python side row")
    parser.add_argument("--no-build", action="store_true", help="do not run `make compiled` first")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instructions per order under valgrind (runs of --orders/4 and --orders orders) instead",
    )
    parser.add_argument(
        "--callgrind-out",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --instructions: keep each valgrind run's callgrind profiles (one per thread) in DIR "
        "and print each thread's instructions per order (headline build)",
    )
    parser.add_argument(
        "--whole-run",
        action="store_true",
        help="with --instructions: count the generation of the orders and the final checkpoint too, "
        "as until session 22 (default: the order entry's own instructions)",
    )
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job is not None:
        print(json.dumps(_job(json.loads(args.job))))
        return
    if args.profile is not None:
        order_entry(
            args.orders, args.tasks, args.users, True, args.profile, gc_policy=args.gc, readers=args.readers
        )
        print(f"profile written to {args.profile} ({build_name()})")
        return
    if not args.no_build and args.python == str(ROOT / ".venv-compiled" / "bin" / "python"):
        _make_compiled()
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.storage]
    builds = [("headline", args.python)]
    if not args.no_pure:
        builds.append(("pure", args.pure_python))
    if args.instructions:
        for label, python in builds:
            for storage in modes if label == "headline" else [True]:
                per_order = instructions(
                    python,
                    args.orders // 4,
                    args.orders,
                    args.tasks,
                    args.users,
                    storage,
                    args.gc,
                    args.readers,
                    args.callgrind_out if label == "headline" else None,
                    args.whole_run,
                )
                print(
                    f"  order entry, storage {'on' if storage else 'off'}: {per_order:,.0f} "
                    f"instructions/order [{_worker(python, {'kind': 'build'})['build']}]"
                )
        return
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.repeats):  # interleaved: machine noise hits every case alike
        for label, python in builds:
            for storage in modes if label == "headline" else [True]:
                name = f"storage {'on' if storage else 'off'}" + (" (side row)" if label == "pure" else "")
                job = {
                    "kind": "order_entry",
                    "orders": args.orders,
                    "tasks": args.tasks,
                    "users": args.users,
                    "storage": storage,
                    "freeze": args.gc_freeze,
                    "gc": args.gc,
                    "readers": args.readers,
                }
                runs.setdefault(name, []).append(_worker(python, job))
        if args.replay_records:
            job = {"kind": "replay", "records": args.replay_records, "users": args.users}
            runs.setdefault("replay", []).append(_worker(args.python, job))
    print(
        f"benchmarks.exchange: Python {sys.version.split()[0]}, {args.orders} orders x {args.repeats} "
        f"repeats, {args.tasks} tasks in flight, {args.users} users, collector policy {args.gc}, "
        f"stream readers {args.readers}; "
        f"medians; [the build of each line]"
    )
    for name, results in runs.items():
        if name == "replay":
            values = [r["records_per_s"] for r in results]
            cpu = statistics.median(r["cpu_us"] for r in results)
            print(
                f"  restart replay ({args.replay_records} orders): {statistics.median(values):>9,.0f} "
                f"records/s  CPU {cpu:.0f} us/record  (runs {', '.join(f'{v:,.0f}' for v in values)}) "
                f"[{results[0]['build']}]"
            )
            continue
        _print_order_entry(name, results)
    if args.json:
        print(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
