"""The write-behind writer in its own process (``writer="process"``, the default for a SQLite file).

Checked here: which writer a StorageManager picks; that ``flush()``, ``get_pending_write_count()`` and
``make_durable()`` wait for the child's commits; that the child holds no ownership lock and a second
claim is still refused; that a unit that cannot be written is recorded by the child as by the thread;
that a killed child is noticed (an ERROR in the log), replaced, and its batch written again; and that
``kill -9`` of a serving process with units in flight takes its writer process with it, while a
restart recovers every acknowledged command from the journal.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from manticore_orderbook import EventType
from manticore_storage import StorageManager, schema
from manticore_storage import process as process_module
from manticore_storage.apply import Unit
from manticore_storage.owner import DatabaseInUse
from manticore_storage.process import WriterProcess
from tests.command_streams import new_book
from tests.matching.exchange_streams import Clock, new_exchange

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the writer process needs POSIX")


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'manticore.db'}"


def _process(storage: StorageManager) -> WriterProcess:
    process = storage._process
    assert process is not None
    return process


def _stored_orders(url: str) -> int:
    """Orders committed in the database, read on an engine of its own."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(schema.orders)).scalar_one())
    finally:
        engine.dispose()


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (no longer exists, or is a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_the_writer_is_chosen_by_argument_then_environment_then_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANTICORE_STORAGE_WRITER", raising=False)
    monkeypatch.setattr(process_module, "usable_cores", lambda: 2)
    cases = [
        (_url(tmp_path), None, "process"),
        ("sqlite://", None, "thread"),  # in memory: another process cannot see it
        (f"sqlite:///{tmp_path / 'b.db'}", "thread", "thread"),
        ("sqlite://", "process", "process"),
    ]
    for url, writer, expected in cases:
        storage = StorageManager(url, writer=writer)
        try:
            assert storage.writer_kind == expected, (url, writer)
        finally:
            storage.close()
    monkeypatch.setenv("MANTICORE_STORAGE_WRITER", "thread")
    storage = StorageManager(_url(tmp_path))
    assert storage.writer_kind == "thread"
    storage.close()
    storage = StorageManager(_url(tmp_path), writer="process")  # the argument wins
    assert storage.writer_kind == "process"
    storage.close()
    monkeypatch.setenv("MANTICORE_STORAGE_WRITER", "elsewhere")
    with pytest.raises(Exception, match="MANTICORE_STORAGE_WRITER must be one of"):
        StorageManager(_url(tmp_path))


def test_auto_keeps_the_thread_on_a_single_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With one usable CPU (a pinned server) a writer process would only add the hand-off: auto keeps
    the thread; asked for explicitly, the process still runs."""
    monkeypatch.delenv("MANTICORE_STORAGE_WRITER", raising=False)
    monkeypatch.setattr(process_module, "usable_cores", lambda: 1)
    for writer, expected in ((None, "thread"), ("process", "process")):
        storage = StorageManager(_url(tmp_path), writer=writer)
        try:
            assert storage.writer_kind == expected
        finally:
            storage.close()


def test_usable_cores_follows_the_affinity_mask() -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity mask on this platform")
    script = "from manticore_storage.process import usable_cores; print(usable_cores())"
    pinned = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert pinned.stdout.strip() == "1"
    assert process_module.usable_cores() == len(os.sched_getaffinity(0))


def test_flush_pending_count_and_make_durable_wait_for_the_child(tmp_path: Path) -> None:
    url = _url(tmp_path)
    storage = StorageManager(url, writer="process", gather_delay=60.0)
    try:
        book = new_book()
        storage.attach(book)
        storage.flush(30)  # the market row, no units yet
        for index in range(50):
            book.add_order("buy", str(90 + index % 7), "1", order_id=f"o{index}")
        # Gathering for a minute: nothing is written, everything is pending.
        assert storage.get_pending_write_count() >= 50
        assert _stored_orders(url) == 0
        assert storage.flush(30)
        assert storage.get_pending_write_count() == 0
        assert _stored_orders(url) == 50  # committed before flush returned, seen from elsewhere
        assert storage.make_durable(30)
        assert storage.reconcile(book).ok
        process = _process(storage)
        assert process.pid is not None and process.pid != os.getpid()
        assert process.cpu_seconds > 0
        pid = process.pid
    finally:
        assert storage.close()
    assert _gone(pid)


def test_the_child_holds_no_ownership_lock_and_a_second_claim_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    storage = StorageManager(url, writer="process")
    try:
        storage.claim_ownership()
        book = new_book()
        storage.attach(book)
        book.add_order("buy", "99", "1", order_id="a")
        assert storage.flush(30)
        pid = _process(storage).pid
        assert pid is not None
        descriptors = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert not [target for target in descriptors if target.endswith(".owner")], descriptors
        other = StorageManager(url)
        try:
            with pytest.raises(DatabaseInUse):
                other.claim_ownership()
        finally:
            other.close()
    finally:
        storage.close()
    again = StorageManager(url)  # released with the serving process's close, not held by the child
    again.claim_ownership()
    again.close()


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_a_unit_that_cannot_be_written_is_recorded_the_same_way(tmp_path: Path, writer: str) -> None:
    storage = StorageManager(_url(tmp_path), writer=writer)
    try:
        book = new_book()
        storage.attach(book)
        book.add_order("buy", "99", "1", order_id="a")
        bad = {"symbol": book.symbol, "order_id": "bad", "side": "buy", "price": "abc", "quantity": "1"}
        storage.submit(tuple(Unit(book.symbol, [(EventType.ORDER_ADDED, {**bad, "sequence": 99})], 99)))
        book.add_order("buy", "98", "1", order_id="c")
        assert storage.flush(30)
        failed = storage.get_failed_events()
        assert [(f["event_type"], f["payload"]["order_id"]) for f in failed] == [("order_added", "bad")]
        assert "abc" in failed[0]["error"]
        assert storage.get_order("bad") is None and storage.get_order("c") is not None
        assert storage.reconcile(book).ok
    finally:
        storage.close()


def test_a_killed_writer_process_is_noticed_replaced_and_nothing_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = StorageManager(_url(tmp_path), writer="process", gather_delay=0.01)
    try:
        book = new_book()
        storage.attach(book)
        for index in range(20):
            book.add_order("buy", str(90 + index % 5), "1", order_id=f"a{index}")
        assert storage.flush(30)
        process = _process(storage)
        first = process.pid
        assert first is not None
        child = process._child
        assert child is not None
        os.kill(first, signal.SIGKILL)
        child.wait(10)
        with caplog.at_level(logging.ERROR, logger="manticore_storage.process"):
            for index in range(20):
                book.add_order("sell", str(100 + index % 5), "1", order_id=f"b{index}")
            assert storage.flush(30)
        assert process.deaths == 1 and process.starts == 2
        assert process.pid not in (None, first)
        messages = [record.getMessage() for record in caplog.records]
        assert any("DIED" in message and "SIGKILL" in message for message in messages), messages
        assert storage.get_pending_write_count() == 0
        assert storage.reconcile(book).ok
        assert storage.get_failed_events() == []
    finally:
        storage.close()


_SERVER = """
import os, sys, time
sys.path.insert(0, {root!r})
from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange
clock = Clock()
exchange = new_exchange({data_dir!r}, clock)
exchange.open()
shown = False
for command in make_stream(7, 4000):
    position = apply(exchange, clock, command)
    if position is None:
        continue
    assert exchange.wait_durable(position, 30)
    process = exchange.storage._process
    if not shown and process is not None and process.pid is not None:
        os.write(1, f"writer {{process.pid}}\\n".encode())
        shown = True
    os.write(1, f"ack {{position}}\\n".encode())
    time.sleep(0.001)  # a steady stream, so that the kill finds units queued and a batch in flight
os.write(1, b"done\\n")
time.sleep(600)
"""


def test_kill_9_of_the_server_takes_the_writer_and_a_restart_recovers_every_acknowledged_command(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = {key: value for key, value in os.environ.items() if key != "MANTICORE_STORAGE_WRITER"}
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER.format(root=str(ROOT), data_dir=str(data_dir))],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env=env,
    )
    writer_pid = None
    acked = 0
    acks = 0
    assert server.stdout is not None
    try:
        deadline = time.monotonic() + 120
        while acks < 600 or writer_pid is None:
            assert time.monotonic() < deadline, "the server did not get going"
            line = server.stdout.readline().decode()
            assert line and line != "done\n", f"the server stopped early: {line!r}"
            word, value = line.split()
            if word == "writer":
                writer_pid = int(value)
            else:
                acked, acks = int(value), acks + 1
        os.kill(server.pid, signal.SIGKILL)  # units are queued and in flight: the writer gathers 0.1 s
        server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    deadline = time.monotonic() + 30
    while not _gone(writer_pid):
        assert time.monotonic() < deadline, f"the writer process {writer_pid} outlived its server"
        time.sleep(0.05)
    exchange = new_exchange(data_dir, Clock())
    exchange.open()
    try:
        storage = exchange.storage
        assert storage is not None
        assert storage.flush(60)
        position, _ = storage.journal_position()
        assert position >= acked  # storage holds every acknowledged command
        for symbol in exchange.markets:
            report = storage.reconcile(exchange.book(symbol))
            assert report.ok, report
        assert storage.get_failed_events() == []
    finally:
        exchange.close()


def test_the_writer_process_on_every_backend(storage_url: str) -> None:
    """PostgreSQL and MySQL/MariaDB keep the thread under ``auto`` but run the process when asked."""
    expected = "process" if storage_url.startswith("sqlite") else "thread"
    probe = StorageManager(storage_url)
    assert probe.writer_kind == expected or os.environ.get("MANTICORE_STORAGE_WRITER")
    probe.close()
    storage = StorageManager(storage_url, writer="process", gather_delay=0.01)
    try:
        book = new_book()
        storage.attach(book)
        for index in range(30):
            book.add_order("buy", str(90 + index % 5), "1", order_id=f"a{index}")
            book.add_order("sell", str(92 + index % 5), "1", order_id=f"b{index}")
        assert storage.flush(30) and storage.make_durable(30)
        process = _process(storage)
        child = process._child
        assert child is not None
        child.kill()
        child.wait(10)
        book.add_order("buy", "93", "5", order_id="c")
        assert storage.flush(30)
        assert process.deaths == 1
        assert storage.reconcile(book).ok
        assert storage.get_failed_events() == []
    finally:
        storage.close()


def test_a_writer_process_that_cannot_start_is_retried_not_recorded_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting the child fails (here: no interpreter at sys.executable): a transient error, so the
    batch waits and is written once a child starts; no event is recorded as failed."""
    storage = StorageManager(_url(tmp_path), writer="process", gather_delay=0.01)
    try:
        book = new_book()
        storage.attach(book)
        real = sys.executable
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
        book.add_order("buy", "99", "1", order_id="a")
        assert not storage.flush(0.5)
        process = _process(storage)
        assert process.starts == 0
        monkeypatch.setattr(sys, "executable", real)
        assert storage.flush(30)
        assert process.starts == 1
        assert storage.get_failed_events() == []
        assert storage.reconcile(book).ok
        assert storage._writer is not None and storage._writer.retries >= 1
    finally:
        storage.close()
