"""What the controller needs from a label printer: who it is, its status, and print one label, confirmed.

``print_label`` is check, send, confirm: it reads ``~HS`` first and refuses with ``device.printer_fault``
(naming the flags, e.g. "paper out") while the printer cannot print; after sending it reads ``~HS`` until the
receive buffer is empty. A fault that appears meanwhile cancels the held label (``~JA``, so it cannot print
later behind the user's back) and raises ``device.printer_fault``. It never returns unless the printer took
the label with no fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controller.errors import DeviceFaultError
from firmware_protocols.label_printer import HostStatus, ZplLabel, ZplSplitter


@dataclass(frozen=True, slots=True)
class PrinterIdentity:
    model: str
    firmware: str
    is_simulator: bool  # read from the ~HI model string


class LabelPrinter(Protocol):
    async def identify(self) -> PrinterIdentity: ...

    async def status(self) -> HostStatus: ...

    async def print_label(self, zpl: bytes) -> None: ...

    async def close(self) -> None: ...


def raise_for_faults(status: HostStatus, *, when: str) -> None:
    """``DeviceFaultError`` with the table's code when any fault flag is set; the detail names every flag."""
    faults = status.faults()
    if faults:
        titles = ", ".join(f.title for f in faults)
        raise DeviceFaultError(
            faults[0].code,
            f"label printer {when}: {titles}",
            flags=[f.flag for f in faults],
            formats_in_buffer=status.formats_in_buffer,
        )


def single_label(zpl: bytes) -> ZplLabel:
    """The one complete ``^XA ... ^XZ`` format in ``zpl``; anything else is a caller bug (ValueError)."""
    splitter = ZplSplitter()
    items = splitter.feed(zpl) + splitter.flush()
    if len(items) != 1 or not isinstance(items[0], ZplLabel):
        raise ValueError(f"print_label takes exactly one ^XA...^XZ label format, got {items!r}"[:300])
    return items[0]


__all__ = ["HostStatus", "LabelPrinter", "PrinterIdentity", "raise_for_faults", "single_label"]
