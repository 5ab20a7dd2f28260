"""Connecting the cabinet's devices from their endpoint URLs: the only place that picks concrete drivers.

A real cabinet sets ``ADC_IO_BOARD=rtu:///dev/ttyUSB0?unit=1``; under the simulators it is
``tcp://127.0.0.1:5020?unit=1`` — the same driver either way, and no ``simulating`` flag anywhere: each device
says itself whether it is a simulator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from controller.errors import ControllerError
from controller.hardware.camera.opencv_driver import OpenCvCamera
from controller.hardware.io_board.driver import IoBoardDriver
from controller.hardware.label_printer.driver import LabelPrinterDriver
from controller.hardware.pill_counter.driver import PillCounterDriver
from controller.hardware.scanner.driver import ScannerDriver
from controller.settings import Settings


@dataclass(frozen=True, slots=True)
class DeviceReport:
    device: str
    url: str
    connected: bool
    is_simulator: bool | None
    identity: dict[str, Any]
    error: str | None = None


@dataclass
class Hardware:
    io_board: IoBoardDriver | None = None
    pill_counter: PillCounterDriver | None = None
    scanner: ScannerDriver | None = None
    label_printer: LabelPrinterDriver | None = None
    camera: OpenCvCamera | None = None
    reports: list[DeviceReport] = field(default_factory=list)

    @property
    def is_simulator(self) -> bool:
        """True if any connected device is simulated: a record made against it must never pass for a real one."""
        return any(report.is_simulator for report in self.reports if report.connected)

    async def close(self) -> None:
        for driver in (self.io_board, self.pill_counter, self.scanner, self.label_printer, self.camera):
            if driver is not None:
                with contextlib.suppress(ControllerError, OSError):
                    await driver.close()


_Connector = Callable[[str], Awaitable[Any]]

_DEVICES: tuple[tuple[str, str, _Connector], ...] = (
    ("io_board", "ADC_IO_BOARD", IoBoardDriver.connect),
    ("pill_counter", "ADC_PILL_COUNTER", PillCounterDriver.connect),
    ("scanner", "ADC_SCANNER", ScannerDriver.connect),
    ("label_printer", "ADC_LABEL_PRINTER", LabelPrinterDriver.connect),
    ("camera", "ADC_CAMERA", OpenCvCamera.connect),
)


async def connect_hardware(settings: Settings) -> Hardware:
    """Connect every configured device and ask each who it is. A device that fails is reported, not fatal:
    the cabinet can still serve what the others allow (and the engine refuses what needs the missing one)."""
    hardware = Hardware()
    for name, _env, connect in _DEVICES:
        url = getattr(settings, name)
        if not url:
            continue
        try:
            driver = await connect(url)
        except ControllerError as exc:
            hardware.reports.append(DeviceReport(name, url, False, None, {}, f"[{exc.code}] {exc.detail}"))
            continue
        setattr(hardware, name, driver)
        try:
            identity = await driver.identify()
        except ControllerError as exc:
            hardware.reports.append(DeviceReport(name, url, True, None, {}, f"[{exc.code}] {exc.detail}"))
            continue
        described = (
            {key: _plain(value) for key, value in vars(identity).items()}
            if hasattr(identity, "__dict__")
            else {slot: _plain(getattr(identity, slot)) for slot in getattr(identity, "__slots__", ())}
        )
        hardware.reports.append(DeviceReport(name, url, True, bool(identity.is_simulator), described))
    return hardware


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
