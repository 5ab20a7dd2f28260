"""Deterministic barcode scanner model: what a person presents, what the host commands, what goes on the wire.

The core is pure: ``handle(command) -> list[Emission]`` for host commands, and ``present(...)`` for the physical
act of holding a barcode under the scanner. Output the host should see is also pushed to ``listeners`` (the
transport adapters in ``server.py``), so a scan presented over the control surface reaches the wire.

Modes: in ``presentation`` mode a presented barcode is read at once; in ``trigger`` mode it waits in the field of
view and each trigger command (``SYN T CR``) reads the next one (``SYN U CR`` stops a pending read; the model
keeps the queue). Fault kinds honoured: GARBAGE (line noise before the scan, default bytes 00 FF 13), TRUNCATE
(the scan is cut in half and its suffix lost), DISCONNECT (the link drops), DROP_RESPONSE (the scan, or the
identify answer, is lost). Each scan emitted and each host command counts as one request for the fault plan.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from firmware_protocols.scanner import SCANNER_TABLE, encode_identify_reply, encode_scan
from firmware_protocols.scanner.codec import SUFFIXES
from simulators.common.clock import RealClock, SimClock
from simulators.common.faults import FaultKind, FaultPlan

HONOURED = frozenset({FaultKind.GARBAGE, FaultKind.TRUNCATE, FaultKind.DISCONNECT, FaultKind.DROP_RESPONSE})
GS_MODES = {"pass": None, "caret": b"^]", "drop": b""}  # how the scanner sends the GS1 group separator
DEFAULT_GARBAGE = bytes.fromhex("00ff13")


@dataclass(frozen=True, slots=True)
class Emission:
    data: bytes = b""
    disconnect: bool = False  # after sending ``data``, drop the link


class ScannerModel:
    def __init__(
        self,
        *,
        clock: SimClock | None = None,
        faults: FaultPlan | None = None,
        mode: str = "presentation",
        suffix: str = "CR",
        gs: str = "pass",
        aim_prefix: bool = True,
        baudrate: int = 9600,
        model: str = "ADC-SCAN-SIMULATOR",
        firmware: str = "1.0.0",
    ) -> None:
        if mode not in ("presentation", "trigger"):
            raise ValueError(f"mode must be 'presentation' or 'trigger', not {mode!r}")
        if suffix not in SUFFIXES:
            raise ValueError(f"suffix must be one of {sorted(SUFFIXES)}, not {suffix!r}")
        if gs not in GS_MODES:
            raise ValueError(f"gs must be one of {sorted(GS_MODES)}, not {gs!r}")
        self.clock = clock or RealClock()
        self.faults = faults or FaultPlan()
        self.mode, self.suffix, self.gs, self.aim_prefix = mode, suffix, gs, aim_prefix
        self.baudrate, self.model, self.firmware = baudrate, model, firmware
        self.requests = 0
        self.in_view: deque[tuple[bytes, str]] = deque()  # presented, not yet read (trigger mode)
        self.sent: list[bytes] = []  # every scan line that went out intact, for tests
        self.listeners: list[Callable[[Emission], None]] = []

    # --- physical world ---------------------------------------------------------------------------------------

    def present(self, barcode_text: str, symbology: str = "]d2") -> None:
        """A person holds a barcode under the scanner. ``barcode_text`` may contain GS (\\x1d)."""
        if not (len(symbology) == 3 and symbology.startswith("]")) and symbology != "":
            raise ValueError(f"symbology must be an AIM identifier like ']d2' (or '' for none), not {symbology!r}")
        self.in_view.append((barcode_text.encode("utf-8"), symbology))
        if self.mode == "presentation":
            self._publish(self._read_next())

    def clear_view(self) -> int:
        """The person takes the barcodes away; returns how many were still unread."""
        count = len(self.in_view)
        self.in_view.clear()
        return count

    # --- host commands (pure core) ----------------------------------------------------------------------------

    def handle(self, command: bytes) -> list[Emission]:
        if command == SCANNER_TABLE.trigger:
            return self._read_next()
        if command == SCANNER_TABLE.identify:
            return self._answer(self.identify_reply())
        return []  # untrigger and unknown commands: nothing to say (real scanners ignore what they do not know)

    def identify_reply(self) -> bytes:
        fields = {
            "model": self.model,
            "firmware": self.firmware,
            "simulator": "1",
            "mode": self.mode,
            "suffix": self.suffix,
            "gs": self.gs,
            "baudrate": str(self.baudrate),
        }
        return encode_identify_reply(fields, suffix=SUFFIXES[self.suffix])

    def _read_next(self) -> list[Emission]:
        if not self.in_view:
            return []
        data, symbology = self.in_view.popleft()
        line = encode_scan(
            data,
            symbology_id=symbology if self.aim_prefix else "",
            suffix=SUFFIXES[self.suffix],
            gs_substitute=GS_MODES[self.gs],
        )
        emissions = self._answer(line)
        if emissions == [Emission(line)]:
            self.sent.append(line)
        return emissions

    def _answer(self, line: bytes) -> list[Emission]:
        self.requests += 1
        out = Emission(line)
        for fault in self.faults.due(self.requests, self.clock.monotonic(), HONOURED):
            if fault.kind is FaultKind.DROP_RESPONSE:
                return []
            if fault.kind is FaultKind.DISCONNECT:
                return [Emission(disconnect=True)]
            if fault.kind is FaultKind.TRUNCATE:
                body = line.rstrip(b"\r\n")
                out = Emission(body[: max(1, len(body) // 2)])
            if fault.kind is FaultKind.GARBAGE:
                noise = bytes.fromhex(str(fault.params.get("data", DEFAULT_GARBAGE.hex())))
                out = Emission(noise + out.data)
        return [out]

    def _publish(self, emissions: list[Emission]) -> None:
        for emission in emissions:
            for listener in list(self.listeners):
                listener(emission)

    def actions(self) -> dict[str, Callable[..., object]]:
        """Physical-world actions for the control surface."""
        return {"present": self.present, "clear_view": self.clear_view}
