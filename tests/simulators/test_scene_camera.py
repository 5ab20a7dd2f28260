"""Scene camera simulator, pure parts: the model (what the sensor sees, as JPEG frames; faults and physical
actions) and the scene registry (renderers by name, with ground truth)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from simulators.common.clock import ManualClock
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.scene.camera_model import CameraModel, FramePart
from simulators.scene.camera_scenes import default_scenes, seeded_pattern, split_rendering

W, H = 160, 120


def decoded(part: FramePart) -> npt.NDArray[np.uint8]:
    assert part.jpeg is not None and part.jpeg.startswith(b"\xff\xd8") and part.jpeg.endswith(b"\xff\xd9")
    image = cv2.imdecode(np.frombuffer(part.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, np.uint8)


def small_model(**options: Any) -> CameraModel:
    return CameraModel(width=W, height=H, **options)


def test_every_frame_is_a_jpeg_of_what_is_shown_at_sensor_size() -> None:
    model = small_model()
    assert model.scene == "pattern"  # something to look at from the start
    picture = seeded_pattern(9, width=W, height=H)[0]
    model.show(picture, truth={"seed": 9})
    frame = decoded(model.next_frame())
    assert frame.shape == (H, W, 3) and cv2.PSNR(frame, picture) > 30
    assert model.truth == {"seed": 9} and model.frames_served == 1


def test_a_picture_of_another_size_or_grey_is_fitted_to_the_sensor() -> None:
    model = small_model()
    model.show(np.full((480, 640), 200, np.uint8))  # grey, four times the sensor
    frame = decoded(model.next_frame())
    assert frame.shape == (H, W, 3) and abs(float(frame.mean()) - 200) < 2


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros(4, np.uint8)])
def test_what_is_not_a_picture_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="scene is"):
        small_model().show(bad)


def test_physical_actions_cover_freeze_and_unplug() -> None:
    model = small_model()
    model.cover_lens()
    assert int(decoded(model.next_frame()).max()) == 0
    model.uncover_lens()
    model.freeze()
    assert model.next_frame() == FramePart()  # nothing goes out while the camera hangs
    model.unfreeze()
    assert model.next_frame().jpeg is not None
    before = model.unplugs
    model.unplug()
    assert model.unplugs == before + 1
    status = model.status()
    assert status["frames_served"] == 2 and status["frozen"] is False and "pattern" in status["scenes"]


def test_fault_plan_drop_delay_and_disconnect_by_frame_slot_and_by_time() -> None:
    clock = ManualClock()
    plan = FaultPlan(
        [
            Fault(FaultKind.DROP_RESPONSE, at_request=2),
            Fault(FaultKind.DELAY_RESPONSE, at_request=3, params={"seconds": 0.25}),
            Fault(FaultKind.DISCONNECT, at_time=10.0),
        ]
    )
    model = small_model(clock=clock, faults=plan)
    assert model.next_frame().jpeg is not None
    assert model.next_frame() == FramePart()
    delayed = model.next_frame()
    assert delayed.jpeg is not None and delayed.delay == 0.25
    assert model.next_frame().delay == 0.0
    clock.advance(10.0)
    assert model.next_frame() == FramePart(disconnect=True)
    assert model.requests == 5 and model.frames_served == 3


def test_a_stale_stream_is_a_drop_fault_from_a_slot_on() -> None:
    model = small_model(faults=FaultPlan([Fault(FaultKind.DROP_RESPONSE, at_request=3, times=0)]))
    sent = [model.next_frame().jpeg is not None for _ in range(6)]
    assert sent == [True, True, False, False, False, False]


def test_bad_camera_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="bad camera settings"):
        CameraModel(width=0)
    with pytest.raises(ValueError, match="bad camera settings"):
        CameraModel(jpeg_quality=101)


# --- scenes --------------------------------------------------------------------------------------------------------


def test_built_in_scenes_by_name_with_their_truth() -> None:
    model = small_model()
    shown = model.show_scene("pattern", seed=4)
    assert shown["truth"]["seed"] == 4 and model.scene == "pattern"
    assert not np.array_equal(model.image, seeded_pattern(5, width=W, height=H)[0])
    assert np.array_equal(model.image, seeded_pattern(4, width=W, height=H)[0])  # rendered at the sensor size
    model.show_scene("solid", red=200, green=10)
    assert model.image[0, 0].tolist() == [0, 10, 200]
    with pytest.raises(ValueError, match=r"0\.\.255"):
        model.show_scene("solid", red=300)


def test_an_image_file_is_shown_and_an_unreadable_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "package.png"
    cv2.imwrite(str(path), np.full((H, W, 3), (10, 120, 240), np.uint8))
    model = small_model()
    model.show_image(str(path))
    assert model.image[5, 5].tolist() == [10, 120, 240]
    with pytest.raises(ValueError, match="cannot read"):
        model.show_scene("image", path=str(tmp_path / "missing.png"))


def test_unknown_scene_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="pattern"):
        small_model().show_scene("hologram")


class Rendered:
    def __init__(self, image: npt.NDArray[np.uint8], truth: Any) -> None:
        self.image, self.truth = image, truth


@dataclass(frozen=True)
class Counted:  # a scene whose other fields are its truth
    image: npt.NDArray[np.uint8]
    count: int
    centers: tuple[tuple[float, float], ...]


def test_any_renderer_plugs_in_and_gets_the_sensor_size() -> None:
    calls: list[dict[str, Any]] = []

    def tray(pills: int, seed: int = 0, width: int = 1, height: int = 1) -> Rendered:
        calls.append({"pills": pills, "seed": seed, "width": width, "height": height})
        return Rendered(np.full((height, width, 3), 90, np.uint8), {"count": pills})

    registry = default_scenes()
    registry.register("tray", tray)
    model = small_model(scenes=registry)
    shown = model.show_scene("tray", pills=12, seed=3)
    assert calls == [{"pills": 12, "seed": 3, "width": W, "height": H}]
    assert shown["truth"] == {"count": 12} and model.truth == {"count": 12} and model.image.shape == (H, W, 3)


def test_renderings_come_as_a_picture_a_pair_or_an_object() -> None:
    picture = np.zeros((2, 2, 3), np.uint8)
    assert split_rendering(picture) == (picture, None)
    assert split_rendering((picture, "truth"))[1] == "truth"
    assert split_rendering(Rendered(picture, 7))[1] == 7
    assert split_rendering(Counted(picture, 4, ((1.0, 2.0),)))[1] == {"count": 4, "centers": ((1.0, 2.0),)}
    with pytest.raises(TypeError, match="not a picture"):
        split_rendering("a picture")


def test_a_scene_module_that_is_not_there_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "simulators.scene.trays", None)  # as if the module did not exist
    with pytest.raises(KeyError, match=r"needs simulators\.scene\.trays"):
        small_model().show_scene("tray", count=3)


def test_package_scene_hook_shows_a_rendered_package_with_its_truth() -> None:
    pytest.importorskip("simulators.scene.packages", reason="the package renderer is not in this checkout")
    model = CameraModel()  # the renderers draw at 1280 x 960, the default sensor
    shown = model.show_scene("package", seed=3)
    truth = shown["truth"]
    assert len(truth.ndc10) == 10 and model.scene == "package"
    assert model.image.shape == (960, 1280, 3) and int(model.image.std()) > 5


def test_tray_scene_hook_shows_a_tray_with_that_many_pills() -> None:
    pytest.importorskip("simulators.scene.trays", reason="the tray renderer is not in this checkout")
    model = CameraModel()
    shown = model.show_scene("tray", count=17, seed=2)
    assert shown["truth"]["count"] == 17 and len(shown["truth"]["centers"]) == 17
