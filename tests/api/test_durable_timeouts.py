"""``ExchangeService.durable`` times a wait out with one shared timer (not one per waiter): a waiter is
answered ServiceUnavailable once its own deadline passes, whatever the other waiters' deadlines, and
the others keep waiting."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from manticore_api.server import ServerOptions, build_service
from manticore_matching import ServiceUnavailable


def test_each_waiter_times_out_at_its_own_deadline(tmp_path: Path) -> None:
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False, require_auth=False))
    exchange = service.exchange

    async def scenario() -> None:
        await service.start()
        loop = asyncio.get_running_loop()
        try:
            never = exchange.journal.appended + 1000  # no command there: never durable
            patient = asyncio.create_task(service.durable(never, timeout=30.0))
            await asyncio.sleep(0)  # the 30 s timer is set first
            started = loop.time()
            hasty = asyncio.create_task(service.durable(never + 1, timeout=0.2))
            with pytest.raises(ServiceUnavailable, match="in time"):
                await asyncio.wait_for(hasty, 10)
            assert 0.19 <= loop.time() - started < 5
            await asyncio.sleep(0.3)
            assert not patient.done()
            receipt = exchange.deposit("alice", "USD", Decimal("5"))
            await asyncio.wait_for(service.durable(receipt.position, timeout=0.5), 10)
            await asyncio.sleep(0.7)  # past that deadline: its answer stays the success
            assert not patient.done()
            patient.cancel()
        finally:
            await service.stop()

    asyncio.run(scenario())
