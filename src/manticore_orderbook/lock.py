"""The book's lock: re-entrant like ``threading.RLock``, and cheap to take when nobody holds it.

Why not ``threading.RLock``: on CPython 3.11 its ``acquire`` parses its (absent) arguments with
``PyArg_ParseTupleAndKeywords`` on every call. Taking and giving back an RLock costs about 770
instructions per book command under mypyc and about 1,260 in the interpreter, more than any other
fixed cost of a resting add (docs/performance.md).

How: the lock is one token in a ``collections.deque``. Taking it is ``deque.pop()`` and giving it back
``deque.append()``, each a single C call that no other thread can interleave with (the GIL, or the
deque's own critical section in a free-threaded build), and whose calls take no arguments to parse.
Whoever popped the token holds the lock and records its thread id, so that a nested call from the
same thread (an event handler or change recorder calling back into the book) only counts a level
of depth. A thread that finds the token gone and is not its holder waits on a
:class:`threading.Condition`; a release that sees waiters wakes one. A waiter counts itself under
the condition's lock before it tries the token again, and a release gives the token back before it
reads that count, so a wake-up cannot be lost (either the waiter sees the token, or the release sees
the waiter). The lock is not fair (neither is ``RLock``).

Only the book uses it (``OrderBook._lock``; :mod:`manticore_orderbook.restore` takes it with
``with``); ``release`` must be called by the holder, as for ``RLock``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from threading import Condition, Lock, get_ident
from typing import Final

__all__ = ["BookLock"]


class BookLock:
    """A re-entrant mutual-exclusion lock (see the module docstring).

    ``acquire()`` blocks until the calling thread holds the lock; a thread that already holds it
    goes one level deeper. ``release()`` undoes one ``acquire()``; it raises ``RuntimeError`` when
    nobody holds the lock, or when another thread releases a nested hold. The last release trusts its
    caller to be the holder (checking would cost a thread-id lookup per command; only the book's own
    ``try``/``finally`` and ``with`` blocks release it). ``with lock:`` does both.
    """

    __slots__ = ("_cond", "_depth", "_give", "_ident", "_owner", "_take", "_waiting")

    def __init__(self) -> None:
        token: deque[bool] = deque((True,))
        self._take: Final[Callable[[], bool]] = token.pop
        self._give: Final[Callable[[bool], None]] = token.append
        self._ident: Final[Callable[[], object]] = get_ident  # object: no unboxing of the id
        self._owner: object = None  # the holder's thread id, None while nobody holds the lock
        self._depth = 0  # nested acquires by the holder beyond the first
        self._waiting = 0  # threads waiting in _wait; changed only under _cond
        self._cond: Final = Condition(Lock())

    def acquire(self) -> None:
        """Take the lock, waiting while another thread holds it; re-entrant."""
        take = self._take
        try:
            take()
        except IndexError:  # held: by this thread (nested) or by another one (wait)
            self._acquire_held()
            return
        ident = self._ident
        self._owner = ident()

    def release(self) -> None:
        """Undo one ``acquire`` of the calling thread."""
        if self._depth:
            ident = self._ident
            if self._owner != ident():
                raise RuntimeError("cannot release a lock this thread does not hold")
            self._depth -= 1
            return
        if self._owner is None:
            raise RuntimeError("cannot release an unheld lock")
        self._owner = None
        give = self._give
        give(True)
        if self._waiting:
            cond = self._cond
            with cond:
                cond.notify()

    def _acquire_held(self) -> None:
        ident = self._ident
        me = ident()
        if self._owner == me:
            self._depth += 1
            return
        cond = self._cond
        take = self._take
        with cond:
            self._waiting += 1
            try:
                while True:
                    try:
                        take()
                        break
                    except IndexError:
                        cond.wait()
            finally:
                self._waiting -= 1
        self._owner = me

    def locked(self) -> bool:
        """Whether some thread holds the lock."""
        return self._owner is not None

    def __enter__(self) -> BookLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
