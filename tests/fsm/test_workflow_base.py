"""What every machine shares: ``Workflow.state_before_event`` names the source state while callbacks run."""

from __future__ import annotations

from enum import Enum
from typing import Any

from transitions import EventData

from controller.fsm.base import MachinePool, MachineSpec, Workflow

from .helpers import at, ok


class Lamp(Enum):
    OFF = "off"
    ON = "on"


class Switch(Workflow):
    spec = MachineSpec(
        name="switch",
        states=Lamp,
        initial=Lamp.OFF,
        transitions=(
            {"trigger": "flip", "source": Lamp.OFF, "dest": Lamp.ON, "before": "seen", "after": "seen"},
            {"trigger": "flip", "source": Lamp.ON, "dest": Lamp.OFF, "after": "seen"},
            {"trigger": "poke", "source": [Lamp.OFF, Lamp.ON], "dest": None, "after": "seen"},
        ),
    )

    def __init__(self) -> None:
        super().__init__()
        self.seen_before: list[tuple[str, Any]] = []

    def seen(self, event: EventData) -> None:
        self.seen_before.append((self.state_before_event, self.state))


def test_state_before_event_is_the_source_state_during_callbacks() -> None:
    switch = Switch()
    MachinePool(Switch.spec).attach(switch)
    assert switch.state_before_event == ""  # no event has run yet
    ok(switch.fire("flip", now=at(1)))
    ok(switch.fire("poke", now=at(2)))
    ok(switch.fire("flip", now=at(3)))
    assert switch.seen_before == [("off", Lamp.OFF), ("off", Lamp.ON), ("on", Lamp.ON), ("on", Lamp.OFF)]
