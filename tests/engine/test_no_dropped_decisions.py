"""No decision of a state machine is dropped: every call of a machine's event method in the engine uses its result
(recorded, returned or inspected). A bare ``compartment.latched(now=...)`` statement would throw away the outcomes
that machine decided, which is how an opening or a removal goes unrecorded."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import controller
from controller.fsm import base
from controller.fsm.compartment import Compartment
from controller.fsm.session import Session
from controller.fsm.workflows.count import Count
from controller.fsm.workflows.discrepancy import Discrepancy
from controller.fsm.workflows.pull import Pull
from controller.fsm.workflows.restock import Restock
from controller.fsm.workflows.returns import Return
from controller.fsm.workflows.waste import Waste

MACHINES = (Compartment, Session, Pull, Waste, Return, Discrepancy, Restock, Count)
ENGINE = Path(controller.__file__).parent / "engine"


def event_methods() -> set[str]:
    """The methods of the machines that fire an event (their bodies call ``self.fire``)."""
    names: set[str] = set()
    for machine in MACHINES:
        for name, member in inspect.getmembers(machine, inspect.isfunction):
            if name.startswith("_") or getattr(base.Workflow, name, None) is member:
                continue
            if "self.fire(" in inspect.getsource(member):
                names.add(name)
    return names


def dropped_calls(source: str, events: set[str]) -> list[tuple[int, str]]:
    dropped = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr in events:
                dropped.append((node.lineno, func.attr))
    return dropped


def test_the_machines_have_event_methods_to_check() -> None:
    events = event_methods()
    assert {"opened", "closed", "latched", "take", "cancel", "abandon", "revoke", "login", "resolve"} <= events


def test_the_check_finds_a_dropped_decision() -> None:
    assert dropped_calls("compartment.latched(now=now)\nx = pull.take(now=now, quantity=1)\n", event_methods()) == [
        (1, "latched")
    ]


def test_no_engine_module_drops_a_decision() -> None:
    events = event_methods()
    found = {
        f"{path.relative_to(ENGINE.parent)}:{line}": name
        for path in sorted(ENGINE.rglob("*.py"))
        for line, name in dropped_calls(path.read_text(encoding="utf-8"), events)
    }
    assert not found, f"machine decisions dropped (record or return them): {found}"
