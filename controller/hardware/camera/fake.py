"""An in-memory camera that hands out queued frames, for unit tests of code that captures."""

from __future__ import annotations

from collections import deque

from controller.errors import CommunicationError
from controller.hardware.camera.interface import CameraIdentity, Frame


class FakeCamera:
    def __init__(self, model: str = "fake-camera") -> None:
        self._frames: deque[tuple[int, int, int, bytes]] = deque()
        self._sequence = 0
        self._model = model
        self.closed = False

    def show(self, width: int, height: int, channels: int, data: bytes) -> None:
        """Queue what the camera will see at the next capture."""
        self._frames.append((width, height, channels, data))

    async def identify(self) -> CameraIdentity:
        return CameraIdentity(model=self._model, is_simulator=True)

    async def capture(self, *, timeout: float = 2.0) -> Frame:
        if self.closed:
            raise CommunicationError("comm.disconnected", "camera is closed")
        if not self._frames:
            raise CommunicationError("comm.timeout", f"no frame within {timeout} s")
        width, height, channels, data = self._frames.popleft()
        self._sequence += 1
        return Frame(width, height, channels, data, self._sequence)

    async def close(self) -> None:
        self.closed = True
