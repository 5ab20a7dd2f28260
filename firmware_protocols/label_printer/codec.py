"""Pure codec for ZPL II over raw TCP (no I/O).

Host -> printer is a byte stream of label formats ``^XA ... ^XZ`` and tilde control commands (``~HS``, ``~HI``,
``~JA``). ``ZplSplitter`` cuts that stream into items and never raises: bytes outside a format are reported as
junk, a format interrupted by a new ``^XA`` is reported truncated, and splitting resumes at the next item.

Printer -> host answers are STX (0x02) ... ETX (0x03) CR LF framed strings: three for ``~HS``, one for ``~HI``.
``~HS`` strings, after Zebra's ZPL II Programming Guide (``~HS``)::

    1: aaa,b,c,dddd,eee,f,g,h,iii,j,k,l   comm settings, paper out, pause, label length (dots), formats in
                                          buffer, buffer full, diagnostic mode, partial format, unused (000),
                                          corrupt RAM, under temperature, over temperature
    2: mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www   function settings, unused, head up, ribbon out, thermal transfer,
                                          print mode, print width mode, label waiting, labels remaining in
                                          batch, format while printing (1), graphics stored
    3: xxxx,y                             password, static RAM installed

Field data in labels we build is escaped with ``^FH`` (hex indicator ``_``): ``^``, ``~``, ``_`` and every byte
outside printable ASCII become ``_XX`` (UTF-8 bytes, printed as UTF-8 because the label selects ``^CI28``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date

from firmware_protocols.label_printer.table import PRINTER_TABLE, PrinterFault, PrinterTable

STX, ETX, CRLF = b"\x02", b"\x03", b"\r\n"
HOST_STATUS, HOST_IDENTIFICATION, CANCEL_ALL = b"~HS", b"~HI", b"~JA"
LABEL_START, LABEL_END = b"^XA", b"^XZ"
_WHITESPACE = b" \t\r\n"
_EVIDENCE_BYTES = 64


# --- splitting the host -> printer stream --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZplLabel:
    raw: bytes  # from ^XA to ^XZ inclusive


@dataclass(frozen=True, slots=True)
class ZplCommand:
    name: str  # "~HS", "~HI", "~JA", or any other tilde + two letters


@dataclass(frozen=True, slots=True)
class ZplDecodeError:
    reason: str  # "junk", "truncated", "over_long"
    detail: str
    evidence: bytes


ZplItem = ZplLabel | ZplCommand | ZplDecodeError
_TILDE = re.compile(rb"~[A-Z]{2}")


class ZplSplitter:
    def __init__(self, *, table: PrinterTable = PRINTER_TABLE) -> None:
        self._max = table.max_label_bytes
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long format: drop until ^XZ (or a new ^XA)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[ZplItem]:
        self._buffer += data
        out: list[ZplItem] = []
        while self._step(out):
            pass
        return out

    def _step(self, out: list[ZplItem]) -> bool:
        """Consume one item from the front of the buffer; False when more bytes are needed."""
        buf = self._buffer
        if self._discarding:
            return self._discard(buf)
        stripped = len(buf) - len(buf.lstrip(_WHITESPACE))
        del buf[:stripped]
        if not buf:
            return False
        if buf.startswith(LABEL_START):
            return self._label(buf, out)
        if buf[:1] == b"~":
            if len(buf) < 3:
                return False
            if _TILDE.match(buf):
                out.append(ZplCommand(buf[:3].decode("ascii")))
                del buf[:3]
                return True
        elif LABEL_START.startswith(bytes(buf[:3])):
            return False  # "^" or "^X": wait for the rest
        # Junk: everything up to the next byte that could start an item.
        cut = next((i for i in range(1, len(buf)) if buf[i] in b"^~"), len(buf))
        evidence = bytes(buf[: min(cut, _EVIDENCE_BYTES)])
        out.append(ZplDecodeError("junk", f"{cut} bytes outside a label format", evidence))
        del buf[:cut]
        return True

    def _label(self, buf: bytearray, out: list[ZplItem]) -> bool:
        end = buf.find(LABEL_END, 3)
        restart = buf.find(LABEL_START, 3)
        if restart != -1 and (end == -1 or restart < end):
            evidence = bytes(buf[:_EVIDENCE_BYTES])
            out.append(ZplDecodeError("truncated", "label format interrupted by a new ^XA", evidence))
            del buf[:restart]
            return True
        if end != -1:
            out.append(ZplLabel(bytes(buf[: end + 3])))
            del buf[: end + 3]
            return True
        if len(buf) > self._max:
            evidence = bytes(buf[:_EVIDENCE_BYTES])
            out.append(ZplDecodeError("over_long", f"label format over {self._max} bytes", evidence))
            self._discarding = True
            del buf[:-2]  # keep a possible "^X" split across reads
        return False

    def _discard(self, buf: bytearray) -> bool:
        end, restart = buf.find(LABEL_END), buf.find(LABEL_START)
        if restart != -1 and (end == -1 or restart < end):
            del buf[:restart]
        elif end != -1:
            del buf[: end + 3]
        else:
            del buf[:-2]
            return False
        self._discarding = False
        return True

    def flush(self) -> list[ZplItem]:
        """The stream ended: an unfinished format is reported truncated."""
        evidence = bytes(self._buffer[:_EVIDENCE_BYTES]).strip(_WHITESPACE)
        discarding, self._discarding = self._discarding, False
        self._buffer.clear()
        if not evidence or discarding:
            return []
        return [ZplDecodeError("truncated", "stream ended inside an item", evidence)]


# --- ~HS host status and ~HI host identification ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostStatus:
    # string 1
    interface_settings: int = 0
    paper_out: bool = False
    paused: bool = False
    label_length_dots: int = 0
    formats_in_buffer: int = 0
    buffer_full: bool = False
    diagnostic_mode: bool = False
    partial_format: bool = False
    corrupt_ram: bool = False
    under_temperature: bool = False
    over_temperature: bool = False
    # string 2
    function_settings: int = 0
    head_open: bool = False  # Zebra's "head up" flag
    ribbon_out: bool = False
    thermal_transfer: bool = False
    print_mode: int = 0
    print_width_mode: int = 0
    label_waiting: bool = False
    labels_remaining: int = 0  # labels remaining in batch
    graphics_stored: int = 0
    # string 3
    password: int = 0
    static_ram: bool = False

    def faults(self, table: PrinterTable = PRINTER_TABLE) -> tuple[PrinterFault, ...]:
        """The fault flags that are set, in table order."""
        return tuple(fault for fault in table.faults if getattr(self, fault.flag))


_STATUS_FIELD_NAMES = tuple(f.name for f in fields(HostStatus))


def _framed(body: str) -> bytes:
    return STX + body.encode("ascii") + ETX + CRLF


def _flag(value: bool) -> str:
    return "1" if value else "0"


def encode_host_status(s: HostStatus) -> bytes:
    one = (
        f"{s.interface_settings:03d},{_flag(s.paper_out)},{_flag(s.paused)},{s.label_length_dots:04d},"
        f"{s.formats_in_buffer:03d},{_flag(s.buffer_full)},{_flag(s.diagnostic_mode)},{_flag(s.partial_format)},"
        f"000,{_flag(s.corrupt_ram)},{_flag(s.under_temperature)},{_flag(s.over_temperature)}"
    )
    two = (
        f"{s.function_settings:03d},0,{_flag(s.head_open)},{_flag(s.ribbon_out)},{_flag(s.thermal_transfer)},"
        f"{s.print_mode},{s.print_width_mode},{_flag(s.label_waiting)},{s.labels_remaining:08d},1,"
        f"{s.graphics_stored:03d}"
    )
    three = f"{s.password:04d},{_flag(s.static_ram)}"
    return _framed(one) + _framed(two) + _framed(three)


class ResponseError(ValueError):
    """A printer answer that does not follow the documented format."""


_FRAME = re.compile(rb"\x02([^\x02\x03]*)\x03\r?\n?")


def split_frames(data: bytes) -> list[bytes]:
    """The bodies of the STX ... ETX strings in ``data``; anything else between them is an error."""
    bodies, position = [], 0
    for match in _FRAME.finditer(data):
        if data[position : match.start()].strip(_WHITESPACE):
            raise ResponseError(f"bytes outside STX/ETX: {data[position : match.start()][:32]!r}")
        bodies.append(match.group(1))
        position = match.end()
    if data[position:].strip(_WHITESPACE):
        raise ResponseError(f"unterminated or stray bytes: {data[position:][:32]!r}")
    return bodies


def _ints(body: bytes, minimum: int, which: str) -> list[int]:
    parts = body.split(b",")
    if len(parts) < minimum:
        raise ResponseError(f"~HS {which} has {len(parts)} fields, expected at least {minimum}: {body[:64]!r}")
    try:
        return [int(p) for p in parts]
    except ValueError as exc:
        raise ResponseError(f"~HS {which} has a non-numeric field: {body[:64]!r}") from exc


def parse_host_status(data: bytes) -> HostStatus:
    """The three ``~HS`` strings -> HostStatus. Extra trailing fields (newer firmware) are ignored."""
    bodies = split_frames(data)
    if len(bodies) != 3:
        raise ResponseError(f"~HS answer has {len(bodies)} strings, expected 3")
    a = _ints(bodies[0], 12, "string 1")
    b = _ints(bodies[1], 11, "string 2")
    c = _ints(bodies[2], 2, "string 3")
    return HostStatus(
        interface_settings=a[0],
        paper_out=bool(a[1]),
        paused=bool(a[2]),
        label_length_dots=a[3],
        formats_in_buffer=a[4],
        buffer_full=bool(a[5]),
        diagnostic_mode=bool(a[6]),
        partial_format=bool(a[7]),
        corrupt_ram=bool(a[9]),
        under_temperature=bool(a[10]),
        over_temperature=bool(a[11]),
        function_settings=b[0],
        head_open=bool(b[2]),
        ribbon_out=bool(b[3]),
        thermal_transfer=bool(b[4]),
        print_mode=b[5],
        print_width_mode=b[6],
        label_waiting=bool(b[7]),
        labels_remaining=b[8],
        graphics_stored=b[10],
        password=c[0],
        static_ram=bool(c[1]),
    )


@dataclass(frozen=True, slots=True)
class HostIdentification:
    model: str  # e.g. "ZD421-300dpi" or "ADC-ZPL-SIMULATOR"
    firmware: str  # e.g. "V84.20.18Z"
    dots_per_mm: int
    memory_kb: int
    options: str

    def is_simulator(self, table: PrinterTable = PRINTER_TABLE) -> bool:
        return table.simulator_marker in self.model.upper()


def encode_host_identification(ident: HostIdentification) -> bytes:
    for value in (ident.model, ident.firmware, ident.options):
        if any(c in value for c in ",\x02\x03\r\n"):
            raise ValueError(f"~HI field {value!r} may not contain ',', STX, ETX, CR or LF")
    return _framed(f"{ident.model},{ident.firmware},{ident.dots_per_mm},{ident.memory_kb}KB,{ident.options}")


def parse_host_identification(data: bytes) -> HostIdentification:
    bodies = split_frames(data)
    if len(bodies) != 1:
        raise ResponseError(f"~HI answer has {len(bodies)} strings, expected 1")
    parts = bodies[0].decode("ascii", errors="replace").split(",")
    if len(parts) < 4:
        raise ResponseError(f"~HI answer has {len(parts)} fields, expected at least 4: {bodies[0][:64]!r}")
    try:
        dots, memory = int(parts[2]), int(parts[3].upper().removesuffix("KB"))
    except ValueError as exc:
        raise ResponseError(f"~HI answer has a non-numeric field: {bodies[0][:64]!r}") from exc
    return HostIdentification(parts[0], parts[1], dots, memory, ",".join(parts[4:]))


# --- building labels -------------------------------------------------------------------------------------------

_PLAIN = frozenset(range(0x20, 0x7F)) - frozenset(b"^~_")
_HEX_ESCAPE = re.compile(rb"_([0-9A-Fa-f]{2})")


def escape_field(text: str) -> str:
    """Field data for ``^FH^FD...^FS``: printable ASCII except ``^ ~ _`` as is, everything else ``_XX``."""
    return "".join(chr(b) if b in _PLAIN else f"_{b:02X}" for b in text.encode("utf-8"))


def unescape_field(data: str) -> str:
    return _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data.encode("ascii")).decode("utf-8")


@dataclass(frozen=True, slots=True)
class VialLabel:
    drug_name: str
    strength: str
    ndc: str
    lot: str
    expiry: date
    count: int
    unit: str
    patient: str
    rx_number: str


_FIELD = re.compile(rb"(\^FH)?\^FD(.*?)\^FS", re.DOTALL)


def build_vial_label(label: VialLabel) -> bytes:
    """A 2 x 1.25 in vial label at 203 dpi (406 x 254 dots), UTF-8 (^CI28), every field ^FH-escaped."""
    lines = [
        (20, 15, 34, f"{label.drug_name} {label.strength}"),
        (20, 60, 26, f"NDC {label.ndc}  Qty {label.count} {label.unit}"),
        (20, 95, 26, f"Lot {label.lot}  Exp {label.expiry.isoformat()}"),
        (20, 130, 26, f"{label.patient}"),
        (20, 165, 26, f"Rx {label.rx_number}"),
    ]
    parts = ["^XA", "^CI28", "^PW406", "^LL254"]
    for x, y, height, text in lines:
        parts.append(f"^FO{x},{y}^A0N,{height},{height}^FH^FD{escape_field(text)}^FS")
    parts.append(f"^FO260,150^BY1^BCN,50,N,N,N^FH^FD{escape_field(label.rx_number)}^FS")
    parts.append("^PQ1^XZ")
    return "".join(parts).encode("ascii")


def label_fields(label: bytes) -> list[str]:
    """The field data of a label format, unescaped where the field is marked ``^FH``."""
    found = []
    for match in _FIELD.finditer(label):
        data = match.group(2).decode("ascii", errors="replace")
        found.append(unescape_field(data) if match.group(1) else data)
    return found
