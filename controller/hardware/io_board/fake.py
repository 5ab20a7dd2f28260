"""An in-memory I/O board for unit tests of rules: the ``IoBoard`` interface with the same behaviour rules as the
board (hold timers, latch on close, watchdog, blocking faults) and the same typed errors, on a hand-driven clock.

Physical-world actions (``open_drawer``, ``lift_lid``, ``set_temperature`` ...) and injectable faults
(``jam_drawer``, ``fail_lock``, ``stick_sensor``, ``reboot``, ``set_supply_voltage``, ``short_circuit``,
``lose_link``, ``fail_counter_write``) are plain methods. ``protocol_version=2`` (the default) counts every opening
of every drawer and lid as a version 2 board does, whatever caused it (a stuck sensor too), and keeps the counts
through a reboot; ``protocol_version=1`` is a board without counters. Not a simulator: no registers, no wire; the
contract suite checks that it and the driver on the simulator behave alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.errors import CommunicationError, DeviceFaultError
from controller.hardware.io_board.interface import (
    CLEARABLE_FAULTS,
    COUNTER_WRAP,
    Blink,
    BoardIdentity,
    BoardSnapshot,
    Buzzer,
    Colour,
    DrawerState,
    EnvironmentReading,
    LidState,
    Light,
)

# Fault -> catalogue code, in the order a blocked unlock reports them (the register map's table, as data here
# because the fake has no registers).
BLOCKING_FAULTS: tuple[tuple[str, str], ...] = (
    ("over_current", "device.over_current"),
    ("low_voltage", "device.low_voltage"),
    ("watchdog_expired", "device.watchdog_expired"),
    ("rebooted", "device.rebooted"),
)
LOW_VOLTAGE_V = 20.0


@dataclass
class _Latch:
    command: bool = False
    hold_s: float = 10.0
    released: bool = False
    is_open: bool = False
    opened: bool = False
    deadline: float = 0.0
    jammed: bool = False
    jam_condition: bool = False
    lock_fails: bool = False
    stuck: dict[str, bool] = field(default_factory=dict)
    # opening counters: non-volatile on the board, so _power_on leaves them alone
    openings: int = 0
    openings_seen: int = 0
    sensed_closed: bool = True
    counter_write_fails: bool = False

    @property
    def unrecorded(self) -> int:
        return (self.openings - self.openings_seen) % COUNTER_WRAP


class FakeIoBoard:
    def __init__(
        self,
        *,
        drawer_count: int = 12,
        pockets_per_drawer: int = 8,
        lidded: Iterable[tuple[int, int]] = (),
        motorised: Iterable[int] = (),
        is_simulator: bool = True,
        firmware_version: str = "1.4.2",
        protocol_version: int = 2,
    ) -> None:
        if protocol_version not in (1, 2):
            raise ValueError("protocol_version must be 1 or 2")
        self.now = 0.0
        self._identity = BoardIdentity(
            0xADC1, protocol_version, firmware_version, is_simulator, drawer_count, pockets_per_drawer
        )
        self.counts_openings = protocol_version >= 2
        self._lidded = frozenset(lidded)
        self._motorised = frozenset(motorised)
        self.drawers = {d: _Latch() for d in range(1, drawer_count + 1)}
        self.lids = {(d, p): _Latch() for d in self.drawers for p in range(1, pockets_per_drawer + 1)}
        self.lights: dict[tuple[int, int], Light] = {}
        self.door_open = False
        self.tamper = False
        self.supply_v = 24.0
        self.environment = EnvironmentReading(5.0, 45.0, False, True, True, False, False, 100)
        self._link_failures = 0
        self._link_code = "comm.timeout"
        self.closed = False
        self._power_on(rebooted=False)

    def _power_on(self, *, rebooted: bool) -> None:
        self.heartbeat_value = 0
        self.watchdog_armed = False
        self.last_heartbeat = self.now
        self.watchdog_timeout_ms = 2000
        self.buzzer = Buzzer.OFF
        self.latched = {"rebooted"} if rebooted else set()
        for latch in [*self.drawers.values(), *self.lids.values()]:
            latch.command = latch.released = latch.jammed = latch.opened = False
            latch.hold_s = 10.0
        self.lights.clear()

    # --- time and the link ----------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._tick()

    def _tick(self) -> None:
        latches = [*self.drawers.values(), *self.lids.values()]
        for latch in latches:
            expired = latch.released and latch.command and not latch.opened and self.now >= latch.deadline
            if expired and not latch.lock_fails:
                latch.released = latch.command = latch.jammed = False
        if self.watchdog_armed and self.now - self.last_heartbeat >= self.watchdog_timeout_ms / 1000:
            self.watchdog_armed = False
            self.latched.add("watchdog_expired")
            for latch in latches:
                latch.command = latch.jammed = False
                if not latch.is_open and not latch.lock_fails:
                    latch.released = False

    async def _io(self) -> None:
        """Every call passes here: a lost link raises as the driver would, then time catches up."""
        if self.closed:
            raise CommunicationError("comm.disconnected", "fake board is closed")
        if self._link_failures:
            self._link_failures -= 1
            raise CommunicationError(self._link_code, "fake board: link lost")
        self._tick()

    def lose_link(self, requests: int = 1, code: str = "comm.timeout") -> None:
        self._link_failures = requests
        self._link_code = code

    # --- readings -------------------------------------------------------------------------------------------

    def _faults(self) -> frozenset[str]:
        faults = set(self.latched)
        if any(d.jammed for d in self.drawers.values()):
            faults.add("jam")
        if any(self._disagree(d) for d in self.drawers.values()):
            faults.add("sensor_disagreement")
        if self.supply_v < LOW_VOLTAGE_V:
            faults.add("low_voltage")
        return frozenset(faults)

    @staticmethod
    def _sensor(latch: _Latch, sensor: str) -> bool:
        if sensor in latch.stuck:
            return latch.stuck[sensor]
        return latch.is_open if sensor == "open" else not latch.is_open

    def _disagree(self, latch: _Latch) -> bool:
        return self._sensor(latch, "open") == self._sensor(latch, "closed")

    def _state(self, drawer: int) -> DrawerState:
        latch = self.drawers[drawer]
        pockets = [p for (d, p) in self.lids if d == drawer]
        counted = self.counts_openings
        lids = tuple(
            (p, (self.lids[drawer, p].openings, self.lids[drawer, p].openings_seen))
            for p in pockets
            if self.lids[drawer, p].unrecorded
        )
        return DrawerState(
            drawer=drawer,
            lock_commanded=latch.command,
            lock_released=latch.released,
            open_sensor=self._sensor(latch, "open"),
            closed_sensor=self._sensor(latch, "closed"),
            jammed=latch.jammed,
            sensor_disagreement=self._disagree(latch),
            motorised=drawer in self._motorised,
            position_pct=100 if latch.is_open else 0,
            hold_s=latch.hold_s,
            lids_released=frozenset(p for p in pockets if self.lids[drawer, p].released),
            lids_open=frozenset(p for p in pockets if self.lids[drawer, p].is_open),
            openings=latch.openings if counted else None,
            openings_seen=latch.openings_seen if counted else None,
            lid_counters=lids if counted else (),
        )

    def _lid(self, drawer: int, pocket: int) -> LidState:
        latch = self.lids[drawer, pocket]
        return LidState(drawer, pocket, (drawer, pocket) in self._lidded, latch.command, latch.released, latch.is_open)

    async def identify(self) -> BoardIdentity:
        await self._io()
        return self._identity

    async def snapshot(self) -> BoardSnapshot:
        await self._io()
        return BoardSnapshot(
            faults=self._faults(),
            door_open=self.door_open,
            tamper=self.tamper,
            buzzer=self.buzzer,
            supply_voltage_v=self.supply_v,
            heartbeat=self.heartbeat_value,
            watchdog_timeout_ms=self.watchdog_timeout_ms,
            is_simulator=self._identity.is_simulator,
            environment=self.environment,
            drawers=tuple(self._state(d) for d in self.drawers),
            protocol_version=self._identity.protocol_version,
        )

    async def read_environment(self) -> EnvironmentReading:
        await self._io()
        return self.environment

    async def drawer_state(self, drawer: int) -> DrawerState:
        self._check_drawer(drawer)
        await self._io()
        return self._state(drawer)

    async def lid_state(self, drawer: int, pocket: int) -> LidState:
        self._check_pocket(drawer, pocket)
        await self._io()
        return self._lid(drawer, pocket)

    # --- actuation ------------------------------------------------------------------------------------------

    def _check_drawer(self, drawer: int) -> None:
        if drawer not in self.drawers:
            raise ValueError(f"drawer {drawer} is not on this board (1..{len(self.drawers)})")

    def _check_pocket(self, drawer: int, pocket: int) -> None:
        self._check_drawer(drawer)
        if (drawer, pocket) not in self.lids:
            raise ValueError(f"pocket {pocket} is not in drawer {drawer}")

    @staticmethod
    def _check_hold(hold_s: float) -> None:
        if not 1.0 <= round(hold_s, 1) <= 120.0:
            raise ValueError(f"hold time {hold_s} s outside 1.0..120.0 s")

    def _refuse_unlock(self, drawer: int, pocket: int = 0) -> None:
        faults = self._faults()
        for name, code in BLOCKING_FAULTS:
            if name in faults:
                raise DeviceFaultError(
                    code, f"drawer {drawer}: board_status.{name} is set", drawer=drawer, pocket=pocket
                )
        latch = self.drawers[drawer]
        if latch.jammed:
            raise DeviceFaultError("device.drawer_jammed", f"drawer {drawer} is jammed", drawer=drawer)
        if self._disagree(latch):
            raise DeviceFaultError("device.sensor_disagreement", f"drawer {drawer} sensors disagree", drawer=drawer)

    def _can_actuate(self) -> bool:
        return "over_current" not in self.latched and self.supply_v >= LOW_VOLTAGE_V

    def _command(self, latch: _Latch, on: bool) -> None:
        latch.command = on
        if latch.lock_fails:
            return
        if on:
            if not self._can_actuate():
                return
            latch.released = True
            latch.opened = latch.is_open
            latch.deadline = self.now + latch.hold_s
            latch.jammed = latch.jam_condition
        else:
            latch.jammed = False
            if not latch.is_open:
                latch.released = False

    async def ensure_unlocked(self, drawer: int, hold_s: float) -> DrawerState:
        self._check_drawer(drawer)
        self._check_hold(hold_s)
        await self._io()
        self._refuse_unlock(drawer)
        latch = self.drawers[drawer]
        latch.hold_s = round(hold_s, 1)
        self._command(latch, True)
        self._refuse_unlock(drawer)
        if not latch.released:
            raise DeviceFaultError("device.lock_not_engaged", f"drawer {drawer} did not release", drawer=drawer)
        return self._state(drawer)

    async def ensure_locked(self, drawer: int) -> DrawerState:
        self._check_drawer(drawer)
        await self._io()
        latch = self.drawers[drawer]
        if not latch.command and not latch.released:
            return self._state(drawer)
        self._command(latch, False)
        state = self._state(drawer)
        if state.lock_released and not state.latch_pending:
            if state.sensor_disagreement:
                raise DeviceFaultError("device.sensor_disagreement", f"drawer {drawer} sensors disagree")
            raise DeviceFaultError("device.lock_not_engaged", f"drawer {drawer} did not latch", drawer=drawer)
        return state

    async def ensure_lid_unlocked(self, drawer: int, pocket: int, hold_s: float) -> LidState:
        self._check_pocket(drawer, pocket)
        self._check_hold(hold_s)
        await self._io()
        faults = self._faults()
        for name, code in BLOCKING_FAULTS:
            if name in faults:
                raise DeviceFaultError(code, f"lid {drawer}.{pocket}: board_status.{name} is set")
        if (drawer, pocket) not in self._lidded:
            raise ValueError(f"pocket {drawer}.{pocket} has no lid lock")
        latch = self.lids[drawer, pocket]
        latch.hold_s = round(hold_s, 1)
        self._command(latch, True)
        if not latch.released:
            raise DeviceFaultError("device.lock_not_engaged", f"lid {drawer}.{pocket} did not release")
        return self._lid(drawer, pocket)

    async def ensure_lid_locked(self, drawer: int, pocket: int) -> LidState:
        self._check_pocket(drawer, pocket)
        await self._io()
        latch = self.lids[drawer, pocket]
        if not latch.command and not latch.released:
            return self._lid(drawer, pocket)
        self._command(latch, False)
        if latch.released and not latch.is_open:
            raise DeviceFaultError("device.lock_not_engaged", f"lid {drawer}.{pocket} did not latch")
        return self._lid(drawer, pocket)

    @staticmethod
    def _check_seen(seen: int) -> None:
        if not 0 <= seen <= 0xFFFF:
            raise ValueError(f"seen must be a 16-bit counter value (0..65535), not {seen}")

    def _acknowledge(self, latch: _Latch, seen: int, what: str) -> None:
        if not latch.counter_write_fails:
            latch.openings_seen = seen
        if latch.openings_seen != seen:  # what the driver's read-back finds
            raise DeviceFaultError("device.write_not_confirmed", f"{what}: wrote {seen}, reads {latch.openings_seen}")

    async def ensure_openings_seen(self, drawer: int, seen: int) -> None:
        self._check_drawer(drawer)
        self._check_seen(seen)
        if not self.counts_openings:
            return
        await self._io()
        self._acknowledge(self.drawers[drawer], seen, f"drawer {drawer} openings_seen")

    async def ensure_lid_openings_seen(self, drawer: int, pocket: int, seen: int) -> None:
        self._check_pocket(drawer, pocket)
        self._check_seen(seen)
        if not self.counts_openings:
            return
        await self._io()
        self._acknowledge(self.lids[drawer, pocket], seen, f"lid {drawer}.{pocket} lid_openings_seen")

    async def set_light(self, drawer: int, pocket: int, colour: Colour, blink: Blink = Blink.STEADY) -> None:
        self._check_pocket(drawer, pocket)
        light = Light(Colour(colour), Blink(blink))  # ValueError for an unknown colour or blink, like the codec
        await self._io()
        self.lights[drawer, pocket] = light

    async def read_light(self, drawer: int, pocket: int) -> Light:
        self._check_pocket(drawer, pocket)
        await self._io()
        return self.lights.get((drawer, pocket), Light())

    async def lights_off(self) -> None:
        await self._io()
        self.lights.clear()

    async def set_buzzer(self, pattern: Buzzer) -> None:
        await self._io()
        self.buzzer = Buzzer(pattern)

    async def acknowledge_faults(self, names: Iterable[str] | None = None) -> frozenset[str]:
        chosen = CLEARABLE_FAULTS if names is None else frozenset(names)
        if not chosen <= CLEARABLE_FAULTS:
            raise ValueError(f"only {sorted(CLEARABLE_FAULTS)} can be acknowledged")
        await self._io()
        self.latched -= chosen
        return self._faults()

    async def heartbeat(self, value: int) -> None:
        await self._io()
        value &= 0xFFFF
        if value != self.heartbeat_value or not self.watchdog_armed:
            self.watchdog_armed = True
            self.last_heartbeat = self.now
        self.heartbeat_value = value

    async def set_watchdog_timeout(self, milliseconds: int) -> None:
        if not 200 <= milliseconds <= 30000:
            raise ValueError("watchdog timeout must be 200..30000 ms")
        await self._io()
        self.watchdog_timeout_ms = milliseconds

    async def close(self) -> None:
        self.closed = True

    # --- physical world and injected faults -----------------------------------------------------------------

    @staticmethod
    def _sense(latch: _Latch, *, closed: bool) -> None:
        """The board's counter: one opening each time the drawer or lid leaves its closed position, whatever
        moved it (an authorised open, a forced one, a stuck sensor); wraps 65535 -> 0."""
        if latch.sensed_closed and not closed:
            latch.openings = (latch.openings + 1) % COUNTER_WRAP
        latch.sensed_closed = closed

    def _sense_drawer(self, latch: _Latch) -> None:
        self._sense(latch, closed=self._sensor(latch, "closed") and not self._sensor(latch, "open"))

    def open_drawer(self, drawer: int) -> None:
        self._tick()
        latch = self.drawers[drawer]
        if not latch.released or latch.jammed:
            raise ValueError(f"drawer {drawer} is locked or jammed")
        latch.is_open = latch.opened = True
        self._sense_drawer(latch)

    def close_drawer(self, drawer: int) -> None:
        self._tick()
        latch = self.drawers[drawer]
        if latch.is_open:
            latch.is_open = False
            if not latch.lock_fails:
                latch.released = latch.command = False
        self._sense_drawer(latch)

    def lift_lid(self, drawer: int, pocket: int) -> None:
        self._tick()
        latch = self.lids[drawer, pocket]
        if not latch.released or not self.drawers[drawer].is_open:
            raise ValueError(f"lid {drawer}.{pocket} is locked or its drawer is closed")
        latch.is_open = latch.opened = True
        self._sense(latch, closed=False)

    def close_lid(self, drawer: int, pocket: int) -> None:
        self._tick()
        latch = self.lids[drawer, pocket]
        if latch.is_open:
            latch.is_open = False
            if not latch.lock_fails:
                latch.released = latch.command = False
        self._sense(latch, closed=True)

    def set_temperature(self, celsius: float) -> None:
        env = self.environment
        self.environment = EnvironmentReading(
            round(celsius, 1), env.humidity_pct, env.fridge_door_open, env.compressor_on, env.mains_present,
            env.on_ups, env.ups_battery_low, env.ups_charge_pct,
        )  # fmt: skip

    def cut_power(self) -> None:
        env = self.environment
        self.environment = EnvironmentReading(
            env.temperature_c, env.humidity_pct, env.fridge_door_open, env.compressor_on, False, True,
            env.ups_battery_low, env.ups_charge_pct,
        )  # fmt: skip

    def restore_power(self) -> None:
        env = self.environment
        self.environment = EnvironmentReading(
            env.temperature_c, env.humidity_pct, env.fridge_door_open, env.compressor_on, True, False,
            env.ups_battery_low, env.ups_charge_pct,
        )  # fmt: skip

    def jam_drawer(self, drawer: int) -> None:
        self.drawers[drawer].jam_condition = True

    def fail_lock(self, drawer: int, pocket: int | None = None) -> None:
        (self.drawers[drawer] if pocket is None else self.lids[drawer, pocket]).lock_fails = True

    def stick_sensor(self, drawer: int, sensor: str, value: bool) -> None:
        if sensor not in ("open", "closed"):
            raise ValueError("sensor must be 'open' or 'closed'")
        latch = self.drawers[drawer]
        latch.stuck[sensor] = value
        self._sense_drawer(latch)

    def unstick_sensors(self, drawer: int) -> None:
        latch = self.drawers[drawer]
        latch.stuck.clear()
        self._sense_drawer(latch)

    def _counted(self, drawer: int, pocket: int | None) -> _Latch:
        return self.drawers[drawer] if pocket is None else self.lids[drawer, pocket]

    def preset_openings(self, drawer: int, openings: int, seen: int | None = None, pocket: int | None = None) -> None:
        """A board with a service history (e.g. a counter just below the wrap); ``seen`` defaults to ``openings``."""
        for word in (openings, openings if seen is None else seen):
            if not 0 <= word <= 0xFFFF:
                raise ValueError(f"{word} is not a 16-bit counter value")
        latch = self._counted(drawer, pocket)
        latch.openings = openings
        latch.openings_seen = openings if seen is None else seen

    def fail_counter_write(self, drawer: int, pocket: int | None = None) -> None:
        """The counter memory stops keeping acknowledgements."""
        self._counted(drawer, pocket).counter_write_fails = True

    def repair_counter_write(self, drawer: int, pocket: int | None = None) -> None:
        self._counted(drawer, pocket).counter_write_fails = False

    def reboot(self) -> None:
        self._power_on(rebooted=True)

    def set_supply_voltage(self, volts: float) -> None:
        self.supply_v = volts

    def short_circuit(self) -> None:
        self.latched.add("over_current")
