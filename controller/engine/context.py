"""The parts of one cabinet's engine that every handler shares, handed to each handler when it is built.

Responsible for holding them together (the store, the clock, the rules in force, the devices, the topology, the
session and compartment machines, the recorder, the actuator, the witness desk, the credential check, the
registry) and for the two things every handler does with them: asking who is at the cabinet, and settling a
``Reaction`` (record it in one transaction, then end the grants of the workflows it ended). Not responsible for
any rule or workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from controller.domain.clock import Clock
from controller.domain.users import User
from controller.engine.actuation import Actuator
from controller.engine.credentials import CredentialCheck
from controller.engine.package_reader import PackageReader
from controller.engine.recording import Recorder
from controller.engine.registry import Registry
from controller.engine.rules import RulesHolder
from controller.engine.topology import CabinetTopology
from controller.engine.witnessing import WitnessDesk
from controller.engine.workflows import Reaction
from controller.fsm.compartment import Compartments
from controller.fsm.session import Session
from controller.hardware.camera.interface import Camera
from controller.hardware.io_board.interface import IoBoard
from controller.hardware.label_printer.interface import LabelPrinter
from controller.hardware.pill_counter.interface import CanisterRobot, PillCounter
from controller.hardware.scanner.interface import Scanner
from controller.store.cabinet_store import CabinetStore
from controller.store.ledger import SealedEntry


class CountingRobot(PillCounter, CanisterRobot, Protocol):
    """A pill counter with a canister robot (the simulator's and ``PillCounterDriver``)."""


@dataclass(frozen=True)
class Devices:
    board: IoBoard
    scanner: Scanner | None = None
    counter: PillCounter | None = None
    robot: CanisterRobot | None = None
    printer: LabelPrinter | None = None
    camera: Camera | None = None


@dataclass
class Modes:
    """Device-level states an administrator sets (each change is a ledger entry; restored from the ledger)."""

    critical_override: bool = False
    board_protocol: int | None = None  # the I/O board's register-map version, from its snapshots


@dataclass
class EngineContext:
    store: CabinetStore
    clock: Clock
    rules: RulesHolder
    devices: Devices
    topology: CabinetTopology
    session: Session
    compartments: Compartments
    recorder: Recorder
    actuator: Actuator
    credentials: CredentialCheck
    witness: WitnessDesk
    packages: PackageReader
    registry: Registry
    modes: Modes = field(default_factory=Modes)

    @property
    def cabinet_id(self) -> str:
        return self.store.cabinet_id

    def now(self) -> datetime:
        return self.clock.now()

    def user(self) -> User:
        """The logged-in user (commands other than login run only with one: the dispatcher checks)."""
        user = self.session.user
        assert user is not None, "a command that needs a session ran without one"
        return user

    async def settle(self, reaction: Reaction) -> list[SealedEntry]:
        """Record ``reaction`` in one transaction, then end the grants of the workflows it ended."""
        sealed = list(reaction.recorded)
        sealed += self.recorder.commit(*reaction.decisions, journal=reaction.journal, deposit=reaction.deposit)
        for workflow_id in dict.fromkeys(reaction.ended):
            sealed += await self.actuator.release(workflow_id)
        return sealed
