"""The fleet tier: registered cabinets, the union of their ledgers (partitioned by month of the cabinet's clock,
append-only at the database), each chain's head, entries held until their predecessors arrive, alarms, dead
letters and the versioned directory published to the cabinets.

Revision ID: c0001_fleet
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "c0001_fleet"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fleet_cabinets",
        sa.Column("cabinet_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("care_area", sa.String(100), nullable=False),
        sa.Column("public_key", sa.String(100), nullable=False),
        sa.Column("registered_at", TZ, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("last_contact_at", TZ),
        sa.Column("clock_skew_s", sa.Float),
        sa.Column("reported_head_seq", sa.BigInteger),
        sa.Column("reported_published_seq", sa.BigInteger),
        sa.Column("reported_open_alarms", sa.Integer),
    )
    op.create_table(
        "fleet_heads",
        sa.Column("cabinet_id", sa.String(64), sa.ForeignKey("fleet_cabinets.cabinet_id"), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    # Declarative partitioning by the cabinet's clock: reports read by time, and old months detach whole. A unique
    # index on a partitioned table must hold the partition key, so (cabinet_id, seq) is kept unique by the head
    # row each ingest locks (an entry is inserted only as the head's successor), not by an index.
    op.execute(
        """
        CREATE TABLE fleet_ledger (
            cabinet_id varchar(64) NOT NULL,
            seq bigint NOT NULL,
            recorded_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL,
            event_type text NOT NULL,
            actor_id text,
            witness_id text,
            patient_id text,
            order_id text,
            item_id text,
            pocket_id text,
            lot_number text,
            quantity_change bigint,
            is_simulator boolean NOT NULL,
            prev_hash varchar(64) NOT NULL,
            hash varchar(64) NOT NULL,
            body text NOT NULL
        ) PARTITION BY RANGE (recorded_at)
        """
    )
    op.execute("CREATE TABLE fleet_ledger_default PARTITION OF fleet_ledger DEFAULT")
    for name, columns in (
        ("ix_fleet_ledger_chain", "cabinet_id, seq"),
        ("ix_fleet_ledger_item", "item_id, recorded_at"),
        ("ix_fleet_ledger_actor", "actor_id, recorded_at"),
        ("ix_fleet_ledger_patient", "patient_id, recorded_at"),
        ("ix_fleet_ledger_event", "event_type, recorded_at"),
    ):
        op.execute(f"CREATE INDEX {name} ON fleet_ledger ({columns})")
    op.execute(
        """
        CREATE FUNCTION fleet_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the fleet ledger is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER fleet_ledger_append_only BEFORE UPDATE OR DELETE ON fleet_ledger "
        "FOR EACH ROW EXECUTE FUNCTION fleet_ledger_append_only()"
    )
    # TRUNCATE fires statement triggers only on the table named, not on its partitions: each partition gets one
    # (the monthly ones as they are created, controller.store.central.schema.ensure_partitions).
    for table in ("fleet_ledger", "fleet_ledger_default"):
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION fleet_ledger_append_only()"
        )
    op.create_table(
        "fleet_held_entries",
        sa.Column("cabinet_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_table(
        "fleet_alarms",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("cabinet_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("entry_hash", sa.String(64)),
        sa.Column("raised_at", TZ, nullable=False),
        sa.Column("cleared_at", TZ),
    )
    # A redelivered bad entry raises its alarm once.
    op.execute(
        "CREATE UNIQUE INDEX ux_fleet_alarms_once ON fleet_alarms (cabinet_id, seq, code, entry_hash) "
        "NULLS NOT DISTINCT"
    )
    op.create_index("ix_fleet_alarms_open", "fleet_alarms", ["cabinet_id"], postgresql_where="cleared_at IS NULL")
    op.create_table(
        "fleet_dead_letters",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("stream_seq", sa.BigInteger),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_table(
        "fleet_directory",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in ("fleet_directory", "fleet_dead_letters", "fleet_alarms", "fleet_held_entries"):
        op.drop_table(table)
    op.execute("DROP TABLE fleet_ledger")
    op.execute("DROP FUNCTION fleet_ledger_append_only()")
    op.drop_table("fleet_heads")
    op.drop_table("fleet_cabinets")
