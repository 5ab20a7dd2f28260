"""HL7 v2 inbound: the archive of every MLLP frame received (with its outcome and ACK), the control ids already
applied (so a resend is not applied twice), the pharmacy details of orders that came by RDE, and patient merges.

Revision ID: 0007_hl7_inbound
Revises: 0006_api_clients
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_hl7_inbound"
down_revision = "0006_api_clients"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
AMOUNT = sa.Numeric(12, 4)


def upgrade() -> None:
    op.create_table(
        "hl7_inbound_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("peer", sa.String(100), nullable=False),
        sa.Column("sender", sa.String(255), nullable=True),
        sa.Column("control_id", sa.String(199), nullable=True),
        sa.Column("message_type", sa.String(40), nullable=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("ack_code", sa.String(2), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("ack", sa.Text, nullable=False),
    )
    op.create_index("ix_hl7_inbound_messages_control", "hl7_inbound_messages", ["sender", "control_id"])
    op.create_index("ix_hl7_inbound_messages_received_at", "hl7_inbound_messages", ["received_at"])
    op.create_table(
        "hl7_processed_messages",
        sa.Column("sender", sa.String(255), primary_key=True),
        sa.Column("control_id", sa.String(199), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("archive_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("ack", sa.Text, nullable=False),
        sa.Column("applied_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["archive_id"],
            ["hl7_inbound_messages.id"],
            name="fk_hl7_processed_messages_archive_id_hl7_inbound_messages",
        ),
    )
    op.create_table(
        "hl7_orders",
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("placer_number", sa.String(64), nullable=False),
        sa.Column("filler_number", sa.String(64), nullable=False),
        sa.Column("order_control", sa.String(2), nullable=False),
        sa.Column("order_status", sa.String(2), nullable=False),
        sa.Column("give_code", sa.String(64), nullable=False),
        sa.Column("give_code_system", sa.String(20), nullable=False),
        sa.Column("give_text", sa.String(250), nullable=False),
        sa.Column("give_amount_max", AMOUNT, nullable=True),
        sa.Column("dosage_form", sa.String(100), nullable=False),
        sa.Column("dispense_amount", AMOUNT, nullable=True),
        sa.Column("dispense_units", sa.String(40), nullable=False),
        sa.Column("timing_quantity", sa.String(40), nullable=False),
        sa.Column("explicit_times", sa.String(100), nullable=False),
        sa.Column("priority", sa.String(40), nullable=False),
        sa.Column("start_time", sa.String(30), nullable=False),
        sa.Column("end_time", sa.String(30), nullable=False),
        sa.Column("verified_by", sa.String(200), nullable=False),
        sa.Column("control_id", sa.String(199), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_hl7_orders_filler_number", "hl7_orders", ["filler_number"])
    op.create_table(
        "hl7_patient_merges",
        sa.Column("prior_patient_id", sa.String(64), primary_key=True),
        sa.Column("survivor_id", sa.String(64), nullable=False),
        sa.Column("merged_at", TZ, nullable=False),
        sa.Column("control_id", sa.String(199), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hl7_patient_merges")
    op.drop_index("ix_hl7_orders_filler_number", table_name="hl7_orders")
    op.drop_table("hl7_orders")
    op.drop_table("hl7_processed_messages")
    op.drop_index("ix_hl7_inbound_messages_received_at", table_name="hl7_inbound_messages")
    op.drop_index("ix_hl7_inbound_messages_control", table_name="hl7_inbound_messages")
    op.drop_table("hl7_inbound_messages")
