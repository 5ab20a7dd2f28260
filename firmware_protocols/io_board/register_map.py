"""The I/O board register map as data: ``register_map.toml`` loaded into frozen dataclasses.

Responsible for addresses (how a drawer's or pocket's register is found), access rules and documented ranges.
Not responsible for the meaning of values (``codec.py``) or for any I/O. The driver, the simulator and the
conformance test all load this one table, so none of them hard-codes an address.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
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
    drawer_stride: int = 0  # pocket block only

    @property
    def size(self) -> int:
        return max(r.offset for r in self.registers) + 1

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
    block: str  # "board", "environment", "drawer", "pocket"
    register: Register
    drawer: int = 0
    pocket: int = 0


@dataclass(frozen=True, slots=True)
class Protocol:
    name: str
    protocol_version: int
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

    # --- addresses --------------------------------------------------------------------------------------------

    def board_address(self, name: str) -> int:
        return self.board.base + self.board.register(name).offset

    def environment_address(self, name: str) -> int:
        return self.environment.base + self.environment.register(name).offset

    def drawer_base(self, drawer: int) -> int:
        self._check_drawer(drawer)
        return self.drawer.base + (drawer - 1) * self.drawer.stride

    def drawer_address(self, drawer: int, name: str) -> int:
        return self.drawer_base(drawer) + self.drawer.register(name).offset

    def pocket_base(self, drawer: int, pocket: int) -> int:
        self._check_drawer(drawer)
        if not 1 <= pocket <= self.max_pockets_per_drawer:
            raise ValueError(f"pocket {pocket} outside 1..{self.max_pockets_per_drawer}")
        return self.pocket.base + (drawer - 1) * self.pocket.drawer_stride + (pocket - 1) * self.pocket.stride

    def pocket_address(self, drawer: int, pocket: int, name: str) -> int:
        return self.pocket_base(drawer, pocket) + self.pocket.register(name).offset

    def snapshot_span(self, drawer_count: int) -> tuple[int, int]:
        """(first address, register count) of the one read that covers board, environment and every drawer."""
        end = self.drawer_base(drawer_count) + self.drawer.size
        return self.board.base, end - self.board.base

    def locate(self, address: int, drawer_count: int, pockets_per_drawer: int) -> Location | None:
        """Which register ``address`` is on a board of this size, or None if it is not mapped."""
        for block in (self.board, self.environment):
            if block.base <= address < block.base + block.size:
                register = block.at_offset(address - block.base)
                return None if register is None else Location(block.name, register)
        drawers_end = self.drawer.base + drawer_count * self.drawer.stride
        if self.drawer.base <= address < drawers_end:
            drawer, offset = divmod(address - self.drawer.base, self.drawer.stride)
            register = self.drawer.at_offset(offset)
            return None if register is None else Location("drawer", register, drawer + 1)
        relative = address - self.pocket.base
        if 0 <= relative < drawer_count * self.pocket.drawer_stride:
            drawer, within = divmod(relative, self.pocket.drawer_stride)
            pocket, offset = divmod(within, self.pocket.stride)
            register = self.pocket.at_offset(offset)
            if pocket < pockets_per_drawer and register is not None:
                return Location("pocket", register, drawer + 1, pocket + 1)
        return None

    def mapped_ranges(self, drawer_count: int, pockets_per_drawer: int) -> list[tuple[int, int]]:
        """(first address, count) of every contiguous mapped range on a board of this size."""
        first, count = self.snapshot_span(drawer_count)
        ranges = [(first, count)]
        for drawer in range(1, drawer_count + 1):
            ranges.append((self.pocket_base(drawer, 1), pockets_per_drawer * self.pocket.stride))
        return ranges

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


def _register(raw: dict[str, Any]) -> Register:
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
    )


def _block(name: str, raw: dict[str, Any]) -> Block:
    return Block(
        name=name,
        base=int(raw["base"]),
        stride=int(raw.get("stride", 0)),
        drawer_stride=int(raw.get("drawer_stride", 0)),
        registers=tuple(_register(r) for r in raw["registers"]),
    )


def parse_register_map(raw: dict[str, Any]) -> RegisterMap:
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
                name: tuple(Bit(b["name"], int(b["bit"]), b.get("description", "")) for b in bits)
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
    )


@cache
def load_register_map() -> RegisterMap:
    """The register map shipped with the package (parsed once; it is immutable)."""
    text = resources.files(__package__).joinpath("register_map.toml").read_text("utf-8")
    return parse_register_map(tomllib.loads(text))


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
