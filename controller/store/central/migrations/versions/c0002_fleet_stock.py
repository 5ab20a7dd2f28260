"""The fleet's stock as the cabinets' chains tell it: each cabinet's pockets (item and levels), lots (expiry and
quantity on hand) and quarantine holds, written in the transaction that applies the entries they come from; where
each cabinet's own console answers; and the central console's sign-in record (append-only).

Revision ID: c0002_fleet_stock
Revises: c0001_fleet
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0002_fleet_stock"
down_revision = "c0001_fleet"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("fleet_cabinets", sa.Column("console_url", sa.Text))
    op.create_table(
        "fleet_pockets",
        sa.Column("cabinet_id", sa.String(64), primary_key=True),
        sa.Column("pocket_id", sa.String(64), primary_key=True),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("par_level", sa.Integer, nullable=False),
        sa.Column("min_level", sa.Integer, nullable=False),
        sa.Column("max_level", sa.Integer, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "fleet_stock",
        sa.Column("cabinet_id", sa.String(64), primary_key=True),
        sa.Column("pocket_id", sa.String(64), primary_key=True),
        sa.Column("lot_number", sa.Text, primary_key=True),
        sa.Column("item_id", sa.Text),
        sa.Column("expiry", sa.Date),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_fleet_stock_item", "fleet_stock", ["item_id", "cabinet_id"])
    op.create_table(
        "fleet_holds",
        sa.Column("cabinet_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),  # the seq of the entry that placed it
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("lot_number", sa.Text, nullable=False),
        sa.Column("pocket_id", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("released_seq", sa.BigInteger),
    )
    op.create_table(
        "fleet_console_signins",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),  # signed_in, refused, signed_out, locked_out
        sa.Column("code", sa.String(64)),
        sa.Column("remote", sa.String(64)),
    )
    op.create_index("ix_fleet_console_signins_user", "fleet_console_signins", ["user_id", "at"])
    op.execute(
        "CREATE TRIGGER fleet_console_signins_append_only BEFORE UPDATE OR DELETE ON fleet_console_signins "
        "FOR EACH ROW EXECUTE FUNCTION fleet_ledger_append_only()"
    )


def downgrade() -> None:
    for table in ("fleet_console_signins", "fleet_holds", "fleet_stock", "fleet_pockets"):
        op.drop_table(table)
    op.drop_column("fleet_cabinets", "console_url")
