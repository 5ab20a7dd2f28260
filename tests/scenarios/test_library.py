"""The scenario library (``scenarios/`` at the repository root) passes on the simulated cabinet: one test per file,
its failure message naming the step, the expectation and the ledger around it. Also: the library covers every rule
of the policy table and every device fault the issue lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.scenarios.expectations import describe_entry
from controller.scenarios.loader import load_scenario
from tests.scenarios.helpers import run_file

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(LIBRARY.glob("*.yaml"))

POLICY_RULES = {
    "blind count", "witness rules", "profile vs override", "five-character search",
    "discrepancy deadline and escalation", "expired and recalled lots", "fridge excursion", "lockout",
    "temporary user expiry", "hazardous tablets refused by the counter", "downtime mode",
}  # fmt: skip
DEVICE_FAULTS = {"drawer jam", "stuck sensor", "lock fails to engage", "counter miscount", "power loss", "link down"}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_library_scenario_passes(path: Path) -> None:
    result = run_file(path)
    context = "\n".join(f"  {describe_entry(e)}" for e in result.context)
    assert result.passed, f"{result.summary()}\nledger around the step:\n{context}"


def test_the_library_covers_every_policy_rule_and_device_fault() -> None:
    covered = {topic for path in FILES for topic in load_scenario(path).covers}
    assert POLICY_RULES - covered == set()
    assert DEVICE_FAULTS - covered == set()
    assert (LIBRARY / "full-day-30-bed-unit.yaml") in FILES
