"""An index on the ledger's ``details.pull_id``: a waste or a return finds its removal's entries by seek, not by
reading every body.

Revision ID: 0005_ledger_workflow_index
Revises: 0004_pharmacy_review
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from controller.store.json_fields import detail_sql

revision = "0005_ledger_workflow_index"
down_revision = "0004_pharmacy_review"
branch_labels = None
depends_on = None

INDEX = "ix_ledger_entries_pull_id"


def upgrade() -> None:
    expression = detail_sql(op.get_bind().dialect.name, "pull_id")
    op.execute(f"CREATE INDEX {INDEX} ON ledger_entries (({expression}))")


def downgrade() -> None:
    op.execute(f"DROP INDEX {INDEX}")
