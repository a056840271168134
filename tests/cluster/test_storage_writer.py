"""The storage writer follows a shard's log into the SQL read model (private nats-server; SQLite and,
when configured, PostgreSQL and MariaDB).

The reference is an embedded exchange (file journal, SQLite) that ran the same commands with the same
clock: the writer's tables must equal its tables (``updated_at`` aside), also after the writer was
killed with ``kill -9`` mid-stream and restarted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from manticore_cluster.natsconf import NatsOptions
from manticore_cluster.snapshots import SnapshotStore
from manticore_cluster.storage_writer import StorageWriter, StorageWriterOptions
from manticore_matching.journal import JournalClosed
from manticore_storage import StorageManager
from tests.cluster.helpers import js_exchange
from tests.matching.exchange_streams import Clock, apply, make_stream
from tests.matching.test_replay_storage import _reference, _tables, _url

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The rows :func:`_reference` compares; none of the writes may have failed."""
    storage = StorageManager(url)
    try:
        assert storage.get_failed_events(include_replayed=True) == []
        return _tables(storage)
    finally:
        storage.close()


def stored_position(url: str) -> int:
    storage = StorageManager(url)
    try:
        return storage.journal_position()[0]
    finally:
        storage.close()


def test_the_writer_keeps_the_rows_an_embedded_exchange_writes(
    tmp_path: Path, nats_options: NatsOptions, backend: str
) -> None:
    commands = make_stream(21, 400)
    expected = _reference(tmp_path, commands)
    url = _url(backend, tmp_path / "writer.db")
    writer = StorageWriter(StorageWriterOptions(nats_options, "main", url, tmp_path / "writer"))
    status: list[int] = []
    follower = threading.Thread(target=lambda: status.append(writer.run()))
    follower.start()
    try:
        clock = Clock()
        leader = js_exchange(tmp_path / "leader", clock, nats_options)
        leader.open()
        for command in commands:
            apply(leader, clock, command)
        end = leader.journal.appended
        leader.close()
        deadline = time.monotonic() + 60
        while writer.position < end and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.journal is not None
        with pytest.raises(JournalClosed):  # it never writes to the log
            writer.journal.append({"op": "deposit"})
    finally:
        writer.request_stop()
        follower.join(60)
    assert status == [0]
    assert stored_position(url) == end
    assert tables(url) == expected
    store = SnapshotStore(nats_options, "main")  # retention keeps the log after what it stored
    try:
        assert store.follower_positions() == {"storage": end}
    finally:
        store.close()


def _writer_process(
    options: NatsOptions, url: str, data_dir: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "manticore_api.cli",
        "storage-writer",
        "--nats",
        options.servers[0],
        "--prefix",
        options.prefix,
        "--shard",
        "main",
        "--database-url",
        url,
        "--data-dir",
        str(data_dir),
    ]
    with log_path.open("ab") as handle:
        return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)


def test_a_writer_killed_mid_stream_resumes_without_loss_or_duplicates(
    tmp_path: Path, nats_options: NatsOptions, backend: str
) -> None:
    commands = make_stream(22, 600)
    expected = _reference(tmp_path, commands)
    url = _url(backend, tmp_path / "writer.db")
    log_path = tmp_path / "writer.log"
    clock = Clock()
    leader = js_exchange(tmp_path / "leader", clock, nats_options)
    leader.open()
    for command in commands[:100]:
        apply(leader, clock, command)
    done = threading.Event()

    def trade() -> None:
        try:
            for command in commands[100:]:
                apply(leader, clock, command)
                time.sleep(0.005)  # a stream, not a burst
        finally:
            done.set()

    trader = threading.Thread(target=trade)
    writer = _writer_process(nats_options, url, tmp_path / "writer", log_path)
    try:
        start = leader.journal.appended
        deadline = time.monotonic() + 60
        while stored_position(url) < start and time.monotonic() < deadline:
            time.sleep(0.02)
        trader.start()  # the writer is following; the log grows while it runs
        while stored_position(url) < start + 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
        at_kill = stored_position(url)
        assert start + 100 <= at_kill
        assert not done.is_set(), "the stream ended before the kill: not mid-stream"
        writer = _writer_process(nats_options, url, tmp_path / "writer", log_path)
        trader.join(120)
        end = leader.journal.appended
        assert at_kill < end
        leader.close()
        deadline = time.monotonic() + 60
        while stored_position(url) < end and time.monotonic() < deadline:
            time.sleep(0.05)
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(30) == 0, log_path.read_text()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(10)
        done.wait(120)
    assert stored_position(url) == end
    assert tables(url) == expected
