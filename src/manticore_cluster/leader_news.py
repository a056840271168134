"""Requests to a shard's leader that a new leader's announcement cuts short.

A shard instance that becomes the leader publishes an announcement on ``<prefix>.leader.<shard>``
(:func:`~.protocol.leader_subject`) once it serves (:mod:`.shard`). A request in flight to the leader
that died waits for an answer that never comes; without the announcement it is sent again only after
its attempt timeout (5 s on a gateway), and then queues behind everything sent meanwhile. With it, the
sender (a gateway's :class:`~.remote.RemoteExchange`, the account shard delivering routes to a market
shard) follows the subject and, on each announcement, abandons every attempt still waiting and sends
it again at once, with the same body marked as a retry: the same command id, so the new leader answers
a command the old one made durable with its original result and applies one it never made durable once
(:mod:`manticore_matching.command_ids`).

Requests pausing between attempts because no leader was subscribed ("no responders": every request
sent after the death, often hundreds) are woken too, and **all are re-sent in the order they were first
sent**, so the new leader answers the oldest first. (Re-sending the in-flight ones alone was measured:
the requests still queued in the gateway at the kill, published after it, then waited behind the
others' natural retries for ~12 s.)

How: a waiting request's task is registered with when it was first sent; an announcement cancels the
registered tasks in that order, and the waits (``nc.request`` or the pause) turn that cancellation into
:class:`LeaderChanged` or an early end of the pause. No extra task or future per request (a first
version raced each attempt against a wake-up future with ``asyncio.wait``: ~105,000 more instructions
per request; this one is within the measurement's noise: ``benchmarks/cluster_request_instructions.py``).
A cancellation of the caller that lands
at the very moment of an announcement is taken for the announcement: the request is then sent once
more instead of being abandoned (harmless: its command id makes the repetition idempotent).

:class:`LeaderNews` is that bookkeeping for one shard; use it on one event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

__all__ = ["LeaderChanged", "LeaderNews"]


class LeaderChanged(Exception):
    """A new leader announced itself while the attempt waited for its answer: send it again now."""


class LeaderNews:
    """The requests waiting for one shard's leader (see the module doc)."""

    def __init__(self) -> None:
        #: the task of a waiting request -> when the request was first sent (the order of re-sending)
        self._waiting: dict[asyncio.Task[Any], float] = {}
        #: tasks cancelled by an announcement, not yet resumed
        self._woken: set[asyncio.Task[Any]] = set()
        #: announcements received
        self.announcements = 0
        #: attempts abandoned because of one
        self.abandoned = 0

    async def request(self, nc: Client, subject: str, body: bytes, timeout: float, since: float) -> Msg:
        """``nc.request(subject, body, timeout)``; LeaderChanged if an announcement came first.
        ``since``: when the request was first sent (or any number ordering the requests)."""
        task = self._register(since)
        try:
            return await nc.request(subject, body, timeout=timeout)
        except asyncio.CancelledError:
            if not self._was_woken(task):
                raise
            self.abandoned += 1
            raise LeaderChanged from None
        finally:
            self._unregister(task)

    async def pause(self, seconds: float, since: float) -> None:
        """Sleep ``seconds`` between attempts of a request first sent at ``since``, or less if a new
        leader announces itself meanwhile."""
        task = self._register(since)
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            if not self._was_woken(task):
                raise
        finally:
            self._unregister(task)

    def announced(self) -> None:
        """A new leader serves: wake every waiting request, oldest first (on the loop)."""
        self.announcements += 1
        waiting = self._waiting
        for task in sorted(waiting, key=waiting.__getitem__):
            self._woken.add(task)
            task.cancel()
        waiting.clear()

    def _register(self, since: float) -> asyncio.Task[Any]:
        task = asyncio.current_task()
        assert task is not None
        self._waiting[task] = since
        return task

    def _unregister(self, task: asyncio.Task[Any]) -> None:
        self._waiting.pop(task, None)
        if self._woken:
            self._was_woken(task)  # an announcement the wait did not see (it ended at that moment)

    def _was_woken(self, task: asyncio.Task[Any]) -> bool:
        """Whether an announcement cancelled ``task`` (its cancellation is then withdrawn)."""
        if task not in self._woken:
            return False
        self._woken.discard(task)
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+ counts cancellation requests
        if uncancel is not None:
            uncancel()
        return True
