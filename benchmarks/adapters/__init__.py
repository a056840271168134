"""One adapter module per engine; each is importable in its engine's own virtualenv on its own.

Every adapter module provides the same functions (see :mod:`benchmarks.adapters._common` for the shared
pieces; nothing here imports an engine):

* ``LABEL``: the engine's display name; ``SUPPORTS_EVENTS``: whether a subscriber can be attached.
* ``describe() -> dict``: engine version and where it was imported from.
* ``setup(subscriber: bool) -> None``: create a fresh, empty book (module state); with ``subscriber`` a
  handler that counts events is subscribed to every event type.
* ``native(op) -> (is_cancel, args)``: convert one workload op (see :mod:`benchmarks.workloads`) to the
  engine's own call arguments ahead of time, so conversion is never timed.
* ``bound() -> (add, cancel)``: the engine's own bound methods; the hot loop calls ``add(*args)`` or
  ``cancel(args)``.
* ``add(side, price, qty, oid)`` / ``cancel(oid)``: convenience calls with workload units (ticks, lots,
  integer ids).
* ``summary() -> dict[str, int]``: the final book (orders, lots, levels per side) for the correctness check.
* ``event_counts() -> dict[str, int]``: events delivered to the subscriber, by event type name.
* ``teardown() -> None``: drop the book.
"""

ENGINES = ("ours", "legacy", "lob")
