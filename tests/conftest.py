"""Shared test configuration.

Hypothesis runs derandomized (a fixed seed) so every CI run checks the same instances and
a failure is reproducible; the example database is off for the same reason.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "boundlab",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("boundlab")


def close(a, b, rel=1e-12, abs_=0.0):
    """|a - b| <= rel * max(|a|, |b|) + abs_, elementwise; returns bool."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(np.abs(a - b) <= rel * np.maximum(np.abs(a), np.abs(b)) + abs_))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
