"""R3: the command log on a three-server cluster; the stream leader is killed while appending."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from manticore_cluster.log import JetStreamJournal
from manticore_cluster.natsconf import NatsOptions, connect
from tests.cluster.conftest import NatsServer, unique_prefix
from tests.cluster.helpers import raw_records

pytestmark = pytest.mark.slow


async def _leader(options: NatsOptions) -> str:
    nc = await connect(options)
    try:
        info = await nc.jetstream().stream_info(options.log_stream)
        assert info.cluster is not None and info.cluster.leader is not None
        assert len(info.cluster.replicas or []) == 2
        return str(info.cluster.leader)
    finally:
        await nc.close()


def test_killing_the_stream_leader_loses_no_acknowledged_record(nats_cluster: list[NatsServer]) -> None:
    options = NatsOptions(
        servers=tuple(server.url for server in nats_cluster),
        prefix=unique_prefix(),
        replicas=3,
        request_timeout=2.0,
        connect_timeout=20.0,
    )
    journal = JetStreamJournal(options, "main", publish_timeout=1.0, publish_attempts=40)
    list(journal.read())
    journal.start()
    assert journal.wait(journal.append({"op": "x", "i": 0}), 20)
    leader = asyncio.run(_leader(options))
    durable_before_kill = 0
    stop = threading.Event()

    def append() -> None:
        i = 1
        while not stop.is_set() and journal.healthy:
            journal.append({"op": "x", "i": i})
            i += 1
            time.sleep(0.001)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        while journal.durable < 300:
            time.sleep(0.01)
        victim = next(server for index, server in enumerate(nats_cluster) if f"n{index}" == leader)
        durable_before_kill = journal.durable
        victim.kill()
        killed = time.monotonic()
        resumed = None
        deadline = killed + 60
        while time.monotonic() < deadline:
            assert journal.healthy
            durable = journal.durable
            if resumed is None and durable > durable_before_kill + 50:
                resumed = time.monotonic() - killed
            if durable >= durable_before_kill + 300:
                break
            time.sleep(0.01)
        print(f"R3 leader kill: writes resumed after {resumed} s, {journal.publish_retries} publish retries")
    finally:
        stop.set()
        writer.join(10)
    appended = journal.appended
    assert journal.wait(appended, 60), (journal.durable, appended)
    assert journal.healthy and not journal.fenced
    durable = journal.durable
    journal.close()
    assert durable > durable_before_kill + 300
    records = raw_records(options)
    assert [r["n"] for r in records] == list(range(1, durable + 1))  # all there, once, in order
    assert [r["i"] for r in records] == list(range(durable))
    victim.start()  # the session's other tests get their cluster back
