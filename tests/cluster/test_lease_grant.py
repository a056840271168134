"""A ``manticore shard`` process whose lease grant is answered late (real nats-server; the delay is
injected after the real ``kv.create``, see :mod:`tests.cluster.slow_grant_child`)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from manticore_cluster.natsconf import NatsOptions
from tests.cluster.shard_processes import (
    LEASE_TTL,
    ProtocolClient,
    ShardProcess,
    shard_processes,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("delay", [0.7, 1.5])
def test_a_lease_granted_too_late_is_confirmed_and_the_instance_leads(
    tmp_path: Path, nats_options: NatsOptions, delay: float
) -> None:
    """Regression (CI): the lease's ``create`` was answered after (or just before) its own deadline on a
    busy machine; the instance logged "acquired" and its watchdog ended it (exit 3) a moment later.
    Now the grant is confirmed (still alive: 0.7 TTL) or taken afresh (expired: 1.5 TTL) first, and the
    instance leads and stays."""
    config = write_config(tmp_path / "markets.toml")
    shard = ShardProcess(
        nats_options,
        tmp_path / "a",
        config,
        command=("tests.cluster.slow_grant_child", str(delay * LEASE_TTL)),
    )
    with shard_processes(shard):
        shard.start()
        shard.wait_for("answered")
        shard.wait_for(": leader ", 30.0)

        async def scenario() -> None:
            async with ProtocolClient(nats_options) as client:
                await client.wait_for_leader()
                await client.command("deposit", {"user_id": "u0", "asset": "USD", "amount": "10"})
                await asyncio.sleep(3 * LEASE_TTL)
                await client.command("deposit", {"user_id": "u0", "asset": "USD", "amount": "1"})

        asyncio.run(scenario())
        assert shard.process is not None and shard.process.poll() is None, shard.text()
        assert "too late to lead on" in shard.text()
        shard.signal(signal.SIGTERM)
        assert shard.wait(20) == 0, shard.text()
