"""Running scenarios: each file loaded and checked first, then its steps in order against the simulated cabinet (or
a cabinet by URL), each step's expectations checked as soon as it ran; the first failed step ends the scenario
(what follows depends on it) and the ledger around it is kept for the report.

Responsible for: the order of a run, one fresh cabinet per scenario, per-step bounds on real time (a device that
hangs fails the step, it does not hang the run), and turning a crash into a result. Not responsible for what
steps do (``local_steps``, ``remote``), the checks (``expectations``) or the output formats.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from controller.scenarios.expectations import CabinetView, Failure, Window, check
from controller.scenarios.fleet_run import Fleet, FleetTarget, open_fleet
from controller.scenarios.loader import load_scenario
from controller.scenarios.local_steps import LocalSteps
from controller.scenarios.model import Scenario, Step
from controller.scenarios.outcome import Outcome
from controller.scenarios.problems import ScenarioLoadError
from controller.scenarios.remote import check_remote, open_remote_cabinet
from controller.scenarios.results import ScenarioResult, StepResult
from controller.scenarios.simulated_cabinet import open_simulated_cabinet
from controller.scenarios.targets import SIMULATED, RemoteTarget

STEP_LIMIT_S = 90.0  # real time one step may take (timeouts of devices that do not answer included)
CONTEXT_BEFORE = 5  # ledger entries shown before a failed step's own


class Performer(Protocol):
    async def perform(self, step: Step) -> Outcome: ...


class _One:
    """The views of a scenario on one cabinet: the same for every step, nothing beyond the cabinet to check."""

    def __init__(self, view: CabinetView) -> None:
        self.view = view

    def all(self) -> list[CabinetView]:
        return [self.view]

    def of(self, step: Step) -> CabinetView:
        return self.view

    async def check(self, step: Step) -> list[Failure]:
        return []


class _Members:
    """A fleet's views: each step reads the cabinet it names, and the central's expectations."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def all(self) -> list[CabinetView]:
        return [member.cabinet for member in self.fleet.cabinets.values()]

    def of(self, step: Step) -> CabinetView:
        return self.fleet.cabinet_of(step).cabinet

    async def check(self, step: Step) -> list[Failure]:
        return await self.fleet.check(step)


Views = _One | _Members


def find_scenarios(paths: Iterable[Path]) -> list[Path]:
    """Files given, and the ``*.yaml`` / ``*.yml`` files under directories given, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            found.append(path)
    return found


def load_all(paths: Iterable[Path], remote: RemoteTarget | None = None) -> list[Scenario | ScenarioResult]:
    """Every file read and checked before anything runs: a file that does not load is a result (an error)."""
    loaded: list[Scenario | ScenarioResult] = []
    for path in paths:
        target = remote.url if remote else SIMULATED
        try:
            scenario = load_scenario(path)
            if remote is not None:
                check_remote(scenario, remote)
        except ScenarioLoadError as error:
            loaded.append(ScenarioResult(path=path, name=path.stem, target=target, load_error=error))
            continue
        loaded.append(scenario)
    return loaded


def run_all(
    items: list[Scenario | ScenarioResult],
    remote: RemoteTarget | None = None,
    progress: Callable[[ScenarioResult], None] | None = None,
    fleet: FleetTarget | None = None,
) -> list[ScenarioResult]:
    results = []
    for item in items:
        result = item if isinstance(item, ScenarioResult) else asyncio.run(run_scenario(item, remote, fleet))
        if progress is not None:
            progress(result)
        results.append(result)
    return results


async def run_scenario(
    scenario: Scenario, remote: RemoteTarget | None = None, fleet: FleetTarget | None = None
) -> ScenarioResult:
    result = ScenarioResult(
        path=scenario.path,
        name=scenario.name,
        target=remote.url if remote else SIMULATED,
        covers=scenario.covers,
        description=scenario.description,
        total_steps=len(scenario.steps),
    )
    started = time.perf_counter()
    try:
        async with _open(scenario, remote, fleet or FleetTarget(None)) as (performer, views, clock):
            await _steps(scenario, performer, views, clock, result)
            result.virtual = clock.elapsed
    except Exception as exc:  # a crash is reported as this scenario's error; the other scenarios still run
        where = f" at step {len(result.steps) + 1}" if len(result.steps) < len(scenario.steps) else ""
        trace = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        result.crash = f"{scenario.path}: the run stopped{where}: {trace}"
        result.context = []
    result.seconds = time.perf_counter() - started
    return result


async def _steps(scenario: Scenario, performer: Performer, views: Views, clock: Any, result: ScenarioResult) -> None:
    starts = {id(view): await view.head() for view in views.all()}  # each cabinet's head when the scenario began
    for step in scenario.steps:
        view = views.of(step)
        start = starts[id(view)]
        before = await view.head()
        began = time.perf_counter()
        try:
            async with asyncio.timeout(STEP_LIMIT_S):
                outcome = await performer.perform(step)
        except TimeoutError:
            outcome = Outcome.cannot_run(f"it took longer than {STEP_LIMIT_S:.0f} s of real time")
        after = await view.head()
        failures = await check(step, outcome, view, Window(start, before, after))
        if not failures:
            failures += await views.check(step)
        written = await view.entries(before, after)
        result.steps.append(
            StepResult(
                step, outcome, tuple(failures), tuple(written), clock.now().isoformat(), time.perf_counter() - began
            )
        )
        if failures:
            result.context = await view.entries(max(start, before - CONTEXT_BEFORE), after)
            return


@asynccontextmanager
async def _open(
    scenario: Scenario, remote: RemoteTarget | None, fleet: FleetTarget
) -> AsyncIterator[tuple[Performer, Views, Any]]:
    if remote is not None:
        async with open_remote_cabinet(scenario, remote) as cabinet:
            yield cabinet, _One(cabinet), cabinet.clock
        return
    with tempfile.TemporaryDirectory(prefix="adc-scenario-") as workdir:
        if scenario.fleet:
            async with open_fleet(scenario, Path(workdir), fleet) as hospital:
                yield hospital, _Members(hospital), hospital.clock
            return
        async with open_simulated_cabinet(scenario, Path(workdir)) as cabinet:
            yield LocalSteps(cabinet), _One(cabinet), cabinet.clock
