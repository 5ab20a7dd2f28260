"""What the controller needs from a camera: one frame on request, and who the camera says it is.

The OpenCV ``VideoCapture`` driver (device index, file, RTSP URL) and the scene simulator arrive with the vision
work; frames are plain bytes here so this layer does not depend on numpy or OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Frame:
    width: int
    height: int
    channels: int  # 1 = grey, 3 = BGR
    data: bytes  # row-major, 8 bits per channel: len == width * height * channels
    sequence: int  # increases by one per capture: a repeated number means a stale frame

    def __post_init__(self) -> None:
        if min(self.width, self.height) <= 0 or self.channels not in (1, 3):
            raise ValueError(f"bad frame geometry {self.width}x{self.height}x{self.channels}")
        if len(self.data) != self.width * self.height * self.channels:
            raise ValueError(
                f"frame holds {len(self.data)} bytes, {self.width}x{self.height}x{self.channels} needs "
                f"{self.width * self.height * self.channels}"
            )


@dataclass(frozen=True, slots=True)
class CameraIdentity:
    model: str
    is_simulator: bool


class Camera(Protocol):
    async def identify(self) -> CameraIdentity: ...

    async def capture(self, *, timeout: float = 2.0) -> Frame:
        """A new frame (never one handed out before); ``comm.timeout`` if none arrives in time."""
        ...

    async def close(self) -> None: ...
