"""Pharmacy review: the critical-override flag of a formulary item, and the pharmacist's review of a quarantined lot
(released back into service, or condemned and kept blocked until it is unloaded).

Revision ID: 0004_pharmacy_review
Revises: 0003_quarantine
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_pharmacy_review"
down_revision = "0003_quarantine"
branch_labels = None
depends_on = None

REVIEW_COLUMNS = ("review_decision", "reviewed_by", "reviewed_at", "review_seq")


def upgrade() -> None:
    # Existing items are not on the critical-override list until the formulary says so.
    op.add_column("medications", sa.Column("critical_override", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("quarantined_lots", sa.Column("review_decision", sa.String(20), nullable=True))
    op.add_column("quarantined_lots", sa.Column("reviewed_by", sa.String(64), nullable=True))
    op.add_column("quarantined_lots", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("quarantined_lots", sa.Column("review_seq", sa.BigInteger, nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite rebuilds the table to drop a column; PostgreSQL drops it in place.
    with op.batch_alter_table("quarantined_lots") as batch:
        for column in REVIEW_COLUMNS:
            batch.drop_column(column)
    with op.batch_alter_table("medications") as batch:
        batch.drop_column("critical_override")
