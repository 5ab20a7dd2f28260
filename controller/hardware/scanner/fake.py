"""In-memory scanner for unit tests of the rules: scans are queued by ``present``; ``fail_next(error)`` makes
the next scan that would be read arrive damaged or lost, so ``next_scan`` raises ``error`` in its place."""

from __future__ import annotations

import asyncio
from collections import deque

from controller.errors import CommunicationError
from controller.hardware.scanner.interface import ScannerIdentity
from firmware_protocols.scanner import Scan
from firmware_protocols.scanner.codec import parse_line


class FakeScanner:
    def __init__(self, *, mode: str = "presentation", model: str = "FAKE-SCANNER", is_simulator: bool = True) -> None:
        self.mode = mode
        self.identity = ScannerIdentity(model=model, firmware="fake", is_simulator=is_simulator)
        self.in_view: deque[Scan] = deque()
        self.ready: deque[Scan | CommunicationError] = deque()
        self.triggers = 0
        self.closed = False
        self._damage_next: CommunicationError | None = None

    def present(self, barcode_text: str, symbology: str = "]d2") -> None:
        item = parse_line(symbology.encode("ascii") + barcode_text.encode("utf-8"))
        if not isinstance(item, Scan):
            raise ValueError(f"not a scan: {item!r}")
        if self.mode == "presentation":
            self._read(item)
        else:
            self.in_view.append(item)

    def fail_next(self, error: CommunicationError) -> None:
        self._damage_next = error

    def _read(self, item: Scan) -> None:
        if self._damage_next is not None:
            self.ready.append(self._damage_next)
            self._damage_next = None
        else:
            self.ready.append(item)

    async def identify(self) -> ScannerIdentity:
        self._check()
        return self.identity

    async def trigger(self) -> None:
        self._check()
        self.triggers += 1
        if self.in_view:
            self._read(self.in_view.popleft())

    async def untrigger(self) -> None:
        self._check()

    async def next_scan(self, timeout: float) -> Scan:
        self._check()
        if not self.ready:
            await asyncio.sleep(timeout)
            raise CommunicationError("comm.timeout", f"fake scanner: no scan within {timeout} s")
        item = self.ready.popleft()
        if isinstance(item, CommunicationError):
            raise item
        return item

    async def close(self) -> None:
        self.closed = True

    def _check(self) -> None:
        if self.closed:
            raise CommunicationError("comm.disconnected", "fake scanner is closed")
