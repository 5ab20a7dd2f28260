from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from controller.fleet.nats_server import NatsServer
from controller.fleet.nats_server import binary as nats_binary
from controller.store.central import schema as central_schema
from controller.store.database import Database
from tests.fleet.harness import nats_server


@pytest.fixture
def central_db(postgres_schema_url: str) -> Iterator[Database]:
    """A central database on PostgreSQL, migrated: the cabinet schema and the central tables."""
    db = Database.open(postgres_schema_url)
    central_schema.upgrade(db)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A private ``nats-server -js`` for this test (Debian's package), on an ephemeral port."""
    if nats_binary() is None:
        pytest.fail("nats-server is not installed (Debian package nats-server); the fleet tests need it")
    with nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server
