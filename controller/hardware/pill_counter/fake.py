"""In-memory pill counter and canister robot for unit tests of the rules: the same ``PillCounter`` and
``CanisterRobot`` Protocols as the driver, the same catalogue errors, no wire and no clock (a count completes at
once). ``fail_next(code)`` makes the next count or dispense fail with that catalogue code, as a device would."""

from __future__ import annotations

from controller.errors import CATALOGUE, Category, CommunicationError, ControllerError, DeviceFaultError
from controller.hardware.pill_counter.interface import (
    CounterState,
    CounterStatus,
    CountResult,
    DeviceIdentity,
    DispenseResult,
    RobotReport,
)

MAX_TARGET = 9999


def _error(code: str, detail: str) -> ControllerError:
    if CATALOGUE[code].category is Category.DEVICE_FAULT:
        return DeviceFaultError(code, detail)
    return CommunicationError(code, detail)


class FakePillCounter:
    def __init__(self, *, hopper: int = 0, canisters: dict[int, int] | None = None) -> None:
        self.hopper = hopper
        self.canisters = dict(canisters if canisters is not None else {1: 500, 2: 500, 3: 500, 4: 500})
        self.vial = 0
        self.cover_open = False
        self.selected = 0
        self.dispense_actions = 0
        self._state = CounterState.IDLE
        self._fault: str | None = None
        self._count = 0
        self._target = 0
        self._fail_next: str | None = None

    # --- test controls (the physical world) ---

    def pour(self, n: int) -> None:
        self.hopper += n

    def remove_vial(self) -> int:
        content, self.vial = self.vial, 0
        return content

    def open_cover(self) -> None:
        self.cover_open = True
        self._latch("device.cover_open")

    def close_cover(self) -> None:
        self.cover_open = False

    def fail_next(self, code: str) -> None:
        if code not in CATALOGUE:
            raise KeyError(code)
        self._fail_next = code

    # --- PillCounter ---

    async def identify(self) -> DeviceIdentity:
        return DeviceIdentity("FAKE-PC", "0", "FAKE-1", is_simulator=True, has_robot=True, protocol_version=1)

    async def status(self) -> CounterStatus:
        return CounterStatus(self._state, self._count, self._target, self._fault)

    async def count(self, target: int, timeout: float) -> CountResult:
        self._check_ready(target)
        if self.hopper == 0:
            raise DeviceFaultError("device.hopper_empty", "hopper is empty")
        self._state, self._target, self._count = CounterState.COUNTING, target, 0
        failure, self._fail_next = self._fail_next, None
        moved = min(target, self.hopper)
        self.hopper -= moved
        self.vial += moved
        self._count = moved
        if failure is not None:
            self._latch(failure)
            raise _error(failure, f"counter fault after {moved} of {target}")
        if moved < target:
            self._latch("device.hopper_empty")
            raise DeviceFaultError("device.hopper_empty", f"hopper ran out after {moved} of {target}")
        self._state = CounterState.DONE
        return CountResult(target=target, count=moved)

    async def stop(self) -> CounterStatus:
        if self._state is CounterState.COUNTING:
            self._state = CounterState.DONE
        return await self.status()

    async def clear(self) -> CounterStatus:
        if self.cover_open:
            raise DeviceFaultError("device.cover_open", "close the cover first")
        self._state, self._fault, self._count, self._target = CounterState.IDLE, None, 0, 0
        return await self.status()

    # --- CanisterRobot ---

    async def dispense(self, canister: int, n: int) -> DispenseResult:
        if canister not in self.canisters or not 1 <= n <= MAX_TARGET:
            raise CommunicationError("comm.protocol", f"bad canister {canister} or count {n}")
        self._check_ready(n, counting_allowed=True)
        self.selected = canister
        if self.canisters[canister] < n:
            raise DeviceFaultError("device.hopper_empty", f"canister {canister} holds {self.canisters[canister]}")
        failure, self._fail_next = self._fail_next, None
        if failure is not None and failure != "device.count_uncertain":
            self._latch(failure)
            raise _error(failure, "robot fault")
        self.canisters[canister] -= n
        self.vial += n
        self.dispense_actions += 1
        if failure is not None:
            raise _error(failure, "robot not sure of its count")
        return DispenseResult(canister=canister, dispensed=n)

    async def report(self) -> RobotReport:
        return RobotReport(selected=self.selected, vial=self.vial, canisters=dict(self.canisters))

    # --- internals ---

    def _check_ready(self, n: int, *, counting_allowed: bool = False) -> None:
        """The refusals a device answers with ERR before acting, in the device's order."""
        if not 1 <= n <= MAX_TARGET:
            raise CommunicationError("comm.protocol", f"count {n} out of range")
        if self._fault is not None:
            raise _error(self._fault, "device is faulted; clear it first")
        if self._state is not CounterState.IDLE and not counting_allowed:
            raise CommunicationError("comm.protocol", f"counter is {self._state}; clear it first")
        if self.cover_open:
            raise DeviceFaultError("device.cover_open", "cover open")

    def _latch(self, code: str) -> None:
        self._state, self._fault = CounterState.FAULT, code
