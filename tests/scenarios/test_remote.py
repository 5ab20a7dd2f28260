"""``--url``: a scenario against a running cabinet over HTTP (the API under uvicorn on a loopback port, the device
simulators on their real transports, the physical world through the API's simulator route), with an integrator
client reading the ledger, the stock and the compartments."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controller.api.api_clients import add_client
from controller.api.app import create_app
from controller.api.settings import ApiSettings
from controller.bootstrap import credential_hasher
from controller.domain.clock import FixedClock
from controller.scenarios.model import Scenario
from controller.scenarios.runner import load_all, run_scenario
from controller.scenarios.targets import RemoteTarget
from controller.store.database import Database
from tests.api.rig import START, cabinet_settings, running_simulators, seed_demo, serve_in_thread
from tests.scenarios.helpers import write

SCOPES = frozenset({"ledger:read", "inventory:read", "devices:read"})


def test_a_scenario_runs_against_a_cabinet_by_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: remote pull
        steps:
          - login: NURSE1
          - pull: {patient: MRN100002, order: ORD9005}
            expect: {compartments: {D4: unlocked}}
          - open: D4
          - take: 1
          - close: D4
            expect:
              inventory: {D4-P01: 9}
              ledger: [{type: dose.removed, actor: NURSE1, pocket: D4-P01, change: -1}]
          - pull: {patient: MRN100003, order: ORD9008}
            expect: {refused: policy.order_not_verified}
          - cancel_pull: true
          - logout: true
            expect: {logged_in: null}
    """,
        "remote.yaml",
    )
    clock = FixedClock(START)
    seed_demo(f"sqlite:///{tmp_path / 'adc.db'}", clock)
    with running_simulators() as sims:
        settings = cabinet_settings(tmp_path, sims)
        db = Database.open(settings.resolved_database_url())
        try:
            secret = add_client(db, credential_hasher(settings), "qa-scenarios", SCOPES, now=clock.now())
        finally:
            db.dispose()
        app = create_app(settings, ApiSettings(sim_control=sims.control_url), clock=clock)
        with serve_in_thread(app) as url:
            remote = RemoteTarget(url, "qa-scenarios", secret)
            [scenario] = load_all([path], remote)
            assert isinstance(scenario, Scenario), scenario
            result = asyncio.run(asyncio.wait_for(run_scenario(scenario, remote), timeout=120))
    assert result.passed, result.summary()
    assert result.target == url and len(result.steps) == 8
    # the drawer was opened through POST /api/v1/devices/simulator/actions
    assert result.steps[2].outcome.commands == ("io_board.open_drawer",)
