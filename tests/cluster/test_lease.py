"""Lease on a real KV bucket: acquire, renew past the TTL, expiry lets another take it, CAS failure = loss."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from manticore_cluster.lease import Lease, current_holder
from manticore_cluster.natsconf import ClusterConfigError, NatsOptions, connect, ensure_lease_bucket

TTL = 1.0


def run(options: NatsOptions, body: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        nc = await connect(options)
        try:
            kv = await ensure_lease_bucket(nc.jetstream(), options, TTL)
            await body(kv)
        finally:
            await nc.close()

    asyncio.run(main())


def test_one_holder_at_a_time_and_renewal_keeps_it(nats_options: NatsOptions) -> None:
    async def body(kv: Any) -> None:
        lost: list[str] = []
        first = Lease(kv, "main", "first", TTL, on_lost=lost.append)
        second = Lease(kv, "main", "second", TTL)
        assert await first.acquire()
        assert first.held
        assert not await second.acquire()
        assert await current_holder(kv, "main") == "first"
        first.start()
        await asyncio.sleep(3 * TTL)  # well past the TTL: renewals keep it
        assert first.held and first.renewals >= 4 and not lost
        assert time.monotonic() < first.expires_at <= time.monotonic() + TTL  # moved on by the renewals
        assert not await second.acquire()
        await first.release()
        assert not first.held and not lost
        assert await second.acquire()  # released: free at once
        assert await current_holder(kv, "main") == "second"
        other_key = Lease(kv, "other", "first", TTL)
        assert await other_key.acquire()  # one lease per shard
        await second.release()
        await other_key.release()

    run(nats_options, body)


def test_an_expired_lease_is_taken_and_the_old_holder_learns_it_lost(nats_options: NatsOptions) -> None:
    async def body(kv: Any) -> None:
        lost: list[str] = []
        old = Lease(kv, "main", "old", TTL, on_lost=lost.append)
        assert await old.acquire()
        # The holder stops renewing (paused, partitioned): after the TTL another instance takes it.
        new = Lease(kv, "main", "new", TTL)
        started = time.monotonic()
        assert await new.acquire_wait(timeout=10 * TTL, poll=0.1)
        waited = time.monotonic() - started
        assert TTL * 0.5 <= waited <= 8 * TTL, waited
        assert await current_holder(kv, "main") == "new"
        # The old holder wakes up: its renewal is refused (or it sees the TTL has passed): lost.
        assert not await old.renew()
        assert not old.held and len(lost) == 1
        assert await current_holder(kv, "main") == "new"
        await old.release()  # a release after the loss does not touch the new holder's key
        assert await current_holder(kv, "main") == "new"
        await new.release()

    run(nats_options, body)


def test_a_compare_and_swap_failure_reports_the_loss(nats_options: NatsOptions) -> None:
    async def body(kv: Any) -> None:
        lost: list[str] = []
        lease = Lease(kv, "main", "me", TTL, on_lost=lost.append, renew_every=0.05)
        assert await lease.acquire()
        task = lease.start()
        await asyncio.sleep(0.2)
        assert lease.held
        await kv.put("main", b"intruder")  # someone else writes the key: the next renewal's CAS fails
        await asyncio.wait_for(task, 5)
        assert not lease.held
        assert len(lost) == 1 and "compare-and-swap" in lost[0]
        assert lease.lost_reason == lost[0]
        await lease.release()
        assert await current_holder(kv, "main") == "intruder"

    run(nats_options, body)


def test_a_renewal_later_than_the_ttl_is_a_loss_even_if_nobody_took_it(nats_options: NatsOptions) -> None:
    async def body(kv: Any) -> None:
        lost: list[str] = []
        lease = Lease(kv, "main", "me", TTL, on_lost=lost.append)
        assert await lease.acquire()
        await asyncio.sleep(TTL * 1.2)  # e.g. the process was stopped (SIGSTOP) past its TTL
        assert not await lease.renew()
        assert not lease.held and len(lost) == 1 and "not renewed" in lost[0]

    run(nats_options, body)


def test_the_bucket_keeps_one_ttl(nats_options: NatsOptions) -> None:
    async def body(kv: Any) -> None:
        nc = await connect(nats_options)
        try:
            with pytest.raises(ClusterConfigError, match="ttl"):
                await ensure_lease_bucket(nc.jetstream(), nats_options, TTL * 5)
            assert (await ensure_lease_bucket(nc.jetstream(), nats_options, TTL)) is not None
        finally:
            await nc.close()

    run(nats_options, body)


def test_a_lease_expiring_while_acquire_looks_at_it_is_not_an_error(nats_options: NatsOptions) -> None:
    """Regression: ``kv.create`` fails its put because the key exists, then reads the key to tell a
    deleted one from a live one; when the holder's key expires in between (the bucket's TTL), that read
    raised KeyNotFoundError out of ``acquire``/``acquire_wait`` (seen under load). The interleaving is
    forced here by letting the read wait until the key has expired."""

    async def body(kv: Any) -> None:
        old = Lease(kv, "main", "old", TTL)
        assert await old.acquire()  # held, never renewed: expires TTL after this
        real_get = kv._get

        async def get_after_expiry(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(TTL * 1.5)
            return await real_get(*args, **kwargs)

        kv._get = get_after_expiry
        try:
            new = Lease(kv, "main", "new", TTL)
            assert not await new.acquire()  # the key existed when the put was tried
        finally:
            kv._get = real_get
        assert await new.acquire_wait(timeout=5 * TTL)  # and it is free now
        assert await current_holder(kv, "main") == "new"
        await new.release()

    run(nats_options, body)


def _slow_grants(kv: Any, delay: float, count: int = 1) -> list[int]:
    """Make the first ``count`` ``kv.create`` calls answer ``delay`` seconds after the server granted
    them (a busy machine): the real create, then a wait. Returns the revisions granted so."""
    real_create = kv.create
    granted: list[int] = []

    async def create(*args: Any, **kwargs: Any) -> int:
        revision = int(await real_create(*args, **kwargs))
        if len(granted) < count:
            granted.append(revision)
            await asyncio.sleep(delay)
        return revision

    kv.create = create
    return granted


def test_a_grant_answered_after_half_the_ttl_is_confirmed_before_it_counts(nats_options: NatsOptions) -> None:
    """Regression: a ``create`` answered late was taken as a lease that runs from the request, so the
    holder's deadline had (nearly) passed when it learnt it led, and the shard's watchdog ended it."""

    async def body(kv: Any) -> None:
        granted = _slow_grants(kv, TTL * 0.7)
        lost: list[str] = []
        lease = Lease(kv, "main", "me", TTL, on_lost=lost.append)
        assert not await lease.acquire()  # granted, but too late to lead on
        assert granted and not lease.held and lease.term is None
        assert await current_holder(kv, "main") == "me"  # the entry is ours in NATS's view ...
        assert not await Lease(kv, "main", "other", TTL).acquire()  # ... so nobody else takes it
        started = time.monotonic()
        assert await lease.acquire()  # confirmed: update(last=the late revision)
        assert lease.held and lease.term is not None and lease.term > granted[0]
        assert lease.revision == lease.term
        assert started < lease.expires_at - TTL + 0.5 and lease.expires_at > time.monotonic() + TTL / 2
        lease.start()
        await asyncio.sleep(2 * TTL)  # renewed from there on
        assert lease.held and not lost
        await lease.release()
        assert await current_holder(kv, "main") is None

    run(nats_options, body)


def test_a_late_grant_that_expired_or_was_taken_is_forgotten(nats_options: NatsOptions) -> None:
    async def body(kv: Any) -> None:
        granted = _slow_grants(kv, TTL * 1.5, count=2)
        lease = Lease(kv, "main", "me", TTL)
        assert not await lease.acquire()  # answered after its own TTL: the entry has expired meanwhile
        assert len(granted) == 1 and not lease.held
        assert not await lease.acquire()  # the confirmation's compare-and-swap fails: forgotten
        assert not lease.held
        other = Lease(kv, "main", "other", TTL)
        assert not await other.acquire()  # (its create is answered late too) ...
        assert await lease.acquire()  # a fresh create, answered in time
        assert lease.held and lease.term is not None and lease.term > granted[1]
        await lease.release()
        # ... and once answered late, that holder loses the confirmation to the one that took the key.
        assert await current_holder(kv, "main") is None
        assert await lease.acquire()
        assert not await other.acquire()
        assert not await other.acquire()
        assert await current_holder(kv, "main") == "me"
        await lease.release()

    run(nats_options, body)
