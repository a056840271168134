"""Leadership of a shard: a key in the KV bucket ``<prefix>_leases`` whose entries expire (bucket TTL).

* :meth:`Lease.acquire` takes the key with ``create`` (succeeds only if nobody holds it: the key is
  absent, deleted, or its holder stopped renewing for a TTL, so its entry expired);
* a grant counts from the moment it was *requested* (the entry was written no earlier, so it expires no
  earlier than a TTL after that). A grant whose answer took half a TTL or more (a busy machine, a slow
  server) is **not used**: the lease would expire before, or right after, the first renewal could run,
  and a leader on it would be deposed by its own watchdog at once. The instance stays a candidate and
  keeps the revision as *unconfirmed*; its next :meth:`Lease.acquire` renews that entry with
  ``update(last=revision)`` instead of ``create``. The compare-and-swap succeeds only while the entry
  is still the one it was granted (not expired, nobody else's since), so a successful confirmation is
  a lease in NATS's view too, running from the confirmation's own request; a failed one forgets the
  revision and the next attempt is a ``create`` again. A grant that is never confirmed expires with
  the bucket's TTL like any unrenewed lease;
* the holder renews it with ``update(last=revision)`` every ``ttl / 3`` (:meth:`Lease.run`);
* the lease is **lost** at the first compare-and-swap failure (someone else took it, or it expired and
  was taken) or when no renewal has succeeded for a whole TTL (e.g. the process was stopped, or NATS was
  unreachable): ``on_lost`` is called once with the reason, and :attr:`Lease.held` turns False;
* :meth:`Lease.release` (clean stop) deletes the key only if it still holds this revision;
* :attr:`Lease.term` is the revision at which the current holding began. Revisions are the bucket's
  stream sequences, so every later holder of the key has a higher term: the command log records the
  term of the leader that wrote each message (see :mod:`.log`), which tells a successor a late message
  of a deposed leader (lower term) from one of another live leader (equal or higher).

A lease is advisory: a paused holder may still believe it leads for up to a TTL. The command log's
fence (``Nats-Expected-Last-Subject-Sequence``, see :mod:`.log`) is what makes a stale leader harmless.

All methods are coroutines on the caller's asyncio loop (the loop that owns ``kv``'s connection);
``on_lost`` is called on that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .natsconf import check_shard

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

__all__ = ["Lease", "current_holder"]

log = logging.getLogger("manticore_cluster")


async def current_holder(kv: KeyValue, key: str) -> str | None:
    """The holder id stored under ``key``, or None if nobody holds it (absent, deleted or expired)."""
    from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError

    try:
        entry = await kv.get(key)
    except (KeyNotFoundError, KeyDeletedError, NotFoundError):
        return None
    return None if entry.value is None else entry.value.decode()


class Lease:
    """The lease on ``key`` for ``holder`` (a unique id of this process, e.g. ``host:pid:random``).

    Args:
        kv: the lease bucket (:func:`~manticore_cluster.natsconf.ensure_lease_bucket`, TTL ``ttl``).
        key: the shard's name.
        holder: this instance's id, stored as the key's value.
        ttl: seconds after the last renewal at which the lease expires (the bucket's TTL).
        on_lost: called once, with a reason, when a held lease is lost (not on :meth:`release`).
        renew_every: seconds between renewals (default ``ttl / 3``).
    """

    def __init__(
        self,
        kv: KeyValue,
        key: str,
        holder: str,
        ttl: float,
        *,
        on_lost: Callable[[str], None] | None = None,
        renew_every: float | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError("ttl: more than 0 seconds")
        self.kv = kv
        self.key = check_shard(key)
        self.holder = holder
        self.ttl = ttl
        self.renew_every = renew_every if renew_every is not None else ttl / 3
        self._on_lost = on_lost
        #: a grant answered this long (seconds) after its request is not used (see the module docstring)
        self.grant_within = ttl / 2
        self.revision: int | None = None
        #: the revision at which the current holding began (None while not held)
        self.term: int | None = None
        #: the revision of a grant that came too late, to be confirmed by the next :meth:`acquire`
        self._unconfirmed: int | None = None
        self._renewed_at = 0.0
        self._lost_reason: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.renewals = 0

    @property
    def held(self) -> bool:
        """True from a successful :meth:`acquire` until the lease is lost or released."""
        return self.revision is not None

    @property
    def expires_at(self) -> float:
        """When the lease runs out unless renewed first: the last successful acquire or renewal plus the
        TTL, in ``time.monotonic()`` seconds (meaningful while :attr:`held`)."""
        return self._renewed_at + self.ttl

    @property
    def lost_reason(self) -> str | None:
        """Why the lease was lost (None while held, before acquiring, or after a release)."""
        return self._lost_reason

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; True if it is held now (then :meth:`start` the renewals).

        False when another holds it, including when that holder's key expires while ``create`` looks
        at it (its put found the key, its read then found none): the next attempt takes it. False as
        well when the grant's answer took :attr:`grant_within` (half the TTL) or longer: that grant is
        kept unconfirmed, and the next call confirms it with ``update(last=revision)`` (held if that
        answer is in time) or, when the entry expired or was taken meanwhile, forgets it."""
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        if self.held:
            return True
        unconfirmed = self._unconfirmed
        started = time.monotonic()
        try:
            if unconfirmed is None:
                revision = await self.kv.create(self.key, self.holder.encode())
            else:
                revision = await self.kv.update(self.key, self.holder.encode(), last=unconfirmed)
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            if unconfirmed is not None:
                self._unconfirmed = None
                log.info(
                    "lease %s: the late grant %d expired or was taken; campaigning", self.key, unconfirmed
                )
            return False
        elapsed = time.monotonic() - started
        if elapsed >= self.grant_within:
            self._unconfirmed = revision
            log.warning(
                "lease %s granted to %s %.3f s after the request (revision %d, ttl %s s): too late to "
                "lead on; confirming it first",
                self.key,
                self.holder,
                elapsed,
                revision,
                self.ttl,
            )
            return False
        self._unconfirmed = None
        self.revision, self.term, self._renewed_at, self._lost_reason = revision, revision, started, None
        log.info("lease %s acquired by %s (revision %d)", self.key, self.holder, revision)
        return True

    async def acquire_wait(self, timeout: float | None = None, poll: float | None = None) -> bool:
        """Try :meth:`acquire` every ``poll`` seconds (default ``ttl / 6``) until it succeeds (True) or
        ``timeout`` passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll if poll is not None else self.ttl / 6
        while True:
            if await self.acquire():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(interval)

    async def renew(self) -> bool:
        """One renewal: False (and the lease lost) on a CAS failure or when the last renewal is older
        than the TTL; a renewal that could not reach the server leaves the lease held (True) until then."""
        from nats.js.errors import KeyWrongLastSequenceError

        if self.revision is None:
            return False
        started = time.monotonic()
        if started - self._renewed_at >= self.ttl:
            self._lose(f"not renewed for {started - self._renewed_at:.2f} s (ttl {self.ttl} s)")
            return False
        try:
            revision = await self.kv.update(self.key, self.holder.encode(), last=self.revision)
        except KeyWrongLastSequenceError as exc:
            self._lose(f"compare-and-swap failed: {exc.description}")
            return False
        except Exception as exc:  # unreachable server, timeout: try again until the ttl runs out
            log.warning("lease %s: renewal failed (%r); retrying", self.key, exc)
            return True
        if self.revision is None:  # released meanwhile
            return False
        self.revision, self._renewed_at = revision, started
        self.renewals += 1
        return True

    async def run(self) -> None:
        """Renew every ``renew_every`` seconds while held (returns when lost or released)."""
        while self.revision is not None:
            # Counted from the last renewal's request (where the deadline counts from), not from its
            # answer, so a slow answer does not push the next renewal towards the deadline.
            await asyncio.sleep(max(0.0, self._renewed_at + self.renew_every - time.monotonic()))
            if not await self.renew():
                return

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` as a task on the current loop (after :meth:`acquire`)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"lease-{self.key}")
        return self._task

    async def release(self) -> None:
        """Stop renewing and delete the key if it still holds this lease's revision (or that of a grant
        not confirmed yet)."""
        from nats.js.errors import BadRequestError, KeyWrongLastSequenceError

        # Stop the renewals first: a renewal in flight moves the key's revision, so the revision to
        # delete at is read only once none can be.
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        revision, self.revision, self.term = self.revision, None, None
        if revision is None:  # a grant never confirmed: free it too
            revision, self._unconfirmed = self._unconfirmed, None
        if revision is None:
            return
        try:
            await self.kv.delete(self.key, last=revision)
        except KeyWrongLastSequenceError:
            return  # taken by someone else: leave it
        except BadRequestError as exc:
            if exc.err_code != 10071:  # JetStream's "wrong last sequence", as delete reports it
                raise
            return
        log.info("lease %s released by %s", self.key, self.holder)

    def _lose(self, reason: str) -> None:
        if self.revision is None:
            return
        self.revision = self.term = None
        self._lost_reason = reason
        log.error("lease %s LOST by %s: %s", self.key, self.holder, reason)
        if self._on_lost is not None:
            try:
                self._on_lost(reason)
            except Exception:
                log.exception("the lease's on_lost callback failed")
