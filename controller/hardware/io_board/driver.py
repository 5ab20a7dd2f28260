"""The I/O board driver: the ``IoBoard`` interface over Modbus (TCP or RTU), for a real board or the simulator.

Responsible for turning interface calls into register reads and writes at the addresses ``register_map.toml``
gives for the board's protocol version (register 1, read by ``identify``), confirming every actuation by reading
the board back, and raising the catalogue code that the map's fault table names for a fault bit (an unknown bit
is ``device.unknown_fault``; a lock that did not move is ``device.lock_not_engaged``; an acknowledgement the board
did not keep is ``device.write_not_confirmed``). On a version 2 board a snapshot is the version 1 read plus one
read of every drawer's opening counters (and one short read per drawer whose lids have unrecorded openings). Not
responsible for the bus (``modbus_transport.py``), for deciding whether a user may open a drawer, or for what an
unrecorded opening means (the engine and the state machines).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from controller.errors import CommunicationError
from controller.hardware.io_board.interface import (
    CLEARABLE_FAULTS,
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
from controller.hardware.modbus_transport import ModbusTransport, raise_code
from firmware_protocols.io_board import codec
from firmware_protocols.io_board.register_map import Block, RegisterMap, load_register_map


class IoBoardDriver:
    def __init__(self, transport: ModbusTransport, register_map: RegisterMap, identity: BoardIdentity) -> None:
        self._t = transport
        self.identity = identity
        self._adopt(register_map.for_version(identity.protocol_version))

    def _adopt(self, m: RegisterMap) -> None:
        """Use the map of the board's protocol version (every address and known bit follows from it)."""
        self.map = m
        self._status_address = m.board_address("status")
        # name -> offset per block, computed once: decoding a snapshot is the poller's hot path
        self._drawer_size = m.drawer.size
        self._known = {name: m.known_mask(name) for name in m.bitfields}
        blocks = (m.board, m.environment, *m.drawer_blocks(), *m.pocket_blocks())
        self._offsets = {b.name: {r.name: r.offset for r in b.registers} for b in blocks}
        self._blocking = {
            (rule.bitfield, rule.bit): rule.code for rule in m.faults if rule.blocks_unlock
        }  # insertion order = table order = which fault is reported first

    @classmethod
    async def connect(
        cls, url: str, *, register_map: RegisterMap | None = None, timeout: float | None = None
    ) -> IoBoardDriver:
        m = register_map or load_register_map()
        transport = await ModbusTransport.connect(
            url,
            timeout=timeout if timeout is not None else m.protocol.response_timeout_ms / 1000,
            exception_codes=m.modbus_exceptions,
            read_retries=m.protocol.read_retries,
            write_retries=m.protocol.write_retries,
        )
        try:
            identity = await cls._read_identity(transport, m)
        except BaseException:
            await transport.close()
            raise
        return cls(transport, m, identity)

    async def close(self) -> None:
        await self._t.close()

    async def __aenter__(self) -> IoBoardDriver:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return self._t.url

    # --- identity and snapshot ------------------------------------------------------------------------------

    @staticmethod
    async def _read_identity(transport: ModbusTransport, m: RegisterMap) -> BoardIdentity:
        words = await transport.read_registers(m.board.base, m.board_address("pockets_per_drawer") + 1)
        value = _Words(m.board, words)
        if value["board_id"] != m.protocol.board_id:
            raise CommunicationError(
                "comm.protocol",
                f"{transport.url} is not an I/O board of this family (board_id {value['board_id']:#06x})",
                url=transport.url,
            )
        for name in ("protocol_version", "drawer_count", "pockets_per_drawer"):
            if not m.board.register(name).accepts(value[name]):
                raise_code("device.bad_value", f"{name} = {value[name]} is outside its documented range")
        if value["protocol_version"] > m.newest_version:
            raise_code("device.bad_value", f"protocol_version {value['protocol_version']} is newer than this map")
        return BoardIdentity(
            board_id=value["board_id"],
            protocol_version=value["protocol_version"],
            firmware_version=codec.firmware_version(
                value["firmware_major"], value["firmware_minor"], value["firmware_patch"]
            ),
            is_simulator="is_simulator" in m.decode_bits("identity", value["identity"]),
            drawer_count=value["drawer_count"],
            pockets_per_drawer=value["pockets_per_drawer"],
        )

    async def identify(self) -> BoardIdentity:
        """Read the identity again and follow the board's protocol version (a board may have been upgraded)."""
        self.identity = await self._read_identity(self._t, self.map)
        if self.identity.protocol_version != self.map.protocol.protocol_version:
            self._adopt(self.map.for_version(self.identity.protocol_version))
        return self.identity

    async def snapshot(self) -> BoardSnapshot:
        first, count = self.map.snapshot_span(self.identity.drawer_count)
        words = await self._t.read_registers(first, count)
        if words[self._offsets["board"]["protocol_version"]] != self.identity.protocol_version:
            # Another register map than at connect (new firmware after a reboot): follow it, then read again.
            await self.identify()
            first, count = self.map.snapshot_span(self.identity.drawer_count)
            words = await self._t.read_registers(first, count)
        block = self.map.drawer_counters
        if block is None:
            return self.decode_snapshot(words)  # version 1: the one read is the whole snapshot
        counters = await self._t.read_registers(*self.map.drawer_counters_span(self.identity.drawer_count))
        lids = {}
        for drawer in range(1, self.identity.drawer_count + 1):
            latched = self._lids_opened(drawer, counters[(drawer - 1) * block.stride :][: block.stride])
            if latched:
                lids[drawer] = await self._read_lid_counters(drawer, latched)
        return self.decode_snapshot(words, counters, lids)

    def decode_snapshot(
        self,
        words: list[int],
        counters: list[int] | None = None,
        lid_counters: Mapping[int, tuple[tuple[int, tuple[int, int]], ...]] | None = None,
    ) -> BoardSnapshot:
        """The snapshot that the words of one ``snapshot_span`` read mean (pure; the poller's hot path), with the
        words of one ``drawer_counters_span`` read and each drawer's lid counters on a version 2 board (without
        them, the drawers carry no counters)."""
        m = self.map
        board = _Words(self._offsets["board"], words)
        env_start = m.environment.base - m.board.base
        environment = self._decode_environment(words[env_start : env_start + m.environment.size])
        size, base = self._drawer_size, m.drawer.base - m.board.base
        drawers = tuple(
            self._decode_drawer(drawer, words[base + (drawer - 1) * m.drawer.stride :][:size])
            for drawer in range(1, self.identity.drawer_count + 1)
        )
        if counters is not None and m.drawer_counters is not None:
            stride = m.drawer_counters.stride
            drawers = tuple(
                self._with_counters(
                    state, counters[(state.drawer - 1) * stride :][:stride], (lid_counters or {}).get(state.drawer, ())
                )
                for state in drawers
            )
        inputs = m.decode_bits("board_inputs", board["inputs"])
        status = board["status"]
        self._check_known("board_status", status)
        try:
            buzzer = Buzzer(board["buzzer"])
        except ValueError:
            raise_code("device.bad_value", f"buzzer reads {board['buzzer']}")
            raise  # unreachable: raise_code always raises
        return BoardSnapshot(
            faults=m.decode_bits("board_status", status),
            door_open="door_open" in inputs,
            tamper="tamper" in inputs,
            buzzer=buzzer,
            supply_voltage_v=board["supply_voltage"] / 10,
            heartbeat=board["heartbeat"],
            watchdog_timeout_ms=board["watchdog_timeout_ms"],
            is_simulator="is_simulator" in m.decode_bits("identity", board["identity"]),
            environment=environment,
            drawers=drawers,
            protocol_version=m.protocol.protocol_version,
        )

    # --- opening counters (version 2) -----------------------------------------------------------------------

    def _lids_opened(self, drawer: int, words: list[int]) -> frozenset[int]:
        """The pockets whose lid_opened latch is set, from the words of the drawer's counters block."""
        word = words[self._offsets["drawer_counters"]["lids_opened"]]
        pockets = codec.pockets_from_bits(word)
        if pockets and max(pockets) > self.identity.pockets_per_drawer:
            raise_code("device.bad_value", f"drawer {drawer}: lids_opened {word:#06x} names a pocket not fitted")
        return pockets

    async def _read_lid_counters(self, drawer: int, pockets: frozenset[int]) -> tuple[tuple[int, tuple[int, int]], ...]:
        """(pocket, (openings, seen)) of these lids, in one read from the first to the last of them."""
        block = self.map.pocket_counters
        assert block is not None
        first, last = min(pockets), max(pockets)
        start = self.map.pocket_counters_base(drawer, first)
        words = await self._t.read_registers(start, (last - first + 1) * block.stride)
        offsets = self._offsets["pocket_counters"]
        pairs = []
        for pocket in sorted(pockets):
            at = (pocket - first) * block.stride
            pairs.append((pocket, (words[at + offsets["lid_openings"]], words[at + offsets["lid_openings_seen"]])))
        return tuple(pairs)

    def _with_counters(
        self, state: DrawerState, words: list[int], lids: tuple[tuple[int, tuple[int, int]], ...]
    ) -> DrawerState:
        value = _Words(self._offsets["drawer_counters"], words)
        return dataclasses.replace(
            state, openings=value["openings"], openings_seen=value["openings_seen"], lid_counters=lids
        )

    async def _counted(self, state: DrawerState) -> DrawerState:
        """``state`` with the drawer's counters read now (version 2; a version 1 state is returned as it is)."""
        if self.map.drawer_counters is None:
            return state
        block = self.map.drawer_counters
        words = await self._t.read_registers(self.map.drawer_counters_base(state.drawer), block.size)
        latched = self._lids_opened(state.drawer, words)
        lids = await self._read_lid_counters(state.drawer, latched) if latched else ()
        return self._with_counters(state, words, lids)

    @staticmethod
    def _check_seen(seen: int) -> None:
        if not 0 <= seen <= 0xFFFF:
            raise ValueError(f"seen must be a 16-bit counter value (0..65535), not {seen}")

    async def _ensure_register(self, address: int, value: int, what: str, **context: Any) -> None:
        # "Set to value": the transport may retry it after a lost answer, and the board ends in the same state.
        await self._t.write_register(address, value)
        (kept,) = await self._t.read_registers(address, 1)
        if kept != value:
            raise_code(
                "device.write_not_confirmed",
                f"{what}: wrote {value}, reads back {kept}",
                written=value,
                read=kept,
                **context,
            )

    async def ensure_openings_seen(self, drawer: int, seen: int) -> None:
        self._check_drawer(drawer)
        self._check_seen(seen)
        if not self.map.counts_openings:
            return  # a version 1 board has no counters: nothing to acknowledge
        address = self.map.drawer_counter_address(drawer, "openings_seen")
        await self._ensure_register(address, seen, f"drawer {drawer} openings_seen", drawer=drawer)

    async def ensure_lid_openings_seen(self, drawer: int, pocket: int, seen: int) -> None:
        self._check_pocket(drawer, pocket)
        self._check_seen(seen)
        if not self.map.counts_openings:
            return
        address = self.map.pocket_counter_address(drawer, pocket, "lid_openings_seen")
        await self._ensure_register(
            address, seen, f"lid {drawer}.{pocket} lid_openings_seen", drawer=drawer, pocket=pocket
        )

    def _check_known(self, bitfield: str, word: int) -> None:
        unknown = word & ~self._known[bitfield]
        if unknown:
            raise_code("device.unknown_fault", f"{bitfield} has undocumented bits {unknown:#06x} set", word=word)

    def _decode_environment(self, words: list[int]) -> EnvironmentReading:
        m = self.map
        value = _Words(self._offsets["environment"], words)
        for name in ("temperature", "humidity", "ups_charge"):
            if not m.environment.register(name).accepts(value[name]):
                raise_code("device.bad_value", f"{name} reads {value[name]:#06x}, outside its documented range")
        flags = m.decode_bits("env_flags", value["env_flags"])
        return EnvironmentReading(
            temperature_c=codec.decode_temperature(value["temperature"]),
            humidity_pct=codec.decode_humidity(value["humidity"]),
            fridge_door_open="fridge_door_open" in flags,
            compressor_on="compressor_on" in flags,
            mains_present="mains_present" in flags,
            on_ups="on_ups" in flags,
            ups_battery_low="ups_battery_low" in flags,
            ups_charge_pct=value["ups_charge"],
        )

    def _decode_drawer(self, drawer: int, words: list[int]) -> DrawerState:
        m = self.map
        value = _Words(self._offsets["drawer"], words)
        self._check_known("drawer_status", value["drawer_status"])
        bits = m.decode_bits("drawer_status", value["drawer_status"])
        return DrawerState(
            drawer=drawer,
            lock_commanded=bool(value["lock_command"]),
            lock_released="lock_released" in bits,
            open_sensor="open_sensor" in bits,
            closed_sensor="closed_sensor" in bits,
            jammed="jammed" in bits,
            sensor_disagreement="sensor_disagreement" in bits,
            motorised="motorised" in bits,
            position_pct=value["position"],
            hold_s=codec.decode_hold_time(value["hold_time"]),
            lids_released=codec.pockets_from_bits(value["lids_released"]),
            lids_open=codec.pockets_from_bits(value["lids_open"]),
        )

    async def read_environment(self) -> EnvironmentReading:
        m = self.map
        return self._decode_environment(await self._t.read_registers(m.environment.base, m.environment.size))

    # --- drawers --------------------------------------------------------------------------------------------

    def _check_drawer(self, drawer: int) -> None:
        if not 1 <= drawer <= self.identity.drawer_count:
            raise ValueError(f"drawer {drawer} is not on this board (1..{self.identity.drawer_count})")

    def _check_pocket(self, drawer: int, pocket: int) -> None:
        self._check_drawer(drawer)
        if not 1 <= pocket <= self.identity.pockets_per_drawer:
            raise ValueError(f"pocket {pocket} is not in drawer {drawer} (1..{self.identity.pockets_per_drawer})")

    def _hold(self, hold_s: float, name: str) -> int:
        register = self.map.drawer.register(name) if name == "hold_time" else self.map.pocket.register(name)
        return codec.encode_hold_time(hold_s, register.minimum or 0, register.maximum or 0xFFFF)

    async def _status_and_drawer(self, drawer: int) -> tuple[int, DrawerState]:
        """Board status and the drawer's block in one read (status .. end of the drawer's block)."""
        end = self.map.drawer_base(drawer) + self.map.drawer.size
        words = await self._t.read_registers(self._status_address, end - self._status_address)
        status = words[0]
        self._check_known("board_status", status)
        return status, self._decode_drawer(drawer, words[-self.map.drawer.size :])

    def _raise_blocking(self, status: int, drawer_word: int | None, drawer: int, pocket: int = 0) -> None:
        """Raise the table's code for the first blocking fault bit set (board first, then the drawer)."""
        words = {"board_status": status, "drawer_status": drawer_word}
        for (bitfield, bit), code in self._blocking.items():
            word = words.get(bitfield)
            if word is not None and word & self.map.bit(bitfield, bit).mask:
                raise_code(code, f"drawer {drawer}: {bitfield}.{bit} is set", drawer=drawer, pocket=pocket, bit=bit)

    def _drawer_word(self, state: DrawerState) -> int:
        names = {n for n, on in (("jammed", state.jammed), ("sensor_disagreement", state.sensor_disagreement)) if on}
        return self.map.encode_bits("drawer_status", names)

    async def drawer_state(self, drawer: int) -> DrawerState:
        self._check_drawer(drawer)
        return await self._counted((await self._status_and_drawer(drawer))[1])

    async def ensure_unlocked(self, drawer: int, hold_s: float) -> DrawerState:
        self._check_drawer(drawer)
        hold = self._hold(hold_s, "hold_time")
        status, state = await self._status_and_drawer(drawer)
        self._raise_blocking(status, self._drawer_word(state), drawer)  # validate before actuating
        # [lock_command = 1, hold_time] in one write: the board applies the hold first, then releases.
        await self._t.write_registers(self.map.drawer_address(drawer, "lock_command"), [1, hold])
        status, state = await self._status_and_drawer(drawer)
        self._raise_blocking(status, self._drawer_word(state), drawer)
        if not state.lock_released:
            raise_code("device.lock_not_engaged", f"drawer {drawer} did not release when unlocked", drawer=drawer)
        return await self._counted(state)

    async def ensure_locked(self, drawer: int) -> DrawerState:
        self._check_drawer(drawer)
        _, state = await self._status_and_drawer(drawer)
        if not state.lock_commanded and not state.lock_released:
            return await self._counted(state)  # already latched: nothing to do
        await self._t.write_register(self.map.drawer_address(drawer, "lock_command"), 0)
        _, state = await self._status_and_drawer(drawer)
        if state.lock_released and not state.latch_pending:
            if state.sensor_disagreement:
                raise_code(
                    "device.sensor_disagreement",
                    f"drawer {drawer} is released and its sensors disagree: cannot tell whether it is open",
                    drawer=drawer,
                )
            raise_code("device.lock_not_engaged", f"drawer {drawer} did not latch when locked", drawer=drawer)
        return await self._counted(state)

    # --- lids -----------------------------------------------------------------------------------------------

    async def _status(self) -> int:
        status = (await self._t.read_registers(self._status_address, 1))[0]
        self._check_known("board_status", status)
        return status

    async def lid_state(self, drawer: int, pocket: int) -> LidState:
        self._check_pocket(drawer, pocket)
        words = await self._t.read_registers(self.map.pocket_base(drawer, pocket), self.map.pocket.size)
        value = _Words(self.map.pocket, words)
        self._check_known("pocket_status", value["pocket_status"])
        bits = self.map.decode_bits("pocket_status", value["pocket_status"])
        return LidState(
            drawer=drawer,
            pocket=pocket,
            lidded="lidded" in bits,
            lid_commanded=bool(value["lid_command"]),
            lid_released="lid_released" in bits,
            lid_open="lid_open" in bits,
        )

    async def ensure_lid_unlocked(self, drawer: int, pocket: int, hold_s: float) -> LidState:
        self._check_pocket(drawer, pocket)
        hold = self._hold(hold_s, "lid_hold_time")
        self._raise_blocking(await self._status(), None, drawer, pocket)
        before = await self.lid_state(drawer, pocket)
        if not before.lidded:
            raise ValueError(f"pocket {drawer}.{pocket} has no lid lock")
        await self._t.write_registers(self.map.pocket_address(drawer, pocket, "lid_command"), [1, hold])
        self._raise_blocking(await self._status(), None, drawer, pocket)
        state = await self.lid_state(drawer, pocket)
        if not state.lid_released:
            raise_code(
                "device.lock_not_engaged", f"lid {drawer}.{pocket} did not release", drawer=drawer, pocket=pocket
            )
        return state

    async def ensure_lid_locked(self, drawer: int, pocket: int) -> LidState:
        state = await self.lid_state(drawer, pocket)
        if not state.lid_commanded and not state.lid_released:
            return state
        await self._t.write_register(self.map.pocket_address(drawer, pocket, "lid_command"), 0)
        state = await self.lid_state(drawer, pocket)
        if state.lid_released and not state.lid_open:
            raise_code("device.lock_not_engaged", f"lid {drawer}.{pocket} did not latch", drawer=drawer, pocket=pocket)
        return state

    # --- lights, buzzer, supervision ------------------------------------------------------------------------

    async def set_light(self, drawer: int, pocket: int, colour: Colour, blink: Blink = Blink.STEADY) -> None:
        self._check_pocket(drawer, pocket)
        word = codec.encode_light(self.map, codec.Light(str(colour), str(blink)))
        await self._t.write_register(self.map.pocket_address(drawer, pocket, "light"), word)

    async def read_light(self, drawer: int, pocket: int) -> Light:
        self._check_pocket(drawer, pocket)
        (word,) = await self._t.read_registers(self.map.pocket_address(drawer, pocket, "light"), 1)
        try:
            light = codec.decode_light(self.map, word)
        except ValueError as exc:
            raise_code("device.bad_value", f"light {drawer}.{pocket} reads {word:#06x}: {exc}")
            raise  # unreachable
        return Light(Colour(light.colour), Blink(light.blink))

    async def lights_off(self) -> None:
        await self._t.write_register(self.map.board_address("lights_off"), 1)

    async def set_buzzer(self, pattern: Buzzer) -> None:
        await self._t.write_register(self.map.board_address("buzzer"), int(Buzzer(pattern)))

    async def acknowledge_faults(self, names: Iterable[str] | None = None) -> frozenset[str]:
        chosen = CLEARABLE_FAULTS if names is None else frozenset(names)
        if not chosen <= CLEARABLE_FAULTS:
            raise ValueError(f"only {sorted(CLEARABLE_FAULTS)} can be acknowledged, not {sorted(chosen)}")
        await self._t.write_register(self.map.board_address("fault_clear"), self.map.mask("board_status", *chosen))
        return self.map.decode_bits("board_status", await self._status())

    async def heartbeat(self, value: int) -> None:
        await self._t.write_register(self.map.board_address("heartbeat"), value & 0xFFFF)

    async def set_watchdog_timeout(self, milliseconds: int) -> None:
        register = self.map.board.register("watchdog_timeout_ms")
        if not register.accepts(milliseconds):
            raise ValueError(f"watchdog timeout must be {register.minimum}..{register.maximum} ms")
        await self._t.write_register(self.map.board_address("watchdog_timeout_ms"), milliseconds)


class _Words:
    """Register words of one block, by register name."""

    __slots__ = ("_offsets", "_words")

    def __init__(self, offsets: dict[str, int] | Block, words: list[int]) -> None:
        self._offsets = offsets if isinstance(offsets, dict) else {r.name: r.offset for r in offsets.registers}
        self._words = words

    def __getitem__(self, name: str) -> int:
        return self._words[self._offsets[name]]

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except (KeyError, IndexError):
            return default
