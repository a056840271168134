"""Automatic checkpoints written in the background (issue 17): commands go on while one is written,
the journal keeps every record a durable checkpoint does not cover, and a crash at any moment of one
loses nothing acknowledged.

The checkpoint is made observable (and slow) through the exchange's ``checkpoint_hook``, never through
the wall clock: a hook that blocks on an event holds a background checkpoint at a stage.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import Exchange, background
from manticore_matching.checkpoints import (
    encode_checkpoint,
    install_checkpoint,
    iter_checkpoint,
    read_checkpoint,
)
from tests.matching.exchange_streams import (
    MARKETS,
    Clock,
    apply,
    crash_releases_lock,
    make_stream,
    new_exchange,
    state,
)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not background.AVAILABLE, reason="background checkpoints need Linux fork")


class Stages:
    """A checkpoint hook that records the stages and can hold one stage until released."""

    def __init__(self, hold: str | None = None) -> None:
        self.hold = hold
        self.seen: list[tuple[str, int]] = []
        self.reached = threading.Event()
        self.release = threading.Event()
        self.changed = threading.Condition()
        self.check: Any = None  # called at the held stage, before it blocks

    def __call__(self, stage: str, position: int) -> None:
        with self.changed:
            self.seen.append((stage, position))
            self.changed.notify_all()
        if stage == self.hold:
            self.hold = None  # only the first time
            if self.check is not None:
                self.check(position)
            self.reached.set()
            assert self.release.wait(30)


def segments(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "journal").glob("journal-*.log"))


def segment_positions(data_dir: Path) -> list[int]:
    """Every position held by the journal's segments, in order (complete lines only)."""
    return [
        json.loads(line[9:])["n"]
        for path in segments(data_dir)
        for line in path.read_bytes().splitlines(keepends=True)
        if line.endswith(b"\n")
    ]


def start_checkpoint(exchange: Exchange, clock: Clock, stream: list[dict[str, Any]], index: int) -> int:
    """Apply commands from ``index`` until a background checkpoint is in flight; return the next index."""
    while not exchange.checkpoint_in_flight:
        apply(exchange, clock, stream[index])
        index += 1
    return index


def land(exchange: Exchange) -> None:
    """Let the background checkpoint in flight finish: once it is prepared, an expiry round (as the
    server's timer runs) installs it; then wait for its thread (the next one may start meanwhile)."""
    flight = exchange._flight
    assert flight is not None
    assert flight.prepared.wait(30)
    exchange.expire_due()
    assert flight.done.wait(30)


def checkpoint_position(data_dir: Path) -> int:
    saved = read_checkpoint(data_dir)
    return 0 if saved is None else saved["position"]


def test_commands_are_acknowledged_while_a_checkpoint_is_in_flight(tmp_path: Path) -> None:
    stages = Stages(hold="written")
    clock = Clock()
    stream = make_stream(3, 200)
    exchange = new_exchange(tmp_path, clock, checkpoint_every=20, checkpoint_hook=stages)
    exchange.open()
    index = start_checkpoint(exchange, clock, stream, 0)
    assert stages.reached.wait(30)
    assert exchange.checkpoint_in_flight
    held_position = next(position for stage, position in stages.seen if stage == "written")
    acknowledged_while_held = 0
    for command in stream[index : index + 60]:  # three times checkpoint_every: no second one starts
        position = apply(exchange, clock, command)
        index += 1
        if position is not None:
            assert exchange.wait_durable(position, 10)
            acknowledged_while_held += 1
    assert acknowledged_while_held > 20
    assert exchange.checkpoint_in_flight
    assert checkpoint_position(tmp_path) == 0  # nothing installed yet
    assert [s for s, _ in stages.seen].count("forked") == 1  # one in flight at a time
    stages.release.set()
    land(exchange)
    assert [s for s, _ in stages.seen][-3:] == ["prepared", "installed", "retired"]
    assert checkpoint_position(tmp_path) == held_position
    for command in stream[index:]:
        apply(exchange, clock, command)
    expected = state(exchange)
    exchange.close()
    with new_exchange(tmp_path, Clock()) as restored:
        assert state(restored) == expected


def test_segments_go_only_once_the_checkpoint_covering_them_is_durable(tmp_path: Path) -> None:
    stages = Stages(hold="prepared")
    clock = Clock()
    stream = make_stream(4, 400)
    exchange = new_exchange(tmp_path, clock, checkpoint_every=30, checkpoint_hook=stages)
    exchange.open()

    def nothing_retired_yet(position: int) -> None:
        # Prepared: the file is written and the journal durable up to the position, not installed yet.
        assert checkpoint_position(tmp_path) < position
        assert segment_positions(tmp_path)[0] == 1

    stages.check = nothing_retired_yet
    index = start_checkpoint(exchange, clock, stream, 0)
    assert stages.reached.wait(30)
    for command in stream[index : index + 10]:
        apply(exchange, clock, command)
    index += 10
    assert segment_positions(tmp_path)[0] == 1
    stages.release.set()
    land(exchange)
    position = next(p for s, p in stages.seen if s == "retired")
    positions = segment_positions(tmp_path)
    assert checkpoint_position(tmp_path) == position
    # What the journal still holds starts at or before the record after the checkpoint, and nothing
    # after the checkpoint was dropped.
    assert positions[0] <= position + 1
    assert positions == list(range(positions[0], exchange.journal.durable + 1))
    # Later checkpoints drop the segment that held records on both sides of this one.
    for command in stream[index:]:
        apply(exchange, clock, command)
    exchange.wait_durable(exchange.journal.appended)
    land(exchange)
    later = [p for s, p in stages.seen if s == "retired"][-1]
    assert later > position
    assert segment_positions(tmp_path)[0] > position
    assert segment_positions(tmp_path)[0] <= later + 1
    expected = state(exchange)
    exchange.close()
    with new_exchange(tmp_path, Clock()) as restored:
        assert state(restored) == expected


def test_a_failed_background_checkpoint_keeps_the_old_one_and_the_next_retries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures = {"left": 1}
    seen: list[tuple[str, int]] = []

    def hook(stage: str, position: int) -> None:
        seen.append((stage, position))
        if stage == "written" and failures["left"]:
            failures["left"] -= 1
            raise OSError("disk full (injected)")

    clock = Clock()
    stream = make_stream(5, 300)
    exchange = new_exchange(tmp_path, clock, checkpoint_every=25, checkpoint_hook=hook)
    exchange.open()
    with caplog.at_level(logging.ERROR, logger="manticore_matching"):
        for command in stream:
            apply(exchange, clock, command)
            exchange.wait_durable(exchange.journal.appended)
        for _ in range(200):  # go on until a later checkpoint is complete
            if "retired" in [s for s, _ in seen]:
                break
            apply(exchange, clock, {"op": "deposit", "user_id": "alice", "asset": "USD", "amount": "1"})
            if exchange.checkpoint_in_flight:
                land(exchange)
    assert any("background checkpoint" in r.message and "failed" in r.message for r in caplog.records)
    stages = [s for s, _ in seen]
    assert stages.index("failed") < stages.index("retired")  # the next one retried and succeeded
    failed = next(p for s, p in seen if s == "failed")
    assert not list(tmp_path.glob(f"checkpoint-*-{failed}.tmp"))  # the failed one's file is gone
    expected = state(exchange)
    exchange.close()
    with new_exchange(tmp_path, Clock()) as restored:
        assert state(restored) == expected


def test_close_settles_a_checkpoint_in_flight_and_writes_the_final_one(tmp_path: Path) -> None:
    stages = Stages(hold="forked")
    clock = Clock()
    exchange = new_exchange(tmp_path, clock, checkpoint_every=10, checkpoint_hook=stages)
    exchange.open()
    stream = make_stream(6, 100)
    start_checkpoint(exchange, clock, stream, 0)
    assert stages.reached.wait(30)
    closer = threading.Thread(target=exchange.close)
    closer.start()
    stages.release.set()
    closer.join(30)
    assert not closer.is_alive()
    assert checkpoint_position(tmp_path) == exchange.journal.appended
    assert not exchange.checkpoint_in_flight
    assert not list(tmp_path.glob("checkpoint-*.tmp"))


def test_without_background_checkpoints_the_command_path_writes_them(tmp_path: Path) -> None:
    seen: list[str] = []
    clock = Clock()
    exchange = new_exchange(
        tmp_path,
        clock,
        checkpoint_every=10,
        background_checkpoints=False,
        checkpoint_hook=lambda stage, _: seen.append(stage),
    )
    exchange.open()
    for command in make_stream(7, 80):
        apply(exchange, clock, command)
        assert not exchange.checkpoint_in_flight
    assert seen == []
    assert checkpoint_position(tmp_path) == exchange._checkpoint_position > 0
    exchange.close()


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    every=st.sampled_from([3, 7, 20]),
    cuts=st.lists(st.integers(0, 150), max_size=3),
)
def test_restarts_after_many_background_checkpoints_replay_to_the_same_state(
    tmp_path_factory: pytest.TempPathFactory, seed: int, every: int, cuts: list[int]
) -> None:
    """Many background checkpoints (each installed whenever its thread is ready), clean restarts and
    abandoned exchanges at random points: the same state as one uninterrupted run, and the journal
    always replays from the checkpoint on disk."""
    stream = make_stream(seed, 150)
    reference_clock = Clock()
    with new_exchange(tmp_path_factory.mktemp("reference"), reference_clock) as reference:
        for command in stream:
            apply(reference, reference_clock, command)
        expected = state(reference)
    directory = tmp_path_factory.mktemp("background")
    clock = Clock()
    exchange = new_exchange(directory, clock, checkpoint_every=every)
    exchange.open()
    for index, command in enumerate(stream):
        if index in cuts:
            exchange.wait_durable(exchange.journal.appended, 10)
            if index % 2:
                exchange.close()
            else:  # what a kill leaves, in-process: the journal as it is, no final checkpoint (a
                # checkpoint in flight is never installed: only the abandoned exchange would do it)
                exchange.journal.close()
                exchange.storage.close()  # type: ignore[union-attr]
                crash_releases_lock(exchange)
            exchange = new_exchange(directory, clock, checkpoint_every=every)
            exchange.open()
        apply(exchange, clock, command)
    exchange.wait_durable(exchange.journal.appended, 10)
    assert state(exchange) == expected
    exchange.close()
    with new_exchange(directory, Clock()) as restored:
        assert state(restored) == expected


# ---------------------------------------------------------------------- kill -9


def reference_states(seed: int, length: int, after: list[int]) -> dict[int, dict[str, Any]]:
    """The exchange's state after the first ``n`` commands of the stream, for each ``n`` in ``after``
    that the stream reaches."""
    states: dict[int, dict[str, Any]] = {}
    clock = Clock()
    with tempfile.TemporaryDirectory() as scratch, new_exchange(Path(scratch), clock) as reference:
        if 0 in after:
            states[0] = state(reference)
        for index, command in enumerate(make_stream(seed, length)[: max(after)]):
            apply(reference, clock, command)
            if index + 1 in after:
                states[index + 1] = state(reference)
    return states


def run_and_kill(
    data_dir: Path, seed: int, length: int, every: int, stage: str, occurrence: int, extra_acks: int
) -> int:
    """Run the child until it holds ``stage`` (its ``occurrence``-th time) and acknowledged
    ``extra_acks`` more commands, or, for stage ``none``, until ``extra_acks`` acknowledgements; SIGKILL
    it; return how many commands it acknowledged."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.matching.checkpoint_child",
            str(data_dir),
            str(seed),
            str(length),
            str(every),
            stage,
            str(occurrence),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acknowledged = 0
    held = stage == "none"
    after_held = 0
    try:
        for line in child.stdout:
            words = line.split()
            if not words:
                continue
            if words[0] == "ACK":
                acknowledged = int(words[1]) + 1
                if held:
                    after_held += 1
            elif words[0] == "STAGE" and words[1] == stage:
                occurrence -= 1
                held = occurrence == 0
            elif words[0] == "END":
                break
            if held and after_held >= extra_acks:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        # The child ran ahead of this reader: its last acknowledgement is in what the pipe still holds.
        for line in child.stdout:
            words = line.split()
            if words and words[0] == "ACK":
                acknowledged = int(words[1]) + 1
        child.stdout.close()
    return acknowledged


@pytest.mark.parametrize("stage", ["forked", "written", "prepared", "installed", "retired"])
def test_kill_9_during_a_background_checkpoint_loses_nothing_acknowledged(tmp_path: Path, stage: str) -> None:
    """SIGKILL while a background checkpoint is held at each stage (the second checkpoint: a first one
    is on disk), after a few more commands were acknowledged: the restart has every acknowledged
    command (and at most the one in progress besides)."""
    seed, length, every = 21, 1500, 40
    acknowledged = run_and_kill(tmp_path, seed, length, every, stage, 2, extra_acks=5)
    assert acknowledged < len(make_stream(seed, length)), "the child held the stage before its stream ended"
    with new_exchange(tmp_path, Clock()) as restored:
        found = state(restored)
    assert not list(tmp_path.glob("checkpoint-*.tmp"))  # the interrupted one's file was cleared
    assert found in reference_states(seed, length, [acknowledged, acknowledged + 1]).values()


@pytest.mark.parametrize("run", range(3))
def test_kill_9_at_a_random_moment_of_frequent_checkpoints_loses_nothing_acknowledged(
    tmp_path: Path, run: int
) -> None:
    rng = random.Random(f"{os.environ.get('MANTICORE_CRASH_SEED', 'checkpoints')}-{run}")
    seed, length = rng.randrange(10_000), 500
    every = rng.choice([3, 9, 25])
    acknowledged = run_and_kill(tmp_path, seed, length, every, "none", 0, extra_acks=rng.randrange(30, 450))
    with new_exchange(tmp_path, Clock()) as restored:
        found = state(restored)
    expected = reference_states(seed, length, [acknowledged, acknowledged + 1])
    assert found in expected.values(), f"seed {seed}, every {every}, {acknowledged} acknowledged"


def test_exchange_default_writes_automatic_checkpoints_in_the_background(tmp_path: Path) -> None:
    seen: list[str] = []
    exchange = Exchange(
        tmp_path, checkpoint_every=1, fsync=False, checkpoint_hook=lambda s, _: seen.append(s)
    )
    exchange.open()
    exchange.deposit("alice", "USD", "5")
    exchange.close()
    assert "forked" in seen


def test_finish_checkpoint_installs_the_one_in_flight(tmp_path: Path) -> None:
    stages = Stages(hold="forked")
    clock = Clock()
    exchange = new_exchange(tmp_path, clock, checkpoint_every=15, checkpoint_hook=stages)
    exchange.open()
    start_checkpoint(exchange, clock, make_stream(8, 100), 0)
    captured = exchange._flight.position  # type: ignore[union-attr]
    assert stages.reached.wait(30)
    finisher = threading.Thread(target=lambda: stages.seen.append(("finished", exchange.finish_checkpoint())))
    finisher.start()
    stages.release.set()
    finisher.join(30)
    assert stages.seen[-1] == ("finished", captured)
    assert checkpoint_position(tmp_path) == captured
    assert not exchange.checkpoint_in_flight
    exchange.close()


def _state_at(position: int) -> Any:
    return {"version": 1, "position": position, "markets": []}


def test_the_writer_writes_the_file_and_a_hanging_writer_is_killed(tmp_path: Path) -> None:
    target = tmp_path / "out.tmp"
    flight = background.Flight(7, target)
    flight.pid = background.spawn_writer(lambda: _state_at(7), target, fsync=True)
    assert flight.wait_writer() == 0
    assert json.loads(target.read_bytes()) == _state_at(7)

    def hang() -> Any:
        threading.Event().wait()

    stuck = background.Flight(8, tmp_path / "stuck.tmp")
    stuck.pid = background.spawn_writer(hang, stuck.temporary, fsync=False)
    assert stuck.wait_writer(timeout=0.3) == -signal.SIGKILL
    assert not stuck.temporary.exists()


def test_the_writers_resource_usage_counts_its_copy_on_write_copies(tmp_path: Path) -> None:
    pages = 2048
    shared = bytearray(pages * 4096)  # written here first: private pages the fork then shares

    def build() -> Any:
        for page in range(pages):  # each write copies a page shared with the parent
            shared[page * 4096] = 1
        return _state_at(3)

    flight = background.Flight(3, tmp_path / "out.tmp")
    assert flight.writer_usage is None
    flight.pid = background.spawn_writer(build, flight.temporary, fsync=False)
    assert flight.wait_writer() == 0
    usage = flight.writer_usage
    assert usage is not None
    assert usage.ru_minflt >= pages
    assert usage.ru_utime + usage.ru_stime > 0
    assert shared[0] == 0  # the parent's copy is untouched


def test_the_writer_closes_every_inherited_descriptor_before_it_builds(tmp_path: Path) -> None:
    with (tmp_path / "held").open("wb") as held:
        descriptor = held.fileno()

        def build() -> Any:
            try:
                os.fstat(descriptor)
            except OSError:  # closed in the writer (still open here)
                return _state_at(1)
            raise AssertionError("the parent's descriptor is still open in the writer")

        flight = background.Flight(1, tmp_path / "out.tmp")
        flight.pid = background.spawn_writer(build, flight.temporary, fsync=False)
        assert flight.wait_writer() == 0
        os.fstat(descriptor)  # the parent's own stays open


def _autogroup() -> str | None:
    """This process's scheduling autogroup as the kernel shows it (``/autogroup-N nice K``); an empty
    string in the kernel's default group (a process whose sessions all descend from init's without a
    ``setsid``, as under a CI runner: the kernel shows nothing for it); None without autogroups."""
    try:
        return Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        return None


def _group_name(autogroup: str) -> str:
    """``/autogroup-N`` of an :func:`_autogroup` text, ``""`` for the default group."""
    return autogroup.split()[0] if autogroup else ""


def test_the_writer_builds_at_the_lowest_cpu_priority(tmp_path: Path) -> None:
    """The writer inherits the server's CPU affinity: it yields a shared core to the commands and to
    every other process (regression: at the server's priority a checkpoint showed as the commands'
    p99; at nice 19 inside the server's autogroup, as the journal's fsyncs waiting for kernel
    workers). Its own session, so its own autogroup at nice 19, ``SCHED_IDLE``, nice 19; the
    server's session and autogroup stay as they were."""
    parent_group = _autogroup()

    def build() -> Any:
        return {
            **_state_at(3),
            "niceness": os.nice(0),
            "policy": os.sched_getscheduler(0),
            "session": os.getsid(0),
            "pid": os.getpid(),
            "autogroup": _autogroup(),
        }

    flight = background.Flight(3, tmp_path / "out.tmp")
    flight.pid = background.spawn_writer(build, flight.temporary, fsync=False)
    assert flight.wait_writer() == 0
    seen = json.loads(flight.temporary.read_bytes())
    assert seen["niceness"] == 19
    assert seen["policy"] == os.SCHED_IDLE
    assert seen["session"] == seen["pid"] != os.getsid(0)
    assert _autogroup() == parent_group
    if parent_group is not None:
        assert seen["autogroup"]  # a group of its own, never the default one
        assert _group_name(seen["autogroup"]) != _group_name(parent_group)
        if os.geteuid() == 0:  # unprivileged, the kernel may refuse a second change within 100 ms
            assert seen["autogroup"].endswith("nice 19")


def test_a_writer_still_running_gets_its_autogroup_back_to_nice_0(tmp_path: Path) -> None:
    """At nice 19 in its own autogroup a writer barely progresses on cores other processes keep busy:
    after ``raise_after`` seconds the waiting thread sets that autogroup's nice value to 0 (never
    the server's own autogroup)."""
    parent_group = _autogroup()
    if parent_group is None:
        pytest.skip("no scheduling autogroups here")

    def build() -> Any:
        for _ in range(3000):  # until the nice value changes, at most 30 s
            group = _autogroup()
            if group is not None and group.endswith("nice 0"):
                return {**_state_at(5), "autogroup": group}
            time.sleep(0.01)
        return {**_state_at(5), "autogroup": _autogroup()}

    flight = background.Flight(5, tmp_path / "out.tmp")
    flight.pid = background.spawn_writer(build, flight.temporary, fsync=False)
    assert flight.wait_writer(raise_after=0.2) == 0
    seen = json.loads(flight.temporary.read_bytes())["autogroup"]
    assert seen.endswith("nice 0")
    assert _group_name(seen) != _group_name(parent_group)
    assert _autogroup() == parent_group


#: Spins on one core until a file exists, then prints the share of the core it got.
_SPIN = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
start, cpu, n = time.monotonic(), time.process_time(), 0
while n % 4096 or not os.path.exists(sys.argv[2]):
    n += 1
print((time.process_time() - cpu) / (time.monotonic() - start))
"""

#: A server stand-in: in a session of its own, forks a writer that spins on the core and reports the
#: share of it it got.
_SPIN_WRITER = """
import json, os, sys, time
from pathlib import Path
from manticore_matching import background
core, out = int(sys.argv[1]), Path(sys.argv[2])

def build():
    os.sched_setaffinity(0, {core})
    start, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - start < 1.0:
        pass
    return {"share": (time.process_time() - cpu) / (time.monotonic() - start)}

flight = background.Flight(1, out)
flight.pid = background.spawn_writer(build, out, fsync=False)
print(flight.wait_writer())
"""


def test_the_writer_leaves_a_shared_core_to_another_session(tmp_path: Path) -> None:
    """A writer busy on the core of a process of another session (as a kernel worker thread, or the
    load of another service, is in another scheduling group) gets a small fraction of that process's
    share of the core, not an equal one (regression: at nice 19 in the server's autogroup, the only
    runnable task of that group, it ran at the server's full weight, and the journal's fsyncs waited
    for the kernel workers behind it). Discriminating where autogroups are on (where both sessions
    share one cgroup instead, nice 19 alone passes too)."""
    core = min(os.sched_getaffinity(0))
    stop = tmp_path / "stop"
    other = subprocess.Popen(
        [sys.executable, "-c", _SPIN, str(core), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out = tmp_path / "out.json"
    try:
        time.sleep(0.3)  # the other session spins first
        server = subprocess.run(
            [sys.executable, "-c", _SPIN_WRITER, str(core), str(out)],
            capture_output=True,
            text=True,
            start_new_session=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    finally:
        stop.touch()
        spun, _ = other.communicate(timeout=60)
    assert server.stdout.strip() == "0", server.stderr
    writer = json.loads(out.read_bytes())["share"]
    assert writer < 0.1 * float(spun), (writer, float(spun))


def test_a_refused_fork_writes_the_checkpoint_synchronously(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_: object, **__: object) -> int:
        raise OSError(12, "Cannot allocate memory (injected)")

    monkeypatch.setattr(background, "spawn_writer", refuse)
    clock = Clock()
    exchange = new_exchange(tmp_path, clock, checkpoint_every=10)
    exchange.open()
    with caplog.at_level(logging.ERROR, logger="manticore_matching"):
        for command in make_stream(9, 60):
            apply(exchange, clock, command)
            if exchange._checkpoint_position:
                break
    assert any("could not be forked" in r.message for r in caplog.records)
    assert not exchange.checkpoint_in_flight
    assert checkpoint_position(tmp_path) == exchange._checkpoint_position > 0
    exchange.close()


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=5000),
    chunk=st.integers(min_value=1, max_value=6000),
    fsync=st.booleans(),
)
def test_the_writer_s_chunked_file_holds_exactly_the_body(body: bytes, chunk: int, fsync: bool) -> None:
    """Whatever the chunk size, the file written holds the body, byte for byte (and, with fsync, every
    chunk was pushed to the disk in order, covering the body once)."""
    flushed: list[tuple[int, int]] = []
    real = background._sync_file_range

    def record(descriptor: int, offset: int, length: int, flags: int) -> int:
        flushed.append((offset, length))
        assert real is not None
        return real(descriptor, offset, length, flags)

    background._load_libc()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "out.tmp"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if real is not None:
                background._sync_file_range = record
            background.write_file(descriptor, body, fsync=fsync, chunk=chunk)
        finally:
            background._sync_file_range = real
            os.close(descriptor)
        assert path.read_bytes() == body
    if fsync and real is not None:
        starts = list(range(0, len(body), chunk))
        assert flushed == [(start, min(chunk, len(body) - start)) for start in starts]
    else:
        assert flushed == []


def test_a_refused_chunk_flush_leaves_the_durability_to_the_final_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sync_file_range`` refused (a file system without it): the writer stops flushing per chunk and
    still writes the whole file and fsyncs it (``os.fsync`` is what makes it durable, and what fails
    on a disk error)."""
    background._load_libc()
    calls: list[int] = []
    synced: list[int] = []
    real_fsync = os.fsync

    def refuse(descriptor: int, offset: int, length: int, flags: int) -> int:
        calls.append(offset)
        return -1

    def fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(background, "_sync_file_range", refuse)
    monkeypatch.setattr(os, "fsync", fsync)
    body = bytes(range(256)) * 40
    path = tmp_path / "out.tmp"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        background.write_file(descriptor, body, fsync=True, chunk=1000)
    finally:
        os.close(descriptor)
    assert path.read_bytes() == body
    assert calls == [0]  # refused once, then no more attempts
    assert synced == [descriptor]


def test_kill_9_of_the_writer_between_two_chunks_installs_nothing_and_the_next_one_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer killed after its first chunks are on the disk (a SIGKILL of the writer alone, as a
    crash would): the partial file is not installed, the old checkpoint stays, the temporary file is
    removed, and the next checkpoint is complete; a restart finds the same state."""
    background._load_libc()
    real = background._sync_file_range
    stall = tmp_path / "stall"  # while it exists, a writer stops after its second chunk
    marker = tmp_path / "writer-between-chunks"
    calls = {"n": 0}

    def stall_after_two(descriptor: int, offset: int, length: int, flags: int) -> int:
        # Runs in the forked writers (each starts from the parent's count, 0).
        calls["n"] += 1
        result = real(descriptor, offset, length, flags) if real is not None else 0
        if calls["n"] == 2 and stall.exists():
            marker.write_text(str(os.getpid()))
            threading.Event().wait()  # until killed
        return result

    monkeypatch.setattr(background, "_sync_file_range", stall_after_two)
    real_write = background.write_file

    def small_chunks(descriptor: int, body: bytes, *, fsync: bool, chunk: int = 64) -> None:
        real_write(descriptor, body, fsync=fsync, chunk=64)

    monkeypatch.setattr(background, "write_file", small_chunks)
    stages = Stages()
    clock = Clock()
    stream = make_stream(13, 400)
    # fsync on: only a writer that must make its file durable flushes chunk by chunk.
    exchange = Exchange(
        tmp_path, markets=MARKETS, clock=clock, fsync=True, checkpoint_every=30, checkpoint_hook=stages
    )
    exchange.open()
    index = 0
    first: int | None = None
    while first is None:  # a first checkpoint on disk
        apply(exchange, clock, stream[index])
        index += 1
        if exchange.checkpoint_in_flight:
            land(exchange)
            first = checkpoint_position(tmp_path)
    assert first > 0
    stall.write_text("")
    index = start_checkpoint(exchange, clock, stream, index)
    flight = exchange._flight
    assert flight is not None
    while not marker.exists():  # the writer has flushed two chunks and waits
        assert flight.pid is not None
        assert os.waitid(os.P_PID, flight.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None
        threading.Event().wait(0.01)
    partial = flight.temporary.read_bytes()
    os.kill(flight.pid, signal.SIGKILL)
    assert flight.prepared.wait(30)
    exchange.expire_due()  # lands (drops) it
    assert flight.done.wait(30)
    assert not flight.installed
    assert len(partial) >= 128
    assert checkpoint_position(tmp_path) == first  # the old checkpoint stays
    assert not flight.temporary.exists()
    stall.unlink()  # the next writers run through
    while not any(s == "retired" and p > flight.position for s, p in stages.seen):
        apply(exchange, clock, stream[index])
        index += 1
        if exchange.checkpoint_in_flight:
            land(exchange)
    assert checkpoint_position(tmp_path) > flight.position
    expected = state(exchange)
    exchange.close()
    with new_exchange(tmp_path, Clock()) as restored:
        assert state(restored) == expected


def test_installing_keeps_a_second_name_for_the_replaced_checkpoint(tmp_path: Path) -> None:
    """The rename that installs a checkpoint only drops a name of the old file (its blocks are freed
    when the second name goes, off the command path); the names match the stale temporary files an
    opening exchange removes."""
    first = tmp_path / "checkpoint-1-1-5.tmp"
    first.write_bytes(b'{"position": 5}')
    assert install_checkpoint(tmp_path, first) is None  # nothing replaced
    second = tmp_path / "checkpoint-1-2-9.tmp"
    second.write_bytes(b'{"position": 9}')
    replaced = install_checkpoint(tmp_path, second)
    assert replaced is not None
    assert replaced.read_bytes() == b'{"position": 5}'
    assert (tmp_path / "checkpoint.json").read_bytes() == b'{"position": 9}'
    assert replaced.match(f"{background.TEMPORARY_PREFIX}*{background.TEMPORARY_SUFFIX}")
    assert not second.exists()


def test_a_background_checkpoint_removes_the_replaced_file_off_the_command_path(tmp_path: Path) -> None:
    """The second name of the replaced checkpoint exists from the install until the flight's thread
    retires the journal segments, then no more: no file is left behind."""
    seen: list[tuple[str, int, list[str]]] = []

    def hook(stage: str, position: int) -> None:
        seen.append((stage, position, sorted(p.name for p in tmp_path.glob("checkpoint-*-replaced.tmp"))))

    clock = Clock()
    stream = make_stream(17, 400)
    exchange = new_exchange(tmp_path, clock, checkpoint_every=20, checkpoint_hook=hook)
    exchange.open()
    index = 0
    while sum(1 for s, _, _ in seen if s == "retired") < 2:
        apply(exchange, clock, stream[index])
        index += 1
        if exchange.checkpoint_in_flight:
            land(exchange)
    installed = [names for s, _, names in seen if s == "installed"]
    assert installed[0] == []  # the first install replaced nothing
    assert len(installed[1]) == 1  # the second kept the first one's file under a second name ...
    assert not list(tmp_path.glob("checkpoint-*.tmp"))  # ... which is gone once the flight is done
    exchange.close()


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=12) | st.dictionaries(st.text(max_size=6), inner, max_size=12),
    max_leaves=60,
)


@settings(max_examples=200, deadline=None)
@given(
    state=st.dictionaries(st.text(max_size=6), _json, max_size=8), size=st.integers(min_value=1, max_value=14)
)
def test_the_checkpoint_encoded_in_pieces_is_orjson_s_encoding_byte_for_byte(
    state: dict[str, Any], size: int
) -> None:
    """Whatever the state and the slice size, the pieces join to ``orjson.dumps(state)``."""
    pieces = list(iter_checkpoint(state, slice_items=size))  # type: ignore[arg-type]
    assert b"".join(pieces) == orjson.dumps(state)


def test_no_piece_of_a_large_checkpoint_holds_more_than_a_slice_of_its_orders() -> None:
    orders = [{"order_id": f"o{n:05}", "price": "30000.5", "quantity": "0.01"} for n in range(10_000)]
    state = {"version": 1, "books": {"BTC/USD": {"orders": orders}}, "risk": {"orders": orders}}
    pieces = list(iter_checkpoint(state, slice_items=500))  # type: ignore[arg-type]
    body = orjson.dumps(state)
    assert b"".join(pieces) == body
    assert max(len(piece) for piece in pieces) < len(orjson.dumps(orders[:501]))


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=5000),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12),
    chunk=st.integers(min_value=1, max_value=6000),
)
def test_the_file_written_from_pieces_is_the_file_written_from_their_bytes(
    body: bytes, cuts: list[int], chunk: int
) -> None:
    """Pieces (any split, empty pieces included) give the same file and the same flushed ranges as
    their concatenation written whole."""
    bounds = [0, *sorted(min(cut, len(body)) for cut in cuts), len(body)]
    pieces = [body[start:end] for start, end in itertools.pairwise(bounds)]
    real = background._sync_file_range
    background._load_libc()
    written: list[tuple[bytes, list[tuple[int, int]]]] = []
    for source in (body, iter(pieces)):
        flushed: list[tuple[int, int]] = []

        def record(
            descriptor: int, offset: int, length: int, flags: int, flushed: list[tuple[int, int]] = flushed
        ) -> int:
            flushed.append((offset, length))
            return 0

        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "out.tmp"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                background._sync_file_range = record
                background.write_file(descriptor, source, fsync=True, chunk=chunk)
            finally:
                background._sync_file_range = real
                os.close(descriptor)
            written.append((path.read_bytes(), flushed))
    assert written[0] == written[1]
    assert written[0][0] == body


@pytest.mark.parametrize("refused", [False, True])
def test_the_writer_s_file_is_encode_checkpoint_s_bytes_even_where_orjson_refuses_a_late_part(
    tmp_path: Path, refused: bool
) -> None:
    """A value orjson refuses (an integer beyond 64 bits) in the last order, after pieces were already
    written: the file is emptied and holds the standard library's encoding, as ``encode_checkpoint``
    gives; otherwise it holds orjson's."""
    orders: list[dict[str, Any]] = [{"order_id": f"o{n}", "quantity": n} for n in range(3_000)]
    if refused:
        orders[-1]["quantity"] = 2**70
    state: Any = {"version": 1, "books": {"BTC/USD": {"orders": orders}}, "risk": {}}
    path = tmp_path / "out.tmp"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        background.write_state(descriptor, state, fsync=False, chunk=4096)
    finally:
        os.close(descriptor)
    assert path.read_bytes() == encode_checkpoint(state)
    if refused:
        assert str(2**70).encode() in path.read_bytes()
    else:
        assert path.read_bytes() == orjson.dumps(state)
