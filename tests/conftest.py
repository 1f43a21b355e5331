"""Shared fixtures: one local Ray per test session, the real survey samples, tmp folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"


def pytest_configure(config):
    # Converted published weights go to a cache of this test session (subprocesses, jobs
    # and Ray workers inherit it), never into the user's ~/.cache.
    if "ASTRORAY_CACHE" not in os.environ:
        import tempfile

        os.environ["ASTRORAY_CACHE"] = tempfile.mkdtemp(prefix="astroray-test-cache-")


@pytest.fixture(scope="session")
def real() -> Path:
    """The real survey samples (../shared/data/real); skips when they are absent."""
    if not REAL.is_dir():
        pytest.skip(f"real survey samples not found at {REAL} (../shared is absent)")
    return REAL


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session: 2 CPUs, a capped object store, no dashboard."""
    import ray

    from astroray.runtime import init_ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    started = init_ray(num_cpus=2, object_store_memory=400 * 1024**2)
    yield ray
    if started:
        ray.shutdown()
