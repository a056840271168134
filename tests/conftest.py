"""Test-wide configuration: hypothesis profiles.

``dev`` (the default) explores with fresh random examples on every run. ``ci`` is chosen automatically
when the environment variable ``CI`` is set (or with ``HYPOTHESIS_PROFILE=ci``): derandomized, so a CI
run is reproducible, with a bounded number of examples so the suite stays within its time budget.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
