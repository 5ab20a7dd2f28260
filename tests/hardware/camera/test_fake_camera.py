"""The camera interface's frame rules and its fake."""

from __future__ import annotations

import asyncio

import pytest

from controller.errors import CommunicationError
from controller.hardware.camera.fake import FakeCamera
from controller.hardware.camera.interface import Camera, Frame


def test_frames_come_in_order_with_rising_sequence_numbers() -> None:
    async def scenario() -> list[Frame]:
        camera: Camera = FakeCamera()
        assert isinstance(camera, FakeCamera)
        camera.show(2, 1, 1, b"\x00\xff")
        camera.show(1, 1, 3, b"\x01\x02\x03")
        frames = [await camera.capture(), await camera.capture()]
        assert (await camera.identify()).is_simulator
        return frames

    first, second = asyncio.run(scenario())
    assert (first.width, first.data, first.sequence) == (2, b"\x00\xff", 1)
    assert (second.channels, second.sequence) == (3, 2)


def test_no_frame_is_a_timeout_and_a_closed_camera_is_disconnected() -> None:
    async def scenario() -> None:
        camera = FakeCamera()
        with pytest.raises(CommunicationError) as caught:
            await camera.capture(timeout=0.1)
        assert caught.value.code == "comm.timeout"
        await camera.close()
        with pytest.raises(CommunicationError) as caught:
            await camera.capture()
        assert caught.value.code == "comm.disconnected"

    asyncio.run(scenario())


@pytest.mark.parametrize(("width", "height", "channels", "size"), [(0, 1, 1, 0), (2, 2, 2, 8), (2, 2, 1, 3)])
def test_inconsistent_frames_are_refused(width: int, height: int, channels: int, size: int) -> None:
    with pytest.raises(ValueError, match="frame"):
        Frame(width, height, channels, bytes(size), 1)
