"""In-memory label printer for unit tests of the rules: set fault flags on ``state``, read ``labels``."""

from __future__ import annotations

from dataclasses import replace

from controller.errors import CommunicationError
from controller.hardware.label_printer.interface import PrinterIdentity, raise_for_faults, single_label
from firmware_protocols.label_printer import HostStatus


class FakeLabelPrinter:
    def __init__(self, *, model: str = "FAKE-ZPL", is_simulator: bool = True) -> None:
        self.identity = PrinterIdentity(model=model, firmware="fake", is_simulator=is_simulator)
        self.state = HostStatus()
        self.labels: list[bytes] = []
        self.next_error: CommunicationError | None = None
        self.closed = False

    def set_flags(self, **flags: bool) -> None:
        """E.g. ``set_flags(paper_out=True)``; names are HostStatus fields."""
        self.state = replace(self.state, **flags)

    def fail_next(self, error: CommunicationError) -> None:
        self.next_error = error

    async def identify(self) -> PrinterIdentity:
        self._check()
        return self.identity

    async def status(self) -> HostStatus:
        self._check()
        return self.state

    async def print_label(self, zpl: bytes) -> None:
        label = single_label(zpl)
        raise_for_faults(await self.status(), when="cannot print")
        self.labels.append(label.raw)

    async def close(self) -> None:
        self.closed = True

    def _check(self) -> None:
        if self.closed:
            raise CommunicationError("comm.disconnected", "fake printer is closed")
        if self.next_error is not None:
            error, self.next_error = self.next_error, None
            raise error
