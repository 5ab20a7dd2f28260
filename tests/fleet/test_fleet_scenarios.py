"""Fleet scenarios (``scenarios/fleet/``) run end to end: simulated cabinets with their own stores, simulators and
forwarders, a central on a fresh PostgreSQL schema, a private NATS; a link cut and restored by a step. Also: a
wrong expectation about the central fails naming the cabinet, and a fleet scenario without PostgreSQL says why."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.scenarios.expectations import describe_entry
from controller.scenarios.fleet_run import FleetTarget
from controller.scenarios.loader import FLEET_ACTIONS, load_scenario
from controller.scenarios.results import ScenarioResult
from controller.scenarios.runner import run_scenario
from tests.conftest import postgres_url
from tests.scenarios.helpers import write

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios" / "fleet"
FILES = sorted(LIBRARY.glob("*.yaml"))


def _run(path: Path, central_url: str | None) -> ScenarioResult:
    scenario = load_scenario(path)
    return asyncio.run(asyncio.wait_for(run_scenario(scenario, fleet=FleetTarget(central_url)), timeout=240))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_fleet_library_scenario_passes(path: Path, postgres_schema_url: str) -> None:
    result = _run(path, postgres_url())
    context = "\n".join(f"  {describe_entry(e)}" for e in result.context)
    assert result.passed, f"{result.summary()}\nledger around the step:\n{context}"


def test_the_fleet_library_uses_every_fleet_step() -> None:
    used = {step.action for path in FILES for step in load_scenario(path).steps}
    assert FLEET_ACTIONS - used == set()


def test_a_wrong_expectation_about_the_central_fails_naming_the_cabinet(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    path = write(
        tmp_path,
        """
        scenario: the cut-off cabinet is not caught up
        fleet: {cabinets: [4W-A, 4W-B]}
        steps:
          - sync: 60s
          - cut_link: 4W-B
          - {cabinet: 4W-B, login: NURSE1}
          - sync: 5s
            expect: {central: {caught_up: [4W-A, 4W-B]}}
        """,
    )
    result = _run(path, postgres_url())
    assert not result.passed
    failed = result.steps[-1]
    assert failed.step.number == 4
    assert [str(f) for f in failed.failures] == ["line 8, central: the central does not hold all of 4W-B's chain"]
    assert failed.outcome.data["behind"] == [] and failed.outcome.data["caught_up"] == ["4W-A"]


def test_a_fleet_scenario_without_postgresql_says_what_it_needs(tmp_path: Path) -> None:
    result = _run(FILES[0], None)
    assert result.status == "error"
    assert result.crash is not None and "needs a PostgreSQL server for its central: pass --central-url" in result.crash
