"""Simulated network camera: MJPEG over HTTP on 127.0.0.1, showing whatever scene it is told to.

``start(control=..., faults=..., width=1280, height=960, fps=15, jpeg_quality=92, scenes=...)`` ->
RunningSimulator with ``ADC_CAMERA`` = ``http://127.0.0.1:PORT/stream.mjpg``, the URL the controller's OpenCV
driver opens. In process, ``running.model.show(numpy_image)`` puts a picture in front of it. Control actions:
``camera.show_scene(name, **params)`` (``pattern`` with ``seed``, ``solid`` with ``blue``/``green``/``red``,
``image`` with ``path``, and whatever scene modules register: see ``camera_scenes``), ``camera.show_image(path)``,
``camera.cover_lens()`` / ``uncover_lens()``, ``camera.freeze()`` / ``unfreeze()``, ``camera.unplug()``,
``camera.status()``.
"""

from __future__ import annotations

from typing import Any

from simulators.common.clock import SimClock
from simulators.common.control import ControlSurface
from simulators.common.faults import FaultPlan
from simulators.common.running import RunningSimulator
from simulators.scene.camera_model import CameraModel, FramePart
from simulators.scene.camera_scenes import SceneRegistry, default_scenes
from simulators.scene.camera_server import SNAPSHOT_PATH, STREAM_PATH, CameraServer

NAME, ENV_VAR = "camera", "ADC_CAMERA"


async def start(
    *,
    control: ControlSurface,
    clock: SimClock | None = None,
    faults: FaultPlan | None = None,
    scenes: SceneRegistry | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    **device_options: Any,
) -> RunningSimulator:
    model = CameraModel(clock=clock, faults=faults, scenes=scenes or default_scenes(), **device_options)
    server = CameraServer(model)
    bound = await server.open(host, port)
    control.register(NAME, model.actions())
    url = f"http://{host}:{bound}{STREAM_PATH}"
    return RunningSimulator(name=NAME, env_var=ENV_VAR, url=url, model=model, close=server.close)


__all__ = [
    "ENV_VAR",
    "NAME",
    "SNAPSHOT_PATH",
    "STREAM_PATH",
    "CameraModel",
    "CameraServer",
    "FramePart",
    "SceneRegistry",
    "start",
]
