"""Every package the shipped code imports is a declared runtime dependency, so each documented command works after
the README's install (``pip install -e .``) and not only with the test extra (``adc scenario run --url`` once
failed with ModuleNotFoundError: httpx). The optional pyzbar backend is loaded with importlib, when installed."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("controller", "simulators", "firmware_protocols")


def imported_top_level_modules() -> dict[str, str]:
    """Top-level module -> one file importing it, over the shipped packages."""
    found: dict[str, str] = {}
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_normal(re.split(r"[\[<>=~!; ]", requirement, maxsplit=1)[0]) for requirement in project["dependencies"]}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_a_declared_dependency() -> None:
    distributions = packages_distributions()
    wanted = declared()
    missing = []
    for module, where in sorted(imported_top_level_modules().items()):
        if module in sys.stdlib_module_names or module in SHIPPED or module == "__future__":
            continue
        owners = {_normal(d) for d in distributions.get(module, [])}
        if not owners:
            missing.append(f"{module} (imported by {where}) belongs to no installed distribution")
        elif not owners & wanted and not _comes_with(owners, wanted):
            missing.append(f"{module} (imported by {where}) comes from {', '.join(sorted(owners))}, not declared")
    assert missing == []


def _comes_with(owners: set[str], wanted: set[str]) -> bool:
    """A package installed by a declared one (starlette comes with fastapi)."""
    return bool(owners & {"starlette"} and "fastapi" in wanted)
