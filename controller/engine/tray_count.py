"""The tray camera as the independent second count of a schedule II fill: the filled tablets are spread on the
counting tray, one frame is captured and counted by ``controller.vision.pills``.

A count the vision pipeline is not sure of (touching tablets it cannot separate) is never used: it is refused
with ``vision.count_uncertain`` so the pharmacist spreads the tablets and counts again; a frame that fails the
quality gate (blur, exposure, no tray) is refused with its own code. Either way the fill stays waiting for its
second count.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from controller.errors import VerificationError
from controller.hardware.camera.interface import Camera
from controller.vision.images import from_frame_bytes
from controller.vision.pills import count_pills


@dataclass
class TrayImageCount:
    camera: Camera
    name: str = "tray_image"

    async def tally(self, expected: int, timeout_s: float) -> int:
        frame = await self.camera.capture(timeout=min(timeout_s, 5.0))
        image = from_frame_bytes(frame.data, frame.width, frame.height, frame.channels)
        result = await asyncio.to_thread(count_pills, image)
        if result.uncertain:
            raise VerificationError(
                "vision.count_uncertain",
                "the tray count is not certain (" + "; ".join(result.reasons) + "): spread the tablets and count again",
                frame=frame.sequence,
            )
        return result.count
