"""Alembic environment of the central server's own tables. Their version lives in ``central_alembic_version``,
apart from the cabinet schema's, which the central database also carries."""

from __future__ import annotations

from alembic import context

from controller.store.central.schema import VERSION_TABLE
from controller.store.central.tables import metadata


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise SystemExit("run the central migrations with 'adc central init' or 'adc central upgrade'")
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_online()
