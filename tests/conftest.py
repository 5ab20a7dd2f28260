"""Shared fixtures: the public test data in ../shared/external and the database URLs under test."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_EXTERNAL = PROJECT_ROOT.parent / "shared" / "external"


@pytest.fixture(scope="session")
def shared_external() -> Path:
    """Folder of public test data written by others; read in place, never copied into the project."""
    if not SHARED_EXTERNAL.is_dir():
        pytest.skip(f"public test data not found at {SHARED_EXTERNAL} (../shared/external beside the checkout)")
    return SHARED_EXTERNAL
