"""API clients: integrators that obtain tokens with OAuth2 client credentials (secret kept as argon2id only).

Revision ID: 0006_api_clients
Revises: 0005_ledger_workflow_index
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_api_clients"
down_revision = "0005_ledger_workflow_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
    )


def downgrade() -> None:
    op.drop_table("api_clients")
