"""One contract for every Camera: the in-memory fake, and the OpenCV driver reading the scene simulator's MJPEG
stream over a real HTTP connection. A picture shown is the picture captured; a frame is never handed out twice;
nothing new is a timeout; a closed camera says so."""

from __future__ import annotations

import asyncio

import pytest

from controller.errors import CommunicationError
from tests.hardware.camera.rigs import HEIGHT, RIG_KINDS, WIDTH, Rig, open_rig, pattern, pixels, psnr, run


@pytest.mark.parametrize("kind", RIG_KINDS)
def test_identifies_itself_as_a_simulator(kind: str) -> None:
    async def scenario() -> None:
        async with open_rig(kind) as rig:
            identity = await rig.camera.identify()
            assert identity.is_simulator and identity.model

    run(scenario())


@pytest.mark.parametrize("kind", RIG_KINDS)
def test_the_picture_shown_is_the_picture_captured(kind: str) -> None:
    async def scenario() -> None:
        async with open_rig(kind) as rig:
            for seed in (11, 12):
                picture = pattern(seed)
                rig.show(picture)
                frame = await rig.capture_showing(picture)
                assert (frame.width, frame.height, frame.channels) == (WIDTH, HEIGHT, 3)
                captured = pixels(frame)
                if rig.lossless:
                    assert captured.tobytes() == picture.tobytes()
                else:  # through JPEG: close to the picture, and far from any other picture
                    assert psnr(captured, picture) >= 30.0
                    assert psnr(captured, pattern(seed + 100)) < 20.0

    run(scenario())


@pytest.mark.parametrize("kind", RIG_KINDS)
def test_every_capture_is_a_new_frame_with_the_next_sequence_number(kind: str) -> None:
    async def scenario() -> None:
        async with open_rig(kind) as rig:
            sequences = []
            for seed in range(5):
                rig.show(pattern(seed))
                sequences.append((await rig.camera.capture()).sequence)
            first = sequences[0]
            assert sequences == list(range(first, first + 5))

    run(scenario())


@pytest.mark.parametrize("kind", RIG_KINDS)
def test_nothing_new_is_a_timeout_not_an_old_frame(kind: str) -> None:
    async def scenario() -> None:
        async with open_rig(kind, read_timeout=1.0) as rig:
            rig.show(pattern(1))
            before = await rig.camera.capture()
            rig.stall()
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(CommunicationError) as caught:
                await rig.camera.capture(timeout=0.5)
            waited = loop.time() - started
            assert caught.value.code == "comm.timeout" and caught.value.retryable
            assert waited < 1.5  # never a hang; the fake knows at once that nothing is queued
            if rig.kind != "fake":
                assert waited >= 0.45  # a live stream is given the whole timeout
            assert before.sequence >= 1

    run(scenario())


@pytest.mark.parametrize("kind", RIG_KINDS)
def test_a_closed_camera_is_disconnected(kind: str) -> None:
    async def scenario(rig: Rig) -> None:
        await rig.camera.close()
        with pytest.raises(CommunicationError) as caught:
            await rig.camera.capture(timeout=0.5)
        assert caught.value.code == "comm.disconnected"

    async def main() -> None:
        async with open_rig(kind) as rig:
            await scenario(rig)

    run(main())
