"""Deterministic model of the cabinet I/O board: the pure request -> response core behind both transports.

Responsible for the board's behaviour as SPEC.md states it: lock and lid latches with hold timers, sensors driven
by physical-world actions (a person opens a drawer, the fridge warms, the power is cut), fault bits, the
heartbeat watchdog, the fault plan, and (protocol version 2) the opening counters: every open edge of a drawer or
lid is counted, whatever caused it, and the counts and the controller's acknowledgements survive a reboot and any
client coming or going. ``protocol_version=1`` serves exactly the version 1 map (the model still counts, for the
control surface, but no register shows it). Time comes only from the injected clock, so a test can run a hold
timer or a watchdog expiry by advancing a ``ManualClock``. Not responsible for bytes on a wire (``server.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from firmware_protocols.io_board import codec
from firmware_protocols.io_board.register_map import CabinetLayout, Location, RegisterMap, load_register_map
from simulators.common.clock import RealClock, SimClock
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan

FIRMWARE_VERSION = (1, 4, 2)

# Faults the transport adapters apply (the model only reports them with the answer).
TRANSPORT_FAULTS = frozenset(
    {
        FaultKind.DROP_RESPONSE,
        FaultKind.DELAY_RESPONSE,
        FaultKind.DISCONNECT,
        FaultKind.CORRUPT_CRC,
        FaultKind.GARBAGE,
        FaultKind.TRUNCATE,
    }
)
MODEL_FAULTS = frozenset({FaultKind.JAM_DRAWER, FaultKind.STICK_SENSOR, FaultKind.LOCK_FAILS, FaultKind.REBOOT})


class ExceptionCode(IntEnum):
    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_ADDRESS = 0x02
    ILLEGAL_VALUE = 0x03
    DEVICE_FAILURE = 0x04


READ_FUNCTIONS = frozenset({3, 4})
WRITE_FUNCTIONS = frozenset({6, 16})


@dataclass(frozen=True, slots=True)
class Request:
    function: int
    address: int
    count: int = 1
    values: tuple[int, ...] = ()  # for writes


@dataclass(frozen=True, slots=True)
class Response:
    values: tuple[int, ...] = ()
    exception: ExceptionCode | None = None
    transport_faults: tuple[Fault, ...] = ()


@dataclass
class _Latch:
    """A drawer or lid latch with its hold timer."""

    command: int = 0
    hold_ds: int = 100
    released: bool = False
    is_open: bool = False
    opened_since_release: bool = False
    deadline: float = 0.0
    jammed: bool = False
    jam_condition: bool = False  # fault plan: an unlock releases the latch but the drawer cannot move
    lock_fails: bool = False  # fault plan: the actuator does not move
    stuck: dict[str, bool] = field(default_factory=dict)  # sensor name ("open"/"closed") -> forced value
    # Opening counters (non-volatile: FRAM on a real board, so a reboot keeps them; _reset_latch never touches them).
    openings: int = 0
    openings_seen: int = 0
    sensed_closed: bool = True  # what the counter last saw: an opening is the edge from closed to anything else
    counter_write_fails: bool = False  # test hook: the counter memory does not keep an acknowledgement


@dataclass
class _Pocket:
    lidded: bool
    latch: _Latch = field(default_factory=_Latch)
    light: int = 0


class IoBoardModel:
    def __init__(
        self,
        layout: CabinetLayout | None = None,
        *,
        clock: SimClock | None = None,
        faults: FaultPlan | None = None,
        register_map: RegisterMap | None = None,
        is_simulator: bool = True,
        protocol_version: int = 2,
    ) -> None:
        # The table describes every version; a board serves only what its version has (the rest answers 0x02).
        self.map = (register_map or load_register_map()).for_version(protocol_version)
        self.layout = layout or CabinetLayout()
        self.layout.check(self.map)
        self.clock = clock or RealClock()
        self.faults = faults or FaultPlan()
        self.is_simulator = is_simulator
        self.request_count = 0
        # physical state (survives a reboot)
        self.door_open = False
        self.tamper = False
        self.supply_ds = self.map.nominal_voltage
        self.temperature_c = 5.0
        self.humidity_pct = 45.0
        self.fridge_door_open = False
        self.compressor_on = True
        self.warming_c_per_min = 0.0
        self.mains_present = True
        self.ups_charge_pct = 100.0
        self._last_physics = self.clock.monotonic()
        self.drawers: dict[int, _Latch] = {}
        self.pockets: dict[tuple[int, int], _Pocket] = {}
        for drawer in range(1, self.layout.drawer_count + 1):
            self.drawers[drawer] = _Latch()
            for pocket in range(1, self.layout.pockets_per_drawer + 1):
                self.pockets[drawer, pocket] = _Pocket(lidded=(drawer, pocket) in self.layout.lidded)
        self._power_on(rebooted=False)

    # --- volatile state ---------------------------------------------------------------------------------------

    def _power_on(self, *, rebooted: bool) -> None:
        """Volatile state as after power-up: everything commanded locked, defaults restored."""
        self.heartbeat = 0
        self.watchdog_armed = False
        self.last_heartbeat = self.clock.monotonic()
        self.watchdog_timeout_ms = self.map.board.register("watchdog_timeout_ms").default
        self.buzzer = 0
        self.over_current = False
        self.watchdog_expired = False
        self.rebooted = rebooted
        hold_default = self.map.drawer.register("hold_time").default
        for latch in self.drawers.values():
            self._reset_latch(latch, hold_default)
        for pocket in self.pockets.values():
            self._reset_latch(pocket.latch, hold_default)
            pocket.light = 0

    @staticmethod
    def _reset_latch(latch: _Latch, hold_ds: int) -> None:
        latch.command = 0
        latch.hold_ds = hold_ds
        latch.jammed = False
        # An unpowered solenoid is locked; an open drawer latches as it is pushed home.
        latch.released = False
        latch.opened_since_release = False

    # --- the pure core ----------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """One Modbus request in, one answer out (values or an exception code), plus transport faults to apply."""
        self.request_count += 1
        now = self.clock.monotonic()
        transport = []
        for fault in self.faults.due(self.request_count, now):
            if fault.kind in MODEL_FAULTS:
                self._apply_fault(fault)
            elif fault.kind in TRANSPORT_FAULTS:
                transport.append(fault)
        self.tick()
        response = self._execute(request)
        return Response(response.values, response.exception, tuple(transport))

    def _execute(self, request: Request) -> Response:
        if request.function in READ_FUNCTIONS:
            if not 1 <= request.count <= self.map.protocol.max_registers_per_read:
                return Response(exception=ExceptionCode.ILLEGAL_VALUE)
            values = []
            for address in range(request.address, request.address + request.count):
                location = self._locate(address)
                if location is None:
                    return Response(exception=ExceptionCode.ILLEGAL_ADDRESS)
                values.append(self._read(location))
            return Response(values=tuple(values))
        if request.function in WRITE_FUNCTIONS:
            return self._write(request.address, request.values)
        return Response(exception=ExceptionCode.ILLEGAL_FUNCTION)

    def _locate(self, address: int) -> Location | None:
        return self.map.locate(address, self.layout.drawer_count, self.layout.pockets_per_drawer)

    def read_register(self, address: int) -> int:
        """The word at ``address`` now (for tests and the control surface); KeyError if it is not mapped."""
        self.tick()
        location = self._locate(address)
        if location is None:
            raise KeyError(f"address {address} is not mapped")
        return self._read(location)

    # --- reads ------------------------------------------------------------------------------------------------

    def _read(self, location: Location) -> int:
        name = location.register.name
        if location.block == "drawer":
            return self._read_drawer(location.drawer, name)
        if location.block == "pocket":
            return self._read_pocket(location.drawer, location.pocket, name)
        if location.block == "drawer_counters":
            return self._read_drawer_counters(location.drawer, name)
        if location.block == "pocket_counters":
            return self._read_pocket_counters(location.drawer, location.pocket, name)
        if location.block == "environment":
            return self._read_environment(name)
        return self._read_board(name)

    def _read_board(self, name: str) -> int:
        m = self.map
        values: dict[str, int] = {
            "board_id": m.protocol.board_id,
            "protocol_version": m.protocol.protocol_version,
            "firmware_major": FIRMWARE_VERSION[0],
            "firmware_minor": FIRMWARE_VERSION[1],
            "firmware_patch": FIRMWARE_VERSION[2],
            "identity": m.mask("identity", "is_simulator") if self.is_simulator else 0,
            "drawer_count": self.layout.drawer_count,
            "pockets_per_drawer": self.layout.pockets_per_drawer,
            "status": self.status_word(),
            "heartbeat": self.heartbeat,
            "watchdog_timeout_ms": self.watchdog_timeout_ms,
            "inputs": m.encode_bits(
                "board_inputs", {n for n, on in (("door_open", self.door_open), ("tamper", self.tamper)) if on}
            ),
            "buzzer": self.buzzer,
            "supply_voltage": self.supply_ds,
        }
        return values.get(name, 0)  # command registers (fault_clear, lights_off) read 0

    def status_word(self) -> int:
        flags = {
            "jam": any(d.jammed for d in self.drawers.values()),
            "sensor_disagreement": any(self._disagree(d) for d in self.drawers.values()),
            "over_current": self.over_current,
            "low_voltage": self.supply_ds < self.map.low_voltage_threshold,
            "watchdog_expired": self.watchdog_expired,
            "rebooted": self.rebooted,
        }
        return self.map.encode_bits("board_status", {name for name, on in flags.items() if on})

    def _read_environment(self, name: str) -> int:
        flags = {
            "fridge_door_open": self.fridge_door_open,
            "compressor_on": self.compressor_on,
            "mains_present": self.mains_present,
            "on_ups": not self.mains_present,
            "ups_battery_low": self.ups_charge_pct < 20,
        }
        values = {
            "temperature": codec.encode_temperature(max(-40.0, min(125.0, self.temperature_c))),
            "humidity": codec.encode_humidity(max(0.0, min(100.0, self.humidity_pct))),
            "env_flags": self.map.encode_bits("env_flags", {n for n, on in flags.items() if on}),
            "ups_charge": round(self.ups_charge_pct),
        }
        return values.get(name, 0)

    @staticmethod
    def _sensor(latch: _Latch, sensor: str) -> bool:
        if sensor in latch.stuck:
            return latch.stuck[sensor]
        return latch.is_open if sensor == "open" else not latch.is_open

    def _disagree(self, latch: _Latch) -> bool:
        return self._sensor(latch, "open") == self._sensor(latch, "closed")

    def _read_drawer(self, drawer: int, name: str) -> int:
        latch = self.drawers[drawer]
        if name == "lock_command":
            return latch.command
        if name == "hold_time":
            return latch.hold_ds
        if name == "drawer_status":
            flags = {
                "lock_released": latch.released,
                "open_sensor": self._sensor(latch, "open"),
                "closed_sensor": self._sensor(latch, "closed"),
                "jammed": latch.jammed,
                "sensor_disagreement": self._disagree(latch),
                "motorised": drawer in self.layout.motorised,
            }
            if self.map.counts_openings:
                flags["opened"] = latch.openings != latch.openings_seen
            return self.map.encode_bits("drawer_status", {n for n, on in flags.items() if on})
        if name == "position":
            return 100 if latch.is_open else 0
        pockets = range(1, self.layout.pockets_per_drawer + 1)
        if name == "lids_released":
            return codec.pocket_bits({p for p in pockets if self.pockets[drawer, p].latch.released})
        if name == "lids_open":
            return codec.pocket_bits({p for p in pockets if self.pockets[drawer, p].latch.is_open})
        return 0

    def _read_pocket(self, drawer: int, pocket: int, name: str) -> int:
        state = self.pockets[drawer, pocket]
        if name == "lid_command":
            return state.latch.command
        if name == "lid_hold_time":
            return state.latch.hold_ds
        if name == "light":
            return state.light
        flags = {"lid_released": state.latch.released, "lid_open": state.latch.is_open, "lidded": state.lidded}
        if self.map.counts_openings:
            flags["lid_opened"] = state.latch.openings != state.latch.openings_seen
        return self.map.encode_bits("pocket_status", {n for n, on in flags.items() if on})

    def _read_drawer_counters(self, drawer: int, name: str) -> int:
        latch = self.drawers[drawer]
        if name == "openings":
            return latch.openings
        if name == "openings_seen":
            return latch.openings_seen
        if name == "lids_opened":
            pockets = range(1, self.layout.pockets_per_drawer + 1)
            return codec.pocket_bits({p for p in pockets if self._unrecorded(self.pockets[drawer, p].latch)})
        return 0  # reserved

    def _read_pocket_counters(self, drawer: int, pocket: int, name: str) -> int:
        latch = self.pockets[drawer, pocket].latch
        return latch.openings if name == "lid_openings" else latch.openings_seen

    @staticmethod
    def _unrecorded(latch: _Latch) -> int:
        return codec.unrecorded_openings(latch.openings, latch.openings_seen)

    # --- writes -----------------------------------------------------------------------------------------------

    def _write(self, address: int, values: tuple[int, ...]) -> Response:
        if not values:
            return Response(exception=ExceptionCode.ILLEGAL_VALUE)
        located = []
        for offset, value in enumerate(values):
            location = self._locate(address + offset)
            if location is None or not location.register.writable:
                return Response(exception=ExceptionCode.ILLEGAL_ADDRESS)
            if not self._valid(location, value):
                return Response(exception=ExceptionCode.ILLEGAL_VALUE)
            if value and location.register.name in ("lock_command", "lid_command") and self.watchdog_expired:
                # Outputs stay locked after a watchdog expiry until the controller clears the fault: a controller
                # that stopped beating must not be able to open anything with a stray command.
                return Response(exception=ExceptionCode.DEVICE_FAILURE)
            located.append((location, value))
        # Settings before commands, so [lock_command = 1, hold_time = 50] in one write unlocks for 5 s.
        located.sort(key=lambda item: item[0].register.name in ("lock_command", "lid_command"))
        for location, value in located:
            self._apply_write(location, value)
        return Response(values=values)

    def _valid(self, location: Location, value: int) -> bool:
        register = location.register
        if not register.accepts(value):
            return False
        if register.type == "light":
            return codec.is_valid_light(self.map, value)
        unlidded = not self.pockets.get((location.drawer, location.pocket), _Pocket(lidded=True)).lidded
        return not (register.name == "lid_command" and value and unlidded)

    def _apply_write(self, location: Location, value: int) -> None:
        name = location.register.name
        if location.block in ("drawer_counters", "pocket_counters"):
            # openings_seen / lid_openings_seen: "set to value", so a repeated write changes nothing.
            counted = (
                self.drawers[location.drawer]
                if location.block == "drawer_counters"
                else self.pockets[location.drawer, location.pocket].latch
            )
            if not counted.counter_write_fails:
                counted.openings_seen = value
        elif location.block == "drawer":
            latch = self.drawers[location.drawer]
            if name == "hold_time":
                latch.hold_ds = value
            else:
                self._command(latch, value)
        elif location.block == "pocket":
            pocket = self.pockets[location.drawer, location.pocket]
            if name == "lid_hold_time":
                pocket.latch.hold_ds = value
            elif name == "light":
                pocket.light = value
            else:
                self._command(pocket.latch, value)
        elif name == "heartbeat":
            # Only a changed value re-arms: a stuck controller (or a bus repeater) replaying one frame must not
            # keep the drawers unlockable.
            if value != self.heartbeat or not self.watchdog_armed:
                self.watchdog_armed = True
                self.last_heartbeat = self.clock.monotonic()
            self.heartbeat = value
        elif name == "watchdog_timeout_ms":
            self.watchdog_timeout_ms = value
        elif name == "fault_clear":
            if value & self.map.mask("board_status", "over_current"):
                self.over_current = False
            if value & self.map.mask("board_status", "watchdog_expired"):
                self.watchdog_expired = False
            if value & self.map.mask("board_status", "rebooted"):
                self.rebooted = False
        elif name == "buzzer":
            self.buzzer = value
        elif name == "lights_off" and value:
            for pocket in self.pockets.values():
                pocket.light = 0

    def _can_actuate(self) -> bool:
        # Solenoids need the 24 V rail; an over-current trip disables the drivers until cleared.
        return not self.over_current and self.supply_ds >= self.map.low_voltage_threshold

    def _command(self, latch: _Latch, value: int) -> None:
        latch.command = value
        if latch.lock_fails:
            return  # the actuator does not move; the status keeps reading what it was
        if value:
            if not self._can_actuate():
                return
            latch.released = True
            latch.opened_since_release = latch.is_open
            latch.deadline = self.clock.monotonic() + latch.hold_ds / 10
            latch.jammed = latch.jam_condition
        else:
            latch.jammed = False
            if not latch.is_open:
                latch.released = False
            # an open drawer stays released and latches when it is pushed home

    # --- time -------------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Bring timers and physics up to the clock: hold expiry, watchdog, fridge temperature, UPS drain."""
        now = self.clock.monotonic()
        minutes = (now - self._last_physics) / 60
        self._last_physics = now
        if self.compressor_on:
            setpoint = 5.0
            step = min(abs(self.temperature_c - setpoint), minutes * 1.0)
            self.temperature_c += -step if self.temperature_c > setpoint else step
        else:
            self.temperature_c += self.warming_c_per_min * minutes
        if not self.mains_present:
            self.ups_charge_pct = max(0.0, self.ups_charge_pct - minutes * 1.0)  # 1 %/min on battery
        latches = [*self.drawers.values(), *(p.latch for p in self.pockets.values())]
        for latch in latches:
            expired = latch.released and latch.command and not latch.opened_since_release and now >= latch.deadline
            if expired and not latch.lock_fails:
                latch.released = False
                latch.command = 0
                latch.jammed = False
        if self.watchdog_armed and now - self.last_heartbeat >= self.watchdog_timeout_ms / 1000:
            self.watchdog_armed = False
            self.watchdog_expired = True
            for latch in latches:
                latch.command = 0
                latch.jammed = False
                if not latch.is_open and not latch.lock_fails:
                    latch.released = False

    # --- the fault plan ---------------------------------------------------------------------------------------

    def _apply_fault(self, fault: Fault) -> None:
        params: dict[str, Any] = fault.params
        if fault.kind is FaultKind.REBOOT:
            self.reboot()
        elif fault.kind is FaultKind.JAM_DRAWER:
            self.jam_drawer(int(params.get("drawer", 1)))
        elif fault.kind is FaultKind.LOCK_FAILS:
            self.fail_lock(int(params.get("drawer", 1)), params.get("pocket"))
        elif fault.kind is FaultKind.STICK_SENSOR:
            self.stick_sensor(int(params.get("drawer", 1)), str(params.get("sensor", "open")), bool(params["value"]))

    # --- physical world ---------------------------------------------------------------------------------------

    def _drawer(self, drawer: int) -> _Latch:
        if drawer not in self.drawers:
            raise ValueError(f"no drawer {drawer}")
        return self.drawers[drawer]

    def _pocket(self, drawer: int, pocket: int) -> _Pocket:
        if (drawer, pocket) not in self.pockets:
            raise ValueError(f"no pocket {drawer}.{pocket}")
        return self.pockets[drawer, pocket]

    def open_drawer(self, drawer: int) -> None:
        self.tick()
        latch = self._drawer(drawer)
        if latch.is_open:
            return
        if not latch.released:
            raise ValueError(f"drawer {drawer} is locked")
        if latch.jammed:
            raise ValueError(f"drawer {drawer} is jammed")
        latch.is_open = True
        latch.opened_since_release = True
        self._sense_drawer(latch)

    def close_drawer(self, drawer: int) -> None:
        self.tick()
        latch = self._drawer(drawer)
        if latch.is_open:
            latch.is_open = False
            if not latch.lock_fails:
                latch.released = False  # the latch catches as the drawer is pushed home
                latch.command = 0
        self._sense_drawer(latch)

    def lift_lid(self, drawer: int, pocket: int) -> None:
        self.tick()
        state = self._pocket(drawer, pocket)
        if not state.lidded:
            raise ValueError(f"pocket {drawer}.{pocket} has no lid")
        if not self.drawers[drawer].is_open:
            raise ValueError(f"drawer {drawer} is closed")
        if not state.latch.released:
            raise ValueError(f"lid {drawer}.{pocket} is locked")
        state.latch.is_open = True
        state.latch.opened_since_release = True
        self._sense(state.latch, closed=False)

    def close_lid(self, drawer: int, pocket: int) -> None:
        self.tick()
        latch = self._pocket(drawer, pocket).latch
        if latch.is_open:
            latch.is_open = False
            if not latch.lock_fails:
                latch.released = False
                latch.command = 0
        self._sense(latch, closed=True)

    # The counter sees what the sensors see, not what the controller allowed: an authorised open, a drawer pried
    # open past its latch, a sensor that sticks, all leave the closed position and all count.

    @staticmethod
    def _sense(latch: _Latch, *, closed: bool) -> None:
        """One opening each time the drawer or lid leaves its closed position (wrapping 65535 -> 0)."""
        if latch.sensed_closed and not closed:
            latch.openings = codec.count_opening(latch.openings)
        latch.sensed_closed = closed

    def _sense_drawer(self, latch: _Latch) -> None:
        # Closed = closed sensor on and open sensor off; a sensor fault that breaks that counts as leaving it,
        # because a drawer forced open and a failed sensor look the same to the board.
        self._sense(latch, closed=self._sensor(latch, "closed") and not self._sensor(latch, "open"))

    def open_door(self) -> None:
        self.door_open = True

    def close_door(self) -> None:
        self.door_open = False

    def set_tamper(self, tripped: bool = True) -> None:
        self.tamper = tripped

    def set_fridge_temperature(self, celsius: float) -> None:
        self.tick()
        self.temperature_c = float(celsius)

    def warm_fridge(self, degrees_per_minute: float = 0.5) -> None:
        """The compressor stops; the fridge warms at this rate on the simulator clock."""
        self.tick()
        self.compressor_on = False
        self.warming_c_per_min = float(degrees_per_minute)

    def cool_fridge(self) -> None:
        self.tick()
        self.compressor_on = True
        self.warming_c_per_min = 0.0

    def set_humidity(self, percent: float) -> None:
        self.humidity_pct = float(percent)

    def open_fridge_door(self) -> None:
        self.fridge_door_open = True

    def close_fridge_door(self) -> None:
        self.fridge_door_open = False

    def cut_power(self) -> None:
        """Mains lost: the board runs on the UPS (drawers keep working, the flag says so)."""
        self.tick()
        self.mains_present = False

    def restore_power(self) -> None:
        self.tick()
        self.mains_present = True

    def set_supply_voltage(self, volts: float) -> None:
        self.supply_ds = codec.encode_tenths(volts)

    def short_circuit(self) -> None:
        """An actuator draws too much current: the board trips (latched over_current) and disables the drivers."""
        self.over_current = True

    def reboot(self) -> None:
        """The board restarts: volatile state is lost, everything is relocked, the rebooted bit is set."""
        self._power_on(rebooted=True)

    def jam_drawer(self, drawer: int) -> None:
        self._drawer(drawer).jam_condition = True

    def clear_jam(self, drawer: int) -> None:
        latch = self._drawer(drawer)
        latch.jam_condition = False
        latch.jammed = False

    def stick_sensor(self, drawer: int, sensor: str, value: bool) -> None:
        if sensor not in ("open", "closed"):
            raise ValueError("sensor must be 'open' or 'closed'")
        latch = self._drawer(drawer)
        latch.stuck[sensor] = value
        self._sense_drawer(latch)

    def unstick_sensors(self, drawer: int) -> None:
        latch = self._drawer(drawer)
        latch.stuck.clear()
        self._sense_drawer(latch)

    def _counted(self, drawer: int, pocket: int | None) -> _Latch:
        return self._drawer(drawer) if pocket is None else self._pocket(drawer, int(pocket)).latch

    def preset_openings(self, drawer: int, openings: int, seen: int | None = None, pocket: int | None = None) -> None:
        """A board with a service history: set a drawer's (or a lid's) counter and acknowledgement directly, e.g.
        just below the 65535 -> 0 wrap. ``seen`` defaults to ``openings`` (nothing unrecorded)."""
        for word in (openings, openings if seen is None else seen):
            if not 0 <= int(word) <= 0xFFFF:
                raise ValueError(f"{word} is not a 16-bit counter value")
        latch = self._counted(drawer, pocket)
        latch.openings = int(openings)
        latch.openings_seen = int(openings if seen is None else seen)

    def fail_counter_write(self, drawer: int, pocket: int | None = None) -> None:
        """The counter memory stops keeping acknowledgements (the write is answered, the value not stored)."""
        self._counted(drawer, pocket).counter_write_fails = True

    def repair_counter_write(self, drawer: int, pocket: int | None = None) -> None:
        self._counted(drawer, pocket).counter_write_fails = False

    def fail_lock(self, drawer: int, pocket: int | None = None) -> None:
        latch = self._drawer(drawer) if pocket is None else self._pocket(drawer, int(pocket)).latch
        latch.lock_fails = True

    def repair_lock(self, drawer: int, pocket: int | None = None) -> None:
        latch = self._drawer(drawer) if pocket is None else self._pocket(drawer, int(pocket)).latch
        latch.lock_fails = False

    def describe(self) -> dict[str, Any]:
        """A readable summary for the control socket."""
        self.tick()
        return {
            "protocol_version": self.map.protocol.protocol_version,
            "drawers": {
                d: {
                    "released": latch.released,
                    "open": latch.is_open,
                    "jammed": latch.jammed,
                    # counted on every board; served in registers only from protocol version 2
                    "openings": latch.openings,
                    "openings_seen": latch.openings_seen,
                    "unrecorded_openings": self._unrecorded(latch),
                }
                for d, latch in self.drawers.items()
            },
            "lids": {
                f"{d}.{p}": {
                    "open": pocket.latch.is_open,
                    "openings": pocket.latch.openings,
                    "openings_seen": pocket.latch.openings_seen,
                    "unrecorded_openings": self._unrecorded(pocket.latch),
                }
                for (d, p), pocket in self.pockets.items()
                if pocket.lidded
            },
            "status": sorted(self.map.decode_bits("board_status", self.status_word())),
            "temperature_c": round(self.temperature_c, 2),
            "heartbeat": self.heartbeat,
            "requests": self.request_count,
        }

    def register_actions(self, control: ControlSurface, device: str = "io_board") -> None:
        control.register(
            device,
            {
                "open_drawer": self.open_drawer,
                "close_drawer": self.close_drawer,
                "lift_lid": self.lift_lid,
                "close_lid": self.close_lid,
                "open_door": self.open_door,
                "close_door": self.close_door,
                "set_tamper": self.set_tamper,
                "set_fridge_temperature": self.set_fridge_temperature,
                "warm_fridge": self.warm_fridge,
                "cool_fridge": self.cool_fridge,
                "set_humidity": self.set_humidity,
                "open_fridge_door": self.open_fridge_door,
                "close_fridge_door": self.close_fridge_door,
                "cut_power": self.cut_power,
                "restore_power": self.restore_power,
                "set_supply_voltage": self.set_supply_voltage,
                "short_circuit": self.short_circuit,
                "reboot": self.reboot,
                "jam_drawer": self.jam_drawer,
                "clear_jam": self.clear_jam,
                "stick_sensor": self.stick_sensor,
                "unstick_sensors": self.unstick_sensors,
                "fail_lock": self.fail_lock,
                "repair_lock": self.repair_lock,
                "preset_openings": self.preset_openings,
                "fail_counter_write": self.fail_counter_write,
                "repair_counter_write": self.repair_counter_write,
                "describe": self.describe,
            },
        )
