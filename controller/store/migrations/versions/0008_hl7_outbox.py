"""HL7 v2 outbound: the durable outbox of dispense (RDS^O13) and charge (DFT^P03) messages, queued in the
transaction of the ledger entry they report, and the log of every delivery attempt.

Revision ID: 0008_hl7_outbox
Revises: 0007_hl7_inbound
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_hl7_outbox"
down_revision = "0007_hl7_inbound"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "hl7_outbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("cabinet_id", sa.String(64), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger, nullable=False),
        sa.Column("control_id", sa.String(20), nullable=False),
        sa.Column("message_type", sa.String(20), nullable=False),
        sa.Column("patient_key", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("refusals", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_attempt_at", TZ, nullable=True),
        sa.Column("last_error_code", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.Column("ack", sa.Text, nullable=True),
        sa.UniqueConstraint("cabinet_id", "control_id", name="uq_hl7_outbox_cabinet_id"),
    )
    op.create_index("ix_hl7_outbox_queue", "hl7_outbox", ["cabinet_id", "status", "id"])
    op.create_index("ix_hl7_outbox_patient", "hl7_outbox", ["cabinet_id", "patient_key", "status", "id"])
    op.create_table(
        "hl7_outbox_attempts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", ID, nullable=False),
        sa.Column("attempted_at", TZ, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("ack_code", sa.String(2), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("ack", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(["outbox_id"], ["hl7_outbox.id"], name="fk_hl7_outbox_attempts_outbox_id_hl7_outbox"),
    )
    op.create_index("ix_hl7_outbox_attempts_message", "hl7_outbox_attempts", ["outbox_id"])


def downgrade() -> None:
    op.drop_index("ix_hl7_outbox_attempts_message", table_name="hl7_outbox_attempts")
    op.drop_table("hl7_outbox_attempts")
    op.drop_index("ix_hl7_outbox_patient", table_name="hl7_outbox")
    op.drop_index("ix_hl7_outbox_queue", table_name="hl7_outbox")
    op.drop_table("hl7_outbox")
