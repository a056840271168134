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
others' natural retries for ~12 s.) Every waiting request has its own wake-up future, set in that order,
and the in-flight and pausing ones resume through the same number of loop steps, so they publish in
that order.

:class:`LeaderNews` is that bookkeeping for one shard; use it on one event loop.
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client
from nats.aio.msg import Msg

__all__ = ["LeaderChanged", "LeaderNews"]


class LeaderChanged(Exception):
    """A new leader announced itself while the attempt waited for its answer: send it again now."""


class LeaderNews:
    """The requests waiting for one shard's leader (see the module doc)."""

    def __init__(self) -> None:
        #: a waiting request's wake-up -> when the request was first sent (the order of re-sending)
        self._waiting: dict[asyncio.Future[None], float] = {}
        #: announcements received
        self.announcements = 0
        #: attempts abandoned because of one
        self.abandoned = 0

    async def request(self, nc: Client, subject: str, body: bytes, timeout: float, since: float) -> Msg:
        """``nc.request(subject, body, timeout)``; LeaderChanged if an announcement came first.
        ``since``: when the request was first sent (or any number ordering the requests)."""
        attempt = asyncio.ensure_future(nc.request(subject, body, timeout=timeout))
        wake = asyncio.get_running_loop().create_future()
        waiting = self._waiting
        waiting[wake] = since
        try:
            await asyncio.wait((attempt, wake), return_when=asyncio.FIRST_COMPLETED)
        finally:
            del waiting[wake]
            if not attempt.done():
                attempt.cancel()  # an announcement, or the caller was cancelled
        if attempt.done() and not attempt.cancelled():
            return attempt.result()  # answered (or failed) before the announcement
        self.abandoned += 1
        raise LeaderChanged

    async def pause(self, seconds: float, since: float) -> None:
        """Sleep ``seconds`` between attempts of a request first sent at ``since``, or less if a new
        leader announces itself meanwhile."""
        wake = asyncio.get_running_loop().create_future()
        self._waiting[wake] = since
        try:
            await asyncio.wait((wake,), timeout=seconds)
        finally:
            del self._waiting[wake]

    def announced(self) -> None:
        """A new leader serves: wake every waiting request, oldest first (on the loop)."""
        self.announcements += 1
        waiting = self._waiting
        for wake in sorted(waiting, key=waiting.__getitem__):
            if not wake.done():
                wake.set_result(None)
