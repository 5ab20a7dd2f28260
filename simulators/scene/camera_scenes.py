"""What the simulated camera can be told to show by name: a registry of scene renderers.

A renderer is any callable taking keyword parameters and returning the picture (a numpy ``uint8`` array, BGR or
grey), a pair ``(picture, truth)``, or an object with an ``image`` attribute (its ``truth`` attribute is the
truth, or else its other dataclass fields are). ``truth`` is whatever the scene knows for certain (the barcode
text, the pill centres) and goes back to whoever asked for the scene. A renderer with ``width`` and ``height``
parameters is given the camera's sensor size unless the request names one, so its ground-truth coordinates are
the camera's.

Built in: ``pattern`` (seeded shapes and text, for tests of the video path itself), ``solid`` (one colour),
``image`` (a picture file), and two hooks into the other scene modules, imported only when asked for so the
camera runs without them: ``package`` (``simulators.scene.packages``: a drug package with its barcode, by seed)
and ``tray`` (``simulators.scene.trays``: a counting tray with ``count`` pills, by seed). Anything else plugs in
with ``register``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Picture = npt.NDArray[np.uint8]
Renderer = Callable[..., Any]


class SceneRegistry:
    def __init__(self) -> None:
        self._renderers: dict[str, Renderer] = {}

    def register(self, name: str, renderer: Renderer) -> None:
        self._renderers[name] = renderer

    def names(self) -> list[str]:
        return sorted(self._renderers)

    def render(self, name: str, *, width: int, height: int, **params: Any) -> tuple[Picture, Any]:
        renderer = self._renderers.get(name)
        if renderer is None:
            raise KeyError(f"unknown scene {name!r}; known: {', '.join(self.names())}")
        accepted = inspect.signature(renderer).parameters
        for key, value in (("width", width), ("height", height)):
            if key in accepted:
                params.setdefault(key, value)
        return split_rendering(renderer(**params))


def split_rendering(result: Any) -> tuple[Picture, Any]:
    if isinstance(result, np.ndarray):
        return result, None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], np.ndarray):
        return result[0], result[1]
    image = getattr(result, "image", None)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"a scene renderer returned {type(result).__name__}, not a picture")
    if hasattr(result, "truth"):
        return image, result.truth
    if dataclasses.is_dataclass(result):
        return image, {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "image"}
    return image, None


def default_scenes() -> SceneRegistry:
    registry = SceneRegistry()
    registry.register("pattern", seeded_pattern)
    registry.register("solid", solid)
    registry.register("image", load_image)
    registry.register("package", package_scene)
    registry.register("tray", tray_scene)
    return registry


# --- built-in scenes --------------------------------------------------------------------------------------------


def seeded_pattern(seed: int = 0, width: int = 1280, height: int = 960) -> tuple[Picture, dict[str, Any]]:
    """Seeded rectangles and discs on a gradient, with the seed written in: smooth areas and sharp edges, so a
    JPEG round trip is close but not exact, and two seeds are never alike."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, width, dtype=np.float32)
    picture = np.empty((height, width, 3), np.uint8)
    picture[:] = np.stack([ramp, ramp[::-1], np.full(width, 120, np.float32)], axis=-1).astype(np.uint8)
    shapes = int(rng.integers(6, 12))
    for _ in range(shapes):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(min(width, height) // 20, min(width, height) // 4))
        if rng.random() < 0.5:
            cv2.rectangle(picture, (x, y), (x + size, y + size // 2), colour, thickness=-1)
        else:
            cv2.circle(picture, (x, y), size // 2, colour, thickness=-1)
    scale = max(1.0, height / 240)
    cv2.putText(picture, f"seed {seed}", (20, int(40 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2)
    return picture, {"seed": seed, "shapes": shapes}


def solid(blue: int = 0, green: int = 0, red: int = 0, width: int = 1280, height: int = 960) -> Picture:
    for channel in (blue, green, red):
        if not 0 <= channel <= 255:
            raise ValueError(f"colour channels are 0..255, not {channel}")
    picture = np.empty((height, width, 3), np.uint8)
    picture[:] = (blue, green, red)
    return picture


def load_image(path: str) -> Picture:
    picture = cv2.imread(path, cv2.IMREAD_COLOR)
    if picture is None:
        raise ValueError(f"cannot read an image from {path!r}")
    return np.asarray(picture, dtype=np.uint8)


# --- hooks into the other scene modules -------------------------------------------------------------------------


def package_scene(seed: int = 0, unreadable: str | None = None) -> Any:
    """``simulators.scene.packages.random_package_scene``: a drug package, readable unless ``unreadable`` names
    how to spoil it."""
    packages = _scene_module("simulators.scene.packages", "package")
    spoiled = packages.Unreadable(unreadable) if unreadable is not None else None
    return packages.random_package_scene(seed, unreadable=spoiled)


def tray_scene(count: int, seed: int = 0, **options: Any) -> Any:
    """``simulators.scene.trays.render_tray``: a counting tray with ``count`` pills; ``options`` as ``TrayOptions``."""
    trays = _scene_module("simulators.scene.trays", "tray")
    return trays.render_tray(trays.TrayOptions(count=count, seed=seed, **options))


def _scene_module(module_name: str, scene: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise KeyError(f"scene {scene!r} needs {module_name}, which is not installed here") from exc
