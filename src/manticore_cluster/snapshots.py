"""Shard snapshots in the JetStream Object Store, and log retention below them.

A snapshot is a checkpoint file (``checkpoint.json``, see :mod:`manticore_matching.checkpoints`) that an
instance wrote, copied into the Object Store bucket ``<prefix>_snapshots`` under the name
``<shard>.<position, 20 digits>``. The object's ``description`` is JSON ``{"format": 1, "shard": ...,
"position": ..., "sha256": <hex of the body>}``. An instance that starts (leader or standby, on any
machine) copies the newest valid snapshot newer than its local checkpoint into its data directory
(:func:`restore_newest`) before the exchange opens, so the exchange restores it and reads only the log
after it. Replay after it stays fingerprint-checked.

Valid means: the object is complete (the Object Store's own digest matches, checked by the client while
reading), its body's SHA-256 is the one in the description, it is a checkpoint of the format the
exchange reads, and the checkpoint's ``position`` is the one in the name. Anything else is refused with
a WARNING log line naming the snapshot, and the next older one (or the local checkpoint) is used. An
upload killed half-way leaves chunks without a meta message: the Object Store does not list it, so it
is never seen.

:class:`SnapshotPublisher` uploads what the exchange checkpoints: the journal calls its :meth:`offer`
from ``rotate`` (the exchange's checkpoint step, on the exchange's thread, with the file just written);
a background thread uploads the newest offered checkpoint, deletes all but the newest ``keep`` of the
shard's snapshots and, with retention on, purges the shard's log subject below the message that holds
the oldest kept snapshot's position, or the lowest position a follower (a storage writer) reported in
the KV bucket ``<prefix>_followers`` if that is lower (never above either: every kept snapshot, the
local checkpoint of any instance at least as new, and every reporting follower still have their whole
log after them).

Threading: :class:`SnapshotStore` runs nats-py on its own asyncio loop in its own thread; every public
method blocks the calling thread (never call them from that loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from manticore_matching.checkpoints import CHECKPOINT, VERSION

from .log import JetStreamJournal
from .natsconf import NatsOptions, check_shard, connect, start_loop_thread, wait_for_jetstream

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from nats.js.object_store import ObjectStore

__all__ = [
    "SNAPSHOT_FORMAT",
    "SnapshotInfo",
    "SnapshotInvalid",
    "SnapshotPublisher",
    "SnapshotStore",
    "local_checkpoint_position",
    "open_snapshots",
    "restore_newest",
    "same_history",
    "followers_bucket",
    "snapshot_bucket",
    "snapshot_name",
]

log = logging.getLogger("manticore_cluster")

#: The description's format.
SNAPSHOT_FORMAT = 1
#: Object Store chunk size (bytes).
_CHUNK = 128 * 1024
_NAME = re.compile(r"^(?P<shard>[A-Za-z0-9_-]{1,64})\.(?P<position>\d{20})$")

_T = TypeVar("_T")


class SnapshotInvalid(ValueError):
    """A snapshot that cannot be used: incomplete, corrupt, or not what its name says."""


def snapshot_bucket(options: NatsOptions) -> str:
    """The Object Store bucket of every shard's snapshots, ``<prefix>_snapshots``."""
    return f"{options.prefix}_snapshots"


def followers_bucket(options: NatsOptions) -> str:
    """The KV bucket where followers of the logs (storage writers) report what they still need,
    ``<prefix>_followers`` (key ``<shard>.<follower>``, value the position as text)."""
    return f"{options.prefix}_followers"


def snapshot_name(shard: str, position: int) -> str:
    """The object name of ``shard``'s snapshot at journal ``position``: ``<shard>.<20 digits>``."""
    if position < 0:
        raise ValueError("position: 0 or more")
    return f"{check_shard(shard)}.{position:020d}"


@dataclass(frozen=True)
class SnapshotInfo:
    """One listed snapshot: object ``name``, ``shard``, journal ``position``, ``sha256`` (hex) of the
    body, its ``size`` in bytes, and ``stamp``: the clock reading (``ts``) of the log's record at
    ``position``, which identifies the history the snapshot belongs to."""

    name: str
    shard: str
    position: int
    sha256: str
    size: int
    stamp: float | None = None


def _describe(shard: str, position: int, digest: str, stamp: float | None) -> str:
    return json.dumps(
        {"format": SNAPSHOT_FORMAT, "shard": shard, "position": position, "sha256": digest, "stamp": stamp}
    )


def _parse_info(name: str, description: str | None, size: int | None) -> SnapshotInfo | None:
    """The snapshot an object listing names, None when the object is not one (or another format)."""
    match = _NAME.match(name)
    if match is None or not description:
        return None
    try:
        meta = json.loads(description)
    except ValueError:
        return None
    if (
        type(meta) is not dict
        or meta.get("format") != SNAPSHOT_FORMAT
        or meta.get("shard") != match["shard"]
        or meta.get("position") != int(match["position"])
        or type(meta.get("sha256")) is not str
        or type(meta.get("stamp")) not in (int, float, type(None))
    ):
        return None
    stamp = meta.get("stamp")
    return SnapshotInfo(name, match["shard"], int(match["position"]), meta["sha256"], int(size or 0), stamp)


def check_body(info: SnapshotInfo, body: bytes) -> dict[str, Any]:
    """The checkpoint ``body`` holds, if it is the valid snapshot ``info`` describes; SnapshotInvalid
    (saying why) otherwise."""
    digest = hashlib.sha256(body).hexdigest()
    if digest != info.sha256:
        raise SnapshotInvalid(f"sha256 {digest[:16]}... is not the recorded {info.sha256[:16]}...")
    try:
        try:
            state = orjson.loads(body)
        except orjson.JSONDecodeError:
            state = json.loads(body)
    except ValueError as exc:
        raise SnapshotInvalid(f"not JSON: {exc}") from None
    if type(state) is not dict or state.get("version") != VERSION:
        raise SnapshotInvalid(f"not a checkpoint of version {VERSION}")
    if state.get("position") != info.position:
        raise SnapshotInvalid(f"its checkpoint is at position {state.get('position')!r}, not {info.position}")
    return state


class SnapshotStore:
    """One shard's snapshots in the bucket ``<prefix>_snapshots`` (created on first use with
    ``options.replicas`` copies, file storage).

    Args:
        options: connection and names.
        shard: the shard's name.
        keep: how many of the shard's newest snapshots :meth:`put` keeps (at least 1).
    """

    def __init__(self, options: NatsOptions, shard: str, *, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError("keep: at least 1 snapshot")
        self.options = options
        self.shard = check_shard(shard)
        self.keep = keep
        self.bucket = snapshot_bucket(options)
        self._lifecycle = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._store: ObjectStore | None = None
        self._closed = False

    # ------------------------------------------------------------------ the loop thread

    def _call(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        loop = self._ensure_loop(coroutine)
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout if timeout is not None else 60 + 10 * self.options.request_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def _ensure_loop(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.AbstractEventLoop:
        """The connected loop (connecting on first use, under the lock, so that no caller ever sees a
        loop that is not connected yet). A failed connection leaves the store unconnected, not closed:
        the next call tries again."""
        with self._lifecycle:
            if self._closed:
                coroutine.close()
                raise RuntimeError("the snapshot store is closed")
            if self._loop is not None:
                return self._loop
            loop, thread = start_loop_thread(f"manticore-snapshots-{self.shard}")
            try:
                asyncio.run_coroutine_threadsafe(self._connect(), loop).result(
                    3 * self.options.connect_timeout + 2 * self.options.request_timeout + 1
                )
            except BaseException:
                coroutine.close()
                self._stop(loop, thread)
                raise
            self._loop, self._thread = loop, thread
            return loop

    async def _connect(self) -> None:
        from nats.js import api
        from nats.js.errors import BucketNotFoundError, NotFoundError

        self._nc = await connect(self.options)
        self._js = self._nc.jetstream(timeout=self.options.request_timeout)
        await wait_for_jetstream(self._js, self.options.connect_timeout)
        try:
            self._store = await self._js.object_store(self.bucket)
        except (BucketNotFoundError, NotFoundError):
            try:
                self._store = await self._js.create_object_store(
                    self.bucket,
                    config=api.ObjectStoreConfig(
                        description="Manticore shard snapshots",
                        storage=api.StorageType.FILE,
                        replicas=self.options.replicas,
                    ),
                )
            except Exception:  # created by another process meanwhile
                self._store = await self._js.object_store(self.bucket)

    def close(self) -> None:
        """Close the connection and stop the loop; safe to call twice."""
        with self._lifecycle:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None:
            self._stop(loop, thread)

    def _stop(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread | None) -> None:
        nc = self._nc
        if nc is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(asyncio.wait_for(nc.close(), 5), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        if not loop.is_running():
            loop.close()
        self._nc = self._js = self._store = None

    @property
    def _objects(self) -> ObjectStore:
        if self._store is None:
            raise RuntimeError("the snapshot store is not connected")
        return self._store

    # ------------------------------------------------------------------ reading

    def snapshots(self) -> list[SnapshotInfo]:
        """This shard's complete snapshots, oldest (lowest position) first."""
        return self._call(self._list())

    async def _list(self) -> list[SnapshotInfo]:
        from nats.js.errors import NotFoundError

        try:
            entries = await self._objects.list(ignore_deletes=True)
        except NotFoundError:
            return []
        found = []
        for entry in entries:
            if entry.deleted:
                continue
            info = _parse_info(entry.name, entry.description, entry.size)
            if info is not None and info.shard == self.shard:
                found.append(info)
        return sorted(found, key=lambda info: info.position)

    def fetch(self, info: SnapshotInfo) -> tuple[bytes, dict[str, Any]]:
        """The body of snapshot ``info`` and the checkpoint it holds; SnapshotInvalid when it cannot be
        read or is not valid (see the module docstring)."""
        try:
            body = self._call(self._get(info.name))
        except SnapshotInvalid:
            raise
        except Exception as exc:
            raise SnapshotInvalid(f"cannot be read: {exc!r}") from exc
        return body, check_body(info, body)

    async def _get(self, name: str) -> bytes:
        result = await self._objects.get(name)
        return bytes(result.data or b"")

    def newest_valid(
        self,
        after: int,
        at_most: int | None = None,
        check: Callable[[SnapshotInfo], None] | None = None,
    ) -> tuple[SnapshotInfo, bytes, dict[str, Any]] | None:
        """The newest valid snapshot with position ``> after`` (and ``<= at_most`` when given), its body
        and checkpoint; None if there is none. ``check(info)`` may refuse one before it is read (by
        raising SnapshotInvalid). Each invalid one met on the way is refused with a WARNING line and
        the next older one tried."""
        for info in reversed(self.snapshots()):
            if info.position <= after:
                break
            if at_most is not None and info.position > at_most:
                continue
            try:
                if check is not None:
                    check(info)
                body, state = self.fetch(info)
            except SnapshotInvalid as exc:
                log.warning("snapshot %s of shard %s refused: %s", info.name, self.shard, exc)
                continue
            return info, body, state
        return None

    # ------------------------------------------------------------------ writing

    def put(self, position: int, body: bytes, stamp: float | None = None) -> SnapshotInfo:
        """Upload ``body`` (a checkpoint at journal ``position``, whose record there has the clock
        reading ``stamp``) as a snapshot, then delete all but the newest :attr:`keep` snapshots of
        the shard; return what was stored."""
        digest = hashlib.sha256(body).hexdigest()
        name = snapshot_name(self.shard, position)
        self._call(self._put(name, body, _describe(self.shard, position, digest, stamp)))
        info = SnapshotInfo(name, self.shard, position, digest, len(body), stamp)
        for old in self.snapshots()[: -self.keep]:
            with contextlib.suppress(Exception):
                self._call(self._objects.delete(old.name))
        return info

    async def _put(self, name: str, body: bytes, description: str) -> None:
        from nats.js import api

        meta = api.ObjectMeta(
            name=name, description=description, options=api.ObjectMetaOptions(max_chunk_size=_CHUNK)
        )
        await self._objects.put(name, body, meta=meta)

    # ------------------------------------------------------------------ followers

    def report_follower(self, name: str, position: int) -> None:
        """Record that the follower ``name`` of this shard (a storage writer) still needs the log after
        ``position``: retention never purges a record above the lowest reported position. A follower
        that is retired for good must be removed with :meth:`forget_follower`, or it holds the log."""
        self._call(self._followers_put(f"{self.shard}.{check_shard(name)}", position))

    def forget_follower(self, name: str) -> None:
        """Remove the follower ``name`` of this shard (see :meth:`report_follower`)."""
        self._call(self._followers_delete(f"{self.shard}.{check_shard(name)}"))

    def follower_positions(self) -> dict[str, int]:
        """The positions the shard's followers reported, by follower name."""
        return self._call(self._followers_read())

    async def _followers(self) -> Any:
        from nats.js import api
        from nats.js.errors import BucketNotFoundError, NotFoundError

        assert self._js is not None
        bucket = followers_bucket(self.options)
        try:
            return await self._js.key_value(bucket)
        except (BucketNotFoundError, NotFoundError):
            try:
                return await self._js.create_key_value(
                    api.KeyValueConfig(
                        bucket=bucket, history=1, replicas=self.options.replicas, storage=api.StorageType.FILE
                    )
                )
            except Exception:  # created by another process meanwhile
                return await self._js.key_value(bucket)

    async def _followers_put(self, key: str, position: int) -> None:
        kv = await self._followers()
        await kv.put(key, str(position).encode())

    async def _followers_delete(self, key: str) -> None:
        kv = await self._followers()
        await kv.delete(key)

    async def _followers_read(self) -> dict[str, int]:
        from nats.js.errors import NoKeysError, NotFoundError

        kv = await self._followers()
        try:
            keys = await kv.keys()
        except (NoKeysError, NotFoundError):
            return {}
        found: dict[str, int] = {}
        for key in keys:
            shard, _, name = key.partition(".")
            if shard != self.shard:
                continue
            try:
                entry = await kv.get(key)
            except NotFoundError:
                continue
            found[name] = int(entry.value or b"0")
        return found

    def purge_log_below(self, sequence: int) -> None:
        """Remove the shard's log messages with stream sequence ``< sequence`` (no-op for 1 or less)."""
        if sequence > 1:
            self._call(self._purge(sequence))

    async def _purge(self, sequence: int) -> None:
        assert self._js is not None
        await self._js.purge_stream(
            self.options.log_stream, seq=sequence, subject=self.options.log_subject(self.shard)
        )


def local_checkpoint_position(data_dir: Path) -> int:
    """The position of ``data_dir``'s checkpoint; 0 when there is none or it cannot be read (a
    snapshot or the whole log then replaces it)."""
    path = data_dir / CHECKPOINT
    if not path.exists():
        return 0
    try:
        with path.open("rb") as handle:
            head = handle.read()
        state = orjson.loads(head)
        return int(state["position"])
    except Exception as exc:  # unreadable: treated as absent, a snapshot may replace it
        log.warning("the local checkpoint %s cannot be read (%r)", path, exc)
        return 0


def same_history(log_reader: JetStreamJournal) -> Callable[[SnapshotInfo], None]:
    """A ``check`` for :meth:`SnapshotStore.newest_valid`: the log must hold a record at the
    snapshot's position with the snapshot's stamp (else the snapshot belongs to another history of
    the shard, e.g. a log stream deleted and created again, and is refused)."""

    def check(info: SnapshotInfo) -> None:
        record = log_reader.record_at(info.position)
        if record is None:
            raise SnapshotInvalid(f"the log has no record at position {info.position}")
        if info.stamp is None or record.get("ts") != info.stamp:
            raise SnapshotInvalid(
                f"the log's record at position {info.position} is another command (stamp "
                f"{record.get('ts')!r}, the snapshot's {info.stamp!r}): a snapshot of another history"
            )

    return check


def restore_newest(
    data_dir: Path,
    store: SnapshotStore,
    *,
    at_most: int | None = None,
    log_reader: JetStreamJournal | None = None,
) -> int:
    """Put the newest valid snapshot newer than ``data_dir``'s checkpoint (and ``<= at_most``) in
    its place (fsynced, atomic rename); return the position of the checkpoint now there (0: none).
    With ``log_reader``, a snapshot whose position is not the same command in the log is refused
    (:func:`same_history`).

    The caller holds the data directory's lock. Reading the Object Store may fail (NATS down): the
    local checkpoint is kept then and a WARNING says so."""
    local = local_checkpoint_position(data_dir)
    check = same_history(log_reader) if log_reader is not None else None
    try:
        found = store.newest_valid(local, at_most, check)
    except Exception as exc:
        log.warning(
            "snapshots of shard %s cannot be listed (%r): the local checkpoint is used", store.shard, exc
        )
        return local
    if found is None:
        return local
    info, body, _state = found
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CHECKPOINT
    temporary = path.with_suffix(".snapshot.tmp")
    with temporary.open("wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    log.info(
        "shard %s: restored snapshot %s (position %d; the local checkpoint was at %d)",
        store.shard,
        info.name,
        info.position,
        local,
    )
    return info.position


class SnapshotPublisher:
    """Uploads the checkpoints an instance writes (see the module docstring).

    Args:
        store: the shard's snapshot store (the publisher closes it in :meth:`close`).
        data_dir: the instance's data directory (where the exchange writes ``checkpoint.json``).
        log_reader: a journal of the shard used only to read (the record at a checkpoint's position,
            whose clock reading stamps the snapshot; ``sequence_of`` for retention); the publisher
            closes it in :meth:`close`.
        retention: purge the shard's log below the oldest kept snapshot after each upload.
    """

    def __init__(
        self,
        store: SnapshotStore,
        data_dir: Path,
        *,
        log_reader: JetStreamJournal | None = None,
        retention: bool = False,
    ) -> None:
        if retention and log_reader is None:
            raise ValueError("retention needs a log reader")
        self.store = store
        self.data_dir = data_dir
        self._log_reader = log_reader
        self._retention = retention
        self._condition = threading.Condition()
        self._offered: tuple[int, bytes] | None = None
        self._busy = False
        self._closing = False
        self.uploaded = 0
        self.last_position = 0
        self.failures = 0
        self._thread = threading.Thread(
            target=self._run, name=f"manticore-snapshot-upload-{store.shard}", daemon=True
        )
        self._thread.start()

    def offer(self, position: int) -> None:
        """The exchange has just written its checkpoint at ``position``: upload it (in the background;
        a newer offer replaces one not yet started). Never raises: a failure is logged."""
        if position <= self.last_position:
            return
        try:
            body = (self.data_dir / CHECKPOINT).read_bytes()
        except OSError as exc:
            log.warning("checkpoint at %d cannot be read for a snapshot (%r)", position, exc)
            return
        with self._condition:
            self._offered = (position, body)
            self._condition.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every offered checkpoint is uploaded (or failed); False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: self._offered is None and not self._busy, timeout)

    def close(self, timeout: float | None = 60.0) -> None:
        """Upload what was offered (waiting up to ``timeout``), then stop and close the store."""
        self.flush(timeout)
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(5)
        self.store.close()
        if self._log_reader is not None:
            self._log_reader.close()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._offered is not None or self._closing)
                if self._offered is None:
                    return
                position, body = self._offered
                self._offered = None
                self._busy = True
            try:
                self._publish(position, body)
            except Exception as exc:
                self.failures += 1
                log.warning("snapshot at %d of shard %s not uploaded: %r", position, self.store.shard, exc)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _publish(self, position: int, body: bytes) -> None:
        stamp: float | None = None
        if self._log_reader is not None:
            record = self._log_reader.record_at(position)
            if record is None:
                log.warning("checkpoint at %d: the log has no record there; not uploaded", position)
                return
            stamp = float(record["ts"])
        info = self.store.put(position, body, stamp)
        self.uploaded += 1
        self.last_position = max(self.last_position, position)
        log.info("shard %s: snapshot %s uploaded (%d bytes)", self.store.shard, info.name, info.size)
        if not self._retention or self._log_reader is None:
            return
        kept = self.store.snapshots()
        if not kept:
            return
        followers = self.store.follower_positions()
        floor = min([kept[0].position, *followers.values()])
        if floor <= 0:
            return
        sequence = self._log_reader.sequence_of(floor)
        self.store.purge_log_below(sequence)
        log.info(
            "shard %s: log purged below stream sequence %d (the message holding position %d, the oldest "
            "kept snapshot or the lowest follower)",
            self.store.shard,
            sequence,
            floor,
        )


def open_snapshots(
    options: NatsOptions, shard: str, data_dir: Path, *, keep: int, retention: bool
) -> SnapshotPublisher:
    """For an instance about to open its exchange in ``data_dir`` (its lock held): restore the newest
    valid snapshot newer than the local checkpoint (:func:`restore_newest`), and return the publisher
    of the checkpoints it will write (give its :meth:`~SnapshotPublisher.offer` to the journal as
    ``on_checkpoint``; :meth:`~SnapshotPublisher.close` it after the exchange is closed)."""
    store = SnapshotStore(options, shard, keep=keep)
    reader = JetStreamJournal(options, shard)
    try:
        restore_newest(data_dir, store, log_reader=reader)
        return SnapshotPublisher(store, data_dir, log_reader=reader, retention=retention)
    except BaseException:
        store.close()
        reader.close()
        raise
