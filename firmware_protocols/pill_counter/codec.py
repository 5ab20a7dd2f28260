r"""The pill counter's pure codec: CRC, frames, a streaming decoder that resynchronises, and typed messages.

Frame layout (all multi-byte integers big-endian)::

    +------+-----+-----+-----+-------------------+--------+--------+------+
    | STX  | LEN | SEQ | CMD | PAYLOAD (LEN)     | CRC_HI | CRC_LO | ETX  |
    | 0x02 |  1  |  1  |  1  | 0..240 bytes      |  CRC-16/CCITT-FALSE  | 0x03 |
    +------+-----+-----+-----+-------------------+--------+--------+------+
            \______ CRC covers LEN, SEQ, CMD, PAYLOAD ______/

LEN counts PAYLOAD bytes only, so a frame is LEN + 7 bytes. There is no byte stuffing: STX and ETX may appear
inside the frame, and the length field plus the CRC and the ETX position tell a real frame from noise. The
decoder's resynchronisation rule is in ``FrameDecoder``. This module does no I/O and keeps no time: the caller
tells the decoder when the inter-byte timeout has passed (``expire``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from firmware_protocols.pill_counter.table import load_table

TABLE = load_table()
STX = TABLE.frame.stx
ETX = TABLE.frame.etx
OVERHEAD = TABLE.frame.overhead
MAX_PAYLOAD = TABLE.protocol.max_payload
MAX_FRAME = MAX_PAYLOAD + OVERHEAD
RESET_SEQ = TABLE.frame.reset_seq
MAX_TARGET = 9999

_CODE = {spec.name: spec.code for spec in TABLE.commands.values()}
IDENTIFY = _CODE["IDENTIFY"]
START_COUNT = _CODE["START_COUNT"]
STOP = _CODE["STOP"]
STATUS = _CODE["STATUS"]
RESULT = _CODE["RESULT"]
CLEAR = _CODE["CLEAR"]
SELECT_CANISTER = _CODE["SELECT_CANISTER"]
DISPENSE = _CODE["DISPENSE"]
REPORT = _CODE["REPORT"]
ACK = _CODE["ACK"]
NAK = _CODE["NAK"]
ERR = _CODE["ERR"]
REQUEST_CODES = frozenset(spec.code for spec in TABLE.commands.values() if spec.kind == "request")

# --- CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, xorout 0; check("123456789") = 0x29B1 -------------


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_ccitt_false(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


# --- frames --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    command: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.seq <= 0xFF or not 0 <= self.command <= 0xFF:
            raise ValueError("seq and command are single bytes")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"payload longer than {MAX_PAYLOAD} bytes")


def encode_frame(frame: Frame) -> bytes:
    body = bytes((len(frame.payload), frame.seq, frame.command)) + frame.payload
    return bytes((STX,)) + body + crc16_ccitt_false(body).to_bytes(2, "big") + bytes((ETX,))


class DecodeErrorKind(StrEnum):
    NOISE = "noise"  # bytes before any STX: dropped
    BAD_LENGTH = "bad_length"  # LEN > max payload: this STX is not a frame start
    BAD_ETX = "bad_etx"  # the byte at LEN + 6 is not ETX
    BAD_CRC = "bad_crc"  # CRC mismatch
    TRUNCATED = "truncated"  # the inter-byte timeout ran out inside a frame


@dataclass(frozen=True, slots=True)
class DecodeError:
    kind: DecodeErrorKind
    data: bytes  # the bytes given up on (for a bad candidate: the candidate, of which only the STX is dropped)
    seq: int | None = None  # the SEQ byte of a rejected candidate, when there was one (a device NAKs with it)


class FrameDecoder:
    """Streaming frame decoder that never raises on input and never waits for more than one frame's bytes.

    Resynchronisation rule: the buffer always starts at an STX candidate. Bytes before the first STX are dropped
    (one NOISE error per run). A candidate is rejected when LEN > max payload, when the byte at LEN + 6 is not ETX,
    or when the CRC does not match; then only its STX byte is dropped and the scan restarts at the next byte, so a
    real frame hidden inside a false candidate (an STX in garbage) is still found. ``expire()`` is called when the
    inter-byte timeout passes with a partial candidate: the same rule applies until the buffer is empty.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held in an incomplete candidate frame."""
        return len(self._buffer)

    def bytes_wanted(self) -> int:
        """How many more bytes complete the smallest frame the buffer can start (reading more could block)."""
        have = len(self._buffer)
        if have < 2:
            return OVERHEAD - have
        length = self._buffer[1]
        return max(1, length + OVERHEAD - have)

    def clear(self) -> None:
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Frame | DecodeError]:
        self._buffer.extend(data)
        return self._scan()

    def expire(self) -> list[Frame | DecodeError]:
        """The inter-byte timeout passed: give up on the partial candidate(s) and rescan what is left."""
        out: list[Frame | DecodeError] = []
        while self._buffer:
            out.append(
                DecodeError(
                    DecodeErrorKind.TRUNCATED,
                    bytes(self._buffer),
                    self._buffer[2] if len(self._buffer) > 2 else None,
                )
            )
            del self._buffer[:1]
            out.extend(self._scan())
        return out

    def _scan(self) -> list[Frame | DecodeError]:
        out: list[Frame | DecodeError] = []
        buffer = self._buffer
        while buffer:
            start = buffer.find(STX)
            if start == -1:
                out.append(DecodeError(DecodeErrorKind.NOISE, bytes(buffer)))
                buffer.clear()
                break
            if start:
                out.append(DecodeError(DecodeErrorKind.NOISE, bytes(buffer[:start])))
                del buffer[:start]
            if len(buffer) < 2:
                break
            length = buffer[1]
            if length > MAX_PAYLOAD:
                out.append(DecodeError(DecodeErrorKind.BAD_LENGTH, bytes(buffer[:2])))
                del buffer[:1]
                continue
            total = length + OVERHEAD
            if len(buffer) < total:
                break
            candidate = bytes(buffer[:total])
            if candidate[-1] != ETX:
                out.append(DecodeError(DecodeErrorKind.BAD_ETX, candidate, candidate[2]))
                del buffer[:1]
                continue
            if crc16_ccitt_false(candidate[1:-3]) != int.from_bytes(candidate[-3:-1], "big"):
                out.append(DecodeError(DecodeErrorKind.BAD_CRC, candidate, candidate[2]))
                del buffer[:1]
                continue
            out.append(Frame(seq=candidate[2], command=candidate[3], payload=candidate[4:-3]))
            del buffer[:total]
        return out


def decode_frame(data: bytes) -> Frame:
    """Exactly one frame, nothing before or after; ``MessageError`` otherwise."""
    items = FrameDecoder().feed(data)
    if len(items) == 1 and isinstance(items[0], Frame):
        return items[0]
    raise MessageError("bad_frame", f"not exactly one valid frame: {items!r}")


# --- messages ------------------------------------------------------------------------------------------------------


class MessageError(ValueError):
    """A frame that is intact but whose command or payload the protocol does not allow.

    ``reason`` is the name of the device error the device answers with (``unknown_command``, ``bad_parameter``) or
    ``bad_frame``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _u8(value: int) -> bytes:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{value} does not fit a byte")
    return bytes((value,))


def _u16(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{value} does not fit 16 bits")
    return value.to_bytes(2, "big")


def _text(value: str) -> bytes:
    raw = value.encode("ascii")
    return _u8(len(raw)) + raw


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def text(self) -> str:
        raw = self.take(self.u8())
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise MessageError("bad_parameter", "text fields are ASCII") from exc

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._data):
            raise MessageError("bad_parameter", "payload too short")
        chunk = self._data[self._at : self._at + n]
        self._at += n
        return chunk

    def end(self) -> None:
        if self._at != len(self._data):
            raise MessageError("bad_parameter", f"{len(self._data) - self._at} unexpected payload bytes")


# Requests (controller -> device) --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identify:
    CODE: ClassVar[int] = IDENTIFY


@dataclass(frozen=True, slots=True)
class StartCount:
    target: int
    CODE: ClassVar[int] = START_COUNT


@dataclass(frozen=True, slots=True)
class Stop:
    CODE: ClassVar[int] = STOP


@dataclass(frozen=True, slots=True)
class Status:
    CODE: ClassVar[int] = STATUS


@dataclass(frozen=True, slots=True)
class Result:
    CODE: ClassVar[int] = RESULT


@dataclass(frozen=True, slots=True)
class Clear:
    CODE: ClassVar[int] = CLEAR


@dataclass(frozen=True, slots=True)
class SelectCanister:
    canister: int
    CODE: ClassVar[int] = SELECT_CANISTER


@dataclass(frozen=True, slots=True)
class Dispense:
    count: int
    CODE: ClassVar[int] = DISPENSE


@dataclass(frozen=True, slots=True)
class Report:
    CODE: ClassVar[int] = REPORT


Request = Identify | StartCount | Stop | Status | Result | Clear | SelectCanister | Dispense | Report


def encode_request(seq: int, request: Request) -> bytes:
    payload = b""
    if isinstance(request, StartCount):
        payload = _u16(request.target)
    elif isinstance(request, SelectCanister):
        payload = _u8(request.canister)
    elif isinstance(request, Dispense):
        payload = _u16(request.count)
    return encode_frame(Frame(seq, request.CODE, payload))


def decode_request(frame: Frame) -> Request:
    """The typed request in ``frame``; ``MessageError('unknown_command' | 'bad_parameter')`` otherwise.

    Only the wire shape is checked here (lengths); value ranges (target 1..9999) are the device's business.
    """
    reader = _Reader(frame.payload)
    request: Request
    match frame.command:
        case code if code == IDENTIFY:
            request = Identify()
        case code if code == START_COUNT:
            request = StartCount(reader.u16())
        case code if code == STOP:
            request = Stop()
        case code if code == STATUS:
            request = Status()
        case code if code == RESULT:
            request = Result()
        case code if code == CLEAR:
            request = Clear()
        case code if code == SELECT_CANISTER:
            request = SelectCanister(reader.u8())
        case code if code == DISPENSE:
            request = Dispense(reader.u16())
        case code if code == REPORT:
            request = Report()
        case _:
            raise MessageError("unknown_command", f"command 0x{frame.command:02X} is not a request")
    reader.end()
    return request


# Replies (device -> controller) -----------------------------------------------------------------------------------


class CounterState(StrEnum):
    IDLE = "idle"
    COUNTING = "counting"
    DONE = "done"
    FAULT = "fault"


_STATE_CODE = {CounterState(spec.name): code for code, spec in TABLE.states.items()}
_STATE_OF = {code: state for state, code in _STATE_CODE.items()}


@dataclass(frozen=True, slots=True)
class IdentifyReply:
    model: str
    firmware: str
    serial: str
    is_simulator: bool
    has_robot: bool
    version: int = TABLE.protocol.version


@dataclass(frozen=True, slots=True)
class Accepted:
    """ACK with no body, for START_COUNT, STOP and CLEAR."""

    command: int


@dataclass(frozen=True, slots=True)
class StatusReply:
    state: CounterState
    fault: int  # device error code, 0 = none
    count: int
    target: int


@dataclass(frozen=True, slots=True)
class ResultReply:
    count: int
    target: int
    uncertain: bool
    stopped_early: bool


@dataclass(frozen=True, slots=True)
class CanisterSelected:
    canister: int
    remaining: int


@dataclass(frozen=True, slots=True)
class DispenseReply:
    canister: int
    dispensed: int


@dataclass(frozen=True, slots=True)
class ReportReply:
    selected: int  # 0 = none selected
    vial: int  # tablets the device believes are in the vial
    canisters: tuple[tuple[int, int], ...]  # (canister, remaining)


@dataclass(frozen=True, slots=True)
class DeviceError:
    """ERR: the command was understood and refused or failed; ``error`` is a code of the ``errors`` table."""

    command: int
    error: int
    count: int = 0


@dataclass(frozen=True, slots=True)
class Nak:
    reason: int


Reply = (
    IdentifyReply
    | Accepted
    | StatusReply
    | ResultReply
    | CanisterSelected
    | DispenseReply
    | ReportReply
    | DeviceError
    | Nak
)
_EMPTY_ACKS = frozenset({START_COUNT, STOP, CLEAR})


def reply_payload(reply: Reply) -> tuple[int, bytes]:
    """(CMD, PAYLOAD) of a reply."""
    match reply:
        case Nak(reason):
            return NAK, _u8(reason)
        case DeviceError(command, error, count):
            return ERR, _u8(command) + _u8(error) + _u16(count)
        case IdentifyReply():
            flags = (1 if reply.is_simulator else 0) | (2 if reply.has_robot else 0)
            body = _u8(reply.version) + _u8(flags) + _text(reply.model) + _text(reply.firmware) + _text(reply.serial)
            return ACK, _u8(IDENTIFY) + body
        case Accepted(command):
            if command not in _EMPTY_ACKS:
                raise ValueError(f"command 0x{command:02X} has a reply body")
            return ACK, _u8(command)
        case StatusReply(state, fault, count, target):
            return ACK, _u8(STATUS) + _u8(_STATE_CODE[state]) + _u8(fault) + _u16(count) + _u16(target)
        case ResultReply(count, target, uncertain, stopped_early):
            flags = (1 if uncertain else 0) | (2 if stopped_early else 0)
            return ACK, _u8(RESULT) + _u16(count) + _u16(target) + _u8(flags)
        case CanisterSelected(canister, remaining):
            return ACK, _u8(SELECT_CANISTER) + _u8(canister) + _u16(remaining)
        case DispenseReply(canister, dispensed):
            return ACK, _u8(DISPENSE) + _u8(canister) + _u16(dispensed)
        case ReportReply(selected, vial, canisters):
            body = _u8(selected) + _u16(vial) + _u8(len(canisters))
            body += b"".join(_u8(number) + _u16(remaining) for number, remaining in canisters)
            return ACK, _u8(REPORT) + body
    raise TypeError(f"not a reply: {reply!r}")


def encode_reply(seq: int, reply: Reply) -> bytes:
    command, payload = reply_payload(reply)
    return encode_frame(Frame(seq, command, payload))


def decode_reply(frame: Frame) -> Reply:
    """The typed reply in ``frame``; ``MessageError`` for anything the protocol does not allow."""
    reader = _Reader(frame.payload)
    reply: Reply
    if frame.command == NAK:
        reply = Nak(reader.u8())
    elif frame.command == ERR:
        reply = DeviceError(reader.u8(), reader.u8(), reader.u16())
    elif frame.command == ACK:
        command = reader.u8()
        if command == IDENTIFY:
            version, flags = reader.u8(), reader.u8()
            reply = IdentifyReply(
                model=reader.text(),
                firmware=reader.text(),
                serial=reader.text(),
                is_simulator=bool(flags & 1),
                has_robot=bool(flags & 2),
                version=version,
            )
        elif command in _EMPTY_ACKS:
            reply = Accepted(command)
        elif command == STATUS:
            state_code = reader.u8()
            if state_code not in _STATE_OF:
                raise MessageError("bad_parameter", f"unknown counter state {state_code}")
            reply = StatusReply(_STATE_OF[state_code], reader.u8(), reader.u16(), reader.u16())
        elif command == RESULT:
            count, target, flags = reader.u16(), reader.u16(), reader.u8()
            reply = ResultReply(count, target, bool(flags & 1), bool(flags & 2))
        elif command == SELECT_CANISTER:
            reply = CanisterSelected(reader.u8(), reader.u16())
        elif command == DISPENSE:
            reply = DispenseReply(reader.u8(), reader.u16())
        elif command == REPORT:
            selected, vial, n = reader.u8(), reader.u16(), reader.u8()
            reply = ReportReply(selected, vial, tuple((reader.u8(), reader.u16()) for _ in range(n)))
        else:
            raise MessageError("unknown_command", f"ACK for unknown command 0x{command:02X}")
    else:
        raise MessageError("unknown_command", f"command 0x{frame.command:02X} is not a reply")
    reader.end()
    return reply
