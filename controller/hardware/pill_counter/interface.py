"""What the controller may ask of a pill counter and of a counting robot, independent of any wire.

Two capabilities, two ``typing.Protocol``s: ``PillCounter`` (count N tablets from the hopper into a vial) and
``CanisterRobot`` (dispense N tablets from a canister into a vial). Every operation returns a typed result read back
from the device, or raises ``CommunicationError`` / ``DeviceFaultError`` (``controller.errors``); a fault never
comes back as a result with a flag to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class CounterState(StrEnum):
    IDLE = "idle"
    COUNTING = "counting"
    DONE = "done"
    FAULT = "fault"


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    model: str
    firmware: str
    serial: str
    is_simulator: bool  # as the device itself reports it
    has_robot: bool
    protocol_version: int


@dataclass(frozen=True, slots=True)
class CounterStatus:
    state: CounterState
    count: int
    target: int
    fault_code: str | None = None  # the catalogue code of the latched fault, e.g. "device.counter_jam"


@dataclass(frozen=True, slots=True)
class CountResult:
    target: int
    count: int  # what the device reports in the vial; equals target, or the call raised


@dataclass(frozen=True, slots=True)
class DispenseResult:
    canister: int
    dispensed: int  # equals the requested count, or the call raised


@dataclass(frozen=True, slots=True)
class RobotReport:
    selected: int  # 0 = no canister selected
    vial: int  # tablets the device believes it put in the vial
    canisters: dict[int, int]  # canister -> tablets remaining


@runtime_checkable
class PillCounter(Protocol):
    async def identify(self) -> DeviceIdentity: ...

    async def status(self) -> CounterStatus: ...

    async def count(self, target: int, timeout: float) -> CountResult:
        """Start a count to ``target``, follow it, and return the confirmed result; raises on any fault, on an
        uncertain or short count, and ``comm.timeout`` (after stopping the counter) if it takes longer."""
        ...

    async def stop(self) -> CounterStatus: ...

    async def clear(self) -> CounterStatus:
        """Back to idle after the vial was taken or a fault was cleared; confirmed by reading the status back."""
        ...


@runtime_checkable
class CanisterRobot(Protocol):
    async def identify(self) -> DeviceIdentity: ...

    async def dispense(self, canister: int, n: int) -> DispenseResult:
        """Select ``canister`` and drop exactly ``n`` tablets into the vial. Never retried as a new command: only the
        same frame is retransmitted, which the device answers from its cache without dispensing again."""
        ...

    async def report(self) -> RobotReport: ...
