"""One engine-driven scenario per database (SQLite, and PostgreSQL in a schema of its own), shared by the report
tests of a module: the scenario takes seconds, the reports read it many times and never write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from controller.domain.clock import FixedClock
from controller.reports.model import Period
from controller.store import schema
from controller.store.database import Database
from controller.store.scratch_schema import scratch_schema
from tests.conftest import _skip_without_postgres, postgres_url
from tests.reports.scenario import Facts, run_scenario, seed

START = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
FIRST_DAY, LAST_DAY = date(2026, 11, 25), date(2026, 11, 27)


@dataclass
class Ran:
    db: Database
    url: str
    facts: Facts
    now: datetime

    def period(self, first: date = FIRST_DAY, last: date = LAST_DAY, timezone: str = "UTC") -> Period:
        return Period.from_dates(first, last, now=self.now, timezone=timezone)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ran(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'adc.db'}"
        else:
            _skip_without_postgres()
            url = stack.enter_context(scratch_schema(postgres_url(), "adc_test"))
        db = Database.open(url, create=True)
        stack.callback(db.dispose)
        schema.upgrade(db)
        clock = FixedClock(START)
        seed(db, clock)
        facts = run_scenario(db, clock)
        yield Ran(db, url, facts, clock.now())
