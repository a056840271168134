"""The spacing between two background checkpoints (``checkpoint_spacing``, issue 17, session 22).

When the next automatic checkpoint falls due before the last one has ended (a writer slower than
``checkpoint_every`` records), it waits until ``checkpoint_spacing`` seconds after that end instead of
forking at the first command after it; with 0 it forks at once, as before. It does start once the
spacing has passed (commands keep coming), and what it writes restores the same state. The option
reaches the exchange from ``ServerOptions`` and ``manticore serve`` (default
:data:`~manticore_matching.background.DEFAULT_CHECKPOINT_SPACING`).
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from manticore_api import cli
from manticore_api.server import ServerOptions
from manticore_matching import Exchange, background
from manticore_matching.background import DEFAULT_CHECKPOINT_SPACING
from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange, state

pytestmark = pytest.mark.skipif(not background.AVAILABLE, reason="background checkpoints need Linux fork")


class Timeline:
    """A checkpoint hook recording ``(stage, position, time.monotonic())``; holds the first flight at
    ``"written"`` until :attr:`release` is set."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, float]] = []
        self.held = threading.Event()
        self.release = threading.Event()
        self._first = True

    def __call__(self, stage: str, position: int) -> None:
        self.seen.append((stage, position, time.monotonic()))
        if stage == "written" and self._first:
            self._first = False
            self.held.set()
            assert self.release.wait(30)

    def times(self, stage: str) -> list[float]:
        return [at for name, _, at in self.seen if name == stage]


def _second_fork_after_an_overdue_end(
    tmp_path: Path, spacing: float, pause: float
) -> tuple[Timeline, Exchange, Clock, list[dict[str, Any]], int]:
    """Hold the first background checkpoint until three checkpoints' worth of commands have been
    applied (so the next is due when it ends), let it end, then apply one command every ``pause``
    seconds until the second one forks (at most 5 s)."""
    timeline = Timeline()
    clock = Clock()
    stream = make_stream(11, 2_000)
    exchange = new_exchange(
        tmp_path, clock, checkpoint_every=10, checkpoint_hook=timeline, checkpoint_spacing=spacing
    )
    exchange.open()
    index = 0
    while not exchange.checkpoint_in_flight:
        apply(exchange, clock, stream[index])
        index += 1
    assert timeline.held.wait(30)
    for command in stream[index : index + 30]:  # three times checkpoint_every while it is held
        apply(exchange, clock, command)
    index += 30
    flight = exchange._flight
    assert flight is not None
    timeline.release.set()
    assert flight.prepared.wait(30)
    exchange.expire_due()  # installs it (as the server's timer does)
    assert flight.done.wait(30)
    deadline = time.monotonic() + 5
    while len(timeline.times("forked")) < 2 and time.monotonic() < deadline:
        apply(exchange, clock, stream[index])
        index += 1
        time.sleep(pause)
    return timeline, exchange, clock, stream, index


def test_a_due_checkpoint_waits_the_spacing_after_the_last_one_ends(tmp_path: Path) -> None:
    timeline, exchange, clock, stream, index = _second_fork_after_an_overdue_end(tmp_path, 0.4, 0.005)
    retired = timeline.times("retired")
    forked = timeline.times("forked")
    assert len(retired) >= 1
    assert len(forked) == 2, timeline.seen  # it did start once the spacing had passed
    assert forked[1] - retired[0] >= 0.4
    assert forked[1] - retired[0] < 3.0
    exchange.finish_checkpoint()
    for command in stream[index : index + 50]:
        apply(exchange, clock, command)
    expected = state(exchange)
    exchange.close()
    with new_exchange(tmp_path, Clock()) as restored:
        assert state(restored) == expected


def test_without_spacing_the_next_checkpoint_forks_at_the_first_command_after_the_end(
    tmp_path: Path,
) -> None:
    timeline, exchange, *_ = _second_fork_after_an_overdue_end(tmp_path, 0.0, 0.0)
    forked = timeline.times("forked")
    assert len(forked) == 2
    assert forked[1] - timeline.times("retired")[0] < 0.4
    exchange.close()


def test_commands_while_a_checkpoint_waits_its_spacing_are_acknowledged(tmp_path: Path) -> None:
    timeline = Timeline()
    timeline.release.set()  # nothing held
    clock = Clock()
    stream = make_stream(12, 400)
    exchange = new_exchange(
        tmp_path, clock, checkpoint_every=5, checkpoint_hook=timeline, checkpoint_spacing=60
    )
    with exchange:
        for command in stream[:40]:
            apply(exchange, clock, command)
        flight = exchange._flight
        assert flight is not None
        assert flight.prepared.wait(30)
        exchange.expire_due()
        assert flight.done.wait(30)
        for command in stream[40:200]:  # due all along, but 60 s have not passed: no second fork
            position = apply(exchange, clock, command)
            if position is not None:
                assert exchange.wait_durable(position, 10)
        assert len(timeline.times("forked")) == 1
        assert not exchange.checkpoint_in_flight


@pytest.mark.parametrize("spacing", [-0.1, math.nan])
def test_a_negative_or_undefined_spacing_is_refused(tmp_path: Path, spacing: float) -> None:
    with pytest.raises(ValueError, match="checkpoint_spacing"):
        Exchange(tmp_path, checkpoint_spacing=spacing)


def test_serve_passes_the_spacing_through_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[ServerOptions] = []

    def fake_run_server(options: ServerOptions, **_: Any) -> None:
        seen.append(options)

    monkeypatch.setattr(cli, "run_server", fake_run_server)
    data_dir = str(tmp_path / "d")
    result = CliRunner().invoke(cli.main, ["serve", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli.main, ["serve", "--data-dir", data_dir, "--checkpoint-spacing", "0"])
    assert result.exit_code == 0, result.output
    assert [options.checkpoint_spacing for options in seen] == [DEFAULT_CHECKPOINT_SPACING, 0.0]
    assert DEFAULT_CHECKPOINT_SPACING == 0.5
    result = CliRunner().invoke(cli.main, ["serve", "--data-dir", data_dir, "--checkpoint-spacing", "-1"])
    assert result.exit_code == 2


def test_open_data_dir_gives_the_exchange_the_spacing(tmp_path: Path) -> None:
    from manticore_api.server import open_data_dir

    exchange, auth = open_data_dir(ServerOptions(data_dir=tmp_path, checkpoint_spacing=0.25))
    try:
        assert exchange._checkpoint_spacing == 0.25
    finally:
        auth.close()
        exchange.close(checkpoint=False)


def test_an_idle_exchange_starts_the_waiting_checkpoint_once_the_spacing_has_passed(tmp_path: Path) -> None:
    timeline = Timeline()
    timeline.release.set()
    clock = Clock()
    stream = make_stream(13, 400)
    exchange = new_exchange(
        tmp_path, clock, checkpoint_every=5, checkpoint_hook=timeline, checkpoint_spacing=0.3
    )
    with exchange:
        for command in stream[:40]:
            apply(exchange, clock, command)
        flight = exchange._flight
        assert flight is not None
        assert flight.prepared.wait(30)
        exchange.expire_due()
        assert flight.done.wait(30)
        apply(exchange, clock, stream[40])  # due, too soon: it waits
        assert len(timeline.times("forked")) == 1
        deadline = time.monotonic() + 5
        while len(timeline.times("forked")) < 2 and time.monotonic() < deadline:
            exchange.expire_due()  # the server's timer; no command comes
            time.sleep(0.02)
        forked = timeline.times("forked")
        assert len(forked) == 2
        assert forked[1] - timeline.times("retired")[0] >= 0.3
