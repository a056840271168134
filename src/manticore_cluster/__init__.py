"""manticore_cluster: Manticore scaled out on NATS JetStream (see docs/scale-out.md).

Phase 1: one shard is one :class:`~manticore_matching.Exchange` whose command journal is a JetStream
stream (:class:`~manticore_cluster.log.JetStreamJournal`) instead of the file journal; a warm standby
tails the same stream and takes over through a KV lease (:class:`~manticore_cluster.lease.Lease`).

Only this package imports ``nats``; the embedded server (``manticore serve`` without NATS options)
never imports it.
"""

from __future__ import annotations

from .lease import Lease
from .log import JetStreamJournal, JournalFenced
from .natsconf import ClusterConfigError, NatsOptions

__all__ = ["ClusterConfigError", "JetStreamJournal", "JournalFenced", "Lease", "NatsOptions"]
