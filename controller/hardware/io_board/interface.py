"""What the controller may ask of a cabinet I/O board: one ``typing.Protocol`` per capability, and the typed,
frozen readings they return.

Every actuating call is idempotent and state-seeking ("ensure the drawer is unlocked"), confirmed by reading the
board back; a fault raises a typed error from the catalogue, never returns quietly. Implemented by ``driver.py``
(Modbus, real or simulated board) and ``fake.py`` (in memory, for unit tests of rules).

A protocol version 2 board also counts every opening of every drawer and lid (``OpeningCounters``), so an opening
that no snapshot saw (opened and shut between two polls, or while the controller was down) still shows, as
``unrecorded_openings``, until the controller acknowledges it. What the controller records of those openings, and
when, is the engine's business, not this module's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Protocol, runtime_checkable


class Colour(StrEnum):
    OFF = "off"
    RED = "red"
    GREEN = "green"
    BLUE = "blue"
    YELLOW = "yellow"
    WHITE = "white"
    AMBER = "amber"


class Blink(StrEnum):
    STEADY = "steady"
    SLOW = "slow"
    FAST = "fast"
    PULSE = "pulse"


class Buzzer(IntEnum):
    OFF = 0
    CHIRP = 1
    INTERMITTENT = 2
    ALARM = 3


@dataclass(frozen=True, slots=True)
class BoardIdentity:
    board_id: int
    protocol_version: int
    firmware_version: str
    is_simulator: bool  # read from the board's identity register, never from configuration
    drawer_count: int
    pockets_per_drawer: int

    @property
    def counts_openings(self) -> bool:
        """Whether the board has opening counters (protocol version 2 and later)."""
        return self.protocol_version >= 2


COUNTER_WRAP = 0x10000  # the opening counters are 16-bit and wrap 65535 -> 0


@dataclass(frozen=True, slots=True)
class DrawerState:
    drawer: int
    lock_commanded: bool  # the board's lock_command register: 1 = unlock requested and holding
    lock_released: bool  # the latch itself is released
    open_sensor: bool
    closed_sensor: bool
    jammed: bool
    sensor_disagreement: bool
    motorised: bool
    position_pct: int
    hold_s: float
    lids_released: frozenset[int]
    lids_open: frozenset[int]
    # Opening counters (protocol version 2; None / empty on a version 1 board). ``openings`` counts every open edge
    # the board saw, ``openings_seen`` is the count the controller last acknowledged.
    openings: int | None = None
    openings_seen: int | None = None
    # (pocket, (lid openings, lid openings seen)) for the lids with unrecorded openings only, in pocket order: a
    # tuple, because a frozen state must stay hashable and immutable; read it through ``lid_openings``.
    lid_counters: tuple[tuple[int, tuple[int, int]], ...] = ()

    @property
    def unrecorded_openings(self) -> int | None:
        """Openings the board counted that the controller has not acknowledged; None on a version 1 board."""
        if self.openings is None or self.openings_seen is None:
            return None
        return (self.openings - self.openings_seen) % COUNTER_WRAP

    @property
    def lid_openings(self) -> Mapping[int, tuple[int, int]]:
        """pocket -> (openings, seen) of every lid with unrecorded openings (empty on a version 1 board)."""
        return MappingProxyType(dict(self.lid_counters))

    def unrecorded_lid_openings(self, pocket: int) -> int:
        """Unrecorded openings of the lid of ``pocket``; 0 when none (or on a version 1 board)."""
        for number, (openings, seen) in self.lid_counters:
            if number == pocket:
                return (openings - seen) % COUNTER_WRAP
        return 0

    @property
    def is_open(self) -> bool:
        return self.open_sensor and not self.closed_sensor

    @property
    def is_closed(self) -> bool:
        return self.closed_sensor and not self.open_sensor

    @property
    def latch_pending(self) -> bool:
        """Commanded locked while open: the latch catches as the drawer is pushed home."""
        return self.lock_released and not self.lock_commanded and self.is_open


@dataclass(frozen=True, slots=True)
class LidState:
    drawer: int
    pocket: int
    lidded: bool
    lid_commanded: bool
    lid_released: bool
    lid_open: bool


@dataclass(frozen=True, slots=True)
class Light:
    colour: Colour = Colour.OFF
    blink: Blink = Blink.STEADY


@dataclass(frozen=True, slots=True)
class EnvironmentReading:
    temperature_c: float
    humidity_pct: float
    fridge_door_open: bool
    compressor_on: bool
    mains_present: bool
    on_ups: bool
    ups_battery_low: bool
    ups_charge_pct: int


@dataclass(frozen=True, slots=True)
class BoardSnapshot:
    """Every sensor of the board, read in one request."""

    faults: frozenset[str]  # board_status bit names set: "jam", "rebooted", "watchdog_expired", ...
    door_open: bool
    tamper: bool
    buzzer: Buzzer
    supply_voltage_v: float
    heartbeat: int
    watchdog_timeout_ms: int
    is_simulator: bool
    environment: EnvironmentReading
    drawers: tuple[DrawerState, ...]
    protocol_version: int = 1  # the board's register map version; 2 and later fill the drawers' opening counters

    def drawer(self, number: int) -> DrawerState:
        return self.drawers[number - 1]


@runtime_checkable
class DrawerLocks(Protocol):
    async def ensure_unlocked(self, drawer: int, hold_s: float) -> DrawerState:
        """Unlock (or restart the hold of) ``drawer``; confirmed released. Refused while a blocking fault is set."""
        ...

    async def ensure_locked(self, drawer: int) -> DrawerState:
        """Lock ``drawer``; a closed drawer is confirmed latched, an open one latches as it closes
        (``latch_pending``). Never refused: locking is the safe direction."""
        ...

    async def drawer_state(self, drawer: int) -> DrawerState: ...


@runtime_checkable
class LidLocks(Protocol):
    async def ensure_lid_unlocked(self, drawer: int, pocket: int, hold_s: float) -> LidState: ...

    async def ensure_lid_locked(self, drawer: int, pocket: int) -> LidState: ...

    async def lid_state(self, drawer: int, pocket: int) -> LidState: ...


@runtime_checkable
class GuidingLights(Protocol):
    async def set_light(self, drawer: int, pocket: int, colour: Colour, blink: Blink = Blink.STEADY) -> None: ...

    async def read_light(self, drawer: int, pocket: int) -> Light: ...

    async def lights_off(self) -> None: ...


@runtime_checkable
class EnvironmentSensors(Protocol):
    async def read_environment(self) -> EnvironmentReading: ...


@runtime_checkable
class BoardSupervision(Protocol):
    async def identify(self) -> BoardIdentity: ...

    async def snapshot(self) -> BoardSnapshot: ...

    async def acknowledge_faults(self, names: Iterable[str] | None = None) -> frozenset[str]:
        """Clear latched fault bits (default: every clearable one); returns the faults still set."""
        ...

    async def heartbeat(self, value: int) -> None: ...

    async def set_watchdog_timeout(self, milliseconds: int) -> None: ...

    async def set_buzzer(self, pattern: Buzzer) -> None: ...


@runtime_checkable
class OpeningCounters(Protocol):
    """Acknowledging the openings a version 2 board counted. State-seeking: ``seen`` is the counter value the
    controller has recorded (not a reset), so a retry is harmless and an opening counted after the snapshot stays
    unrecorded. Each call writes, then reads back; a board that does not keep the value raises
    ``device.write_not_confirmed``. On a version 1 board both are no-ops."""

    async def ensure_openings_seen(self, drawer: int, seen: int) -> None: ...

    async def ensure_lid_openings_seen(self, drawer: int, pocket: int, seen: int) -> None: ...


@runtime_checkable
class IoBoard(DrawerLocks, LidLocks, GuidingLights, EnvironmentSensors, BoardSupervision, OpeningCounters, Protocol):
    async def close(self) -> None: ...


CLEARABLE_FAULTS = frozenset({"over_current", "watchdog_expired", "rebooted"})
