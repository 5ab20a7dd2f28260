"""Writing a scenario to a file and running it in process, for the runner's own tests."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from controller.scenarios.loader import load_scenario
from controller.scenarios.results import ScenarioResult
from controller.scenarios.runner import run_scenario


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return path


def run_file(path: Path) -> ScenarioResult:
    return asyncio.run(asyncio.wait_for(run_scenario(load_scenario(path)), timeout=120))


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line containing ``text``."""
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")
