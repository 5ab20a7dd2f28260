"""Small helpers for store tests: raw tampering as an attacker with database access would do it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from controller.store.database import Database


@contextmanager
def triggers_disabled(db: Database) -> Iterator[sa.Connection]:
    """A raw connection with the append-only triggers out of the way, as a DBA-level attacker would have."""
    with db.writer.begin() as connection:
        if db.dialect == "postgresql":
            connection.exec_driver_sql("ALTER TABLE ledger_entries DISABLE TRIGGER USER")
            connection.exec_driver_sql("ALTER TABLE ledger_heads DISABLE TRIGGER USER")
            try:
                yield connection
            finally:
                connection.exec_driver_sql("ALTER TABLE ledger_entries ENABLE TRIGGER USER")
                connection.exec_driver_sql("ALTER TABLE ledger_heads ENABLE TRIGGER USER")
        else:
            saved = connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'ledger_%'"
            ).all()
            for name, _sql in saved:
                connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
            try:
                yield connection
            finally:
                for _name, sql in saved:
                    connection.exec_driver_sql(sql)


def entry(connection: sa.Connection, seq: int, cabinet_id: str = "CAB-T") -> sa.Row[tuple[int, str, str, str]]:
    return connection.execute(
        sa.text("SELECT id, body, prev_hash, hash FROM ledger_entries WHERE cabinet_id = :c AND seq = :s"),
        {"c": cabinet_id, "s": seq},
    ).one()  # type: ignore[return-value]
