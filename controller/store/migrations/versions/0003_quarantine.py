"""Quarantined lots: recalls (every pocket of an item) and refrigerator excursions (one pocket).

Revision ID: 0003_quarantine
Revises: 0002_engine_state
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_quarantine"
down_revision = "0002_engine_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantined_lots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cabinet_id", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("lot_number", sa.String(20), nullable=False),
        sa.Column("pocket_id", sa.String(64), nullable=True),
        sa.Column("ndc", sa.String(14), nullable=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("quarantined_by", sa.String(64), nullable=True),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
    )
    op.create_index("ix_quarantined_lots_lot", "quarantined_lots", ["item_id", "lot_number", "status"])


def downgrade() -> None:
    op.drop_index("ix_quarantined_lots_lot", table_name="quarantined_lots")
    op.drop_table("quarantined_lots")
