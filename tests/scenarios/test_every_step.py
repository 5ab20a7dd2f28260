"""Every step of the language runs against the simulated cabinet and maps to what it should (``every_step.yaml``
uses each action at least once, with expectations on what each did)."""

from __future__ import annotations

from pathlib import Path

from controller.scenarios.expectations import describe_entry
from controller.scenarios.loader import FLEET_ACTIONS, actions, load_scenario
from tests.scenarios.helpers import run_file

SCENARIO = Path(__file__).with_name("every_step.yaml")


def test_every_action_is_used_and_the_scenario_passes() -> None:
    used = {step.action for step in load_scenario(SCENARIO).steps}
    assert actions() - FLEET_ACTIONS - used == set()  # the fleet's steps: tests/fleet/test_fleet_scenarios.py
    result = run_file(SCENARIO)
    context = "\n".join(describe_entry(e) for e in result.context)
    assert result.passed, f"{result.summary()}\n{context}"
