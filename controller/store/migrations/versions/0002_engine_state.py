"""Engine state that survives a restart: login lockouts, open discrepancies, pending wastes, override reviews.

Revision ID: 0002_engine_state
Revises: 0001_initial
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_engine_state"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_lockouts",
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_at", TZ, nullable=True),
        sa.Column("locked_until", TZ, nullable=True),
    )
    op.create_table(
        "discrepancies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cabinet_id", sa.String(64), nullable=False),
        sa.Column("pocket_id", sa.String(64), sa.ForeignKey("pockets.id"), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("expected", sa.Integer, nullable=False),
        sa.Column("counted", sa.Integer, nullable=False),
        sa.Column("raised_by", sa.String(64), nullable=False),
        sa.Column("raised_at", TZ, nullable=False),
        sa.Column("deadline", TZ, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger, nullable=False),
        sa.Column("controlled", sa.Boolean, nullable=False),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolved_at", TZ, nullable=True),
    )
    op.create_index("ix_discrepancies_open", "discrepancies", ["cabinet_id", "status", "pocket_id"])
    op.create_table(
        "pending_wastes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cabinet_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("pocket_id", sa.String(64), nullable=False),
        sa.Column("lot_number", sa.String(20), nullable=True),
        sa.Column("amount", sa.String(40), nullable=False),
        sa.Column("unit", sa.String(40), nullable=False),
        sa.Column("removed_seq", sa.BigInteger, nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
    )
    op.create_index("ix_pending_wastes_user", "pending_wastes", ["cabinet_id", "user_id", "status"])
    op.create_table(
        "override_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cabinet_id", sa.String(64), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("queued_at", TZ, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reviewer_id", sa.String(64), nullable=True),
        sa.Column("reviewed_at", TZ, nullable=True),
        sa.UniqueConstraint("cabinet_id", "ledger_seq", name="uq_override_reviews_cabinet_id"),
    )


def downgrade() -> None:
    # These rows are working state; every fact they hold is also in the ledger, which no downgrade touches.
    op.drop_table("override_reviews")
    op.drop_index("ix_pending_wastes_user", table_name="pending_wastes")
    op.drop_table("pending_wastes")
    op.drop_index("ix_discrepancies_open", table_name="discrepancies")
    op.drop_table("discrepancies")
    op.drop_table("user_lockouts")
