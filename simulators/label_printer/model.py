"""Deterministic ZPL label printer model. It keeps every label it printed (``labels``) for tests.

Pure core: ``handle(item) -> Reply`` for one item of the host stream (a label format or a tilde command, as cut
by ``firmware_protocols.label_printer.ZplSplitter``). A label arriving while the printer cannot print (paper out,
head open, paused, ribbon out) is held in the receive buffer, as a Zebra does, and prints when the condition
clears, unless the host cancels it with ``~JA``. Physical actions: ``open_head``, ``close_head``,
``run_out_of_paper``, ``load_paper``, ``pause``, ``resume``.

Fault kinds honoured: PAPER_OUT (the paper runs out before the request is handled; it stays out until
``load_paper``), DISCONNECT (the connection drops; the request is lost), DROP_RESPONSE (a ``~HS``/``~HI`` gets
no answer; labels have no answer to drop). Every label and tilde command counts as one request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from firmware_protocols.label_printer import (
    HostIdentification,
    HostStatus,
    ZplCommand,
    ZplDecodeError,
    ZplItem,
    ZplLabel,
    encode_host_identification,
    encode_host_status,
)
from simulators.common.clock import RealClock, SimClock
from simulators.common.faults import FaultKind, FaultPlan

_LABEL_FAULTS = frozenset({FaultKind.PAPER_OUT, FaultKind.DISCONNECT})
_QUERY_FAULTS = _LABEL_FAULTS | {FaultKind.DROP_RESPONSE}


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes = b""
    disconnect: bool = False


class LabelPrinterModel:
    def __init__(
        self,
        *,
        clock: SimClock | None = None,
        faults: FaultPlan | None = None,
        model: str = "ADC-ZPL-SIMULATOR",
        firmware: str = "V1.0.0",
        dots_per_mm: int = 8,
        memory_kb: int = 8192,
    ) -> None:
        self.clock = clock or RealClock()
        self.faults = faults or FaultPlan()
        self.identification = HostIdentification(model, firmware, dots_per_mm, memory_kb, "")
        self.requests = 0
        self.labels: list[bytes] = []  # printed, in order
        self.received: list[bytes] = []  # every complete label format that arrived, printed or not
        self.buffered: list[bytes] = []  # received, waiting for the printer to be able to print
        self.errors: list[ZplDecodeError] = []  # junk and truncated formats seen on the wire
        self.paper_out = self.head_open = self.ribbon_out = self.paused = False

    # --- host stream (pure core) ------------------------------------------------------------------------------

    def handle(self, item: ZplItem) -> Reply:
        if isinstance(item, ZplDecodeError):
            self.errors.append(item)
            return Reply()
        self.requests += 1
        is_query = isinstance(item, ZplCommand) and item.name in ("~HS", "~HI")
        drop = False
        kinds = _QUERY_FAULTS if is_query else _LABEL_FAULTS
        for fault in self.faults.due(self.requests, self.clock.monotonic(), kinds):
            if fault.kind is FaultKind.DISCONNECT:
                return Reply(disconnect=True)
            if fault.kind is FaultKind.PAPER_OUT:
                self.paper_out = True
            if fault.kind is FaultKind.DROP_RESPONSE:
                drop = True
        if isinstance(item, ZplLabel):
            self.received.append(item.raw)
            self.buffered.append(item.raw)
            self._print_buffered()
            return Reply()
        if item.name == "~JA":
            self.buffered.clear()
        if drop:
            return Reply()
        if item.name == "~HS":
            return Reply(encode_host_status(self.status()))
        if item.name == "~HI":
            return Reply(encode_host_identification(self.identification))
        return Reply()  # other tilde commands: accepted, nothing modelled

    def status(self) -> HostStatus:
        return HostStatus(
            paper_out=self.paper_out,
            paused=self.paused,
            label_length_dots=254,
            formats_in_buffer=len(self.buffered),
            head_open=self.head_open,
            ribbon_out=self.ribbon_out,
            print_mode=2,  # tear-off
            labels_remaining=len(self.buffered),
        )

    def can_print(self) -> bool:
        return not (self.paper_out or self.head_open or self.paused or self.ribbon_out)

    def _print_buffered(self) -> None:
        if self.can_print():
            self.labels.extend(self.buffered)
            self.buffered.clear()

    # --- physical world ---------------------------------------------------------------------------------------

    def open_head(self) -> None:
        self.head_open = True

    def close_head(self) -> None:
        self.head_open = False
        self._print_buffered()

    def run_out_of_paper(self) -> None:
        self.paper_out = True

    def load_paper(self) -> None:
        self.paper_out = False
        self._print_buffered()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._print_buffered()

    def printed_count(self) -> int:
        return len(self.labels)

    def actions(self) -> dict[str, Callable[..., object]]:
        return {
            "open_head": self.open_head,
            "close_head": self.close_head,
            "run_out_of_paper": self.run_out_of_paper,
            "load_paper": self.load_paper,
            "pause": self.pause,
            "resume": self.resume,
            "printed_count": self.printed_count,
        }
