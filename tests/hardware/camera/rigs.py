"""Rigs for the camera tests: the fake, or the OpenCV driver reading the scene simulator's MJPEG stream over HTTP,
each with the same handles on the world in front of the lens."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from controller.hardware.camera.fake import FakeCamera
from controller.hardware.camera.interface import Camera, Frame
from controller.hardware.camera.opencv_driver import OpenCvCamera
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.scene import camera as camera_sim
from simulators.scene.camera_model import CameraModel
from simulators.scene.camera_scenes import seeded_pattern

RIG_KINDS = ["fake", "sim-http"]
WIDTH, HEIGHT = 320, 240  # small frames keep the JPEG work of every test low on a shared machine
T = TypeVar("T")
Picture = npt.NDArray[np.uint8]


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def pattern(seed: int) -> Picture:
    return seeded_pattern(seed, width=WIDTH, height=HEIGHT)[0]


def pixels(frame: Frame) -> Picture:
    shape = (frame.height, frame.width) if frame.channels == 1 else (frame.height, frame.width, frame.channels)
    return np.frombuffer(frame.data, np.uint8).reshape(shape)


def psnr(a: Picture, b: Picture) -> float:
    """Peak signal-to-noise ratio in dB: a JPEG at quality 92 of these patterns scores about 38, two different
    patterns about 10; identical pictures are infinite."""
    return float(cv2.PSNR(a, b))


def camera_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("camera ")]


@dataclass
class Rig:
    kind: str
    camera: Camera
    show: Callable[[Picture], None]  # put a picture in front of the lens
    stall: Callable[[], None]  # from now on nothing new reaches the camera
    model: CameraModel | None = None
    faults: FaultPlan | None = None
    url: str = ""

    @property
    def lossless(self) -> bool:
        return self.kind == "fake"

    async def capture_showing(self, picture: Picture, *, within: float = 3.0, min_psnr: float = 30.0) -> Frame:
        """The first frame that shows ``picture``: on a live stream, frames already on the wire when the picture
        changed still show the old one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            frame = await self.camera.capture(timeout=max(0.1, deadline - loop.time()))
            if frame.width == picture.shape[1] and psnr(pixels(frame), picture) >= min_psnr:
                return frame
            if loop.time() >= deadline:
                raise AssertionError(f"no frame showed the picture within {within} s")


@asynccontextmanager
async def open_rig(kind: str, **driver_options: Any) -> AsyncIterator[Rig]:
    if kind == "fake":
        fake = FakeCamera()

        def show_fake(picture: Picture) -> None:
            fake.show(picture.shape[1], picture.shape[0], 3, picture.tobytes())

        yield Rig(kind, fake, show_fake, lambda: None)
        return
    async with simulated_camera() as (running, faults):
        model: CameraModel = running.model
        driver = await OpenCvCamera.connect(running.url, **driver_options)

        def stall() -> None:  # the camera hangs: its stream stays open and sends nothing
            faults.add(Fault(FaultKind.DROP_RESPONSE, at_request=model.requests + 1, times=0))

        try:
            yield Rig(kind, driver, model.show, stall, model, faults, running.url)
        finally:
            await driver.close()


@asynccontextmanager
async def simulated_camera(**options: Any) -> AsyncIterator[tuple[Any, FaultPlan]]:
    faults = FaultPlan()
    settings: dict[str, Any] = {"width": WIDTH, "height": HEIGHT, "fps": 30.0, **options}
    running = await camera_sim.start(control=ControlSurface(), faults=faults, **settings)
    try:
        yield running, faults
    finally:
        await running.close()
