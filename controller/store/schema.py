"""Running the Alembic migrations from code (``adc db init``/``upgrade``) and checking the schema is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from controller.errors import ConfigurationError
from controller.store.database import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise AssertionError("no migrations found")
    return head


def current_revision(db: Database) -> str | None:
    with db.reader.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> None:
    config = _config()
    with db.writer.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(db: Database, revision: str) -> None:
    config = _config()
    with db.writer.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def require_current(db: Database) -> None:
    """Refuse to work on a database that is empty or behind this software's schema."""
    current = current_revision(db)
    if current is None:
        raise ConfigurationError(
            "store.not_initialised",
            f"database {db.url.render_as_string(hide_password=True)} is not initialised; run 'adc db init'",
        )
    if current != head_revision():
        raise ConfigurationError(
            "store.schema_outdated",
            f"database schema is at {current}, this software needs {head_revision()}; run 'adc db upgrade'",
        )
