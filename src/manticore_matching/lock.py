"""One owner per data directory: an exclusive OS lock on ``<data_dir>/LOCK``.

Whatever opens a data directory (the exchange, ``manticore serve``, the offline admin commands) takes
this lock before it reads or writes anything else there, and holds it until it closes. A second owner,
in another process or in the same one, gets :class:`DataDirectoryLocked` at once, naming the directory
and the process that holds it.

The lock is ``flock(LOCK_EX | LOCK_NB)`` on the lock file: the kernel drops it when the holder's file
descriptor closes, so a process killed with ``kill -9`` never leaves a lock behind. The file stays in
place; while held it contains the holder's process id (for the error message only: the lock itself is
the ``flock``, not the file's content). POSIX only (Linux, macOS).

A process the holder forked shares its ``flock`` until it closes its copy of the descriptor: the
exchange's background checkpoint writer (:mod:`.background`) closes it first thing, and dies with its
parent, but right after a ``kill -9`` of the holder (or a release by it) it may not have run yet. So
when the lock is taken and the file names no process (a release empties it) or one that no longer
exists, :meth:`DataDirectoryLock.acquire` tries again for up to :data:`ORPHAN_WAIT` seconds before it
gives up (a live holder writes its id right after it takes the lock, and is refused at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

__all__ = ["LOCK_FILE", "DataDirectoryLock", "DataDirectoryLocked"]

LOCK_FILE = "LOCK"
#: Seconds to wait for a lock whose recorded holder is gone (held by a process it forked).
ORPHAN_WAIT = 3.0


class DataDirectoryLocked(RuntimeError):
    """Another process (or another open exchange in this one) holds the data directory.

    Attributes:
        directory: the data directory (absolute, symbolic links resolved).
        pid: the holder's process id as it wrote it in the lock file, or None if unreadable.
    """

    def __init__(self, directory: Path, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"the data directory {directory} is in use by {holder} (a running manticore server?); "
            f"stop it first, or use another --data-dir"
        )
        self.directory = directory
        self.pid = pid


class DataDirectoryLock:
    """A held lock on one data directory; :meth:`acquire` takes it, :meth:`release` gives it back.

    Use as ``with DataDirectoryLock.acquire(path) as lock: ...`` or keep it for the process lifetime.
    """

    def __init__(self, directory: Path, descriptor: int) -> None:
        self.directory = directory
        self._descriptor: int | None = descriptor

    @classmethod
    def acquire(cls, directory: Path | str) -> DataDirectoryLock:
        """Create ``directory`` if missing and lock it; never waits.

        Raises:
            DataDirectoryLocked: someone holds the lock (nothing in the directory was read or written
                apart from opening the lock file).
            OSError: the directory or the lock file cannot be created.
        """
        path = Path(directory).resolve()
        path.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _lock(descriptor)
        except BlockingIOError:
            pid = _read_pid(descriptor)
            os.close(descriptor)
            raise DataDirectoryLocked(path, pid) from None
        except BaseException:
            os.close(descriptor)
            raise
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        return cls(path, descriptor)

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._descriptor is not None

    def release(self) -> None:
        """Give the lock back (idempotent). The lock file stays, emptied."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
        os.close(descriptor)  # closing the descriptor drops the flock

    def __enter__(self) -> DataDirectoryLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"DataDirectoryLock({str(self.directory)!r}, held={self.held})"


def _lock(descriptor: int) -> None:
    """``flock`` the descriptor; while the lock file names no holder (emptied by a release, or not
    written yet) or a process that no longer exists, retry for up to :data:`ORPHAN_WAIT` seconds.
    BlockingIOError if it stays held."""
    deadline = time.monotonic() + ORPHAN_WAIT
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pid = _read_pid(descriptor)
            orphaned = pid is None or (pid != os.getpid() and not _alive(pid))
            if not orphaned or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _alive(pid: int) -> bool:
    """A process ``pid`` exists (a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(descriptor: int) -> int | None:
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
