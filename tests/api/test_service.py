"""``ExchangeService``: waiting commands are answered ServiceUnavailable as soon as the journal fails,
not only when their own timeout runs out (regression: they waited the full 30 s)."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from manticore_api.server import ServerOptions, build_service
from manticore_matching import ServiceUnavailable


class _DiskThatDies:
    """Stands in for the journal's segment file: the first write blocks until released, then fails."""

    def __init__(self) -> None:
        self.writing = threading.Event()
        self.release = threading.Event()

    def write(self, data: bytes) -> int:
        self.writing.set()
        self.release.wait(30)
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        raise OSError(28, "No space left on device")

    def fileno(self) -> int:
        raise OSError(9, "Bad file descriptor")

    def close(self) -> None:
        pass


def test_a_command_waiting_when_the_journal_fails_is_answered_unavailable(tmp_path: Path) -> None:
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False, require_auth=False))
    service.expiry_interval = 0.05
    exchange = service.exchange
    journal = exchange.journal
    real_file = journal._file
    disk = _DiskThatDies()

    async def scenario() -> None:
        await service.start()
        try:
            deposit = exchange.deposit("alice", "USD", Decimal("1000"))
            await service.durable(deposit.position)
            journal._file = disk  # type: ignore[assignment]
            receipt = exchange.place_order("alice", "BTC/USD", "buy", Decimal("1"), price=Decimal("100"))
            waiting = asyncio.create_task(service.durable(receipt.position, timeout=60.0))
            while not (disk.writing.is_set() and service._waiters):
                await asyncio.sleep(0.01)
            disk.release.set()  # the write fails now: the order can never become durable
            with pytest.raises(ServiceUnavailable, match="journal cannot write"):
                await asyncio.wait_for(waiting, 20)  # without the fix: TimeoutError after 20 s
            assert not journal.healthy
            with pytest.raises(ServiceUnavailable):
                exchange.place_order("alice", "BTC/USD", "buy", Decimal("1"), price=Decimal("100"))
        finally:
            disk.release.set()
            journal._file = real_file
            assert service._timer is not None
            service._timer.cancel()
            await service.hub.close()
            exchange.close(checkpoint=False)  # the journal is dead: what a failed server does

    asyncio.run(scenario())
