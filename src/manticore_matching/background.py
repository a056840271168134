"""Checkpoints written in the background by a forked copy of the process (Linux).

A checkpoint holds every book's exported state: at 100,000 resting orders building and serialising it
takes about a second of Python, and the exchange's command path must not wait that long. So the
automatic checkpoint (:class:`~manticore_matching.exchange.Exchange`'s ``checkpoint_every``) is written
like Redis' ``BGSAVE``: while the command thread holds the exchange lock, :func:`spawn_writer` forks
the process; the child's memory is a copy-on-write image of that instant, from which it builds the
checkpoint, writes it to a temporary file, fsyncs it and exits. The parent goes on with its next
command as soon as ``fork`` returns (a few milliseconds for a few hundred megabytes: the kernel copies
page tables, not pages). The rest of the protocol (waiting for the journal and storage to be durable
up to the captured position, installing the file, retiring journal segments) is the exchange's, run by
a :class:`Flight`'s thread.

What the child reads (books, ledger, command ids, outbox) is changed, and the books' own locks are
taken, only under the exchange lock, which the command thread holds across the fork: so the image is
consistent and no lock the child needs is held by a thread that does not exist there. (Were it ever
otherwise, the writer would hang: :data:`WRITER_TIMEOUT` kills it, and the next checkpoint retries.)

The child runs only code that takes no lock another thread of the parent might have held at the fork
(those threads do not exist in the child): it touches no journal, storage, logging or socket object,
closes every inherited file descriptor first (the data directory's ``flock``, listening sockets, the
journal's file; standard input and outputs become ``/dev/null``), disables the cyclic garbage collector
(no finalizer runs), restores default signal dispositions, asks the kernel to kill it if its parent
thread dies (``PR_SET_PDEATHSIG``: a ``kill -9`` of the exchange leaves no orphan writer behind), and
ends with ``os._exit`` (no ``atexit`` handler, no flush of a buffer copied from the parent).

The child runs at the lowest CPU priority the kernel offers without privileges
(:func:`lower_priority`): it inherits the server's CPU affinity, so on a server pinned to one core (or
on a busy machine) it would otherwise take that core from the commands for as long as it builds and
serialises (hundreds of milliseconds at 100,000 orders), which showed as the p99 latency of the
commands (``make bench-server``, docs/performance.md, sessions 13 to 15). A ``nice`` value alone is
not enough: it ranks the writer only against the threads of its own scheduling group, and where the
kernel groups processes by session (``CONFIG_SCHED_AUTOGROUP``, the default of desktop and many server
kernels) that group is the server's, whose share it then spends at the server's full weight against
every other group, kernel worker threads included, among them those that complete the journal's
``fsync``: while a writer at nice 19 built a checkpoint, the journal's fsyncs took ~7 ms instead of
~1 (docs/performance.md, session 15). So the writer starts a session of its own (its own autogroup,
whose nice value it sets to 19), runs under ``SCHED_IDLE`` (any runnable thread of its group
preempts it at once) and at nice 19. Under a saturating load a checkpoint takes longer, never a
command; a writer still running after :data:`WRITER_RAISE_AFTER` seconds (other processes keeping
its cores busy) gets its autogroup back to nice 0, and :data:`WRITER_TIMEOUT` bounds it (the next
checkpoint retries). Its own session
also means a Ctrl-C to the server's process group does not reach it: the server stops it, or the
kernel does when the server dies (``PR_SET_PDEATHSIG``).

The file is written in chunks of :data:`CHUNK` bytes and, when it is to be fsynced, each chunk is
pushed to the disk (``sync_file_range``, waiting for it) before the next one is written, so that the
final ``fsync`` has almost nothing left to write. Written in one piece, the file (tens of megabytes)
sat dirty in the page cache until that ``fsync``, and the serving process's journal fsyncs meanwhile
took 12-31 ms (median; up to 62 ms) instead of about 1 ms: its group commits, so the commands'
latency, waited behind the checkpoint (docs/performance.md, session 14). The bytes on disk are the
same; a crash or ``kill -9`` between chunks leaves an incomplete temporary file, which is never
installed (the exchange installs only a file whose writer exited with status 0, and removes stale
temporary files when it opens).

The body is encoded piece by piece while it is written (:func:`write_state`): whole, a 37 MiB body
(50,000 resting orders) cost the writer 9,500 page faults of fresh memory and as much memory again;
the bytes on disk are the same (docs/performance.md, session 16).

Memory: the child touches (reference counts) most of the pages of the state it exports, so they are
copied while it runs: expect up to the state's size again, for about a second per 100,000 orders. Its
resource usage (CPU time, page faults: the copies among them) is :attr:`Flight.writer_usage` once it
has been reaped.

:data:`AVAILABLE` is False where ``fork`` is missing or unsafe with threads (not Linux): the exchange
then writes its checkpoints synchronously, as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import itertools
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NoReturn

from .checkpoints import CheckpointState, encode_checkpoint, iter_checkpoint

__all__ = [
    "AVAILABLE",
    "CHUNK",
    "DEFAULT_CHECKPOINT_SPACING",
    "Flight",
    "lower_priority",
    "spawn_writer",
    "temporary_name",
    "write_file",
    "write_state",
]

#: Background checkpoints are possible here (Linux: ``fork`` and ``prctl``).
AVAILABLE = sys.platform.startswith("linux") and hasattr(os, "fork")

#: Signals whose handlers the child resets to the default (a Ctrl-C to the process group ends it).
_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGPIPE")
    if hasattr(signal, name)
)
_PR_SET_PDEATHSIG = 1
#: Bytes written (and, with fsync, pushed to the disk) at a time by the writer.
CHUNK = 1 << 20
#: ``sync_file_range`` flags: wait for earlier writeback of the range, start it, wait for it.
_SYNC_FILE_RANGE_WAIT = 1 | 2 | 4
#: Seconds a writer may run before it is killed and its checkpoint counted as failed (a guard: a
#: million resting orders take about 15 s).
WRITER_TIMEOUT = 600.0
#: Seconds after which a writer still running gets its autogroup's nice value back to 0
#: (:meth:`Flight.wait_writer`): at nice 19 it yields to every other process, so on a core that other
#: processes keep busy it would barely progress; from then on it competes as a process of the
#: server's priority (SCHED_IDLE and nice 19 still rank it below the server's own threads).
WRITER_RAISE_AFTER = 30.0
#: Seconds at least between the end of one background checkpoint and the fork of the next, in
#: ``manticore serve`` (:class:`~manticore_matching.exchange.Exchange`'s ``checkpoint_spacing``; the
#: exchange's own default is 0): the end of one and the fork of the next each delay the commands of a
#: few milliseconds, and where the next falls due before the last has ended (a writer slower than
#: ``checkpoint_every`` records) they came back to back, their delays adding up in one burst
#: (docs/performance.md, session 22).
DEFAULT_CHECKPOINT_SPACING = 0.5
_counter = itertools.count(1)
_prctl: Callable[..., int] | None = None
_sync_file_range: Callable[..., int] | None = None
_libc_loaded = False
#: Prefix of the temporary files of background checkpoints in the data directory.
TEMPORARY_PREFIX = "checkpoint-"
TEMPORARY_SUFFIX = ".tmp"


def temporary_name(position: int) -> str:
    """A temporary file name for a background checkpoint at ``position``, unique in this process."""
    return f"{TEMPORARY_PREFIX}{os.getpid()}-{next(_counter)}-{position}{TEMPORARY_SUFFIX}"


def _load_libc() -> None:
    """Look up ``prctl`` and ``sync_file_range`` in the C library, once, in the parent (a ``dlopen``
    in the forked child could wait for a loader lock held by a thread that does not exist there)."""
    global _prctl, _sync_file_range, _libc_loaded
    if _libc_loaded:
        return
    _libc_loaded = True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # no C library to call: no death signal, no chunked flushing
        return
    _prctl = getattr(libc, "prctl", None)
    flush = getattr(libc, "sync_file_range", None)
    if flush is not None:
        flush.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
        flush.restype = ctypes.c_int
        _sync_file_range = flush


def write_file(
    descriptor: int, body: bytes | Iterable[bytes | memoryview], *, fsync: bool, chunk: int = CHUNK
) -> None:
    """Write ``body`` (bytes, or pieces written one after the other as they come: the file holds their
    concatenation) to the open file ``descriptor`` from its current offset (0: a fresh file); with
    ``fsync``, push every ``chunk`` bytes to the disk as soon as they are written, waiting for them
    (``sync_file_range``, where the C library has it), the last partial chunk at the end, and end with
    ``fsync``, the call that makes the file durable (a refused ``sync_file_range`` only stops the
    flushing per chunk: the ``fsync`` still decides). The flushed ranges are the same for bytes and
    for pieces of the same concatenation. OSError as ``os.write`` and ``os.fsync`` raise it; whatever
    an iterator of pieces raises, after what came before it was written."""
    _load_libc()
    flush = _sync_file_range if fsync else None
    pieces = (body,) if isinstance(body, (bytes, bytearray, memoryview)) else body
    written = 0  # bytes of body written so far
    flushed = 0  # of them, pushed to the disk (a multiple of chunk until the end)
    for piece in pieces:
        view = memoryview(piece)
        offset = 0
        while offset < len(view):
            # Never write past the next chunk's end: its flush then follows its last byte at once.
            end = min(len(view), offset + flushed + chunk - written)
            count = os.write(descriptor, view[offset:end])
            offset += count
            written += count
            if written - flushed == chunk:
                if flush is not None and flush(descriptor, flushed, chunk, _SYNC_FILE_RANGE_WAIT) != 0:
                    flush = None  # not supported here (or a disk error, which the fsync below reports)
                flushed = written
    if flush is not None and written > flushed:
        flush(descriptor, flushed, written - flushed, _SYNC_FILE_RANGE_WAIT)
    if fsync:
        os.fsync(descriptor)


def write_state(descriptor: int, state: CheckpointState, *, fsync: bool, chunk: int = CHUNK) -> None:
    """Write the checkpoint file of ``state`` to the fresh file ``descriptor`` (with :func:`write_file`):
    the bytes of :func:`~.checkpoints.encode_checkpoint`, encoded piece by piece while written
    (:func:`~.checkpoints.iter_checkpoint`), so that the body never exists whole in the writer's
    memory. Where orjson refuses a part, the file is emptied and the standard library's encoding
    written instead, as ``encode_checkpoint`` does."""
    try:
        write_file(descriptor, iter_checkpoint(state), fsync=fsync, chunk=chunk)
    except TypeError:
        os.ftruncate(descriptor, 0)
        os.lseek(descriptor, 0, os.SEEK_SET)
        write_file(descriptor, encode_checkpoint(state), fsync=fsync, chunk=chunk)


def spawn_writer(build: Callable[[], CheckpointState], temporary: Path, *, fsync: bool) -> int:
    """Fork a child that writes ``build()`` (called in the child) to ``temporary`` (fsynced when
    ``fsync``) and exits with status 0, or 1 on any failure; return its pid.

    Call it while nothing can change the state ``build`` reads (the exchange lock held by the command
    thread) from the thread that will wait for the child (the kernel ties ``PR_SET_PDEATHSIG`` to the
    forking thread). OSError if ``fork`` fails."""
    _load_libc()
    prctl = _prctl
    parent = os.getpid()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            _child(build, temporary, fsync, parent, prctl)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pid


def _child(
    build: Callable[[], CheckpointState],
    temporary: Path,
    fsync: bool,
    parent: int,
    prctl: Callable[..., int] | None,
) -> NoReturn:
    """The forked writer: never returns into the parent's code, never runs finalizers."""
    status = 1
    try:
        gc.disable()
        # First the descriptors: until they are closed this process shares the data directory's flock.
        os.closerange(3, _max_fd())
        null = os.open(os.devnull, os.O_RDWR)
        for standard in (0, 1, 2):  # nobody waits for the end of a pipe because of this process
            os.dup2(null, standard)
        os.close(null)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the death signal was asked for
            os._exit(1)
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        lower_priority()  # everything else first: a checkpoint may take longer, a command not
        state = build()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            write_state(descriptor, state, fsync=fsync)
        finally:
            os.close(descriptor)
        status = 0
    finally:
        os._exit(status)


def lower_priority() -> None:
    """Give the calling process (the forked writer) the lowest CPU priority it can take without
    privileges, against every other process and thread of the machine: a session of its own (so a
    scheduling autogroup of its own, where the kernel has them) whose autogroup nice value is 19, the
    ``SCHED_IDLE`` policy and nice 19. What the system refuses is skipped (no autogroup: no
    ``/proc/self/autogroup``; no ``SCHED_IDLE``: nice 19 only). Only for the forked writer: the
    caller leaves its session (unless it leads a process group, when its autogroup is not touched)."""
    try:
        os.setsid()
        own_session = True
    except OSError:  # a process group leader: the autogroup is still the server's, leave it alone
        own_session = False
    if own_session:
        with contextlib.suppress(OSError):
            descriptor = os.open("/proc/self/autogroup", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(descriptor, b"19")
            finally:
                os.close(descriptor)
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, idle, os.sched_param(0))
    os.nice(19)  # an increment, capped at 19


def _max_fd() -> int:
    try:
        return max(int(os.sysconf("SC_OPEN_MAX")), 1024)
    except (ValueError, OSError):
        return 65536


class Flight:
    """One background checkpoint at journal ``position``, from the fork to the retired segments.

    Stages, each an event: ``forked`` (the writer exists, or ``pid`` is None when the fork failed);
    ``prepared`` (``ok`` says whether the file is written and the journal and storage are durable up to
    ``position``; set by the flight's thread); ``landed`` (the command thread installed the file, or
    dropped it: ``installed``); ``done`` (the flight's thread finished: segments retired, or the
    temporary file removed)."""

    def __init__(self, position: int, temporary: Path) -> None:
        self.position = position
        self.temporary = temporary
        #: ``time.perf_counter()`` when the flight began.
        self.started = time.perf_counter()
        self.pid: int | None = None
        #: The fork's duration (wall clock) and the forking thread's CPU time in it (kernel included):
        #: what the command thread waited for.
        self.fork_seconds = 0.0
        self.fork_cpu_seconds = 0.0
        self.ok = False
        self.installed = False
        #: The second name of the checkpoint file this one replaced, removed by the flight's thread
        #: (:func:`~manticore_matching.checkpoints.install_checkpoint`).
        self.replaced: Path | None = None
        self.forked = threading.Event()
        self.prepared = threading.Event()
        self.landed = threading.Event()
        self.done = threading.Event()
        #: The writer's resource usage once reaped (:func:`os.wait4`): its CPU time and page faults,
        #: the copy-on-write copies it made among them. None until :meth:`wait_writer` returns.
        self.writer_usage: resource.struct_rusage | None = None
        self._reaped = False
        self._reap_lock = threading.Lock()

    def wait_writer(self, timeout: float = WRITER_TIMEOUT, raise_after: float = WRITER_RAISE_AFTER) -> int:
        """Wait for the writer to exit; return its exit status (negative: killed by that signal). A
        writer still running after ``raise_after`` seconds gets its autogroup's nice value set to 0
        (where it has an autogroup of its own: :func:`lower_priority`); one still running after
        ``timeout`` seconds is killed (status ``-SIGKILL``)."""
        assert self.pid is not None
        # Wait without reaping first, so that kill() and the autogroup never reach a reused pid.
        started = time.monotonic()
        deadline = started + timeout
        raise_at: float | None = started + raise_after
        pause = 0.001
        while os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
            now = time.monotonic()
            if raise_at is not None and now > raise_at:
                raise_at = None
                self._raise_writer()
            if now > deadline:
                self.kill()
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
                break
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        with self._reap_lock:
            self._reaped = True
            _, status, self.writer_usage = os.wait4(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def _raise_writer(self) -> None:
        """Set the writer's autogroup nice value to 0, if it leads an autogroup of its own (its own
        session: never the server's autogroup)."""
        assert self.pid is not None
        with contextlib.suppress(OSError):
            if os.getsid(self.pid) != self.pid:
                return
            descriptor = os.open(f"/proc/{self.pid}/autogroup", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(descriptor, b"0")
            finally:
                os.close(descriptor)

    def kill(self) -> None:
        """Stop the writer if it still runs (the checkpoint is no longer wanted)."""
        with self._reap_lock:
            if self.pid is not None and not self._reaped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
