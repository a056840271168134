"""What the risk manager costs per order, beside the order book it guards, measured in one run.

Usage (from the repository root)::

    python -m benchmarks.risk                         # wall clock: medians of interleaved repeats
    python -m benchmarks.risk --instructions          # and instructions per order under valgrind
    python -m benchmarks.risk --python .venv/bin/python --orders 5000 --repeats 3

The interpreter (``--python``, default ``.venv-compiled/bin/python``: the compiled book) runs every
variant on the same order stream, each in a fresh process per repeat, the variants interleaved within a
repeat (book, book+risk, book+events, then the next repeat in another order), so that the machine's drift
hits them alike:

* ``book``: ``OrderBook.add_order`` alone, called as the exchange calls it (``manticore_matching.apply``'s
  ``place_plain``: every argument by position, the record's decimal strings), no subscriber;
* ``book+risk``: what the exchange does per order: ``RiskManager.check_and_reserve_positional`` (as
  ``place_plain`` calls it) with the arguments ``manticore_matching.commands.risk_args`` makes of the
  record (its decimal strings; ``--numbers decimal``: Decimals made of them, as before session 14),
  then the same ``add_order``,
  with ``risk.on_event`` subscribed to the book's events (``subscribe_all``, as the exchange does) so
  that every fill is settled from the events;
* ``book+events``: the book with a no-op handler subscribed to every event type: what building the
  event payloads costs the book whoever listens (the exchange always has a subscriber: its command
  capture), to read how much of ``book+risk - book`` is the events and how much risk itself.

Risk per order is ``book+risk - book``: everything risk adds to the book alone, the payloads the book
builds for its subscriber included; *risk's own code* is ``book+risk - book+events``, what the exchange
pays for risk (its command capture makes the book build every payload anyway). The target of issue 17
is risk per order < book per order; the report says PASS or FAIL for risk's own code.
``--subscribe needed`` subscribes risk (and the no-op handler) to ``RiskManager.EVENT_TYPES`` only.

The stream (seeded): a market like the default BTC/USD (tick 0.01, lot 0.00001, fees 0.001 / 0.002) and
the server's default limits (10% band, 500 open orders, 100 orders/s per user); 50 funded users; a
prefill of resting orders around 10,000.00, then limit orders, GTC: about 60% rest near the top of their
side and 40% are priced through the best opposite price by 1-25 ticks, trade against one or more resting
orders, and rest what they do not fill; the clock advances 2 ms per order. Every variant must end with
the same book (live orders, trades) and risk must approve every order, or the run fails.

``--instructions`` counts, for ``book`` and ``book+risk``, the instructions of a child process with and
without the timed orders under ``valgrind --tool=callgrind`` and divides the difference by the number of
orders: a figure the machine's noise does not move (a few parts in a million), though not a time.

Risk's source: by default the ``manticore_risk`` of this checkout's ``src/`` is loaded on top of the
interpreter's compiled book (the compiled venv's installed copy of risk is only rebuilt with the book),
unless the interpreter's own ``manticore_risk`` is compiled (mypyc), which is then measured as built.
``--risk installed`` / ``--risk src`` choose explicitly.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

SYMBOL = "BTC/USD"
BASE, QUOTE = "BTC", "USD"
#: The default BTC/USD market of manticore_matching.config.DEFAULT_MARKETS.
TICK, LOT, MAKER_FEE, TAKER_FEE = "0.01", "0.00001", "0.001", "0.002"
#: manticore_matching.config.DEFAULT_RISK_LIMITS.
LIMITS = {"price_band": "0.10", "max_open_orders": 500, "rate_limit_orders": 100, "rate_limit_window": 1.0}
USERS = 50
MID = 1_000_000  # ticks: 10,000.00
START = 1_000.0
STEP = 0.002  # seconds per order
VARIANTS = ("book", "book+risk", "book+events")

#: One order of the stream: (order_id, user_id, side, price, quantity) with decimal strings.
Order = tuple[str, str, str, str, str]


def make_stream(seed: int, prefill: int, orders: int) -> tuple[list[Order], list[Order]]:
    """``(prefill, orders)``: resting orders around the mid, then the timed mix (see the docstring)."""
    rng = random.Random(seed)

    def price(ticks: int) -> str:
        return f"{ticks // 100}.{ticks % 100:02d}"

    def quantity(lots: int) -> str:
        return f"{lots // 100_000}.{lots % 100_000:05d}"

    def resting(i: int) -> Order:
        side = rng.choice(("buy", "sell"))
        away = rng.randint(1, 60)
        ticks = MID - away if side == "buy" else MID + away
        return (f"o{i}", f"u{rng.randrange(USERS)}", side, price(ticks), quantity(rng.randint(100, 50_000)))

    pre = [resting(i) for i in range(prefill)]
    ops: list[Order] = []
    for i in range(prefill, prefill + orders):
        if rng.random() < 0.6:
            ops.append(resting(i))
        else:
            side = rng.choice(("buy", "sell"))
            through = rng.randint(1, 25)
            ticks = MID + through if side == "buy" else MID - through
            lots = rng.randint(100, 80_000)
            ops.append((f"o{i}", f"u{rng.randrange(USERS)}", side, price(ticks), quantity(lots)))
    return pre, ops


# ---------------------------------------------------------------------- the child: one variant, one run


def _load(risk_source: str) -> tuple[Any, Any, Any]:
    """(OrderBook, RiskManager, RiskLimits), risk from ``src/`` (or the directory ``--src`` names) or as
    installed (see the docstring)."""
    import manticore_orderbook

    if risk_source != "installed":
        sys.path.insert(0, str(SRC) if risk_source == "src" else risk_source)
        for name in [m for m in sys.modules if m == "manticore_risk" or m.startswith("manticore_risk.")]:
            del sys.modules[name]
    import manticore_risk

    return manticore_orderbook.OrderBook, manticore_risk.RiskManager, manticore_risk.RiskLimits


def _build(variant: str, risk_source: str, subscribe: str = "all") -> tuple[Any, Any, list[float]]:
    """A fresh book, the risk manager of ``variant`` (users funded) or None, and the book's clock cell.
    ``subscribe``: ``all`` (``subscribe_all``, as the exchange does) or ``needed`` (the handler on
    ``RiskManager.EVENT_TYPES`` only)."""
    OrderBook, RiskManager, RiskLimits = _load(risk_source)
    from manticore_orderbook import EventType

    types = list(EventType) if subscribe == "all" else list(RiskManager.EVENT_TYPES)

    def wire(handler: Any) -> None:
        for event_type in types:
            book.event_manager.subscribe(event_type, handler)

    clock = [START]
    book = OrderBook(
        SYMBOL,
        maker_fee_rate=MAKER_FEE,
        taker_fee_rate=TAKER_FEE,
        tick_size=TICK,
        lot_size=LOT,
        number_format="str",
        clock=lambda: clock[0],
        order_id_prefix="BTCUSD-",
    )
    risk = None
    if variant == "book+risk":
        limits = RiskLimits(
            price_band=Decimal(LIMITS["price_band"]),
            max_open_orders=LIMITS["max_open_orders"],
            rate_limit_orders=LIMITS["rate_limit_orders"],
            rate_limit_window=LIMITS["rate_limit_window"],
        )
        risk = RiskManager(limits=limits)
        wire(risk.on_event)
        risk.register_market(symbol=SYMBOL, base_asset=BASE, quote_asset=QUOTE, book=book)
        for u in range(USERS):
            risk.deposit(f"u{u}", QUOTE, "1000000000")
            risk.deposit(f"u{u}", BASE, "100000")
    elif variant == "book+events":
        wire(lambda _t, _d: None)
    return book, risk, clock


def run_child(
    variant: str,
    risk_source: str,
    subscribe: str,
    seed: int,
    prefill: int,
    orders: int,
    timed: bool,
    numbers: str = "str",
) -> None:
    """Run one variant and print one JSON line: seconds (wall and CPU) of the timed orders, the book's
    final counts and risk's rejections."""
    pre, ops = make_stream(seed, prefill, orders)
    book, risk, clock = _build(variant, risk_source, subscribe)
    add = book.add_order

    def place_book(o: Order) -> None:
        # apply.place_plain's call: positional, the order type None (the book's fast path infers it).
        add(o[2], o[3], o[4], o[0], "GTC", None, o[1], None, None, None, False, None, None, None)

    rejected = 0
    if risk is not None:
        check = risk.check_and_reserve_positional  # as manticore_matching.apply calls it
        as_decimal = numbers == "decimal"

        def place(o: Order) -> None:
            nonlocal rejected
            decision = check(
                o[0],
                o[1],
                SYMBOL,
                o[2],
                "limit",
                Decimal(o[3]) if as_decimal else o[3],
                Decimal(o[4]) if as_decimal else o[4],
                None,
                clock[0],
                "GTC",
                None,
            )
            if not decision["approved"]:
                rejected += 1
                return
            # place_book's call written out, so both variants have one benchmark frame per order and
            # book+risk - book is risk's calls only.
            add(o[2], o[3], o[4], o[0], "GTC", None, o[1], None, None, None, False, None, None, None)
    else:
        place = place_book

    for o in pre:
        place(o)
    gc.collect()
    wall = cpu = 0.0
    if timed:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for o in ops:
            clock[0] += STEP
            place(o)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    result = {
        "variant": variant,
        "wall": wall,
        "cpu": cpu,
        "live": len(book),
        "trades": book.counters()[1],
        "rejected": rejected,
    }
    if risk is not None:
        risk.check_invariants()
    print(json.dumps(result))


# ---------------------------------------------------------------------- the parent


def _child_command(
    python: str, args: argparse.Namespace, variant: str, timed: bool, risk: str | None = None
) -> list[str]:
    return [
        python,
        "-m",
        "benchmarks.risk",
        "--child",
        variant,
        "--risk",
        args.risk if risk is None else risk,
        "--subscribe",
        args.subscribe,
        "--seed",
        str(args.seed),
        "--prefill",
        str(args.prefill),
        "--orders",
        str(args.orders),
        "--numbers",
        args.numbers,
        *([] if timed else ["--untimed"]),
    ]


#: Children hash strings with a fixed seed: dict layouts, hence instruction counts, repeat exactly.
_ENV = {**os.environ, "PYTHONHASHSEED": "0"}


def _run(command: list[str]) -> dict[str, Any]:
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=_ENV, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


_TOTAL = re.compile(r"(?:Collected|I\s+refs):\s*([\d,]+)")


def _instructions(command: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", *command],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=_ENV,
            check=False,
        )
    found = _TOTAL.findall(out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"valgrind run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


def _resolve_risk(python: str, requested: str) -> str:
    if requested != "auto":
        return requested
    probe = "import manticore_risk as r; print(bool(getattr(r, 'COMPILED', False)))"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    return "installed" if out.stdout.strip() == "True" else "src"


def _own_ratio(
    samples: dict[str, dict[str, list[float]]], base: dict[str, dict[str, list[float]]], clock: str
) -> tuple[float, float, float]:
    """Risk's own code (median of book+risk minus median of book+events) of ``samples`` over that of
    ``base``, and a 95% bootstrap interval of the ratio (repeats resampled together, seeded)."""

    def own(of: dict[str, dict[str, list[float]]], picks: list[int]) -> float:
        with_risk, events = of["book+risk"][clock], of["book+events"][clock]
        return statistics.median(with_risk[i] for i in picks) - statistics.median(events[i] for i in picks)

    n = len(samples["book"][clock])
    everything = list(range(n))
    rng = random.Random(0)
    ratios = []
    for _ in range(2000):
        picks = [rng.randrange(n) for _ in range(n)]
        ratios.append(own(samples, picks) / own(base, picks))
    ratios.sort()
    return own(samples, everything) / own(base, everything), ratios[49], ratios[1949]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=str(ROOT / ".venv-compiled" / "bin" / "python"))
    parser.add_argument("--orders", type=int, default=20_000, help="timed orders per run (default 20,000)")
    parser.add_argument("--prefill", type=int, default=2_000, help="resting orders before timing")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default 5)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--risk",
        default="auto",
        help="auto (default), src, installed, or a directory holding a manticore_risk package to measure "
        "(e.g. an older src/ exported with git archive, for a before/after)",
    )
    parser.add_argument(
        "--subscribe",
        choices=("all", "needed"),
        default="all",
        help="all: risk (and the no-op handler of book+events) on every event type, as the exchange "
        "subscribes (default); needed: on RiskManager.EVENT_TYPES only",
    )
    parser.add_argument(
        "--numbers",
        choices=("str", "decimal"),
        default="str",
        help="price and quantity as check_and_reserve gets them: str (the record's decimal strings, as "
        "manticore_matching.commands.risk_args passes them; default) or decimal (Decimals made of them, "
        "as risk_args did before session 14)",
    )
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--no-wall", action="store_true", help="skip the wall-clock repeats")
    parser.add_argument(
        "--count",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="the variants --instructions counts (default: all three)",
    )
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="another interpreter (e.g. a compiled venv of main) whose children run interleaved with "
        "--python's in every wall-clock repeat (each variant of one, then of the other, the order "
        "alternating): the report adds its medians and the ratio of risk's own code, this build over the "
        "baseline, with a bootstrap 95%% interval over the repeats (use many repeats: the machine's noise "
        "on a difference of two medians is large)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--untimed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(
            args.child,
            args.risk,
            args.subscribe,
            args.seed,
            args.prefill,
            args.orders,
            not args.untimed,
            args.numbers,
        )
        return 0
    python = args.python
    args.risk = _resolve_risk(python, args.risk)
    print(
        f"interpreter {python}; risk from {args.risk}; subscribed to {args.subscribe} event types; "
        f"prices and quantities as {args.numbers}; {args.orders:,} orders after {args.prefill:,}"
    )
    report: dict[str, Any] = {
        "python": python,
        "risk": args.risk,
        "orders": args.orders,
        "numbers": args.numbers,
    }
    finals: dict[str, tuple[int, int]] = {}
    if not args.no_wall:
        samples: dict[str, dict[str, list[float]]] = {v: {"wall": [], "cpu": []} for v in VARIANTS}
        base: dict[str, dict[str, list[float]]] = {v: {"wall": [], "cpu": []} for v in VARIANTS}
        runs: list[tuple[str, str, dict[str, dict[str, list[float]]]]] = [(python, args.risk, samples)]
        if args.baseline:
            runs.append((args.baseline, _resolve_risk(args.baseline, "auto"), base))
        for repeat in range(args.repeats):
            order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                for interpreter, risk_source, into in runs if repeat % 2 == 0 else runs[::-1]:
                    result = _run(_child_command(interpreter, args, variant, timed=True, risk=risk_source))
                    if result["rejected"]:
                        raise SystemExit(f"risk rejected {result['rejected']} orders: the stream must pass")
                    finals.setdefault(variant, (result["live"], result["trades"]))
                    into[variant]["wall"].append(result["wall"] / args.orders * 1e6)
                    into[variant]["cpu"].append(result["cpu"] / args.orders * 1e6)
        if len(set(finals.values())) != 1:
            raise SystemExit(f"the variants ended with different books: {finals}")
        live, trades = next(iter(finals.values()))
        print(f"final book: {live:,} live orders, {trades:,} trades in all")
        print(f"\nµs per order, median of {args.repeats} interleaved repeats (min-max):")
        med: dict[str, dict[str, float]] = {}
        for variant in VARIANTS:
            med[variant] = {}
            cells = []
            for clock in ("wall", "cpu"):
                values = samples[variant][clock]
                med[variant][clock] = statistics.median(values)
                cells.append(f"{clock} {med[variant][clock]:7.2f} ({min(values):.2f}-{max(values):.2f})")
            print(f"  {variant:12s} " + "   ".join(cells))
        for clock in ("wall", "cpu"):
            book = med["book"][clock]
            risk = med["book+risk"][clock] - book
            events = med["book+events"][clock] - book
            own = risk - events
            print(
                f"  {clock}: risk {risk:.2f} µs/order = {risk / book:.2f}x the book's {book:.2f}: the "
                f"book's event payloads {events:.2f}, risk's own code {own:.2f} = {own / book:.2f}x the "
                f"book ({'PASS' if own < book else 'FAIL'}: risk's own < book)"
            )
        report["wall"] = {v: samples[v] for v in VARIANTS}
        report["median_us"] = med
        if args.baseline:
            print(f"\nbaseline {args.baseline}, interleaved with the above:")
            for clock in ("wall", "cpu"):
                own, low, high = _own_ratio(samples, base, clock)
                book = statistics.median(base["book"][clock])
                base_own = statistics.median(base["book+risk"][clock]) - statistics.median(
                    base["book+events"][clock]
                )
                print(
                    f"  {clock}: baseline book {book:.2f}, risk's own code {base_own:.2f} µs/order = "
                    f"{base_own / book:.2f}x its book; this build's own / the baseline's: {own:.3f} "
                    f"(95% bootstrap {low:.3f}-{high:.3f})"
                )
            report["baseline"] = {"python": args.baseline, "wall": base}
    if args.instructions:
        if shutil.which("valgrind") is None:
            print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
            return 2
        counts: dict[str, float] = {}
        for variant in args.count:
            with_ops = _instructions(_child_command(python, args, variant, timed=True))
            without = _instructions(_child_command(python, args, variant, timed=False))
            counts[variant] = (with_ops - without) / args.orders
        print("\ninstructions per order (valgrind):")
        for variant, value in counts.items():
            print(f"  {variant:12s} {value:12,.0f}")
        if "book" in counts and "book+risk" in counts:
            book = counts["book"]
            risk = counts["book+risk"] - book
            line = f"  risk {risk:,.0f} = {risk / book:.2f}x the book's {book:,.0f}"
            if "book+events" in counts:
                events = counts["book+events"] - book
                own = risk - events
                line += (
                    f"; the book's event payloads {events:,.0f}, risk's own code {own:,.0f} = "
                    f"{own / book:.2f}x the book ({'PASS' if own < book else 'FAIL'}: risk's own < book)"
                )
            print(line)
        report["instructions"] = counts
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
