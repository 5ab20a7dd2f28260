"""The OpenCV driver against the scene simulator over HTTP MJPEG: what a failing stream looks like to the caller.
Every failure is a typed error within its timeout, never a hang and never an old frame."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from controller.errors import CommunicationError, DeviceFaultError
from controller.hardware.camera.opencv_driver import OpenCvCamera
from simulators.common.faults import Fault, FaultKind
from tests.hardware.camera.rigs import camera_threads, open_rig, pattern, pixels, psnr, run, simulated_camera


async def expect_error(camera: OpenCvCamera, code: str, *, timeout: float = 2.0) -> float:
    """Capture, expecting ``code``; returns how long it took."""
    started = time.monotonic()
    with pytest.raises((CommunicationError, DeviceFaultError)) as caught:
        await camera.capture(timeout=timeout)
    assert caught.value.code == code, caught.value
    assert "camera http://127.0.0.1:" in caught.value.detail
    return time.monotonic() - started


def test_a_dropped_connection_is_disconnected_and_the_next_capture_reconnects() -> None:
    async def scenario() -> None:
        async with open_rig("sim-http") as rig:
            assert rig.model is not None and rig.faults is not None
            first = await rig.camera.capture()
            rig.faults.add(Fault(FaultKind.DISCONNECT, at_request=rig.model.requests + 1))
            assert await expect_error(rig.camera, "comm.disconnected") < 1.0  # noticed at once, not at a timeout
            picture = pattern(7)
            rig.show(picture)
            again = await rig.capture_showing(picture)
            assert again.sequence == first.sequence + 1  # the failed capture used no sequence number

    run(scenario())


def test_unplugging_the_camera_through_the_control_surface_drops_the_stream() -> None:
    async def scenario() -> None:
        async with open_rig("sim-http") as rig:
            assert rig.model is not None
            await rig.camera.capture()
            rig.model.actions()["unplug"]()
            await expect_error(rig.camera, "comm.disconnected")
            assert (await rig.camera.capture()).sequence == 2

    run(scenario())


def test_a_stream_stalled_past_the_read_timeout_counts_as_ended_and_recovers_when_frames_flow() -> None:
    async def scenario() -> None:
        async with open_rig("sim-http", read_timeout=1.0) as rig:
            assert rig.model is not None
            await rig.camera.capture()
            rig.model.freeze()
            await expect_error(rig.camera, "comm.timeout", timeout=0.3)
            # FFmpeg gives up on the silent stream after its read timeout: the stream is over, not just late.
            waited = await expect_error(rig.camera, "comm.disconnected", timeout=3.0)
            assert waited < 1.5
            rig.model.unfreeze()
            picture = pattern(3)
            rig.show(picture)
            await rig.capture_showing(picture)

    run(scenario())


def test_a_covered_lens_is_a_blank_frame_fault_until_uncovered() -> None:
    async def scenario() -> None:
        async with open_rig("sim-http") as rig:
            assert rig.model is not None
            rig.model.cover_lens()
            # Frames on the wire before the cover still show the scene; within a few frames the picture is black.
            with pytest.raises(DeviceFaultError) as caught:
                for _ in range(10):
                    await rig.camera.capture()
            assert caught.value.code == "camera.blank_frame" and caught.value.retryable
            rig.model.uncover_lens()
            picture = pattern(4)
            rig.show(picture)
            await rig.capture_showing(picture)

    run(scenario())


def test_a_dark_but_real_picture_is_not_refused_and_the_check_can_be_turned_off() -> None:
    async def scenario() -> None:
        dark = (pattern(5) // 12).astype("uint8")  # brightest pixel about 21: dim, not black
        async with open_rig("sim-http") as rig:
            rig.show(dark)
            await rig.capture_showing(dark)
        async with open_rig("sim-http", blank_level=None) as rig:
            assert rig.model is not None
            rig.model.cover_lens()
            frames = [await rig.camera.capture() for _ in range(10)]
            assert int(pixels(frames[-1]).max()) == 0

    run(scenario())


def test_a_simulator_that_went_away_is_disconnected_at_once() -> None:
    async def scenario() -> None:
        async with simulated_camera() as (running, _faults):
            camera = await OpenCvCamera.connect(running.url)
            try:
                await camera.capture()
                await running.close()
                for _ in range(3):  # the broken stream, then each reopening attempt
                    assert await expect_error(camera, "comm.disconnected") < 1.0
            finally:
                await camera.close()

    run(scenario())


def test_connecting_to_nothing_is_disconnected_and_to_a_silent_server_is_a_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # accepts, reads the request, never answers
        finally:
            writer.close()

    async def scenario() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        with pytest.raises(CommunicationError) as caught:
            await OpenCvCamera.connect(f"http://127.0.0.1:{closed_port}/stream.mjpg", timeout=1.0)
        assert caught.value.code == "comm.disconnected"
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        started = time.monotonic()
        try:
            with pytest.raises(CommunicationError) as caught:
                await OpenCvCamera.connect(f"http://127.0.0.1:{port}/stream.mjpg", timeout=1.0)
        finally:
            server.close()
            await server.wait_closed()
        assert caught.value.code == "comm.timeout"
        assert time.monotonic() - started < 3.0

    run(scenario())


def test_a_camera_whose_server_does_not_say_simulator_reports_as_real() -> None:
    async def scenario() -> None:
        async with simulated_camera(model="ACME-IPCAM") as (running, _faults):
            camera = await OpenCvCamera.connect(running.url)
            try:
                identity = await camera.identify()
                assert identity.model == "ACME-IPCAM/1.0" and identity.is_simulator is False
                frame = await camera.capture()
                assert psnr(pixels(frame), running.model.image) > 30
            finally:
                await camera.close()

    run(scenario())


def test_close_releases_the_stream_promptly_and_leaves_no_capture_thread() -> None:
    async def scenario() -> None:
        async with simulated_camera() as (running, _faults):
            camera = await OpenCvCamera.connect(running.url)
            await camera.capture()
            started = time.monotonic()
            await camera.close()
            assert time.monotonic() - started < 0.5
            assert camera_threads() == []

    run(scenario())
