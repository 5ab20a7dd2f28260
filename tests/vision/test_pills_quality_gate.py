"""The image-quality gate: frames that cannot be counted from are refused with a code that says why."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from controller.errors import CATALOGUE
from controller.vision.capture_errors import CaptureRefusedError
from controller.vision.pills import count_pills
from simulators.scene.trays import TrayOptions, render_tray


def refusal(image: np.ndarray) -> CaptureRefusedError:
    with pytest.raises(CaptureRefusedError) as caught:
        count_pills(image)
    return caught.value


def test_a_blurred_frame_is_refused_but_mild_blur_is_counted() -> None:
    error = refusal(render_tray(TrayOptions(count=40, seed=31, blur_sigma=6.0)).image)
    assert error.code == "vision.image_blurred"
    assert "sharpness" in error.detail and "capture again" in error.detail
    assert error.retryable
    mild = render_tray(TrayOptions(count=40, seed=31, blur_sigma=1.2))
    assert count_pills(mild.image).count == 40


def test_an_over_exposed_frame_is_refused() -> None:
    error = refusal(render_tray(TrayOptions(count=40, seed=32, exposure=2.5)).image)
    assert error.code == "vision.image_overexposed"
    assert "saturated" in error.detail


def test_an_under_exposed_frame_is_refused() -> None:
    error = refusal(render_tray(TrayOptions(count=40, seed=33, exposure=0.12)).image)
    assert error.code == "vision.image_underexposed"
    assert "too dark" in error.detail


def test_a_flat_frame_is_refused_as_flat() -> None:
    error = refusal(np.full((960, 1280, 3), 128, np.uint8))
    assert error.code == "vision.image_underexposed"
    assert "too flat" in error.detail


def test_a_frame_without_a_tray_is_refused() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (960, 1280, 3), dtype=np.uint8)
    assert refusal(noise).code == "vision.tray_not_found"


def test_a_tray_too_small_in_the_frame_is_never_counted_with_confidence() -> None:
    # A plain table around a small tray looks like an empty tray itself; the real tray on it is then a heap
    # far larger than any pill, which the counter must not count.
    tray = render_tray(TrayOptions(count=20, seed=34)).image
    frame = np.empty_like(tray)
    frame[:] = (70, 105, 145)  # a wooden table
    frame[360:600, 480:800] = cv2.resize(tray, (320, 240), interpolation=cv2.INTER_AREA)
    try:
        result = count_pills(frame)
    except CaptureRefusedError as error:
        assert error.code == "vision.tray_not_found"
    else:
        assert result.uncertain


def test_every_refusal_code_is_in_the_catalogue_and_asks_for_a_new_capture() -> None:
    for code in ("vision.image_blurred", "vision.image_overexposed", "vision.image_underexposed"):
        assert CATALOGUE[code].retryable
    assert CATALOGUE["vision.tray_not_found"].retryable
