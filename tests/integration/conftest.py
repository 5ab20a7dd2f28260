"""A migrated store per module and backend, emptied before each test: the HL7 tests need many fresh stores, and
migrating one per test (most of all on PostgreSQL) would cost more than the tests themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from controller.store import schema
from controller.store.database import Database
from controller.store.scratch_schema import scratch_schema
from tests.conftest import _skip_without_postgres, postgres_url

# Children before parents (foreign keys).
EMPTIED = (
    "hl7_processed_messages",
    "hl7_inbound_messages",
    "hl7_orders",
    "hl7_patient_merges",
    "orders",
    "encounters",
    "patients",
    "care_areas",
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("hl7") / "adc.db"
        db = Database.open(f"sqlite:///{path}", create=True)
        schema.upgrade(db)
        yield db
        db.dispose()
        return
    _skip_without_postgres()
    with scratch_schema(postgres_url(), "adc_hl7") as url:
        db = Database.open(url)
        try:
            schema.upgrade(db)
            yield db
        finally:
            db.dispose()


@pytest.fixture
def store(module_store: Database) -> Database:
    """The module's store with no patients, orders, care areas or HL7 records."""
    with module_store.write() as session:
        for table in EMPTIED:
            session.execute(sa.text(f"DELETE FROM {table}"))  # fixed table names
    return module_store
