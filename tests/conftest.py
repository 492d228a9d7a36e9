"""Shared fixtures. Real traces are read from ../shared/traces/real and never copied here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(os.environ.get("FPREPLAY_REAL_TRACES", ROOT.parent / "shared" / "traces" / "real"))
SAMPLES = ROOT / "traces" / "samples"

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def real_trace(relative: str) -> Path:
    """Path of a real fixture, or skip the test saying why."""
    path = REAL / relative
    if not path.exists():
        pytest.skip(f"real fixture {relative} not found under {REAL} "
                    "(CI has ../shared beside the checkout)")
    return path


@pytest.fixture
def real():
    return real_trace
