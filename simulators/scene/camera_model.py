"""Deterministic camera model: what the sensor sees, as the JPEG frames an MJPEG camera would send.

Pure core: ``next_frame() -> FramePart`` for each frame slot of a stream (the server paces the slots at ``fps``).
The picture is set by ``show(image)`` in process, or by name through the scene registry (``show_scene``); it is
scaled to the sensor size, because a camera's resolution does not change with what it looks at (and OpenCV
scales every frame of a stream to the first frame's size anyway). The JPEG is encoded once per picture.

Physical world: ``cover_lens`` (black frames until ``uncover_lens``), ``freeze`` (the camera hangs: the stream
stays open and sends nothing until ``unfreeze``), ``unplug`` (every open stream drops now; new ones are served).

Fault kinds honoured, each frame slot counting as one request: DROP_RESPONSE (the slot sends nothing; with
``times=0`` the stream is stale from then on), DELAY_RESPONSE (``seconds`` before the frame), DISCONNECT (the
stream carrying the slot closes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from simulators.common.clock import RealClock, SimClock
from simulators.common.faults import FaultKind, FaultPlan
from simulators.scene.camera_scenes import Picture, SceneRegistry, default_scenes, load_image

HONOURED = frozenset({FaultKind.DROP_RESPONSE, FaultKind.DELAY_RESPONSE, FaultKind.DISCONNECT})


@dataclass(frozen=True, slots=True)
class FramePart:
    jpeg: bytes | None = None  # None: nothing goes out in this slot
    delay: float = 0.0  # seconds to hold the frame back
    disconnect: bool = False


class CameraModel:
    def __init__(
        self,
        *,
        clock: SimClock | None = None,
        faults: FaultPlan | None = None,
        scenes: SceneRegistry | None = None,
        width: int = 1280,
        height: int = 960,
        fps: float = 15.0,
        jpeg_quality: int = 92,
        model: str = "ADC-CAMERA-SIMULATOR",
        firmware: str = "1.0",
    ) -> None:
        if min(width, height) <= 0 or fps <= 0 or not 1 <= jpeg_quality <= 100:
            raise ValueError(f"bad camera settings {width}x{height} at {fps} fps, JPEG quality {jpeg_quality}")
        self.clock = clock or RealClock()
        self.faults = faults or FaultPlan()
        self.scenes = scenes or default_scenes()
        self.width, self.height, self.fps = width, height, fps
        self.server_name = f"{model}/{firmware}"  # what the stream's Server header says
        self._quality = jpeg_quality
        self.requests = 0
        self.frames_served = 0
        self.lens_covered = False
        self.frozen = False
        self.unplugs = 0  # a stream opened before the latest unplug closes
        self._black = self._encode(np.zeros((height, width, 3), np.uint8))
        self.image: Picture = np.zeros((height, width, 3), np.uint8)
        self.scene = ""
        self.truth: Any = None
        self._jpeg = self._black
        self.show_scene("pattern", seed=0)

    # --- what the sensor sees -------------------------------------------------------------------------------------

    def show(self, image: Picture, *, scene: str = "image", truth: Any = None) -> None:
        """Put ``image`` (uint8, BGR or grey) in front of the camera, scaled to the sensor."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise ValueError("a scene is a numpy uint8 array")
        if image.ndim == 2:
            image = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"a scene is grey or BGR, not shape {image.shape}")
        if image.shape[:2] != (self.height, self.width):
            image = np.asarray(cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA), np.uint8)
        self.image = np.ascontiguousarray(image)
        self._jpeg = self._encode(self.image)
        self.scene, self.truth = scene, truth

    def show_scene(self, name: str, **params: Any) -> dict[str, Any]:
        image, truth = self.scenes.render(name, width=self.width, height=self.height, **params)
        self.show(np.asarray(image, dtype=np.uint8), scene=name, truth=truth)
        return {"scene": name, "width": self.width, "height": self.height, "truth": truth}

    def show_image(self, path: str) -> dict[str, Any]:
        self.show(load_image(path), scene=f"image {path}")
        return {"scene": self.scene, "width": self.width, "height": self.height}

    # --- the stream (pure core) -----------------------------------------------------------------------------------

    def next_frame(self) -> FramePart:
        self.requests += 1
        delay = 0.0
        for fault in self.faults.due(self.requests, self.clock.monotonic(), HONOURED):
            if fault.kind is FaultKind.DISCONNECT:
                return FramePart(disconnect=True)
            if fault.kind is FaultKind.DROP_RESPONSE:
                return FramePart()
            if fault.kind is FaultKind.DELAY_RESPONSE:
                delay += float(fault.params.get("seconds", 1.0))
        if self.frozen:
            return FramePart()
        self.frames_served += 1
        return FramePart(self._black if self.lens_covered else self._jpeg, delay=delay)

    # --- physical world ---------------------------------------------------------------------------------------------

    def cover_lens(self) -> None:
        self.lens_covered = True

    def uncover_lens(self) -> None:
        self.lens_covered = False

    def freeze(self) -> None:
        self.frozen = True

    def unfreeze(self) -> None:
        self.frozen = False

    def unplug(self) -> None:
        self.unplugs += 1

    def status(self) -> dict[str, Any]:
        return {
            "scene": self.scene,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frames_served": self.frames_served,
            "lens_covered": self.lens_covered,
            "frozen": self.frozen,
            "scenes": self.scenes.names(),
        }

    def actions(self) -> dict[str, Callable[..., Any]]:
        return {
            "show_scene": self.show_scene,
            "show_image": self.show_image,
            "cover_lens": self.cover_lens,
            "uncover_lens": self.uncover_lens,
            "freeze": self.freeze,
            "unfreeze": self.unfreeze,
            "unplug": self.unplug,
            "status": self.status,
        }

    def _encode(self, image: Picture) -> bytes:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        if not ok:
            raise ValueError("the picture could not be encoded as JPEG")
        return encoded.tobytes()
