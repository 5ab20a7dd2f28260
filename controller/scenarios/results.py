"""What a run of scenarios produced, for the console, JUnit XML and the HTML report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from controller.scenarios.expectations import Failure
from controller.scenarios.model import Step
from controller.scenarios.outcome import Outcome
from controller.scenarios.problems import ScenarioLoadError


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    outcome: Outcome
    failures: tuple[Failure, ...]
    entries: tuple[dict[str, Any], ...]  # ledger entries the step wrote
    at: str  # the virtual time after the step (ISO 8601)
    seconds: float  # real time the step took

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class ScenarioResult:
    path: Path
    name: str
    target: str  # "simulated cabinet" or the URL
    covers: tuple[str, ...] = ()
    description: str = ""
    steps: list[StepResult] = field(default_factory=list)
    total_steps: int = 0
    load_error: ScenarioLoadError | None = None
    crash: str | None = None  # the run could not go on: a bug, or the environment (a port, a file)
    context: list[dict[str, Any]] = field(default_factory=list)  # the ledger around the failed step
    seconds: float = 0.0
    virtual: timedelta = timedelta(0)

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if not s.passed), None)

    @property
    def passed(self) -> bool:
        return (
            self.load_error is None
            and self.crash is None
            and self.failed_step is None
            and len(self.steps) == self.total_steps
        )

    @property
    def status(self) -> str:
        if self.load_error is not None or self.crash is not None:
            return "error"
        return "passed" if self.passed else "failed"

    def summary(self) -> str:
        """Why it did not pass, in a few lines (empty when it passed)."""
        if self.load_error is not None:
            return "\n".join(str(p) for p in self.load_error.problems)
        if self.crash is not None:
            return self.crash
        failed = self.failed_step
        if failed is None:
            return ""
        lines = [f"{self.path}:{failed.step.line}: step {failed.step.number} ({failed.step.title})"]
        lines += [f"  {failure}" for failure in failed.failures]
        return "\n".join(lines)
