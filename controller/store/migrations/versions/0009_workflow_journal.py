"""Crash recovery: the workflow journal (every grant and workflow step made durable before a pocket is unlocked),
the opening counts the controller has recorded per compartment (version 2 I/O boards count every opening), and
discrepancy kinds (an undocumented access is a discrepancy with no count yet, naming the workflow it concerns).

Revision ID: 0009_workflow_journal
Revises: 0008_hl7_outbox
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_workflow_journal"
down_revision = "0008_hl7_outbox"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflow_journal",
        sa.Column("cabinet_id", sa.String(64), primary_key=True),
        sa.Column("workflow_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("pocket_id", sa.String(64), nullable=True),
        sa.Column("compartments", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("live", sa.Boolean, nullable=False),
    )
    op.create_index("ix_workflow_journal_live", "workflow_journal", ["cabinet_id", "live"])
    op.create_table(
        "compartment_openings",
        sa.Column("cabinet_id", sa.String(64), primary_key=True),
        sa.Column("compartment_id", sa.String(64), primary_key=True),
        sa.Column("recorded", sa.Integer, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    with op.batch_alter_table("discrepancies") as batch:
        batch.add_column(sa.Column("kind", sa.String(30), nullable=False, server_default="count_mismatch"))
        batch.add_column(sa.Column("workflow_id", sa.String(64), nullable=True))
        batch.alter_column("counted", existing_type=sa.Integer, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("discrepancies") as batch:
        batch.alter_column("counted", existing_type=sa.Integer, nullable=False)
        batch.drop_column("workflow_id")
        batch.drop_column("kind")
    op.drop_table("compartment_openings")
    op.drop_index("ix_workflow_journal_live", table_name="workflow_journal")
    op.drop_table("workflow_journal")
