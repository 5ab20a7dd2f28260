"""Pure value encodings for the I/O board registers, and the Modbus RTU frame layout for golden vectors.

Register values: signed temperature (two's complement int16 in 0.1 degC), humidity (0.1 %RH), hold times
(0.1 s), the guiding-light word (colour | blink << 4), bitfields, and the wrapping 16-bit opening counters
(version 2). Frames (the wire bytes, written out here so
the golden vectors can be checked without any library)::

    RTU ADU:   [unit id 1 B][function 1 B][data N B][CRC-16/MODBUS 2 B, low byte first]
    0x03 request:   address (2 B big-endian), count (2 B)
    0x03 response:  byte count (1 B) = 2 * count, then the registers (2 B each, big-endian)
    0x06 request/response (echo): address (2 B), value (2 B)
    0x10 request:   address (2 B), count (2 B), byte count (1 B), values (2 B each)
    0x10 response:  address (2 B), count (2 B)
    exception:      function | 0x80 (1 B), exception code (1 B)

CRC-16/MODBUS: polynomial 0xA001 (reflected 0x8005), initial value 0xFFFF, no final xor, sent low byte first.
Nothing here does I/O or knows pymodbus.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from firmware_protocols.io_board.register_map import RegisterMap

# --- numbers --------------------------------------------------------------------------------------------------------


def encode_i16(value: int) -> int:
    if not -0x8000 <= value <= 0x7FFF:
        raise ValueError(f"{value} does not fit a signed 16-bit register")
    return value & 0xFFFF


def decode_i16(word: int) -> int:
    if not 0 <= word <= 0xFFFF:
        raise ValueError(f"{word} is not a 16-bit register value")
    return word - 0x10000 if word & 0x8000 else word


def encode_tenths(value: float) -> int:
    """A quantity in tenths (0.1 degC, 0.1 %, 0.1 s), rounded half away from zero."""
    if not math.isfinite(value):
        raise ValueError(f"{value} is not finite")
    scaled = abs(value) * 10
    rounded = math.floor(scaled + 0.5)
    return rounded if value >= 0 else -rounded


def encode_temperature(celsius: float) -> int:
    return encode_i16(encode_tenths(celsius))


def decode_temperature(word: int) -> float:
    return decode_i16(word) / 10


def encode_humidity(percent: float) -> int:
    tenths = encode_tenths(percent)
    if not 0 <= tenths <= 1000:
        raise ValueError(f"humidity {percent} % outside 0..100")
    return tenths


def decode_humidity(word: int) -> float:
    return word / 10


def encode_hold_time(seconds: float, minimum: int = 10, maximum: int = 1200) -> int:
    tenths = encode_tenths(seconds)
    if not minimum <= tenths <= maximum:
        raise ValueError(f"hold time {seconds} s outside {minimum / 10}..{maximum / 10} s")
    return tenths


def decode_hold_time(word: int) -> float:
    return word / 10


# --- guiding light --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Light:
    colour: str = "off"
    blink: str = "steady"


def encode_light(register_map: RegisterMap, light: Light) -> int:
    if light.colour not in register_map.colours:
        raise ValueError(f"unknown colour {light.colour!r}; known: {sorted(register_map.colours)}")
    if light.blink not in register_map.blinks:
        raise ValueError(f"unknown blink {light.blink!r}; known: {sorted(register_map.blinks)}")
    return register_map.colours[light.colour] | (register_map.blinks[light.blink] << register_map.blink_shift)


def decode_light(register_map: RegisterMap, word: int) -> Light:
    """The light a word means; ``ValueError`` for a word outside the documented encodings."""
    colour_mask = (1 << register_map.colour_bits) - 1
    if word >> (register_map.blink_shift + 4):
        raise ValueError(f"light word {word:#06x} has bits above 7 set")
    colour_value, blink_value = word & colour_mask, (word >> register_map.blink_shift) & 0xF
    colours = {v: k for k, v in register_map.colours.items()}
    blinks = {v: k for k, v in register_map.blinks.items()}
    if colour_value not in colours or blink_value not in blinks:
        raise ValueError(f"light word {word:#06x} is not a documented colour/blink")
    return Light(colours[colour_value], blinks[blink_value])


def is_valid_light(register_map: RegisterMap, word: int) -> bool:
    try:
        decode_light(register_map, word)
    except ValueError:
        return False
    return True


# --- bitfields ------------------------------------------------------------------------------------------------------


def pocket_bits(pockets: frozenset[int] | set[int]) -> int:
    """Pocket numbers (1-based) as the drawer's lids_released / lids_open word."""
    word = 0
    for pocket in pockets:
        if not 1 <= pocket <= 16:
            raise ValueError(f"pocket {pocket} outside 1..16")
        word |= 1 << (pocket - 1)
    return word


_NO_POCKETS: frozenset[int] = frozenset()


def pockets_from_bits(word: int) -> frozenset[int]:
    if not word:
        return _NO_POCKETS  # the common case, on the poller's hot path
    return frozenset(bit + 1 for bit in range(16) if word >> bit & 1)


# --- opening counters (version 2) -----------------------------------------------------------------------------------

COUNTER_MODULUS = 0x10000  # openings / lid_openings are u16 and wrap 65535 -> 0


def count_opening(openings: int) -> int:
    """The counter after one more open edge."""
    return (openings + 1) % COUNTER_MODULUS


def unrecorded_openings(openings: int, seen: int) -> int:
    """Openings the controller has not recorded: ``(openings - seen) mod 65536``; nonzero = the opened latch is set.

    Modular, so a counter that wrapped past 65535 still gives the right number (as long as fewer than 65536
    openings go unrecorded, which at one a second is 18 hours of nobody reading)."""
    for word in (openings, seen):
        if not 0 <= word <= 0xFFFF:
            raise ValueError(f"{word} is not a 16-bit counter value")
    return (openings - seen) % COUNTER_MODULUS


def firmware_version(major: int, minor: int, patch: int) -> str:
    return f"{major}.{minor}.{patch}"


# --- Modbus RTU frames (for golden vectors and the conformance test) -------------------------------------------------


def crc16_modbus(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes([unit]) + pdu
    return body + struct.pack("<H", crc16_modbus(body))


class FrameError(ValueError):
    """A frame that is too short, or whose CRC does not match."""


def parse_rtu_frame(frame: bytes) -> tuple[int, bytes]:
    """(unit, pdu) of one complete RTU frame."""
    if len(frame) < 4:
        raise FrameError(f"frame of {len(frame)} bytes is shorter than 4")
    body, (crc,) = frame[:-2], struct.unpack("<H", frame[-2:])
    if crc16_modbus(body) != crc:
        raise FrameError(f"CRC {crc:#06x} does not match {crc16_modbus(body):#06x}")
    return body[0], body[1:]


def read_holding_request(address: int, count: int) -> bytes:
    return struct.pack(">BHH", 0x03, address, count)


def read_holding_response(values: list[int]) -> bytes:
    return struct.pack(f">BB{len(values)}H", 0x03, 2 * len(values), *values)


def write_single_request(address: int, value: int) -> bytes:
    return struct.pack(">BHH", 0x06, address, value)


def write_multiple_request(address: int, values: list[int]) -> bytes:
    return struct.pack(f">BHHB{len(values)}H", 0x10, address, len(values), 2 * len(values), *values)


def write_multiple_response(address: int, count: int) -> bytes:
    return struct.pack(">BHH", 0x10, address, count)


def exception_response(function: int, code: int) -> bytes:
    return bytes([function | 0x80, code])
