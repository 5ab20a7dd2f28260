"""Shared fixtures: the public test data in ../shared/external and the database URLs under test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from controller.domain.clock import FixedClock
from controller.store import schema
from controller.store.database import Database
from controller.store.scratch_schema import scratch_schema

# CI runs the same examples every time (a red build is reproducible); developers explore new ones locally.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_EXTERNAL = PROJECT_ROOT.parent / "shared" / "external"


@pytest.fixture(scope="session")
def shared_external() -> Path:
    """Folder of public test data written by others; read in place, never copied into the project."""
    if not SHARED_EXTERNAL.is_dir():
        pytest.skip(f"public test data not found at {SHARED_EXTERNAL} (../shared/external beside the checkout)")
    return SHARED_EXTERNAL


# --- databases under test ----------------------------------------------------------------------------------------

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("ADC_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL)


def _postgres_unavailable_reason() -> str | None:
    try:
        engine = sa.create_engine(postgres_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means: no server to test against
        return f"PostgreSQL not reachable at {postgres_url()}: {type(exc).__name__}"
    return None


_PG_REASON: list[str | None] = []


def _skip_without_postgres() -> None:
    if not _PG_REASON:
        _PG_REASON.append(_postgres_unavailable_reason())
    reason = _PG_REASON[0]
    if reason is not None:
        if os.environ.get("ADC_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"ADC_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards: tests never share tables."""
    _skip_without_postgres()
    with scratch_schema(postgres_url(), "adc_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'adc.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
def empty_db(database_url: str) -> Iterator[Database]:
    db = Database.open(database_url, create=True)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def db(empty_db: Database) -> Database:
    """A database migrated to the current schema."""
    schema.upgrade(empty_db)
    return empty_db


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
