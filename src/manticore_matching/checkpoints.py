"""The checkpoint file: its format, and writing and reading it safely.

``<data_dir>/checkpoint.json`` holds one JSON object (:class:`CheckpointState`): ``version`` (1), the
journal ``position`` it covers, the exchange's clock reading ``time``, the order-id counter
``next_order_no``, every market's config (``markets``, in creation order), every book's
``export_state()`` (``books``), each market's recent trades oldest first (``trades``), the risk
ledger (``risk``) and, when there are any, the remembered command ids (``commands``, see
:mod:`.command_ids`; a checkpoint without them is read as remembering none). It is written to a
temporary file, fsynced and renamed over the old one, so a crash leaves either the old or the new
checkpoint, never a torn one; with ``fsync`` the directory is synced after the rename, before any
journal segment the new checkpoint makes unnecessary is deleted. Written and read with orjson (the
standard library only for what orjson refuses: ~10x faster on a large book).

Who writes it: the exchange's automatic checkpoints (every ``checkpoint_every`` records) are built and
written by a forked copy of the process while commands go on (:mod:`.background`), then installed
with :func:`install_checkpoint`; :meth:`~manticore_matching.exchange.Exchange.checkpoint` (explicit,
and on close) writes one synchronously with :func:`write_checkpoint`.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import orjson

from .commands import legacy_client_id
from .journal import JournalCorrupt
from .market import Market

__all__ = [
    "CHECKPOINT",
    "VERSION",
    "CheckpointState",
    "build_checkpoint",
    "encode_checkpoint",
    "iter_checkpoint",
    "install_checkpoint",
    "read_checkpoint",
    "sync_directory",
    "write_checkpoint",
]

#: The checkpoint's file name inside the data directory.
CHECKPOINT = "checkpoint.json"
#: The format written (and the only one read).
VERSION = 1


class _Required(TypedDict):
    """The keys every checkpoint has."""

    version: int
    position: int
    time: float
    next_order_no: int
    markets: list[dict[str, Any]]
    books: dict[str, dict[str, Any]]
    trades: dict[str, list[dict[str, Any]]]
    risk: dict[str, Any]


class CheckpointState(_Required, total=False):
    """The checkpoint's content (see the module docstring)."""

    #: Remembered command ids (:meth:`~.command_ids.CommandResults.export_state`); absent before them.
    commands: list[list[Any]]


def build_checkpoint(
    position: int,
    now: float,
    next_order_no: int,
    markets: dict[str, Market],
    risk: dict[str, Any],
    *,
    commands: list[list[Any]] | None = None,
) -> CheckpointState:
    """The checkpoint of ``markets`` (by symbol, in creation order), the risk ledger's exported
    ``risk`` and the remembered command ids ``commands`` at journal ``position``, clock reading ``now``."""
    state: CheckpointState = {
        "version": VERSION,
        "position": position,
        "time": now,
        "next_order_no": next_order_no,
        "markets": [market.config.to_dict() for market in markets.values()],
        "books": {symbol: market.book.export_state() for symbol, market in markets.items()},
        "trades": {symbol: list(market.trades) for symbol, market in markets.items()},
        "risk": risk,
    }
    if commands:
        state["commands"] = commands
    return state


def encode_checkpoint(state: CheckpointState) -> bytes:
    """The file body of ``state``: orjson, or the standard library for what orjson refuses (an integer
    beyond 64 bits, say)."""
    try:
        return orjson.dumps(state)
    except TypeError:
        return json.dumps(state, separators=(",", ":")).encode()


#: Items of a large list or dict encoded by one ``orjson.dumps`` call in :func:`iter_checkpoint`.
SLICE = 1_000
#: Levels of small dicts :func:`iter_checkpoint` descends into (the state, ``books``, one book).
_DEPTH = 3


def iter_checkpoint(state: CheckpointState, *, slice_items: int = SLICE) -> Iterator[bytes | memoryview]:
    """The orjson encoding of ``state`` in pieces (bytes, or memoryviews of orjson's output: no piece is
    copied): their concatenation is ``orjson.dumps(state)`` byte for byte, but no piece holds more
    than ``slice_items`` items of a large list or dict (the resting orders), so the body of a large
    checkpoint (tens of megabytes) never exists whole in memory.

    Used by the background writer (:func:`~.background.write_file` writes the pieces as they come):
    the whole body cost the writer a fresh page per 4 KiB of it (a page fault each) and as much memory
    again as the file's size. TypeError (``orjson.JSONEncodeError``) when orjson refuses a part, at
    the piece that holds it: the caller then falls back to :func:`encode_checkpoint`'s standard
    library encoding, as orjson refusing the whole state would."""
    return _pieces(state, _DEPTH, max(1, slice_items))


def _pieces(value: Any, depth: int, size: int) -> Iterator[bytes | memoryview]:
    dumps = orjson.dumps
    kind = type(value)
    if kind is list and len(value) > size:
        yield b"["
        for start in range(0, len(value), size):
            if start:
                yield b","
            yield memoryview(dumps(value[start : start + size]))[1:-1]  # no copy of the slice's bytes
        yield b"]"
    elif kind is dict and len(value) > size:
        items = iter(value.items())
        yield b"{"
        first = True
        while part_items := dict(itertools.islice(items, size)):
            if not first:
                yield b","
            yield memoryview(dumps(part_items))[1:-1]
            first = False
        yield b"}"
    elif kind is dict and depth > 0:
        yield b"{"
        first = True
        for key, item in value.items():
            if type(key) is not str:  # orjson refuses such a key in a dict: so does this
                raise orjson.JSONEncodeError("Dict key must be str")
            head = dumps(key) + b":"
            yield head if first else b"," + head
            first = False
            yield from _pieces(item, depth - 1, size)
        yield b"}"
    else:
        yield dumps(value)


def write_checkpoint(data_dir: Path, state: CheckpointState, *, fsync: bool) -> None:
    """Replace ``data_dir``'s checkpoint with ``state`` atomically (the file and then the directory
    fsynced when ``fsync``)."""
    path = data_dir / CHECKPOINT
    temporary = path.with_suffix(".tmp")
    body = encode_checkpoint(state)
    with temporary.open("wb") as handle:
        handle.write(body)
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
    replaced = install_checkpoint(data_dir, temporary)
    if fsync:
        sync_directory(data_dir)
    if replaced is not None:
        replaced.unlink(missing_ok=True)


#: How the second name of a replaced checkpoint ends (see :func:`install_checkpoint`).
REPLACED_SUFFIX = "-replaced.tmp"


def install_checkpoint(data_dir: Path, temporary: Path) -> Path | None:
    """Rename the complete (and, if wanted, fsynced) checkpoint file ``temporary`` over ``data_dir``'s
    checkpoint. The rename is atomic; it is durable once :func:`sync_directory` has run.

    The checkpoint it replaces first gets a second name (a hard link beside ``temporary``, ending in
    :data:`REPLACED_SUFFIX`), returned (None when there was no checkpoint, or the file system refused
    the link): the rename then only drops a name instead of freeing the old file's blocks (tens of
    megabytes: milliseconds, on the command thread that installs), and the caller removes that name
    when it may take the time. A crash before it does leaves a ``checkpoint-*.tmp`` file, which the
    exchange removes when it opens; nothing ever reads it."""
    target = data_dir / CHECKPOINT
    name = temporary.with_name(temporary.name.removesuffix(".tmp") + REPLACED_SUFFIX)
    name.unlink(missing_ok=True)  # one a crash left would keep an older file alive, not this one
    replaced: Path | None = name
    try:
        os.link(target, name)
    except OSError:  # no checkpoint yet, or no hard links here: the rename frees the old file itself
        replaced = None
    os.replace(temporary, target)
    return replaced


def sync_directory(directory: Path) -> None:
    """fsync ``directory`` (makes a rename or a new file in it durable)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_checkpoint(data_dir: Path) -> CheckpointState | None:
    """``data_dir``'s checkpoint, or None when there is none. Raises
    :class:`~manticore_matching.journal.JournalCorrupt` for an unknown version.

    Orders of a checkpoint written before client order ids were separate (issue 13) gain their
    ``client_order_id`` here (see :func:`~manticore_matching.commands.legacy_client_id`)."""
    path = data_dir / CHECKPOINT
    if not path.exists():
        return None
    body = path.read_bytes()
    try:
        state: CheckpointState = orjson.loads(body)
    except ValueError:  # NaN or Infinity, which only the standard library wrote and reads
        state = json.loads(body)
    if state.get("version") != VERSION:
        raise JournalCorrupt(f"{path} has an unknown version")
    for book_state in state["books"].values():
        for order in book_state.get("orders", ()):
            if "client_order_id" not in order:
                order["client_order_id"] = legacy_client_id(order["order_id"])
    return state
