"""The central API's refused calls (a missing, unknown or expired token, a missing scope or privilege, a wrong
client secret), append-only: the central has no ledger of its own, and every refusal must leave a record.

Revision ID: c0003_access_refusals
Revises: c0002_fleet_stock
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0003_access_refusals"
down_revision = "c0002_fleet_stock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_access_refusals",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),  # the route's template, never a path with a patient id
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("actor_id", sa.String(80)),
        sa.Column("remote", sa.String(64)),
    )
    op.create_index("ix_fleet_access_refusals_at", "fleet_access_refusals", ["at"])
    op.execute(
        "CREATE TRIGGER fleet_access_refusals_append_only BEFORE UPDATE OR DELETE ON fleet_access_refusals "
        "FOR EACH ROW EXECUTE FUNCTION fleet_ledger_append_only()"
    )


def downgrade() -> None:
    op.drop_table("fleet_access_refusals")
