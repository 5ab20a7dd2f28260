"""Where a package's barcode comes from: the hand scanner over its serial line, or a frame from the cabinet's
camera decoded by ``controller.vision``. Both end as the same ``PackageReading``, so restock and pull give the
same verdict whichever was used.

Responsible for: picking the device a command asked for, refusing when it is not connected, bounding the read
(the scanner's ``next_scan`` and the camera's ``capture`` both time out with ``comm.timeout``), and running the
decoder off the event loop (it can take a few hundred milliseconds on a spoiled frame).
Not responsible for: judging the reading against a pocket (``package_scan.check_package``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from controller.engine.package_check import PackageReading, read_package
from controller.errors import CommunicationError, ConfigurationError, ControllerError
from controller.hardware.camera.interface import Camera
from controller.hardware.scanner.interface import Scanner
from controller.vision.decode import decode
from controller.vision.images import from_frame_bytes
from firmware_protocols.scanner import Scan


@dataclass(frozen=True, slots=True)
class PackageRead:
    reading: PackageReading
    source: dict[str, Any]  # what read it, for the ledger entry and the response


class PackageReader:
    def __init__(self, scanner: Scanner | None, camera: Camera | None) -> None:
        self.scanner = scanner
        self.camera = camera

    async def read(self, *, by_camera: bool, timeout_s: float) -> PackageRead:
        """One package's reading; raises ``engine.device_missing`` or the device's error."""
        if by_camera:
            if self.camera is None:
                raise device_missing("camera")
            return await self._from_camera(self.camera, timeout_s)
        if self.scanner is None:
            raise device_missing("scanner")
        scan = await read_scan(self.scanner, timeout_s)
        return PackageRead(read_package(scan), {"device": "scanner", "symbology": scan.symbology_id})

    async def _from_camera(self, camera: Camera, timeout_s: float) -> PackageRead:
        frame = await camera.capture(timeout=timeout_s)
        image = from_frame_bytes(frame.data, frame.width, frame.height, frame.channels)
        result = await asyncio.to_thread(decode, image)
        source = {"device": "camera", "frame": frame.sequence, "passes": list(result.passes)}
        return PackageRead(PackageReading.from_symbols(result.symbols), source)


async def read_scan(scanner: Scanner, timeout_s: float) -> Scan:
    """The next scan, bounded (the driver raises ``comm.timeout``; this is the belt to its braces)."""
    try:
        async with asyncio.timeout(timeout_s + 1.0):
            return await scanner.next_scan(timeout_s)
    except TimeoutError as exc:
        raise CommunicationError("comm.timeout", f"no scan within {timeout_s} s") from exc


def device_missing(what: str) -> ControllerError:
    return ConfigurationError("engine.device_missing", f"this cabinet has no {what} connected", device=what)
