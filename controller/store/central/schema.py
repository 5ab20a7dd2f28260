"""Creating and upgrading the central database, and keeping the ledger's monthly partitions ahead of the clock.

The central database carries the cabinet schema too (the hospital's formulary, users, patients, orders and HL7
queues live in the same tables a stand-alone cabinet uses), then the central's own tables on their own version
table. PostgreSQL only: declarative partitioning and ``FOR UPDATE`` on the chain heads are what ingest rests on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from controller.errors import ConfigurationError
from controller.store import schema as cabinet_schema
from controller.store.database import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "central_alembic_version"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def require_postgresql(db: Database) -> None:
    if db.dialect != "postgresql":
        raise ConfigurationError(
            "store.bad_url", f"the central server runs on PostgreSQL only, not {db.dialect}: give a postgresql URL"
        )


def upgrade(db: Database) -> None:
    require_postgresql(db)
    cabinet_schema.upgrade(db)
    config = _config()
    with db.writer.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        ensure_partitions(connection, datetime.now(UTC).date())


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise AssertionError("no central migrations found")
    return head


def require_current(db: Database) -> None:
    require_postgresql(db)
    cabinet_schema.require_current(db)
    with db.reader.connect() as connection:
        current = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
    if current != head_revision():
        raise ConfigurationError(
            "store.not_initialised" if current is None else "store.schema_outdated",
            f"the central tables are at {current}, this software needs {head_revision()}; run 'adc central init'",
        )


def _month_start(day: date, offset: int) -> date:
    index = day.year * 12 + day.month - 1 + offset
    return date(index // 12, index % 12 + 1, 1)


def ensure_partitions(connection: Connection, today: date, *, behind: int = 1, ahead: int = 3) -> list[str]:
    """Create the monthly partitions from ``behind`` months before ``today`` to ``ahead`` after. An entry outside
    them (a cabinet's clock far off, a long outage) lands in the default partition: never refused, never lost."""
    created = []
    for offset in range(-behind, ahead + 1):
        start, end = _month_start(today, offset), _month_start(today, offset + 1)
        name = f"fleet_ledger_{start:%Y_%m}"
        exists = connection.execute(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name}).scalar()
        if exists:
            continue
        # A month whose rows already sit in the default partition cannot be attached; they stay there.
        in_default = connection.execute(
            text("SELECT EXISTS (SELECT 1 FROM fleet_ledger_default WHERE recorded_at >= :s AND recorded_at < :e)"),
            {"s": start, "e": end},
        ).scalar()
        if in_default:
            continue
        connection.execute(
            text(
                f"CREATE TABLE {name} PARTITION OF fleet_ledger "
                f"FOR VALUES FROM ('{start.isoformat()}T00:00:00Z') TO ('{end.isoformat()}T00:00:00Z')"
            )
        )
        connection.execute(
            text(
                f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
                "FOR EACH STATEMENT EXECUTE FUNCTION fleet_ledger_append_only()"
            )
        )
        created.append(name)
    return created
