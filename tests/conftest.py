"""Shared fixtures.

Tests that need real images read ``../shared/data`` in place (nothing from it is ever
copied into the project) and skip, with the reason printed by ``-ra``, where it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_DATA = Path(os.environ.get("DKT_SHARED_DATA", _DEFAULT))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's real image collection; skips the test where it is absent."""
    if not (SHARED_DATA / "MANIFEST.md").is_file():
        pytest.skip(f"real images not found at {SHARED_DATA} (set DKT_SHARED_DATA)")
    return SHARED_DATA
