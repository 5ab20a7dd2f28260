"""Initial schema: formulary, cabinet topology, stock by lot, users, patients and orders, the ledger.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from controller.store.json_fields import BodyField, JsonKind

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _generated(name: str, type_: sa.types.TypeEngine[Any], kind: JsonKind = "text") -> sa.Column[Any]:
    return sa.Column(name, type_, sa.Computed(BodyField(name, kind), persisted=True))


def upgrade() -> None:
    op.create_table(
        "care_areas",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("profiled", sa.Boolean, nullable=False),
    )
    op.create_table(
        "cabinets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("care_area_id", sa.String(64), sa.ForeignKey("care_areas.id"), nullable=False),
    )
    op.create_table(
        "medications",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("ndc", sa.String(16), nullable=False),
        sa.Column("generic_name", sa.String(200), nullable=False),
        sa.Column("brand_name", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("strength", sa.String(100), nullable=False),
        sa.Column("dosage_form", sa.String(100), nullable=False),
        sa.Column("route", sa.String(100), nullable=False),
        sa.Column("package", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(40), nullable=False),
        sa.Column("dea_schedule", sa.String(4), nullable=False),
        sa.Column("high_alert", sa.Boolean, nullable=False),
        sa.Column("lasa", sa.Boolean, nullable=False),
        sa.Column("hazardous", sa.Boolean, nullable=False),
        sa.Column("refrigerated", sa.Boolean, nullable=False),
        sa.Column("neuromuscular_blocker", sa.Boolean, nullable=False),
    )
    op.create_table(
        "medication_ndcs",
        sa.Column("ndc", sa.String(16), primary_key=True),
        sa.Column("digits", sa.String(12), nullable=False, unique=True),
        sa.Column("medication_id", sa.String(64), sa.ForeignKey("medications.id"), nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False),
    )
    op.create_table(
        "drawers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("cabinet_id", sa.String(64), sa.ForeignKey("cabinets.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.UniqueConstraint("cabinet_id", "position"),
    )
    op.create_table(
        "pockets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("drawer_id", sa.String(64), sa.ForeignKey("drawers.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("item_id", sa.String(64), sa.ForeignKey("medications.id"), nullable=True),
        sa.Column("par_level", sa.Integer, nullable=False),
        sa.Column("min_level", sa.Integer, nullable=False),
        sa.Column("max_level", sa.Integer, nullable=False),
        sa.UniqueConstraint("drawer_id", "position"),
        sa.CheckConstraint("0 <= min_level AND min_level <= par_level AND par_level <= max_level", name="levels"),
    )
    op.create_table(
        "pocket_lots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pocket_id", sa.String(64), sa.ForeignKey("pockets.id"), nullable=False),
        sa.Column("lot_number", sa.String(20), nullable=False),
        sa.Column("expiry", sa.Date, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.UniqueConstraint("pocket_id", "lot_number"),
        sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("pin_hash", sa.String(200), nullable=False),
        sa.Column("badge_hash", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("role", sa.String(40), primary_key=True),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("family_name", sa.String(200), nullable=False),
        sa.Column("given_name", sa.String(200), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=True),
        sa.Column("allergies", sa.Text, nullable=False),
    )
    op.create_table(
        "encounters",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("care_area_id", sa.String(64), sa.ForeignKey("care_areas.id"), nullable=False),
        sa.Column("room", sa.String(40), nullable=False),
        sa.Column("bed", sa.String(40), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("dose_amount", sa.Numeric(12, 4), nullable=False),
        sa.Column("dose_unit", sa.String(40), nullable=False),
        sa.Column("route", sa.String(100), nullable=False),
        sa.Column("frequency", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("pharmacist_verified", sa.Boolean, nullable=False),
        sa.Column("prn", sa.Boolean, nullable=False),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        _generated("cabinet_id", sa.Text()),
        _generated("seq", sa.BigInteger(), "integer"),
        _generated("recorded_at", sa.Text()),
        _generated("event_type", sa.Text()),
        _generated("actor_id", sa.Text()),
        _generated("witness_id", sa.Text()),
        _generated("patient_id", sa.Text()),
        _generated("order_id", sa.Text()),
        _generated("item_id", sa.Text()),
        _generated("pocket_id", sa.Text()),
        _generated("lot_number", sa.Text()),
        _generated("quantity_change", sa.BigInteger(), "integer"),
        _generated("is_simulator", sa.Boolean(), "boolean"),
        sa.UniqueConstraint("cabinet_id", "seq"),
    )
    op.create_index("ix_ledger_entries_actor", "ledger_entries", ["actor_id", "recorded_at"])
    op.create_index("ix_ledger_entries_item", "ledger_entries", ["item_id", "recorded_at"])
    op.create_index("ix_ledger_entries_patient", "ledger_entries", ["patient_id", "recorded_at"])
    op.create_index("ix_ledger_entries_recorded_at", "ledger_entries", ["recorded_at"])
    op.create_table(
        "ledger_heads",
        sa.Column("cabinet_id", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    _create_append_only_triggers()


def _create_append_only_triggers() -> None:
    """The ledger refuses UPDATE and DELETE at the database; a head may only advance to an entry that exists."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION adc_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'ledger entries are append-only: % refused', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END $$;
            """
        )
        op.execute(
            "CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
            "FOR EACH ROW EXECUTE FUNCTION adc_ledger_append_only()"
        )
        op.execute(
            "CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries "
            "FOR EACH STATEMENT EXECUTE FUNCTION adc_ledger_append_only()"
        )
        op.execute(
            """
            CREATE FUNCTION adc_ledger_head_advances() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    RAISE EXCEPTION 'ledger heads cannot be deleted' USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF NEW.cabinet_id <> OLD.cabinet_id OR NEW.last_seq <> OLD.last_seq + 1 OR NOT EXISTS (
                    SELECT 1 FROM ledger_entries e
                    WHERE e.cabinet_id = NEW.cabinet_id AND e.seq = NEW.last_seq AND e.hash = NEW.last_hash
                ) THEN
                    RAISE EXCEPTION 'ledger head may only advance to the entry just appended'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END $$;
            """
        )
        op.execute(
            "CREATE TRIGGER ledger_heads_advance_only BEFORE UPDATE OR DELETE ON ledger_heads "
            "FOR EACH ROW EXECUTE FUNCTION adc_ledger_head_advances()"
        )
        return
    op.execute(
        "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries "
        "BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: UPDATE refused'); END"
    )
    op.execute(
        "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
        "BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: DELETE refused'); END"
    )
    op.execute(
        "CREATE TRIGGER ledger_heads_no_delete BEFORE DELETE ON ledger_heads "
        "BEGIN SELECT RAISE(ABORT, 'ledger heads cannot be deleted'); END"
    )
    op.execute(
        "CREATE TRIGGER ledger_heads_advance_only BEFORE UPDATE ON ledger_heads "
        "WHEN NEW.cabinet_id <> OLD.cabinet_id OR NEW.last_seq <> OLD.last_seq + 1 OR NOT EXISTS ("
        "SELECT 1 FROM ledger_entries e WHERE e.cabinet_id = NEW.cabinet_id AND e.seq = NEW.last_seq "
        "AND e.hash = NEW.last_hash) "
        "BEGIN SELECT RAISE(ABORT, 'ledger head may only advance to the entry just appended'); END"
    )


def downgrade() -> None:
    bind = op.get_bind()
    entries = bind.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one()
    if entries:
        # Controlled-substance records are kept for at least two years; a schema downgrade never drops them.
        raise RuntimeError(
            f"refusing to downgrade below the initial schema: the ledger holds {entries} entries; "
            "export and archive the database first"
        )
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_heads_advance_only ON ledger_heads")
        op.execute("DROP TRIGGER ledger_entries_no_truncate ON ledger_entries")
        op.execute("DROP TRIGGER ledger_entries_append_only ON ledger_entries")
        op.execute("DROP FUNCTION adc_ledger_head_advances()")
        op.execute("DROP FUNCTION adc_ledger_append_only()")
    for table in (
        "ledger_heads",
        "ledger_entries",
        "orders",
        "encounters",
        "patients",
        "user_roles",
        "users",
        "pocket_lots",
        "pockets",
        "drawers",
        "medication_ndcs",
        "medications",
        "cabinets",
        "care_areas",
    ):
        op.drop_table(table)
