"""Fixtures shared by the API tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture
def quiet_gc() -> Iterator[None]:
    """No automatic collections during the test: only reference counting frees objects (an explicit
    gc.collect still runs, with the callbacks)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
