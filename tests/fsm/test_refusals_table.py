"""Every (state, event) pair that a machine does not declare is refused with a catalogue code, never ignored.

The table is built from each machine's own transition data, so a new state or event is covered automatically;
the expected specific codes below are written out by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from enum import Enum

import pytest

from controller.domain.policies import Policy
from controller.errors import CATALOGUE
from controller.fsm.base import MachinePool, Workflow
from controller.fsm.compartment import Compartments, CompartmentState
from controller.fsm.session import Sessions, SessionState
from controller.fsm.settings import FsmSettings
from controller.fsm.workflows.count import CountKind, CountLine, Counts, CountState
from controller.fsm.workflows.discrepancy import Discrepancies, DiscrepancyState
from controller.fsm.workflows.pull import Pulls, PullState
from controller.fsm.workflows.restock import PickLine, RestockKind, Restocks, RestockState
from controller.fsm.workflows.returns import ReturnItem, Returns, ReturnState
from controller.fsm.workflows.waste import RemovedDose, Wastes, WasteState

from .helpers import CEFAZOLIN, MORPHINE, NURSE, T0, TECH

Factory = Callable[[Enum], Workflow]


def _session(state: Enum) -> Workflow:
    pool = Sessions()
    s = pool.new("CAB")
    pool.machine.set_state(state, s)
    return s


def _compartment(state: Enum) -> Workflow:
    pool = Compartments()
    c = pool.add("D1")
    pool.machine.set_state(state, c)
    return c


def _pull(state: Enum) -> Workflow:
    pool = Pulls(Policy(), FsmSettings())
    p = pool.start("P1", actor=NURSE, session_id=1)
    pool.machine.set_state(state, p)
    return p


def _waste(state: Enum) -> Workflow:
    pool = Wastes()
    dose = RemovedDose(MORPHINE, Decimal(4), "mg", "P-1")
    w = pool.start("W1", actor_id=NURSE.id, dose=dose, now=T0)
    pool.machine.set_state(state, w)
    return w


def _discrepancy(state: Enum) -> Workflow:
    pool = Discrepancies()
    x = pool.open("X1", raised_at=T0, pocket_id="P-1", item_id="morphine", controlled=True, expected=2, counted=1,
                  raised_by=NURSE.id)  # fmt: skip
    pool.machine.set_state(state, x)
    return x


def _return(state: Enum) -> Workflow:
    pool = Returns()
    r = pool.start("R1", actor=NURSE, item=ReturnItem(CEFAZOLIN, 1, "P-1", "BIN-1", sealed=True))
    pool.machine.set_state(state, r)
    return r


def _restock(state: Enum) -> Workflow:
    pool = Restocks()
    r = pool.start("RS1", actor=TECH, line=PickLine(RestockKind.RESTOCK, CEFAZOLIN, "P-1", "D1-P1", 0, 5))
    pool.machine.set_state(state, r)
    return r


def _count(state: Enum) -> Workflow:
    pool = Counts()
    c = pool.start("C1", actor=TECH, kind=CountKind.CYCLE, lines=(CountLine("P-1", "morphine", 2),))
    pool.machine.set_state(state, c)
    return c


MACHINES: dict[str, tuple[Factory, type[Enum]]] = {
    "session": (_session, SessionState),
    "compartment": (_compartment, CompartmentState),
    "pull": (_pull, PullState),
    "waste": (_waste, WasteState),
    "discrepancy": (_discrepancy, DiscrepancyState),
    "return": (_return, ReturnState),
    "restock": (_restock, RestockState),
    "count": (_count, CountState),
}

# Refusals that name a more specific rule than "not allowed in this state".
SPECIFIC = {
    ("session", SessionState.AUTHENTICATED, "login"): "session.cabinet_in_use",
    ("session", SessionState.WARNED, "login"): "session.cabinet_in_use",
    ("session", SessionState.WITNESSING, "login"): "session.cabinet_in_use",
    ("session", SessionState.LOGGED_OUT, "logout"): "session.not_active",
    ("session", SessionState.LOGGED_OUT, "activity"): "session.not_active",
    ("session", SessionState.LOGGED_OUT, "witness_begin"): "session.not_active",
    ("compartment", CompartmentState.UNKNOWN, "unlock_requested"): "compartment.unaccounted",
    ("compartment", CompartmentState.UNKNOWN, "opened"): "compartment.unaccounted",
    ("compartment", CompartmentState.UNKNOWN, "closed"): "compartment.unaccounted",
    ("compartment", CompartmentState.BREACHED, "unlock_requested"): "compartment.unaccounted",
    ("compartment", CompartmentState.UNACCOUNTED, "unlock_requested"): "compartment.unaccounted",
    ("pull", PullState.OPEN, "cancel"): "workflow.cancel_after_open",
    ("pull", PullState.TAKEN, "cancel"): "workflow.cancel_after_open",
    ("pull", PullState.CLOSED_UNACCOUNTED, "cancel"): "workflow.cancel_after_open",
    ("discrepancy", DiscrepancyState.OPEN, "review"): "workflow.not_resolved",
    ("discrepancy", DiscrepancyState.ESCALATED, "review"): "workflow.not_resolved",
    ("return", ReturnState.DONE, "cancel"): "workflow.cancel_after_open",
}


def _undeclared() -> list[tuple[str, Enum, str]]:
    rows = []
    for name, (factory, states) in MACHINES.items():
        spec = factory(next(iter(states))).spec
        for state in states:
            for event in spec.events:
                if event not in spec.events_from(state):
                    rows.append((name, state, event))
    return rows


@pytest.mark.parametrize(("machine", "state", "event"), _undeclared(), ids=lambda v: getattr(v, "name", str(v)))
def test_undeclared_event_is_refused_with_a_code(machine: str, state: Enum, event: str) -> None:
    factory, _ = MACHINES[machine]
    model = factory(state)
    decision = model.fire(event, now=T0)
    assert decision.refused
    assert decision.refusal is not None
    assert decision.refusal.code == SPECIFIC.get((machine, state, event), "fsm.event_not_allowed")
    assert decision.refusal.code in CATALOGUE
    assert model.state is state and decision.state is state
    assert decision.outcomes == ()


def test_specific_codes_are_real_rows() -> None:
    undeclared = set(_undeclared())
    assert set(SPECIFIC) <= undeclared


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_unknown_event_is_a_software_error(machine: str) -> None:
    factory, states = MACHINES[machine]
    model = factory(next(iter(states)))
    decision = model.fire("fly_to_the_moon", now=T0)
    assert decision.refusal is not None and decision.refusal.code == "fsm.unknown_event"


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_machine_declares_no_auto_transitions(machine: str) -> None:
    factory, states = MACHINES[machine]
    model = factory(next(iter(states)))
    pool_machine = model._machine
    assert pool_machine is not None
    assert not any(name.startswith("to_") for name in pool_machine.events)
    assert pool_machine.has_queue


def test_one_machine_serves_many_models() -> None:
    pool = Compartments()
    a, b = pool.add("D1"), pool.add("D2")
    assert a._machine is b._machine is pool.machine
    assert isinstance(pool, MachinePool)
