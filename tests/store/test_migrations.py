"""Alembic migrations: up from empty, down and up again, no drift from the models, no data loss on downgrade."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from controller.domain.clock import FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.errors import ConfigurationError
from controller.store import schema
from controller.store.database import Database
from controller.store.ledger import Ledger
from controller.store.models import Base

TABLES = {
    "care_areas",
    "cabinets",
    "medications",
    "medication_ndcs",
    "drawers",
    "pockets",
    "pocket_lots",
    "users",
    "user_roles",
    "patients",
    "encounters",
    "orders",
    "ledger_entries",
    "ledger_heads",
    "user_lockouts",
    "discrepancies",
    "pending_wastes",
    "override_reviews",
    "quarantined_lots",
    "api_clients",
    "hl7_inbound_messages",
    "hl7_processed_messages",
    "hl7_orders",
    "hl7_patient_merges",
    "hl7_outbox",
    "hl7_outbox_attempts",
    "workflow_journal",
    "compartment_openings",
    "fleet_forward_state",
    "fleet_downlink_versions",
}


def table_names(db: Database) -> set[str]:
    with db.reader.connect() as connection:
        return set(sa.inspect(connection).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_creates_every_table(empty_db: Database) -> None:
    assert schema.current_revision(empty_db) is None
    with pytest.raises(ConfigurationError) as caught:
        schema.require_current(empty_db)
    assert caught.value.code == "store.not_initialised"
    schema.upgrade(empty_db)
    assert table_names(empty_db) == TABLES
    assert schema.current_revision(empty_db) == schema.head_revision()
    schema.require_current(empty_db)


def test_down_and_up_again(db: Database) -> None:
    schema.downgrade(db, "base")
    assert table_names(db) == set()
    schema.upgrade(db)
    assert table_names(db) == TABLES


def test_upgrade_is_idempotent(db: Database) -> None:
    schema.upgrade(db)
    assert schema.current_revision(db) == schema.head_revision()


def test_downgrade_never_drops_ledger_entries(db: Database, clock: FixedClock) -> None:
    with db.write() as session:
        Ledger("CAB-M", clock, is_simulator=False).append(session, LedgerRecord(EventType.LOGIN))
    with pytest.raises(RuntimeError, match="ledger holds 1 entries"):
        schema.downgrade(db, "base")
    assert "ledger_entries" in table_names(db)
    with db.reader.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one() == 1


def test_models_match_the_migrations(db: Database) -> None:
    """A model change without its migration fails here."""
    with db.reader.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    # Constraint names differ by backend; compare tables, columns and indexes.
    significant = [
        d
        for d in differences
        if d[0] in ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")
    ]
    assert significant == []


def test_sqlite_connections_are_durable(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("SQLite pragmas")
    for engine in (db.writer, db.reader):
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    assert db.writer.pool.size() == 1  # type: ignore[attr-defined]
