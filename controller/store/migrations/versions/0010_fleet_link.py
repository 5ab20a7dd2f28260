"""The cabinet's side of the fleet link: how far its ledger has gone to the central server, and the version of
each directory record it has applied.

Revision ID: 0010_fleet_link
Revises: 0009_workflow_journal
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_fleet_link"
down_revision = "0009_workflow_journal"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fleet_forward_state",
        sa.Column("cabinet_id", sa.String(64), primary_key=True),
        sa.Column("published_seq", sa.BigInteger, nullable=False),
        sa.Column("acknowledged_seq", sa.BigInteger, nullable=False),
        sa.Column("acknowledged_hash", sa.String(64), nullable=True),
        sa.Column("anchored_seq", sa.BigInteger, nullable=False),
        sa.Column("anchored_at", TZ, nullable=True),
        sa.Column("halted_code", sa.String(64), nullable=True),
        sa.Column("halted_detail", sa.Text, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "fleet_downlink_versions",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("applied_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fleet_downlink_versions")
    op.drop_table("fleet_forward_state")
