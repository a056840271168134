"""The write-behind writer in a process of its own.

Building rows, binding them and committing cost the serving process about a quarter of its CPU per
command, all of it holding the GIL that the order book needs. With ``writer="process"`` (the default
for a SQLite file, see :class:`~manticore_storage.manager.StorageManager`) the write-behind writer's
thread in the serving process only gathers the captured units, as before, and hands each batch to a
child process over a socket pair (one pickled frame, protocol 5); the child writes it with the same
code the thread runs (:class:`~manticore_storage.manager.BatchSink` inside
:func:`~manticore_storage.writer.write_with_retry`: the same transaction per batch, the same retries
of transient errors, the same isolation and recording of failed units, the same journal position
marker) and answers when it is committed. The batch counts as written (``flush()`` returns,
``get_pending_write_count()`` drops) only on that answer, so every contract of the thread holds.

The child is started with ``subprocess`` (a fresh interpreter: neither ``fork`` of a threaded process
nor ``multiprocessing``'s re-import of the main module), lazily by the writer thread at its first batch,
with no descriptor of the parent but its end of the socket pair: it never sees the database ownership
lock (:mod:`~manticore_storage.owner`), which stays with the serving process. It ignores SIGINT (the
serving process shuts down and flushes on Ctrl-C) and exits when the serving process dies: end of file
on the socket, and on Linux ``PR_SET_PDEATHSIG`` (SIGTERM when the writer thread that started it ends,
the thread living as long as the writer). A batch the child was writing when killed rolls back; what
was acknowledged is in the exchange's journal, and a restart replays it from the journal position the
tables hold, as with the thread.

If the child dies, the writer thread notices at once when it is waiting for an answer (end of file) and
otherwise at its next batch (a broken pipe), logs an ERROR with the exit status, and raises
:class:`WriterProcessDied`, a transient error: the thread retries the batch with its usual backoff,
starting a new child. Writes are idempotent (guarded by each row's sequence), so the batch that may
have been committed just before the death is written again harmlessly.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DisconnectionError

from .apply import UnitTuple

if TYPE_CHECKING:
    from .records import Market
    from .writer import WriteBehindWriter

__all__ = ["WriterProcess", "WriterProcessDied", "main", "supported", "usable_cores"]

_LOG = logging.getLogger("manticore_storage.process")

#: How often the writer thread, waiting for the child's answer, checks that the child lives and that
#: ``close()`` has not given up (an answer or the child's end of file wakes it at once).
_CHECK_SECONDS = 0.5
#: How long :meth:`WriterProcess.close` waits for the child to exit before it kills it.
_EXIT_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1
_BOOT = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[3]); "
    "from manticore_storage.process import main; main()"
)


def supported() -> bool:
    """Whether this platform can run the writer process (POSIX: it passes a socket descriptor)."""
    return os.name == "posix"


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one, else every CPU
    of the machine). A writer process only pays off with a second one: on a single core it does the
    thread's work plus the hand-off and the switches between processes."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return len(affinity(0))
    return os.cpu_count() or 1


class WriterProcessDied(DisconnectionError):
    """The writer process died (or was stopped) before it answered; transient: the writer retries."""


class WriterProcess:
    """The serving process's end of the writer process: :meth:`write` is the writer thread's
    ``write`` function (:class:`~manticore_storage.writer.WriteBehindWriter`).

    Args:
        url: the database URL, password included (sent over the socket, never on a command line).
        sqlite_synchronous: SQLite's ``synchronous`` pragma for the child's engine.
        markets: returns ``(version, markets by symbol)``; the child is sent the markets again
            whenever the version changed since it last was.
    """

    def __init__(
        self,
        url: str,
        sqlite_synchronous: str,
        markets: Callable[[], tuple[int, dict[str, Market]]],
    ) -> None:
        self._url = url
        self._synchronous = sqlite_synchronous
        self._markets = markets
        self._sent_markets: int | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._channel: Connection | None = None
        self._writer: WriteBehindWriter | None = None
        self.starts = 0  # children started
        self.deaths = 0  # children that died without being asked to stop
        self.cpu_seconds = 0.0  # the children's CPU time spent writing batches, as they report it

    def bind(self, writer: WriteBehindWriter) -> None:
        """Report retries and errors to ``writer`` and give up when it does (its ``close`` timed out)."""
        self._writer = writer

    @property
    def pid(self) -> int | None:
        """The running child's process id (None before the first batch and after :meth:`close`)."""
        return None if self._child is None else self._child.pid

    def write(self, units: list[UnitTuple]) -> None:
        """Have the child write ``units`` in one transaction; return once it answered that they are
        committed (or recorded as failed). Raises :class:`WriterProcessDied` if the child died first
        (a new one is started on the next call, unless ``close()`` has given up)."""
        channel = self._channel
        if channel is None:
            if self._writer is not None and self._writer.abandoning:
                raise WriterProcessDied("close() gave up: no new storage writer process")
            try:
                channel = self._start()
            except OSError as exc:  # no interpreter to run, no descriptors left: retried, never "failed"
                _LOG.error("cannot start the storage writer process: %s", exc)
                raise WriterProcessDied(f"cannot start the storage writer process: {exc}") from exc
        child = self._child
        assert child is not None
        try:
            version, markets = self._markets()
            if version != self._sent_markets:
                channel.send_bytes(pickle.dumps(("markets", markets), protocol=5))
                self._sent_markets = version
            channel.send_bytes(pickle.dumps(("batch", units), protocol=5))
            while not channel.poll(_CHECK_SECONDS):
                if child.poll() is not None:
                    raise EOFError
            reply = pickle.loads(channel.recv_bytes())
        except (EOFError, OSError) as exc:
            self._lost(exc)
            raise WriterProcessDied(f"the storage writer process {child.pid} died: {_status(child)}") from exc
        _, retries, last_error, cpu_seconds = reply
        self.cpu_seconds += cpu_seconds
        writer = self._writer
        if writer is not None:
            writer.retries += retries
            if last_error is not None:
                writer.last_error = last_error

    def close(self) -> None:
        """Ask the child to exit (after the writer was closed), kill it if it does not, and reap it."""
        self._stop(kill=False)

    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        try:
            child = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(theirs.fileno()), str(os.getpid()), json.dumps(sys.path)],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # it never prints; it must not hold the server's stdout open
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        channel = Connection(ours.detach())
        channel.send_bytes(pickle.dumps(("open", self._url, self._synchronous), protocol=5))
        self._child, self._channel, self._sent_markets = child, channel, None
        self.starts += 1
        _LOG.info("storage writer process %d started", child.pid)
        return channel

    def _lost(self, exc: BaseException) -> None:
        child = self._child
        self._stop(kill=True)
        if child is None:
            return
        self.deaths += 1
        _LOG.error(
            "THE STORAGE WRITER PROCESS %d DIED (%s; %s): starting another and writing its batch again",
            child.pid,
            _status(child),
            type(exc).__name__,
        )

    def _stop(self, *, kill: bool) -> None:
        child, channel = self._child, self._channel
        self._child = self._channel = None
        if channel is not None:
            if not kill:
                with contextlib.suppress(OSError):
                    channel.send_bytes(pickle.dumps(("close",), protocol=5))
            channel.close()
        if child is None:
            return
        if kill:
            child.kill()
        try:
            child.wait(_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            _LOG.error("storage writer process %d did not exit; killing it", child.pid)
            child.kill()
            child.wait()


def _status(child: subprocess.Popen[bytes]) -> str:
    code = child.poll()
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


class _Stats:
    def __init__(self) -> None:
        self.retries = 0
        self.last_error: str | None = None


def _die_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM when the parent's thread that started this process ends (Linux);
    exit now if the parent is already gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            _LOG.warning("PR_SET_PDEATHSIG is not available; relying on end of file alone")
    if os.getppid() != parent:
        os._exit(0)


def main() -> None:
    """The writer process: ``python -c <boot> <socket fd> <parent pid> <parent sys.path as JSON>``.

    Reads frames from the socket: ``("open", url, synchronous)`` first, then ``("markets", dict)``
    and ``("batch", units)`` (each answered by ``("done", retries, last_error, cpu_seconds)`` once
    written), until ``("close",)`` or end of file (the serving process is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(int(sys.argv[2]))
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s manticore-storage-writer[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    channel = Connection(int(sys.argv[1]))
    try:
        message: tuple[Any, ...] = pickle.loads(channel.recv_bytes())
    except EOFError:
        return
    from .engines import open_engine, parse_url
    from .manager import BatchSink
    from .writer import write_with_retry

    _, url, synchronous = message
    engine = open_engine(parse_url(url), sqlite_synchronous=synchronous)
    sink = BatchSink(engine, {})
    stats = _Stats()
    try:
        while True:
            started = time.process_time()  # waiting for a message costs no CPU: reading it does
            try:
                message = pickle.loads(channel.recv_bytes())
            except EOFError:
                return  # the serving process is gone: what it acknowledged is in its journal
            kind = message[0]
            if kind == "markets":
                sink.markets = message[1]
            elif kind == "batch":
                retries = stats.retries
                stats.last_error = None
                write_with_retry(sink.write_batch, sink.record_failed_unit, message[1], stats)
                answer = ("done", stats.retries - retries, stats.last_error, time.process_time() - started)
                channel.send_bytes(pickle.dumps(answer, protocol=5))
            else:
                return
    except OSError:
        return  # the socket broke: the serving process is gone
    finally:
        sink.close()
        engine.dispose()
