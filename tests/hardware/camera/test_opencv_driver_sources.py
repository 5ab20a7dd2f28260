"""Camera URLs and recordings: which source a URL names, what a bad one is refused with, and a recording (image
sequence or video file) read frame by frame, in order, to its end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import pytest

from controller.errors import CommunicationError, ConfigurationError
from controller.hardware.camera.opencv_driver import OpenCvCamera
from controller.hardware.camera.sources import SourceKind, parse_camera_url
from tests.hardware.camera.rigs import HEIGHT, WIDTH, pattern, pixels, psnr, run


@pytest.mark.parametrize(
    ("url", "kind", "target"),
    [
        ("0", SourceKind.DEVICE, 0),
        ("2", SourceKind.DEVICE, 2),
        ("/dev/video1", SourceKind.DEVICE, "/dev/video1"),
        ("rtsp://10.0.0.7:554/stream1", SourceKind.NETWORK, "rtsp://10.0.0.7:554/stream1"),
        ("http://127.0.0.1:8080/stream.mjpg", SourceKind.NETWORK, "http://127.0.0.1:8080/stream.mjpg"),
    ],
)
def test_a_url_names_its_source(url: str, kind: SourceKind, target: int | str) -> None:
    source = parse_camera_url(url)
    assert (source.kind, source.target) == (kind, target)
    assert source.live


def test_a_password_in_the_url_is_opened_but_never_shown() -> None:
    source = parse_camera_url("rtsp://admin:s3cret@10.0.0.7/live")
    assert source.target == "rtsp://admin:s3cret@10.0.0.7/live"
    assert "s3cret" not in source.url and source.url == "rtsp://admin:***@10.0.0.7/live"


def test_files_and_image_sequences_are_recordings(tmp_path: Path) -> None:
    still = tmp_path / "tray.png"
    cv2.imwrite(str(still), pattern(1))
    for url in (str(still), still.as_uri(), str(tmp_path / "frame_%03d.png")):
        source = parse_camera_url(url)
        assert source.kind is SourceKind.FILE and not source.live


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "empty"),
        ("ftp://cam/x", "expected a device index"),
        ("http:///stream.mjpg", "no host"),
        ("/nonexistent/video.mp4", "no such file"),
        ("/nonexistent/frames_%04d.png", "no folder"),
    ],
)
def test_a_bad_url_is_a_configuration_error_that_says_why(url: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_camera_url(url)
    assert caught.value.code == "comm.bad_endpoint" and why in caught.value.detail


def test_an_image_sequence_is_read_in_order_exactly_then_ends(tmp_path: Path) -> None:
    pictures = [pattern(seed) for seed in (21, 22, 23)]
    for index, picture in enumerate(pictures):
        cv2.imwrite(str(tmp_path / f"frame_{index:03d}.png"), picture)

    async def scenario() -> None:
        camera = await OpenCvCamera.connect(str(tmp_path / "frame_%03d.png"))
        try:
            identity = await camera.identify()
            assert identity.is_simulator and "recording" in identity.model  # replayed frames are never real
            frames = [await camera.capture() for _ in pictures]
            assert [pixels(f).tobytes() for f in frames] == [p.tobytes() for p in pictures]
            assert [f.sequence for f in frames] == [1, 2, 3]
            for _ in range(2):  # the end stays the end
                with pytest.raises(CommunicationError) as caught:
                    await camera.capture(timeout=1.0)
                assert caught.value.code == "camera.end_of_stream" and "after 3" in caught.value.detail
        finally:
            await camera.close()

    run(scenario())


def test_a_recording_drops_no_frame_however_slowly_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "scan.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (WIDTH, HEIGHT))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG/AVI")
    pictures = [pattern(seed) for seed in range(30, 36)]
    for picture in pictures:
        writer.write(picture)
    writer.release()

    async def scenario() -> None:
        camera = await OpenCvCamera.connect(str(path))
        try:
            for picture in pictures:
                await asyncio.sleep(0.05)  # a live source would drop frames meanwhile; a recording must not
                frame = await camera.capture()
                assert psnr(pixels(frame), picture) > 30
            with pytest.raises(CommunicationError) as caught:
                await camera.capture()
            assert caught.value.code == "camera.end_of_stream"
        finally:
            await camera.close()

    run(scenario())


def test_a_file_that_is_not_a_picture_is_refused_at_connect(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")

    async def scenario() -> None:
        with pytest.raises(ConfigurationError) as caught:
            await OpenCvCamera.connect(str(notes))
        assert caught.value.code == "comm.bad_endpoint" and "cannot open" in caught.value.detail

    run(scenario())


def test_a_capture_device_that_is_not_there_is_disconnected() -> None:
    index = next(i for i in range(60, 64) if not Path(f"/dev/video{i}").exists())

    async def scenario() -> None:
        with pytest.raises(CommunicationError) as caught:
            await OpenCvCamera.connect(str(index), timeout=2.0)
        assert caught.value.code == "comm.disconnected"

    run(scenario())
