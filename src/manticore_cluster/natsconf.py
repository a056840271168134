"""Where Manticore's NATS things live: connection options, stream/bucket/subject names, idempotent set-up.

Names (``prefix`` defaults to ``mc``; tests use a unique one each, so they never share a stream):

* stream ``<PREFIX>_LOG`` (upper case), subjects ``<prefix>.log.<shard>``: the command log, one subject
  per shard, file storage, limits retention (``max_age`` 0 = keep forever), ``replicas`` copies,
  ``duplicate_window`` seconds of ``Nats-Msg-Id`` de-duplication;
* KV bucket ``<prefix>_leases``: one key per shard, the holder of its leadership (bucket TTL = lease TTL).

Creation is idempotent: an existing stream or bucket with the same settings is used as it is; one with
different settings raises :class:`ClusterConfigError` (nothing is changed or deleted).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nats is imported only when a cluster is used
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

__all__ = [
    "start_loop_thread",
    "ClusterConfigError",
    "NatsOptions",
    "connect",
    "ensure_lease_bucket",
    "ensure_log_stream",
    "wait_for_jetstream",
]

log = logging.getLogger("manticore_cluster")

_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SHARD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ClusterConfigError(ValueError):
    """A bad name or option, or an existing stream/bucket whose settings differ from the options."""


@dataclass(frozen=True)
class NatsOptions:
    """How to reach NATS and how Manticore's streams are named and configured.

    Attributes:
        servers: NATS URLs (the seeds of a cluster), e.g. ``("nats://127.0.0.1:4222",)``.
        prefix: lower-case name prefix (``[a-z][a-z0-9_]*``, at most 32 characters) of every stream,
            subject and bucket.
        replicas: copies of the log stream and lease bucket (1 on one server, 3 on a three-server
            cluster: see docs/scale-out.md for what each guarantees).
        duplicate_window: seconds during which a re-sent ``Nats-Msg-Id`` is recognised (>= 1).
        max_age: seconds the log keeps a message (0: forever). It must exceed the age of the oldest
            checkpoint a shard may restart from.
        connect_timeout: seconds for the first connection.
        request_timeout: seconds for one JetStream API request or publish acknowledgement.
        name: client connection name (shown by the server's monitoring).
    """

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    prefix: str = "mc"
    replicas: int = 1
    duplicate_window: float = 120.0
    max_age: float = 0.0
    connect_timeout: float = 5.0
    request_timeout: float = 5.0
    name: str = "manticore"

    def __post_init__(self) -> None:
        if not self.servers:
            raise ClusterConfigError("at least one NATS server URL is required")
        if not _PREFIX.match(self.prefix):
            raise ClusterConfigError(f"prefix {self.prefix!r}: lower-case [a-z][a-z0-9_]*, 32 at most")
        if self.replicas not in (1, 2, 3, 4, 5):
            raise ClusterConfigError("replicas: 1 to 5")
        if not self.duplicate_window >= 1:
            raise ClusterConfigError("duplicate_window: at least 1 second")
        if not self.max_age >= 0:
            raise ClusterConfigError("max_age: 0 (forever) or more seconds")

    @property
    def log_stream(self) -> str:
        """Name of the command-log stream, ``<PREFIX>_LOG``."""
        return f"{self.prefix.upper()}_LOG"

    @property
    def log_subjects(self) -> str:
        """The stream's subject filter, ``<prefix>.log.*``."""
        return f"{self.prefix}.log.*"

    def log_subject(self, shard: str) -> str:
        """The subject of one shard's command log, ``<prefix>.log.<shard>``."""
        check_shard(shard)
        return f"{self.prefix}.log.{shard}"

    @property
    def lease_bucket(self) -> str:
        """Name of the KV bucket of leadership leases, ``<prefix>_leases``."""
        return f"{self.prefix}_leases"


def check_shard(shard: str) -> str:
    """``shard`` if it is a valid shard name (``[A-Za-z0-9_-]``, 1-64 characters), else ClusterConfigError."""
    if not isinstance(shard, str) or not _SHARD.match(shard):
        raise ClusterConfigError(f"shard name {shard!r}: 1-64 characters of A-Z a-z 0-9 _ -")
    return shard


async def connect(options: NatsOptions) -> Client:
    """A connection to ``options.servers`` that, once made, reconnects forever (the caller closes it).

    ConnectionError if no server answers within about twice ``options.connect_timeout``."""
    import asyncio

    import nats

    async def error(exc: Exception) -> None:
        log.warning("nats connection %s: %r", options.name, exc)

    async def disconnected() -> None:
        log.warning("nats connection %s: disconnected", options.name)

    async def reconnected() -> None:
        log.warning("nats connection %s: reconnected", options.name)

    connecting = nats.connect(
        list(options.servers),
        name=options.name,
        connect_timeout=options.connect_timeout,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        allow_reconnect=True,
        error_cb=error,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
    )
    try:
        return await asyncio.wait_for(connecting, 2 * options.connect_timeout + 0.5)
    except asyncio.TimeoutError:
        raise ConnectionError(f"no NATS server reachable at {', '.join(options.servers)}") from None


async def wait_for_jetstream(js: JetStreamContext, timeout: float) -> None:
    """Return once JetStream answers (a cluster that just started elects its meta leader first);
    the last error after ``timeout`` seconds."""
    import asyncio
    import time

    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.errors import ServiceUnavailableError

    deadline = time.monotonic() + timeout
    while True:
        try:
            await js.account_info()
            return
        except (ServiceUnavailableError, NoRespondersError, NatsTimeout):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.2)


async def ensure_log_stream(js: JetStreamContext, options: NatsOptions) -> None:
    """Create the command-log stream if it does not exist; check its settings if it does.

    ClusterConfigError if an existing stream of that name differs in subjects, storage, retention,
    replicas, duplicate window or max age."""
    from nats.js import api
    from nats.js.errors import NotFoundError

    await wait_for_jetstream(js, options.connect_timeout)
    wanted = api.StreamConfig(
        name=options.log_stream,
        subjects=[options.log_subjects],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        num_replicas=options.replicas,
        duplicate_window=options.duplicate_window,
        max_age=options.max_age,
        discard=api.DiscardPolicy.OLD,
        allow_direct=True,
    )
    try:
        info = await js.stream_info(options.log_stream)
    except NotFoundError:
        try:
            await _add_stream(js, wanted, options.connect_timeout)
            return
        except Exception:  # another process created it at the same moment: check what is there
            info = await js.stream_info(options.log_stream)
    config = info.config
    differences = [
        name
        for name, have, want in (
            ("subjects", config.subjects, wanted.subjects),
            ("storage", config.storage, wanted.storage),
            ("retention", config.retention, wanted.retention),
            ("replicas", config.num_replicas, wanted.num_replicas),
            ("duplicate_window", _seconds(config.duplicate_window), options.duplicate_window),
            ("max_age", _seconds(config.max_age), options.max_age),
        )
        if have != want
    ]
    if differences:
        raise ClusterConfigError(
            f"stream {options.log_stream} exists with other settings ({', '.join(differences)})"
        )


async def _add_stream(js: JetStreamContext, config: Any, timeout: float) -> None:
    """``add_stream``, retried while a cluster that is still forming has too few peers (err_code 10005)."""
    import asyncio
    import time

    from nats.js.errors import APIError

    deadline = time.monotonic() + timeout
    while True:
        try:
            await js.add_stream(config)
            return
        except APIError as exc:
            if exc.err_code != 10005 or time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.25)


async def ensure_lease_bucket(js: JetStreamContext, options: NatsOptions, ttl: float) -> KeyValue:
    """The lease bucket (created if missing: history 1, TTL ``ttl`` seconds, ``options.replicas``).

    ClusterConfigError if it exists with another TTL (every lease of a cluster has the same TTL)."""
    from nats.js import api
    from nats.js.errors import BucketNotFoundError, NotFoundError

    if not ttl > 0:
        raise ClusterConfigError("lease ttl: more than 0 seconds")
    await wait_for_jetstream(js, options.connect_timeout)
    try:
        kv = await js.key_value(options.lease_bucket)
    except (BucketNotFoundError, NotFoundError):
        try:
            return await js.create_key_value(
                api.KeyValueConfig(
                    bucket=options.lease_bucket,
                    history=1,
                    ttl=ttl,
                    replicas=options.replicas,
                    storage=api.StorageType.FILE,
                )
            )
        except Exception:  # created by another process meanwhile
            kv = await js.key_value(options.lease_bucket)
    status = await kv.status()
    if status.ttl is not None and abs(float(status.ttl) - ttl) > 1e-3:
        raise ClusterConfigError(f"bucket {options.lease_bucket} has ttl {status.ttl} s, not {ttl} s")
    return kv


def _seconds(value: float | None) -> float:
    return 0.0 if value is None else float(value)


def start_loop_thread(name: str) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """A new event loop running forever in a new daemon thread called ``name``; returns once the loop
    runs. Stop it with ``loop.call_soon_threadsafe(loop.stop)``, join the thread, close the loop."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    ready.wait()
    return loop, thread
