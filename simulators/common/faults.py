"""The fault plan: what goes wrong, and when (at the Nth request, or once a time is reached).

A simulator asks ``due(request_number, now)`` on every request and applies what comes back; a fault fires
``times`` times (0 = every time from then on) and is then spent. Which kinds a device honours is up to its model;
the kinds themselves are shared so scenarios can name them the same way for every device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    DROP_RESPONSE = "drop_response"  # the request is received, no answer goes back
    DELAY_RESPONSE = "delay_response"  # params: seconds
    CORRUPT_CRC = "corrupt_crc"  # the answer's checksum is wrong
    GARBAGE = "garbage"  # params: data (hex); bytes sent before the answer
    TRUNCATE = "truncate"  # the answer is cut short
    DISCONNECT = "disconnect"  # the link closes
    REBOOT = "reboot"  # the device restarts: volatile state lost, everything relocked
    JAM_DRAWER = "jam_drawer"  # params: drawer
    STICK_SENSOR = "stick_sensor"  # params: sensor name, value
    LOCK_FAILS = "lock_fails"  # params: drawer or pocket; the lock does not move when commanded
    JAM_COUNTER = "jam_counter"  # a pill counter or robot jams mid-count
    MISCOUNT = "miscount"  # params: by (signed)
    HOPPER_EMPTY = "hopper_empty"
    FOREIGN_OBJECT = "foreign_object"
    COVER_OPEN = "cover_open"
    COUNT_UNCERTAIN = "count_uncertain"
    PAPER_OUT = "paper_out"


@dataclass
class Fault:
    kind: FaultKind
    at_request: int | None = None  # fires on this request number (1-based) or later
    at_time: float | None = None  # fires once the simulator clock reaches this (monotonic seconds)
    times: int = 1  # how often it fires; 0 = from then on, every time
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def is_due(self, request_number: int, now: float) -> bool:
        if self.times and self.fired >= self.times:
            return False
        if self.at_request is not None and request_number < self.at_request:
            return False
        return not (self.at_time is not None and now < self.at_time)


class FaultPlan:
    def __init__(self, faults: list[Fault] | None = None) -> None:
        self._faults: list[Fault] = list(faults or [])

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def clear(self, kind: FaultKind | None = None) -> None:
        self._faults = [f for f in self._faults if kind is not None and f.kind is not kind]

    def due(self, request_number: int, now: float, kinds: frozenset[FaultKind] | None = None) -> list[Fault]:
        """The faults that fire now (each counted as fired). ``kinds`` limits the answer to what a caller handles."""
        fired = []
        for fault in self._faults:
            if (kinds is None or fault.kind in kinds) and fault.is_due(request_number, now):
                fault.fired += 1
                fired.append(fault)
        return fired

    def pending(self) -> list[Fault]:
        return [f for f in self._faults if not f.times or f.fired < f.times]
