"""What the controller needs from a barcode scanner: who it is, make it read, and the next scan.

A scan is ``firmware_protocols.scanner.Scan`` (AIM symbology, GS1 or not, raw data with GS as 0x1D). Errors:
``comm.timeout`` when no scan (or no answer) arrives in time, ``comm.framing`` when a line arrived damaged
(noise, cut short, over-long: the scan is lost and the person must scan again), ``comm.disconnected`` when the
link drops. A damaged line is never returned as a scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from firmware_protocols.scanner import Scan


@dataclass(frozen=True, slots=True)
class ScannerIdentity:
    model: str
    firmware: str
    is_simulator: bool  # as the scanner itself reports it


class Scanner(Protocol):
    async def identify(self) -> ScannerIdentity: ...

    async def trigger(self) -> None:
        """Start a read (scanners in trigger mode); harmless in presentation mode."""

    async def untrigger(self) -> None: ...

    async def next_scan(self, timeout: float) -> Scan:
        """The next scan, in the order read; raises ``comm.timeout`` if none arrives within ``timeout``."""

    async def close(self) -> None: ...


__all__ = ["Scan", "Scanner", "ScannerIdentity"]
