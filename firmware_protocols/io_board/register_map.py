"""The I/O board register map as data: ``register_map.toml`` loaded into frozen dataclasses.

Responsible for addresses (how a drawer's or pocket's register is found), access rules, documented ranges, and
which protocol version has which block, register and bit (``since`` in the table): ``load_register_map(1)`` is the
map a version 1 board serves, ``load_register_map()`` the newest, and ``RegisterMap.for_version`` turns one into
the other. Not responsible for the meaning of values (``codec.py``) or for any I/O. The driver, the simulator and
the conformance test all load this one table, so none of them hard-codes an address.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any


class Access(StrEnum):
    READ = "r"
    READ_WRITE = "rw"
    WRITE = "w"  # a command: reads back 0


@dataclass(frozen=True, slots=True)
class Register:
    name: str
    offset: int
    access: Access
    type: str
    description: str
    units: str = ""
    minimum: int | None = None
    maximum: int | None = None
    default: int = 0
    bitfield: str | None = None
    since: int = 1  # the protocol version that added it

    @property
    def writable(self) -> bool:
        return self.access is not Access.READ

    def accepts(self, value: int) -> bool:
        """Whether ``value`` (the raw 16-bit word) is inside the documented range."""
        if not 0 <= value <= 0xFFFF:
            return False
        signed = value - 0x10000 if self.type == "i16" and value & 0x8000 else value
        if self.minimum is not None and signed < self.minimum:
            return False
        return not (self.maximum is not None and signed > self.maximum)


@dataclass(frozen=True, slots=True)
class Block:
    name: str
    base: int
    stride: int  # per drawer (drawer block) or per pocket (pocket block); 0 for the fixed blocks
    registers: tuple[Register, ...]
    drawer_stride: int = 0  # per-pocket blocks only
    since: int = 1  # the protocol version that added it

    @property
    def size(self) -> int:
        return max(r.offset for r in self.registers) + 1

    def for_version(self, version: int) -> Block | None:
        """This block as a board of ``version`` maps it (None: that version has no such block)."""
        if self.since > version:
            return None
        registers = tuple(r for r in self.registers if r.since <= version)
        return self if registers == self.registers else dataclasses.replace(self, registers=registers)

    def register(self, name: str) -> Register:
        for register in self.registers:
            if register.name == name:
                return register
        raise KeyError(f"{self.name} block has no register {name!r}")

    def at_offset(self, offset: int) -> Register | None:
        for register in self.registers:
            if register.offset == offset:
                return register
        return None


@dataclass(frozen=True, slots=True)
class Bit:
    name: str
    bit: int
    description: str
    since: int = 1  # the protocol version that added it; on older boards the bit reads 0

    @property
    def mask(self) -> int:
        return 1 << self.bit


@dataclass(frozen=True, slots=True)
class FaultRule:
    bitfield: str
    bit: str
    code: str  # a controller error-catalogue code
    blocks_unlock: bool


@dataclass(frozen=True, slots=True)
class Location:
    block: str  # "board", "environment", "drawer", "pocket", "drawer_counters", "pocket_counters"
    register: Register
    drawer: int = 0
    pocket: int = 0


@dataclass(frozen=True, slots=True)
class Protocol:
    name: str
    protocol_version: int  # the version this map describes (what register 1 reads on such a board)
    board_id: int
    default_unit: int
    baudrate: int
    response_timeout_ms: int
    turnaround_ms: int
    inter_frame_chars: float
    read_retries: int
    write_retries: int
    max_registers_per_read: int
    function_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RegisterMap:
    protocol: Protocol
    max_drawers: int
    max_pockets_per_drawer: int
    board: Block
    environment: Block
    drawer: Block
    pocket: Block
    bitfields: MappingProxyType[str, tuple[Bit, ...]]
    faults: tuple[FaultRule, ...]
    modbus_exceptions: MappingProxyType[int, str]
    colours: MappingProxyType[str, int]
    blinks: MappingProxyType[str, int]
    colour_bits: int
    blink_shift: int
    low_voltage_threshold: int
    nominal_voltage: int
    # Version 2: the opening counters (None on a version 1 map).
    drawer_counters: Block | None = None
    pocket_counters: Block | None = None
    # The map of the newest version in the table, kept so that an older map can still give a newer one (None when
    # this map is the newest itself).
    _newest: RegisterMap | None = field(default=None, repr=False, compare=False)

    # --- versions ---------------------------------------------------------------------------------------------

    @property
    def newest_version(self) -> int:
        """The newest protocol version the table describes (this map may describe an older one)."""
        return (self._newest or self).protocol.protocol_version

    @property
    def counts_openings(self) -> bool:
        """Whether boards of this version count openings (version 2 and later)."""
        return self.drawer_counters is not None

    def for_version(self, version: int) -> RegisterMap:
        """The map a board of protocol ``version`` serves: only what has ``since <= version``."""
        newest = self._newest or self
        if not 1 <= version <= newest.protocol.protocol_version:
            raise ValueError(f"protocol version {version} outside 1..{newest.protocol.protocol_version}")
        if version == newest.protocol.protocol_version:
            return newest
        return dataclasses.replace(
            newest,
            protocol=dataclasses.replace(newest.protocol, protocol_version=version),
            board=_present(newest.board.for_version(version)),
            environment=_present(newest.environment.for_version(version)),
            drawer=_present(newest.drawer.for_version(version)),
            pocket=_present(newest.pocket.for_version(version)),
            drawer_counters=newest.drawer_counters.for_version(version) if newest.drawer_counters else None,
            pocket_counters=newest.pocket_counters.for_version(version) if newest.pocket_counters else None,
            bitfields=MappingProxyType(
                {name: tuple(b for b in bits if b.since <= version) for name, bits in newest.bitfields.items()}
            ),
            _newest=newest,
        )

    # --- addresses --------------------------------------------------------------------------------------------

    def board_address(self, name: str) -> int:
        return self.board.base + self.board.register(name).offset

    def environment_address(self, name: str) -> int:
        return self.environment.base + self.environment.register(name).offset

    def drawer_base(self, drawer: int) -> int:
        return self._drawer_base(self.drawer, drawer)

    def drawer_address(self, drawer: int, name: str) -> int:
        return self.drawer_base(drawer) + self.drawer.register(name).offset

    def pocket_base(self, drawer: int, pocket: int) -> int:
        return self._pocket_base(self.pocket, drawer, pocket)

    def pocket_address(self, drawer: int, pocket: int, name: str) -> int:
        return self.pocket_base(drawer, pocket) + self.pocket.register(name).offset

    def drawer_counters_base(self, drawer: int) -> int:
        return self._drawer_base(self._counters("drawer_counters"), drawer)

    def drawer_counter_address(self, drawer: int, name: str) -> int:
        return self.drawer_counters_base(drawer) + self._counters("drawer_counters").register(name).offset

    def pocket_counters_base(self, drawer: int, pocket: int) -> int:
        return self._pocket_base(self._counters("pocket_counters"), drawer, pocket)

    def pocket_counter_address(self, drawer: int, pocket: int, name: str) -> int:
        return self.pocket_counters_base(drawer, pocket) + self._counters("pocket_counters").register(name).offset

    def snapshot_span(self, drawer_count: int) -> tuple[int, int]:
        """(first address, register count) of the one read that covers board, environment and every drawer."""
        end = self.drawer_base(drawer_count) + self.drawer.size
        return self.board.base, end - self.board.base

    def drawer_counters_span(self, drawer_count: int) -> tuple[int, int]:
        """(first address, register count) of the one read that covers every drawer's counters (version 2)."""
        block = self._counters("drawer_counters")
        end = self.drawer_counters_base(drawer_count) + block.size
        return block.base, end - block.base

    def drawer_blocks(self) -> tuple[Block, ...]:
        """The per-drawer blocks this version maps."""
        return (self.drawer,) if self.drawer_counters is None else (self.drawer, self.drawer_counters)

    def pocket_blocks(self) -> tuple[Block, ...]:
        """The per-pocket blocks this version maps."""
        return (self.pocket,) if self.pocket_counters is None else (self.pocket, self.pocket_counters)

    def locate(self, address: int, drawer_count: int, pockets_per_drawer: int) -> Location | None:
        """Which register ``address`` is on a board of this size, or None if it is not mapped."""
        for block in (self.board, self.environment):
            if block.base <= address < block.base + block.size:
                register = block.at_offset(address - block.base)
                return None if register is None else Location(block.name, register)
        for block in self.drawer_blocks():
            if block.base <= address < block.base + drawer_count * block.stride:
                drawer, offset = divmod(address - block.base, block.stride)
                register = block.at_offset(offset)
                return None if register is None else Location(block.name, register, drawer + 1)
        for block in self.pocket_blocks():
            relative = address - block.base
            if 0 <= relative < drawer_count * block.drawer_stride:
                drawer, within = divmod(relative, block.drawer_stride)
                pocket, offset = divmod(within, block.stride)
                register = block.at_offset(offset)
                if pocket < pockets_per_drawer and register is not None:
                    return Location(block.name, register, drawer + 1, pocket + 1)
                return None
        return None

    def mapped_ranges(self, drawer_count: int, pockets_per_drawer: int) -> list[tuple[int, int]]:
        """(first address, count) of the mapped ranges on a board of this size, one per block and drawer, in
        address order (two of them may touch: the snapshot span of 16 drawers ends where the counters begin)."""
        first, count = self.snapshot_span(drawer_count)
        ranges = [(first, count)]
        if self.drawer_counters is not None:
            ranges.append(self.drawer_counters_span(drawer_count))
        for block in self.pocket_blocks():
            for drawer in range(1, drawer_count + 1):
                ranges.append((self._pocket_base(block, drawer, 1), pockets_per_drawer * block.stride))
        return ranges

    def _drawer_base(self, block: Block, drawer: int) -> int:
        self._check_drawer(drawer)
        return block.base + (drawer - 1) * block.stride

    def _pocket_base(self, block: Block, drawer: int, pocket: int) -> int:
        self._check_drawer(drawer)
        if not 1 <= pocket <= self.max_pockets_per_drawer:
            raise ValueError(f"pocket {pocket} outside 1..{self.max_pockets_per_drawer}")
        return block.base + (drawer - 1) * block.drawer_stride + (pocket - 1) * block.stride

    def _counters(self, name: str) -> Block:
        block = self.drawer_counters if name == "drawer_counters" else self.pocket_counters
        if block is None:
            raise KeyError(f"protocol version {self.protocol.protocol_version} has no {name} block")
        return block

    def _check_drawer(self, drawer: int) -> None:
        if not 1 <= drawer <= self.max_drawers:
            raise ValueError(f"drawer {drawer} outside 1..{self.max_drawers}")

    # --- bitfields --------------------------------------------------------------------------------------------

    def bit(self, bitfield: str, name: str) -> Bit:
        for bit in self.bitfields[bitfield]:
            if bit.name == name:
                return bit
        raise KeyError(f"bitfield {bitfield!r} has no bit {name!r}")

    def mask(self, bitfield: str, *names: str) -> int:
        value = 0
        for name in names:
            value |= self.bit(bitfield, name).mask
        return value

    def known_mask(self, bitfield: str) -> int:
        return self.mask(bitfield, *(b.name for b in self.bitfields[bitfield]))

    def decode_bits(self, bitfield: str, word: int) -> frozenset[str]:
        return frozenset(b.name for b in self.bitfields[bitfield] if word & b.mask)

    def encode_bits(self, bitfield: str, names: frozenset[str] | set[str]) -> int:
        return self.mask(bitfield, *names)


def _register(raw: dict[str, Any], block_since: int) -> Register:
    return Register(
        name=raw["name"],
        offset=int(raw["offset"]),
        access=Access(raw["access"]),
        type=raw["type"],
        description=raw.get("description", ""),
        units=raw.get("units", ""),
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        default=int(raw.get("default", 0)),
        bitfield=raw.get("bitfield"),
        since=int(raw.get("since", block_since)),  # a register is as old as its block unless it says otherwise
    )


def _block(name: str, raw: dict[str, Any]) -> Block:
    since = int(raw.get("since", 1))
    return Block(
        name=name,
        base=int(raw["base"]),
        stride=int(raw.get("stride", 0)),
        drawer_stride=int(raw.get("drawer_stride", 0)),
        registers=tuple(_register(r, since) for r in raw["registers"]),
        since=since,
    )


def _present(block: Block | None) -> Block:
    if block is None:
        raise ValueError("a version 1 block cannot be missing from a later version")
    return block


def _check_versions(register_map: RegisterMap) -> None:
    """Every ``since`` names a version the table describes, and no register is older than its block."""
    newest = register_map.protocol.protocol_version
    blocks = (register_map.board, register_map.environment, register_map.drawer, register_map.pocket)
    for block in (*blocks, register_map.drawer_counters, register_map.pocket_counters):
        if block is None:
            continue
        for register in block.registers:
            if not block.since <= register.since <= newest:
                where = f"{block.name}.{register.name}"
                raise ValueError(f"{where}: since {register.since} outside {block.since}..{newest}")
    for block in blocks:
        if block.since != 1:
            raise ValueError(f"{block.name} is a version 1 block")
    for name, bits in register_map.bitfields.items():
        for bit in bits:
            if not 1 <= bit.since <= newest:
                raise ValueError(f"{name}.{bit.name}: since {bit.since} outside 1..{newest}")


def parse_register_map(raw: dict[str, Any], protocol_version: int | None = None) -> RegisterMap:
    """The table as the map of ``protocol_version`` (default: the newest it describes)."""
    newest = _parse_newest(raw)
    _check_versions(newest)
    return newest if protocol_version is None else newest.for_version(protocol_version)


def _parse_newest(raw: dict[str, Any]) -> RegisterMap:
    p = raw["protocol"]
    blocks = raw["blocks"]
    light = raw["light"]
    return RegisterMap(
        protocol=Protocol(
            name=p["name"],
            protocol_version=int(p["protocol_version"]),
            board_id=int(p["board_id"]),
            default_unit=int(p["default_unit"]),
            baudrate=int(p["baudrate"]),
            response_timeout_ms=int(p["response_timeout_ms"]),
            turnaround_ms=int(p["turnaround_ms"]),
            inter_frame_chars=float(p["inter_frame_chars"]),
            read_retries=int(p["read_retries"]),
            write_retries=int(p["write_retries"]),
            max_registers_per_read=int(p["max_registers_per_read"]),
            function_codes=tuple(int(c) for c in p["function_codes"]),
        ),
        max_drawers=int(raw["limits"]["max_drawers"]),
        max_pockets_per_drawer=int(raw["limits"]["max_pockets_per_drawer"]),
        board=_block("board", blocks["board"]),
        environment=_block("environment", blocks["environment"]),
        drawer=_block("drawer", blocks["drawer"]),
        pocket=_block("pocket", blocks["pocket"]),
        bitfields=MappingProxyType(
            {
                name: tuple(
                    Bit(b["name"], int(b["bit"]), b.get("description", ""), int(b.get("since", 1))) for b in bits
                )
                for name, bits in raw["bitfields"].items()
            }
        ),
        faults=tuple(FaultRule(f["bitfield"], f["bit"], f["code"], bool(f["blocks_unlock"])) for f in raw["faults"]),
        modbus_exceptions=MappingProxyType({int(k): str(v) for k, v in raw["modbus_exceptions"].items()}),
        colours=MappingProxyType({str(k): int(v) for k, v in light["colours"].items()}),
        blinks=MappingProxyType({str(k): int(v) for k, v in light["blinks"].items()}),
        colour_bits=int(light["colour_bits"]),
        blink_shift=int(light["blink_shift"]),
        low_voltage_threshold=int(raw["electrical"]["low_voltage_threshold"]),
        nominal_voltage=int(raw["electrical"]["nominal_voltage"]),
        drawer_counters=_block("drawer_counters", blocks["drawer_counters"]) if "drawer_counters" in blocks else None,
        pocket_counters=_block("pocket_counters", blocks["pocket_counters"]) if "pocket_counters" in blocks else None,
    )


@cache
def _shipped() -> RegisterMap:
    text = resources.files(__package__).joinpath("register_map.toml").read_text("utf-8")
    return parse_register_map(tomllib.loads(text))


@cache
def load_register_map(protocol_version: int | None = None) -> RegisterMap:
    """The register map shipped with the package, as a board of ``protocol_version`` serves it (default: the
    newest version). Parsed once; every map is immutable."""
    newest = _shipped()
    return newest if protocol_version is None else newest.for_version(protocol_version)


@dataclass(frozen=True, slots=True)
class CabinetLayout:
    """What a board is fitted with. The board reports drawer and pocket counts in registers 6 and 7; lidded
    pockets in pocket_status.lidded; motorised drawers in drawer_status.motorised."""

    drawer_count: int = 12
    pockets_per_drawer: int = 8
    lidded: frozenset[tuple[int, int]] = frozenset()  # (drawer, pocket)
    motorised: frozenset[int] = frozenset()

    def check(self, register_map: RegisterMap) -> None:
        if not 1 <= self.drawer_count <= register_map.max_drawers:
            raise ValueError(f"drawer_count must be 1..{register_map.max_drawers}")
        if not 1 <= self.pockets_per_drawer <= register_map.max_pockets_per_drawer:
            raise ValueError(f"pockets_per_drawer must be 1..{register_map.max_pockets_per_drawer}")
        for drawer, pocket in self.lidded:
            if not (1 <= drawer <= self.drawer_count and 1 <= pocket <= self.pockets_per_drawer):
                raise ValueError(f"lidded pocket {drawer}.{pocket} is outside the cabinet")
        for drawer in self.motorised:
            if not 1 <= drawer <= self.drawer_count:
                raise ValueError(f"motorised drawer {drawer} is outside the cabinet")
