"""Deterministic model of a pill counter with a canister robot: the pure request -> reply core of the simulator.

Responsible for the device's behaviour as ``firmware_protocols/pill_counter/SPEC.md`` describes it: the counter
state machine, counting at ``rate`` tablets per second on the injected clock, the robot's canisters, the answer
cache that makes a repeated SEQ harmless, the physical world (pour tablets, take the vial away, open the cover)
and the device-level faults of the fault plan. Not responsible for bytes on a wire or wire faults (``server``).

``vial`` is the TRUE content of the vial, which is what a pharmacist would find; ``vial_reported`` is what the
device believes it put there. A MISCOUNT fault makes the two differ, on purpose, with nothing on the wire to say so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firmware_protocols.pill_counter import codec
from firmware_protocols.pill_counter.codec import (
    Accepted,
    CanisterSelected,
    Clear,
    CounterState,
    DeviceError,
    Dispense,
    DispenseReply,
    Frame,
    Identify,
    IdentifyReply,
    MessageError,
    Report,
    ReportReply,
    Request,
    Result,
    ResultReply,
    SelectCanister,
    StartCount,
    Status,
    StatusReply,
    Stop,
)
from simulators.common.clock import RealClock, SimClock
from simulators.common.faults import Fault, FaultKind, FaultPlan

_ERR = {spec.name: code for code, spec in codec.TABLE.errors.items()}
NO_FAULT = 0

# simulators.common.faults has no counter-jam kind: the counter honours JAM_DRAWER as "the mechanism jammed"
# until a JAM_COUNTER kind exists (reported to the lead).
COUNTER_JAM = FaultKind.JAM_COUNTER

# Device-level fault kinds and the device error each one latches.
_LATCHING = {
    COUNTER_JAM: _ERR["jam"],
    FaultKind.HOPPER_EMPTY: _ERR["hopper_empty"],
    FaultKind.FOREIGN_OBJECT: _ERR["foreign_object"],
    FaultKind.COVER_OPEN: _ERR["cover_open"],
}
DEVICE_FAULT_KINDS = frozenset({*_LATCHING, FaultKind.MISCOUNT, FaultKind.COUNT_UNCERTAIN})


@dataclass
class Identity:
    model: str = "ADC-SIM-PC1"
    firmware: str = "1.0.0-sim"
    serial: str = "SIM-000001"
    is_simulator: bool = True  # a real counter answers False; this is what the controller reads back
    has_robot: bool = True


@dataclass
class _Count:
    target: int
    started: float
    counted: int = 0  # tablets counted (and believed to be in the vial)
    stopped_early: bool = False
    uncertain: bool = False


@dataclass
class PillCounterModel:
    clock: SimClock = field(default_factory=RealClock)
    faults: FaultPlan = field(default_factory=FaultPlan)
    rate: float = 50.0  # tablets counted per second
    hopper: int = 0  # tablets poured into the counting hopper
    canisters: dict[int, int] = field(default_factory=lambda: {1: 500, 2: 500, 3: 500, 4: 500})
    identity: Identity = field(default_factory=Identity)

    def __post_init__(self) -> None:
        self.vial = 0  # true content
        self.vial_reported = 0  # what the device believes
        self.cover_open = False
        self.state = CounterState.IDLE
        self.fault = NO_FAULT
        self.selected = 0
        self.requests = 0  # every valid request frame, repeats included (fault plans count these)
        self.executed = 0  # requests actually acted on (repeats answered from the cache are not)
        self.dispense_actions = 0  # DISPENSE commands that moved tablets
        self._count: _Count | None = None
        self._miscount = 0  # pending MISCOUNT: extra tablets in the next vial fill
        self._uncertain = False  # pending COUNT_UNCERTAIN
        self._cache: tuple[Frame, Frame] | None = None  # (last request, its answer)

    # --- the wire-facing core ------------------------------------------------------------------------------------

    def handle(self, frame: Frame) -> Frame:
        """One request frame in, its reply frame out (same SEQ). A repeat of the last request, same SEQ and same
        bytes, gets the cached reply and changes nothing: a retransmitted DISPENSE never dispenses twice."""
        self.requests += 1
        self._apply_device_faults()
        if frame.seq != codec.RESET_SEQ and self._cache is not None and self._cache[0] == frame:
            return self._cache[1]
        if frame.seq == codec.RESET_SEQ:
            self._cache = None
        try:
            reply = self.execute(codec.decode_request(frame))
        except MessageError as exc:
            reply = DeviceError(frame.command, _ERR.get(exc.reason, _ERR["bad_parameter"]))
        command, payload = codec.reply_payload(reply)
        answer = Frame(frame.seq, command, payload)
        self._cache = (frame, answer)
        return answer

    def execute(self, request: Request) -> codec.Reply:
        self.executed += 1
        self._advance()
        match request:
            case Identify():
                i = self.identity
                return IdentifyReply(i.model, i.firmware, i.serial, i.is_simulator, i.has_robot)
            case Status():
                target = self._count.target if self._count else 0
                return StatusReply(self.state, self.fault, self._count.counted if self._count else 0, target)
            case StartCount(target):
                return self._start(target)
            case Stop():
                if self.state is CounterState.COUNTING and self._count is not None:
                    self._count.stopped_early = True
                    self.state = CounterState.DONE
                return Accepted(codec.STOP)
            case Result():
                if self._count is None or self.state not in (CounterState.DONE, CounterState.FAULT):
                    return DeviceError(codec.RESULT, _ERR["wrong_state"])
                c = self._count
                return ResultReply(c.counted, c.target, c.uncertain, c.stopped_early or c.counted < c.target)
            case Clear():
                if self.cover_open:
                    return DeviceError(codec.CLEAR, _ERR["cover_open"])
                self.state, self.fault, self._count = CounterState.IDLE, NO_FAULT, None
                return Accepted(codec.CLEAR)
            case SelectCanister(canister):
                if canister not in self.canisters:
                    return DeviceError(codec.SELECT_CANISTER, _ERR["bad_parameter"])
                self.selected = canister
                return CanisterSelected(canister, self.canisters[canister])
            case Dispense(count):
                return self._dispense(count)
            case Report():
                return ReportReply(self.selected, self.vial_reported, tuple(sorted(self.canisters.items())))
        raise AssertionError(f"unhandled request {request!r}")  # pragma: no cover - decode_request is exhaustive

    # --- physical world (also registered on the control surface) -----------------------------------------------

    def pour(self, n: int) -> int:
        """A person pours ``n`` tablets into the hopper; returns the hopper content."""
        if n < 0:
            raise ValueError("pour a positive number of tablets")
        self._advance()
        self.hopper += n
        return self.hopper

    def remove_vial(self) -> int:
        """A person takes the vial away (and puts an empty one); returns what the vial really held."""
        self._advance()
        content, self.vial, self.vial_reported = self.vial, 0, 0
        return content

    def open_cover(self) -> None:
        self._advance()
        self.cover_open = True
        self._latch(_ERR["cover_open"])

    def close_cover(self) -> None:
        self.cover_open = False

    def load_canister(self, canister: int, n: int) -> int:
        if n < 0:
            raise ValueError("load a positive number of tablets")
        self.canisters[canister] = self.canisters.get(canister, 0) + n
        return self.canisters[canister]

    def snapshot(self) -> dict[str, object]:
        self._advance()
        return {
            "state": str(self.state),
            "fault": self.fault,
            "hopper": self.hopper,
            "vial": self.vial,
            "vial_reported": self.vial_reported,
            "cover_open": self.cover_open,
            "canisters": dict(self.canisters),
            "requests": self.requests,
            "executed": self.executed,
        }

    def actions(self) -> dict[str, Callable[..., Any]]:
        return {
            "pour": self.pour,
            "remove_vial": self.remove_vial,
            "open_cover": self.open_cover,
            "close_cover": self.close_cover,
            "load_canister": self.load_canister,
            "snapshot": self.snapshot,
        }

    # --- internals -------------------------------------------------------------------------------------------

    def _start(self, target: int) -> codec.Reply:
        if not 1 <= target <= codec.MAX_TARGET:
            return DeviceError(codec.START_COUNT, _ERR["bad_parameter"])
        if self.state is CounterState.FAULT:
            return DeviceError(codec.START_COUNT, self.fault)
        if self.state is not CounterState.IDLE:
            return DeviceError(codec.START_COUNT, _ERR["wrong_state"])
        if self.cover_open:
            return DeviceError(codec.START_COUNT, _ERR["cover_open"])
        if self.hopper == 0:
            return DeviceError(codec.START_COUNT, _ERR["hopper_empty"])
        self._count = _Count(target=target, started=self.clock.monotonic())
        self.state = CounterState.COUNTING
        return Accepted(codec.START_COUNT)

    def _advance(self) -> None:
        """Bring the count up to the clock (counting is lazy: nothing runs between requests)."""
        c = self._count
        if self.state is not CounterState.COUNTING or c is None:
            return
        due = min(c.target, int((self.clock.monotonic() - c.started) * self.rate))
        moved = min(due - c.counted, self.hopper)
        if moved > 0:
            self._move(moved, moved)
            c.counted += moved
        if c.counted >= c.target:
            self._finish(c)
        elif self.hopper == 0 and due > c.counted:
            self._latch(_ERR["hopper_empty"])

    def _finish(self, c: _Count) -> None:
        extra = self._take_miscount()
        self._move(extra, 0)
        if self._uncertain:
            self._uncertain = False
            c.uncertain = True
            self._latch(_ERR["count_uncertain"])
        else:
            self.state = CounterState.DONE

    def _take_miscount(self) -> int:
        extra, self._miscount = self._miscount, 0
        return max(-self.vial, min(extra, self.hopper))

    def _move(self, tablets: int, believed: int) -> None:
        self.hopper -= tablets
        self.vial += tablets
        self.vial_reported += believed

    def _dispense(self, count: int) -> codec.Reply:
        if not 1 <= count <= codec.MAX_TARGET:
            return DeviceError(codec.DISPENSE, _ERR["bad_parameter"])
        if self.state is CounterState.FAULT:
            return DeviceError(codec.DISPENSE, self.fault)
        if self.state is CounterState.COUNTING:
            return DeviceError(codec.DISPENSE, _ERR["wrong_state"])
        if self.cover_open:
            return DeviceError(codec.DISPENSE, _ERR["cover_open"])
        if self.selected not in self.canisters:
            return DeviceError(codec.DISPENSE, _ERR["wrong_state"])
        available = self.canisters[self.selected]
        if available < count:
            return DeviceError(codec.DISPENSE, _ERR["hopper_empty"], 0)
        extra = max(-count, min(self._miscount, available - count))
        self._miscount = 0
        self.canisters[self.selected] = available - count - extra
        self.vial += count + extra
        self.vial_reported += count
        self.dispense_actions += 1
        if self._uncertain:
            self._uncertain = False
            return DeviceError(codec.DISPENSE, _ERR["count_uncertain"], count)
        return DispenseReply(self.selected, count)

    def _latch(self, error: int) -> None:
        """A fault stops the mechanism where it is; the state stays FAULT until CLEAR."""
        self.state = CounterState.FAULT
        self.fault = error

    def _apply_device_faults(self) -> None:
        self._advance()
        for fault in self.faults.due(self.requests, self.clock.monotonic(), DEVICE_FAULT_KINDS):
            self.apply_fault(fault)

    def apply_fault(self, fault: Fault) -> None:
        if fault.kind is FaultKind.MISCOUNT:
            self._miscount = int(fault.params.get("by", 1))
        elif fault.kind is FaultKind.COUNT_UNCERTAIN:
            self._uncertain = True
        elif fault.kind in _LATCHING:
            self._latch(_LATCHING[fault.kind])
