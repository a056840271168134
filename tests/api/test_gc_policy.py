"""The serving process's GC policy, the pause recorder behind ``GET /api/metrics/gc``, and the access
log flag of ``manticore serve``."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from manticore_api import create_app
from manticore_api.cli import main
from manticore_api.gcpolicy import (
    DEFAULT_THRESHOLDS,
    GcPauseRecorder,
    GcPolicy,
    _refreeze,
    start_refreezing,
    stop_refreezing,
)
from manticore_api.server import ServerOptions, build_service
from tests.api.support import Server

GC_KEYS = {
    "collections",
    "pauses",
    "total_pause_ms",
    "max_pause_ms",
    "pauses_over_10ms",
    "frozen_objects",
    "thresholds",
}


class _StepClock:
    """A clock that advances by ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_recorder_counts_each_collection_and_its_pause(quiet_gc: None) -> None:
    recorder = GcPauseRecorder(clock=_StepClock(0.015))  # every pause reads as 15 ms
    recorder.install()
    try:
        gc.collect(0)
        gc.collect(1)
        gc.collect(2)
        gc.collect(2)
    finally:
        recorder.uninstall()
    report = recorder.snapshot()
    assert report["collections"] == [1, 1, 2]
    assert report["pauses"] == 4
    assert report["total_pause_ms"] == pytest.approx(60.0)
    assert report["max_pause_ms"] == pytest.approx(15.0)
    assert report["pauses_over_10ms"] == 4


def test_short_pauses_are_not_long_ones_and_uninstall_stops_counting(quiet_gc: None) -> None:
    recorder = GcPauseRecorder(clock=_StepClock(0.002))
    recorder.install()
    recorder.install()  # idempotent: one callback
    gc.collect(0)
    recorder.uninstall()
    recorder.uninstall()
    gc.collect(0)
    report = recorder.snapshot()
    assert report["collections"] == [1, 0, 0]
    assert report["pauses"] == 1
    assert report["max_pause_ms"] == pytest.approx(2.0)
    assert report["pauses_over_10ms"] == 0
    assert recorder._callback not in gc.callbacks


def test_the_policy_freezes_start_up_objects_and_sets_thresholds() -> None:
    before = gc.get_threshold()
    try:
        GcPolicy().apply()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == DEFAULT_THRESHOLDS
        assert GcPauseRecorder().snapshot()["thresholds"] == list(DEFAULT_THRESHOLDS)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    GcPolicy(freeze=False, thresholds=None).apply()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_gc_metrics_endpoint_is_public_and_counts_since_serving(tmp_path: Path) -> None:
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False))
    with TestClient(create_app(service)) as http:
        first = http.get("/api/metrics/gc")
        assert first.status_code == 200, first.text
        report = first.json()
        assert set(report) == GC_KEYS
        assert len(report["collections"]) == 3
        assert all(isinstance(count, int) for count in report["collections"])
        assert report["thresholds"] == list(gc.get_threshold())
        gc.collect(2)
        second = http.get("/api/metrics/gc").json()
        assert second["collections"][2] >= report["collections"][2] + 1
        assert second["pauses"] >= report["pauses"] + 1
        assert second["total_pause_ms"] >= report["total_pause_ms"]
        assert second["max_pause_ms"] > 0
    # the app leaves no callback behind once it has shut down
    assert http.app.state.gc_recorder._callback not in gc.callbacks  # type: ignore[attr-defined]


def test_serve_applies_the_policy_and_reports_it(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.start()
    try:
        report = httpx.get(f"{server.url}/api/metrics/gc", timeout=10).json()
    finally:
        server.stop()
    assert set(report) == GC_KEYS
    assert report["frozen_objects"] > 10_000  # the exchange, the app and the libraries
    assert report["thresholds"] == list(DEFAULT_THRESHOLDS)


def _access_lines(server: Server) -> list[str]:
    return [line for line in server.log.read_text().splitlines() if '"GET /api/health HTTP/1.1" 200' in line]


@pytest.mark.parametrize("flag", [False, True])
def test_access_log_is_off_unless_asked_for(tmp_path: Path, flag: bool) -> None:
    extra = ("--log-level", "info", *(("--access-log",) if flag else ()))
    server = Server(tmp_path / "data", extra=extra)
    server.start()
    try:
        for _ in range(3):
            assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200
    finally:
        server.stop()
    lines = _access_lines(server)
    if flag:
        assert len(lines) >= 3
    else:
        assert lines == []


def test_serve_help_lists_the_access_log_flag() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--access-log" in result.output


class _Cycle:
    """An object in a reference cycle with itself (only the cyclic collector frees it)."""

    def __init__(self) -> None:
        self.me = self


def _frozen(obj: object) -> bool:
    """Whether ``obj`` is in the permanent generation (tracked, but in no collected generation)."""
    return gc.is_tracked(obj) and not any(o is obj for g in range(3) for o in gc.get_objects(g))


@pytest.fixture
def refreezing_off() -> Iterator[None]:
    """Leaves the collector as the test found it: refreezing stopped, nothing frozen, thresholds."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        stop_refreezing()
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_refreezing_freezes_the_survivors_of_full_collections_only(
    quiet_gc: None, refreezing_off: None
) -> None:
    start_refreezing()
    start_refreezing()  # idempotent: one hook
    assert gc.callbacks.count(_refreeze) == 1
    survivor = _Cycle()
    gc.collect(0)
    gc.collect(1)
    assert not _frozen(survivor)  # young collections leave it to the collector
    gc.collect(2)
    assert _frozen(survivor)
    later = _Cycle()
    assert not _frozen(later)
    stop_refreezing()
    stop_refreezing()
    gc.collect(2)
    assert not _frozen(later)
    assert _refreeze not in gc.callbacks


def test_refreezing_from_gen_1(quiet_gc: None, refreezing_off: None) -> None:
    start_refreezing(1)
    survivor = _Cycle()
    gc.collect(0)
    assert not _frozen(survivor)
    gc.collect(1)
    assert _frozen(survivor)
    with pytest.raises(ValueError):
        start_refreezing(3)


def test_frozen_cyclic_garbage_waits_for_unfreeze_and_full_garbage_is_collected_first(
    quiet_gc: None, refreezing_off: None
) -> None:
    """What refreezing costs: a cycle that dies after it was frozen is only found after
    ``gc.unfreeze()``; one that is garbage at the full collection is collected, not frozen."""
    start_refreezing()
    kept = _Cycle()
    dead = weakref.ref(_Cycle())
    assert dead() is not None  # only the collector frees it
    gc.collect(2)  # frees the dead cycle, freezes ``kept``
    assert dead() is None
    assert _frozen(kept)
    kept_ref = weakref.ref(kept)
    del kept
    gc.collect(2)
    assert kept_ref() is not None  # frozen: never examined again
    gc.unfreeze()
    gc.collect(2)
    assert kept_ref() is None


def test_serving_applies_and_stops_refreezing(refreezing_off: None) -> None:
    policy = GcPolicy()
    assert policy.refreeze == 1
    with policy.serving():
        assert gc.get_threshold() == DEFAULT_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert _refreeze in gc.callbacks
    assert _refreeze not in gc.callbacks
    with GcPolicy(refreeze=None).serving():
        assert _refreeze not in gc.callbacks


def test_an_app_with_a_policy_refreezes_while_it_serves(tmp_path: Path, refreezing_off: None) -> None:
    service = build_service(ServerOptions(data_dir=tmp_path, fsync=False))
    with TestClient(create_app(service, gc_policy=GcPolicy())) as http:
        assert _refreeze in gc.callbacks
        frozen = http.get("/api/metrics/gc").json()["frozen_objects"]
        survivor = _Cycle()
        gc.collect()
        assert _frozen(survivor)
        assert http.get("/api/metrics/gc").json()["frozen_objects"] > frozen
    assert _refreeze not in gc.callbacks
