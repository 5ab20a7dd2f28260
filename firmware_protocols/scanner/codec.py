"""Pure codec for the scanner's serial output (no I/O).

Wire format of one scan (see SPEC.md)::

    [AIM symbology identifier: "]" code modifier] data suffix
     e.g. 5D 64 32 | 30 31 30 38 ... 1D 31 37 ... | 0D

The suffix is CR, LF or CR LF; the decoder ends a line at CR or at LF and ignores empty lines, so it reads every
suffix setting without being told. ``ScanDecoder.feed`` never raises: a bad line becomes a ``ScanDecodeError`` and
decoding resumes after the next terminator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

from firmware_protocols.scanner.table import SCANNER_TABLE, ScannerTable

GS = b"\x1d"
CR, LF = b"\r", b"\n"
SUFFIXES = MappingProxyType({"CR": CR, "LF": LF, "CRLF": CR + LF})
NO_PREFIX, UNKNOWN = "none", "unknown"

_TERMINATOR = re.compile(rb"[\r\n]")
_AIM = re.compile(rb"\][A-Za-z][0-9A-Za-z]")
# C0 controls a barcode may legitimately carry: EOT, TAB, FS, GS, RS, US (ISO/IEC 15434 envelopes, GS1 GS).
_ALLOWED_CONTROLS = frozenset(b"\x04\x09\x1c\x1d\x1e\x1f")
_FORBIDDEN = frozenset(b for b in [*range(0x20), 0x7F] if b not in _ALLOWED_CONTROLS)
_EVIDENCE_BYTES = 64  # how much of a rejected line an error keeps, for logs


@dataclass(frozen=True, slots=True)
class Scan:
    symbology_id: str  # the AIM identifier as sent ("]d2"), "" when the scanner sent none
    symbology: str  # table name ("gs1_datamatrix"), "unknown" for an identifier not in the table, "none" for none
    is_gs1: bool
    data: bytes  # the payload with group separators as 0x1D

    @property
    def text(self) -> str:
        """The payload as text: UTF-8 when it is valid UTF-8, otherwise ISO-8859-1 (every byte maps)."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return self.data.decode("latin-1")


@dataclass(frozen=True, slots=True)
class ScanDecodeError:
    reason: str  # "over_long", "control_byte", "truncated"
    detail: str
    evidence: bytes  # the first bytes of what was dropped


@dataclass(frozen=True, slots=True)
class IdentifyReply:
    fields: MappingProxyType[str, str]  # model, firmware, simulator ("1"/"0"), mode, suffix, gs, baudrate

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)


DecodedItem = Scan | ScanDecodeError | IdentifyReply


def parse_line(line: bytes, *, gs_substitute: bytes | None = None, table: ScannerTable = SCANNER_TABLE) -> DecodedItem:
    """One line without its terminator -> a scan, an identify reply, or why it was rejected."""
    if len(line) > table.max_line_bytes:
        return ScanDecodeError("over_long", f"line of {len(line)} bytes > {table.max_line_bytes}", line[:64])
    if line.startswith(table.identify_reply_prefix):
        return _parse_identify(line[len(table.identify_reply_prefix) :])
    bad = next((b for b in line if b in _FORBIDDEN), None)
    if bad is not None:
        return ScanDecodeError("control_byte", f"control byte 0x{bad:02X} in a scan line", line[:_EVIDENCE_BYTES])
    if _AIM.match(line):
        aim_id, data = line[:3].decode("ascii"), line[3:]
        symbology = table.symbology(aim_id)
        name, gs1 = (symbology.name, symbology.gs1) if symbology else (UNKNOWN, False)
    else:
        aim_id, data, name, gs1 = "", line, NO_PREFIX, False
    if gs1 and gs_substitute:
        data = data.replace(gs_substitute, GS)
    return Scan(symbology_id=aim_id, symbology=name, is_gs1=gs1, data=data)


def _parse_identify(body: bytes) -> IdentifyReply | ScanDecodeError:
    fields: dict[str, str] = {}
    for pair in body.decode("utf-8", errors="replace").split(";"):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            return ScanDecodeError("truncated", f"identify reply field {pair!r} is not key=value", body[:64])
        fields[key.strip()] = value.strip()
    return IdentifyReply(MappingProxyType(fields))


class ScanDecoder:
    """Streaming decoder: feed it bytes as they arrive, get back what complete lines decode to.

    ``gs_substitute`` is what the scanner was configured to send instead of GS (e.g. ``b"^]"``); in GS1
    symbologies it is turned back into 0x1D. ``flush()`` ends a line the scanner never finished (call it when the
    line has been idle too long): a partial line is a ``truncated`` error, never a scan.
    """

    def __init__(self, *, gs_substitute: bytes | None = None, table: ScannerTable = SCANNER_TABLE) -> None:
        self._table = table
        self._gs_substitute = gs_substitute or None
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes until the next terminator

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back (0 while discarding an over-long line)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[DecodedItem]:
        out: list[DecodedItem] = []
        self._buffer += data
        while True:
            match = _TERMINATOR.search(self._buffer)
            if match is None:
                break
            line = bytes(self._buffer[: match.start()])
            del self._buffer[: match.end()]
            if self._discarding:
                self._discarding = False
            elif line:
                out.append(parse_line(line, gs_substitute=self._gs_substitute, table=self._table))
        if len(self._buffer) > self._table.max_line_bytes:
            if not self._discarding:
                detail = f"no terminator within {self._table.max_line_bytes} bytes"
                out.append(ScanDecodeError("over_long", detail, bytes(self._buffer[:_EVIDENCE_BYTES])))
            self._discarding = True
            self._buffer.clear()
        return out

    def flush(self) -> list[DecodedItem]:
        was_discarding, self._discarding = self._discarding, False
        if not self._buffer or was_discarding:
            self._buffer.clear()
            return []
        evidence = bytes(self._buffer[:_EVIDENCE_BYTES])
        self._buffer.clear()
        return [ScanDecodeError("truncated", "line ended without a terminator", evidence)]


def encode_scan(
    data: bytes,
    *,
    symbology_id: str = "]d2",
    suffix: bytes = CR,
    gs_substitute: bytes | None = None,
) -> bytes:
    """What a scanner sends for one read. ``gs_substitute``: ``None`` passes GS as 0x1D, ``b""`` drops it, other
    bytes replace it (a scanner set to send ``^]``)."""
    if gs_substitute is not None:
        data = data.replace(GS, gs_substitute)
    return symbology_id.encode("ascii") + data + suffix


def encode_identify_reply(fields: dict[str, str], *, suffix: bytes = CR, table: ScannerTable = SCANNER_TABLE) -> bytes:
    for key, value in fields.items():
        if any(c in f"{key}{value}" for c in ";=\r\n"):
            raise ValueError(f"identify field {key}={value!r} may not contain ';', '=', CR or LF")
    body = ";".join(f"{key}={value}" for key, value in fields.items())
    return table.identify_reply_prefix + body.encode("utf-8") + suffix
