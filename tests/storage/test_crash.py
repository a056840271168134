"""Crash tests: a child process runs a random command stream with storage attached and is SIGKILLed.

The contract checked (the storage issue's crash requirement), after ``StorageManager.restore`` into a
fresh book:

* ``sync`` mode: every acknowledged command (its book call returned) is in storage. The restored book
  equals the child's book after its last acknowledged command, or after the next one (committed, then
  killed before it could say so): its ``export_state()`` (live orders with exact priority, sequence,
  trade and generated-id numbering, last trade price) is that book's.
* ``write_behind`` mode: the restored book equals the child's book after *some* prefix of its commands,
  never beyond the command in progress at the kill. The tables are never torn: every stored trade's
  maker and taker orders are stored, every stored order's filled quantity is the sum of its stored
  trades, the stored trades and orders are exactly those of that prefix, and the market row's sequence
  is the prefix's.

The sync-mode runs are checked for the same absence of torn state. The parent never reads the child's
book: it replays the same stream on a fresh book in-process (book and clock are deterministic), and
the child's acknowledgement lines carry a digest of its state after each command, which the replay
must reproduce, so "the child's book" is known exactly.

Runs are planned from a master seed: ``MANTICORE_CRASH_SEED`` if set, a fixed one under CI, else a
fresh one; every failure message names it. The kill moment itself depends on timing.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from manticore_orderbook import EventType
from manticore_storage import StorageError, StorageManager, schema
from manticore_storage.persister import Mode
from tests.command_streams import Clock, apply, make_stream, new_book

ROOT = Path(__file__).resolve().parents[2]
#: Events that (re)write a whole order row; an order is stored once one of them is committed.
ORDER_STATE_EVENTS = (
    EventType.ORDER_ADDED,
    EventType.ORDER_MODIFIED,
    EventType.ORDER_CANCELLED,
    EventType.ORDER_EXPIRED,
    EventType.ORDER_TRIGGERED,
)
#: Seconds to wait for the child to start (imports, schema) and then for each acknowledgement.
STARTUP_TIMEOUT = 60.0
#: Write-behind units the child may run ahead of its storage writer (see :func:`child_main`).
WRITE_BEHIND_LAG = 100
ACK_TIMEOUT = 30.0


def _master_seed() -> int:
    """``MANTICORE_CRASH_SEED``, else a fixed seed under CI, else a fresh random one."""
    env = os.environ.get("MANTICORE_CRASH_SEED")
    if env:
        return int(env)
    if os.environ.get("CI"):
        return 20240601
    return random.SystemRandom().randrange(2**32)


MASTER_SEED = _master_seed()


def state_digest(state: dict[str, Any]) -> str:
    """A short digest of an ``export_state()`` dict (canonical JSON): equal states, equal digests."""
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


# ---------------------------------------------------------------------------------------------- the child


def child_main(argv: list[str]) -> None:
    """The process that crashes. Arguments: ``URL SYMBOL MODE SEED LENGTH``.

    Attaches storage to a fresh deterministic book and prints ``ready``; then runs
    ``make_stream(SEED, LENGTH)`` and, after each command returns, prints ``INDEX SEQUENCE DIGEST``
    in a single unbuffered write, so every line the parent reads is an acknowledged command. After
    the last command it prints ``done`` and sleeps until it is killed; it never closes storage (a
    clean exit would flush the write-behind queue and defeat the crash).
    """
    url, symbol, mode, seed, length = argv
    clock = Clock()
    book = new_book(symbol, clock=clock)
    # Write-behind batches gather for 2 ms, not the default 100 ms: the child runs its whole stream in a
    # fraction of a second on a quiet machine, and with the default most kills came before the first
    # commit, leaving nothing to check (every run restored the empty prefix).
    storage = StorageManager(url, gather_delay=0.002)
    storage.attach(book, mode=cast(Mode, mode))
    out = sys.stdout.fileno()
    os.write(out, b"ready\n")
    for index, command in enumerate(make_stream(int(seed), int(length))):
        if mode == "write_behind":
            # Stay at most WRITE_BEHIND_LAG units ahead of the writer: on a fast machine the whole
            # stream otherwise ran before the first commit and every kill restored the empty prefix
            # (seen in CI). The kill still lands with up to that many units queued, uncommitted.
            while storage.get_pending_write_count() > WRITE_BEHIND_LAG:
                time.sleep(0.0005)
        apply(book, clock, command)
        os.write(out, f"{index} {book.sequence} {state_digest(book.export_state())}\n".encode())
    os.write(out, b"done\n")
    while True:
        time.sleep(60)


# ---------------------------------------------------------------------------------------------- the parent


@dataclass(frozen=True)
class Plan:
    """One crash run: the stream, and when to kill (after ``kill_after`` acks, then ``delay`` seconds)."""

    run: int
    symbol: str
    seed: int
    length: int
    kill_after: int
    delay: float


@dataclass(frozen=True)
class Ack:
    """One acknowledgement line: command ``index`` returned, leaving ``sequence`` and a state ``digest``."""

    index: int
    sequence: int
    digest: str


@dataclass
class Crash:
    """What the parent saw of a killed child: its acknowledgements, whether it finished the stream."""

    acks: list[Ack]
    done: bool

    @property
    def last_acked(self) -> int:
        """Index of the last acknowledged command (-1 for none)."""
        return self.acks[-1].index if self.acks else -1


def _application_name(plan: Plan) -> str:
    return f"manticore-crash {plan.symbol}"


def child_url(url: str, plan: Plan) -> str:
    """The child's database URL: on PostgreSQL its connections carry an application name of the run."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    named = parsed.update_query_dict({"application_name": _application_name(plan)})
    return named.render_as_string(hide_password=False)


_MYSQL_SESSIONS = text(
    "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
)


def sessions_before_child(url: str) -> set[int] | None:
    """On MariaDB/MySQL, the sessions on the database before the child starts (None elsewhere).

    MariaDB shows no application name without the performance schema, so the child's sessions are
    the ones that were not there before it.
    """
    if make_url(url).get_backend_name() not in ("mysql", "mariadb"):
        return None
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(_MYSQL_SESSIONS).scalars())
    finally:
        engine.dispose()


def wait_for_disconnect(url: str, plan: Plan, before: set[int] | None = None) -> None:
    """Wait until the server (PostgreSQL, MariaDB/MySQL) has ended the killed child's sessions.

    A COMMIT the child sent just before it died is still applied by its server process, which only
    notices the closed connection afterwards; until those processes are gone, a restore could race it
    (and read the market row and the orders from different commits). SQLite needs no wait: a killed
    process commits nothing more. ``before`` is :func:`sessions_before_child`'s answer.
    """
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
        params = {"name": _application_name(plan)}
    elif backend in ("mysql", "mariadb"):
        assert before is not None
        query, params = _MYSQL_SESSIONS, {}
    else:
        return
    engine = create_engine(url)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        with engine.connect() as connection:
            while True:
                found = connection.execute(query, params)
                lingering = found.scalar_one() if before is None else set(found.scalars()) - before
                if not lingering:
                    break
                assert time.monotonic() < deadline, f"the killed child's sessions linger: {plan}"
                connection.rollback()  # a fresh snapshot of pg_stat_activity
                time.sleep(0.01)
    finally:
        engine.dispose()


def run_child(url: str, mode: Mode, plan: Plan, workdir: Path) -> Crash:
    """Start the child, wait for ``plan.kill_after`` acks (or ``done``) and ``plan.delay``, SIGKILL it.

    Returns every acknowledgement the child wrote before it died (the pipe keeps what was written).
    Fails if the child does not start, stalls, or dies by itself.
    """
    err_path = workdir / f"child-{mode}-{plan.run}.stderr"
    module = "tests.storage.test_crash"
    args = [child_url(url, plan), plan.symbol, mode, str(plan.seed), str(plan.length)]
    before = sessions_before_child(url)
    with open(err_path, "wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=err
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            lines.put(raw.decode())
        lines.put(None)

    reader = threading.Thread(target=pump, name="crash-child-reader", daemon=True)
    reader.start()
    received: list[str | None] = []
    stalled: str | None = None
    try:
        received.append(lines.get(timeout=STARTUP_TIMEOUT))
        acks = 0
        while acks < plan.kill_after and received[-1] not in (None, "done\n"):
            received.append(lines.get(timeout=ACK_TIMEOUT))
            acks += 1
        if received[-1] is not None:
            time.sleep(plan.delay)
    except queue.Empty:
        stalled = f"child stalled after {len(received)} lines"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        reader.join(10.0)
        wait_for_disconnect(url, plan, before)
    while True:
        try:
            received.append(lines.get_nowait())
        except queue.Empty:
            break
    stderr = err_path.read_text(errors="replace")
    where = f"{mode} run {plan} (MANTICORE_CRASH_SEED={MASTER_SEED}); child stderr:\n{stderr}"
    assert stalled is None, f"{stalled}: {where}"
    assert child.returncode == -signal.SIGKILL, f"child exited by itself ({child.returncode}): {where}"
    text = [line for line in received if line is not None]
    assert text and text[0] == "ready\n", f"child did not start: {text[:3]} {where}"
    done = text[-1] == "done\n"
    body = text[1:-1] if done else text[1:]
    parsed = []
    for index, line in enumerate(body):
        fields = line.split()
        assert len(fields) == 3 and line.endswith("\n") and int(fields[0]) == index, f"bad ack {line!r}"
        parsed.append(Ack(index, int(fields[1]), fields[2]))
    return Crash(parsed, done)


@dataclass
class Reference:
    """The child's stream replayed in-process.

    ``states[k]`` is ``export_state()`` after the first ``k`` commands (``states[0]``: the empty book).
    ``trade_ids`` are the trades in execution order and ``trades_after[k]`` how many the first ``k``
    commands made; ``order_ids`` are the orders with a whole-order event in first-appearance order and
    ``orders_after[k]`` how many of them the first ``k`` commands introduced.
    """

    states: list[dict[str, Any]] = field(default_factory=list)
    trade_ids: list[str] = field(default_factory=list)
    trades_after: list[int] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)
    orders_after: list[int] = field(default_factory=list)


def replay(symbol: str, seed: int, commands: int) -> Reference:
    """Run the first ``commands`` commands of ``make_stream(seed, ...)`` as the child did."""
    reference = Reference()
    clock = Clock()
    book = new_book(symbol, clock=clock)
    seen: set[str] = set()

    def on_trade(_: EventType, data: dict[str, Any]) -> None:
        reference.trade_ids.append(data["trade_id"])

    def on_order(_: EventType, data: dict[str, Any]) -> None:
        if data["order_id"] not in seen:
            seen.add(data["order_id"])
            reference.order_ids.append(data["order_id"])

    book.event_manager.subscribe(EventType.TRADE_EXECUTED, on_trade)
    for event_type in ORDER_STATE_EVENTS:
        book.event_manager.subscribe(event_type, on_order)

    def record() -> None:
        reference.states.append(book.export_state())
        reference.trades_after.append(len(reference.trade_ids))
        reference.orders_after.append(len(reference.order_ids))

    record()
    for command in make_stream(seed, commands):
        apply(book, clock, command)
        record()
    return reference


@dataclass(frozen=True)
class Stored:
    """The tables' rows for one market after the crash."""

    market: dict[str, Any]
    orders: dict[str, dict[str, Any]]
    trades: list[dict[str, Any]]


def read_tables(storage: StorageManager, symbol: str) -> Stored:
    """The market row, the order rows by id and the trade rows of ``symbol``."""
    with storage.engine.connect() as connection:
        market = connection.execute(select(schema.markets).where(schema.markets.c.symbol == symbol))
        orders = connection.execute(select(schema.orders).where(schema.orders.c.symbol == symbol))
        trades = connection.execute(select(schema.trades).where(schema.trades.c.symbol == symbol))
        market_row = market.mappings().first()
        order_rows = {row["order_id"]: dict(row) for row in orders.mappings()}
        trade_rows = [dict(row) for row in trades.mappings()]
    assert market_row is not None, f"market {symbol} is not stored (attach stores it before the stream)"
    return Stored(dict(market_row), order_rows, trade_rows)


def check_not_torn(stored: Stored, sequence: int, where: str) -> None:
    """Storage-only invariants of a state made of whole commands.

    Every trade's maker and taker orders are stored; each stored order's ``filled_quantity`` is the sum
    of the quantities of the stored trades it took part in; the market row's ``last_sequence`` is the
    restored book's ``sequence`` and no order row is ahead of it.
    """
    assert stored.market["last_sequence"] == sequence, f"market sequence != restored sequence: {where}"
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for trade in stored.trades:
        for role in ("maker_order_id", "taker_order_id"):
            order_id = trade[role]
            missing = f"trade {trade['trade_id']} without its {role} {order_id}"
            assert order_id in stored.orders, f"{missing}: {where}"
            filled[order_id] += trade["quantity"]
    for order_id, row in stored.orders.items():
        assert row["filled_quantity"] == filled[order_id], (
            f"order {order_id} stored filled {row['filled_quantity']} but its stored trades make "
            f"{filled[order_id]}: {where}"
        )
        assert row["filled_quantity"] + row["remaining_quantity"] == row["quantity"], f"{order_id}: {where}"
        assert row["last_sequence"] <= sequence, f"order {order_id} is ahead of the market row: {where}"


def check_prefix(stored: Stored, reference: Reference, k: int, where: str) -> None:
    """The stored trades and orders are exactly those of the first ``k`` commands."""
    trades = {trade["trade_id"] for trade in stored.trades}
    expected_trades = set(reference.trade_ids[: reference.trades_after[k]])
    assert trades == expected_trades, (
        f"stored trades differ from the prefix's: extra {sorted(trades - expected_trades)[:5]}, "
        f"missing {sorted(expected_trades - trades)[:5]}: {where}"
    )
    orders = set(stored.orders)
    expected_orders = set(reference.order_ids[: reference.orders_after[k]])
    assert orders == expected_orders, (
        f"stored orders differ from the prefix's: extra {sorted(orders - expected_orders)[:5]}, "
        f"missing {sorted(expected_orders - orders)[:5]}: {where}"
    )


def describe_mismatch(restored: dict[str, Any], reference: Reference, legal: range) -> str:
    """Why ``restored`` is none of the legal states: the nearest state by sequence, and what differs."""
    beyond = [k for k, state in enumerate(reference.states) if state == restored]
    if beyond:
        outside = f"outside the legal {legal.start}..{legal.stop - 1}"
        return f"it is the state after {beyond[0]} commands, {outside}"
    nearest = min(legal, key=lambda k: abs(reference.states[k]["sequence"] - restored["sequence"]))
    state = reference.states[nearest]
    keys = [key for key in state if key != "orders" and state[key] != restored.get(key)]
    theirs = {o["order_id"]: o for o in state["orders"]}
    ours = {o["order_id"]: o for o in restored["orders"]}
    differing = [oid for oid in theirs.keys() | ours.keys() if theirs.get(oid) != ours.get(oid)]
    details = [(oid, theirs.get(oid), ours.get(oid)) for oid in sorted(differing)[:3]]
    order_note = "" if differing or restored["orders"] == state["orders"] else " (order of orders differs)"
    return (
        f"nearest legal state: after {nearest} commands; differing counters {keys} "
        f"({[(key, state[key], restored.get(key)) for key in keys]}), differing orders "
        f"{sorted(differing)[:10]}{order_note}; first (expected, restored): {details}"
    )


def crash_and_check(url: str, mode: Mode, plan: Plan, workdir: Path) -> int:
    """One run: crash the child, restore, check the contract of ``mode``; return the prefix restored."""
    crash = run_child(url, mode, plan, workdir)
    last = crash.last_acked
    # The command after the last ack may have run (and, in sync mode, been committed) unacknowledged.
    upto = min(last + 2, plan.length)
    reference = replay(plan.symbol, plan.seed, upto)
    where = (
        f"{mode} run {plan}, last ack {last}, done={crash.done} "
        f"(MANTICORE_CRASH_SEED={MASTER_SEED}, {url.split(':')[0]})"
    )
    for ack in crash.acks:  # the replay is the child's book, command by command
        state = reference.states[ack.index + 1]
        assert (ack.sequence, ack.digest) == (state["sequence"], state_digest(state)), (
            f"the replay diverges from the child at command {ack.index}: {where}"
        )

    legal = range(last + 1, upto + 1) if mode == "sync" else range(0, upto + 1)
    book = new_book(plan.symbol, clock=Clock())
    with StorageManager(url) as storage:
        try:
            storage.restore(book)
        except StorageError as exc:  # a torn state can make the stored orders impossible to load
            raise AssertionError(f"storage cannot be restored after the crash: {exc}; {where}") from exc
        restored = book.export_state()
        stored = read_tables(storage, plan.symbol)
    book.check_invariants()
    matches = [k for k in legal if reference.states[k] == restored]
    assert matches, (
        f"the restored book (sequence {restored['sequence']}, {len(restored['orders'])} orders) is not the "
        f"child's after any legal number of commands: {describe_mismatch(restored, reference, legal)}; "
        f"{where}"
    )
    check_not_torn(stored, restored["sequence"], where)
    # Equal states in a row differ only by commands without events, which store nothing.
    check_prefix(stored, reference, matches[-1], where)
    return matches[-1]


def plans(mode: Mode, runs: int, length: int, max_kill_after: int, max_delay: float) -> list[Plan]:
    """``runs`` crash plans for ``mode``, drawn from the master seed."""
    rng = random.Random(f"{MASTER_SEED}-{mode}")
    return [
        Plan(
            run=run,
            symbol=f"CRASH-{mode}-{run}/USD",
            seed=rng.randrange(10**9),
            length=length,
            kill_after=rng.randint(1, max_kill_after),
            delay=rng.uniform(0.0, max_delay),
        )
        for run in range(runs)
    ]


def test_sync_crash_keeps_every_acknowledged_command(storage_url: str, tmp_path: Path) -> None:
    """Sync mode: after SIGKILL, the restored book is the child's after its last ack (or the next)."""
    prefixes = [
        crash_and_check(storage_url, "sync", plan, tmp_path)
        for plan in plans("sync", runs=8, length=220, max_kill_after=180, max_delay=0.004)
    ]
    assert any(prefixes), f"no run restored anything (MANTICORE_CRASH_SEED={MASTER_SEED})"


def test_write_behind_crash_restores_a_whole_prefix(storage_url: str, tmp_path: Path) -> None:
    """Write-behind mode: after SIGKILL, storage holds a prefix of whole commands, never a torn state."""
    prefixes = [
        crash_and_check(storage_url, "write_behind", plan, tmp_path)
        for plan in plans("write_behind", runs=8, length=3000, max_kill_after=1500, max_delay=0.02)
    ]
    assert any(prefixes), f"no run restored a non-empty prefix (MANTICORE_CRASH_SEED={MASTER_SEED})"


if __name__ == "__main__":
    child_main(sys.argv[1:])
