"""Reports against the ledger of a scenario from the library (``scenarios/``), run by the scenario machinery on its
simulated cabinet: the override report and the controlled-substance activity agree with the ledger it left."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.reports.model import Period, Report
from controller.reports.registry import build_report
from controller.reports.request import GroupBy, ReportRequest
from controller.scenarios.loader import load_scenario
from controller.scenarios.local_steps import LocalSteps
from controller.scenarios.simulated_cabinet import open_simulated_cabinet
from tests.conftest import PROJECT_ROOT
from tests.reports import ledger_truth as truth

LIBRARY = PROJECT_ROOT / "scenarios"


def run_library_scenario(name: str, workdir: Path, reports: dict[str, GroupBy]) -> tuple[dict[str, Report[Any]], Any]:
    path = LIBRARY / name
    if not path.is_file():
        pytest.skip(f"library scenario {path} not found")
    scenario = load_scenario(path)

    async def run() -> tuple[dict[str, Report[Any]], Any]:
        async with open_simulated_cabinet(scenario, workdir) as cabinet:
            steps = LocalSteps(cabinet)
            for step in scenario.steps:
                outcome = await steps.perform(step)
                assert outcome.script_error is None, (step, outcome)
            now = cabinet.clock.now()
            period = Period(scenario.start - timedelta(minutes=1), now + timedelta(seconds=1))
            with cabinet.db.read() as session:
                built = {
                    report: build_report(session, report, ReportRequest(period, group_by=by), now)
                    for report, by in reports.items()
                }
            return built, truth.bodies(cabinet.db)

    return asyncio.run(run())


def test_override_and_activity_reports_agree_with_a_library_scenario(tmp_path: Path) -> None:
    built, entries = run_library_scenario(
        "profile-vs-override.yaml", tmp_path, {"overrides": GroupBy.ITEM, "cs-activity": GroupBy.USER}
    )
    removals, overridden = truth.pulls(entries), truth.overrides(entries)
    assert sum(overridden.values()) >= 1  # the scenario removes from the override list
    by_user = {r.key: r for r in built["overrides"].rows if r.dimension == "user"}
    assert by_user and all(r.removals > 0 for r in by_user.values())
    assert {k: (r.removals, r.overrides) for k, r in by_user.items()} == {
        user: (count, overridden[user]) for user, count in removals.items()
    }
    for row in by_user.values():
        assert row.rate_pct == round(100 * row.overrides / row.removals, 2)
        assert row.flagged == (row.rate_pct > 5.0)
    reviewed = sum(r.reviewed for r in by_user.values())
    assert reviewed == sum(1 for e in entries if e["event_type"] == "dose.override_reviewed")
    activity = {(r.group_id, r.item_id): r for r in built["cs-activity"].rows}
    for (user, item_id), row in activity.items():
        assert row.removed == -truth.units(entries, {"dose.removed"}, actor_id=user or None, item_id=item_id)
