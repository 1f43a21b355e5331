"""Fixtures of the render tests: the session's Ray for the Ray Data stages, the real samples."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def ray_local(ray_session):
    """The session-wide local Ray (tests/conftest.py)."""
    return ray_session


@pytest.fixture(scope="session")
def real_dir(real) -> Path:
    """The real survey samples (../shared/data/real); skips when they are absent."""
    return real
