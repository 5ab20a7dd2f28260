"""The image-quality gate: refuse a frame that is too blurred, washed out or too dark to count from.

Exposure is judged on the whole frame before anything else (a black frame is "too dark", not "no tray").
Sharpness is judged where it matters, on the pills' outlines, and without depending on their contrast: on the
steepest part of the outline, the gradient of a copy smoothed by 1 px is compared with that of a copy smoothed
by 2 px. A sharp edge loses much of its steepness between the two (ratio about 1.5 to 1.6 on these frames), an
edge that is already soft loses little (the ratio falls towards 1.0). Smoothing both copies keeps sensor noise,
which the lens did not blur, from passing for sharpness. The plain variance of the Laplacian was tried first: on
these frames noise dominates it, and it stopped falling with blur beyond 2 px. A tray without pills has no
outline to judge and passes (there is nothing to miss).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from controller.vision.capture_errors import CaptureRefusedError

Image = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.uint8]

SATURATED = 250  # a channel value at or above this carries no detail
MAX_SATURATED_FRACTION = 0.2  # of the frame; glints on coated tablets are far below this
MIN_BRIGHT_LEVEL = 60  # the 99th percentile of brightness must reach this ...
MIN_DYNAMIC_RANGE = 30  # ... and the 1st-to-99th percentile range this, or the frame is too dark/flat
MIN_SHARPNESS = 1.2  # gradient ratio (module docstring): reached by a lens blur of 3 to 6 px at 1280x960
_SCALES = (1.0, 2.0)  # px at the working scale: the gradient at the first over the gradient at the second
_MIN_EDGE_GRADIENT = 8.0  # Sobel units at 2 px: weaker "edges" are texture, not outline
_STRONGEST_PERCENT = 70.0  # judge on the steepest 30 % of the outline: the pill's true edge, not its shading
_MIN_EDGE_POINTS = 20  # fewer steep outline points than this: the outlines are all soft
_MIN_OUTLINE_PIXELS = 150  # fewer outline pixels than this: no pills to judge sharpness by


@dataclass(frozen=True, slots=True)
class Exposure:
    saturated_fraction: float
    bright_level: float  # 99th percentile of grey
    dynamic_range: float  # 99th minus 1st percentile of grey


def check_exposure(grey: Image, colour: Image) -> Exposure:
    """Measure the exposure and refuse an over- or under-exposed frame with the measurement that failed."""
    histogram = cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel()
    cumulative = np.cumsum(histogram) / max(float(histogram.sum()), 1.0)
    low = float(np.searchsorted(cumulative, 0.01))
    high = float(np.searchsorted(cumulative, 0.99))
    below = SATURATED - 1
    unsaturated = cv2.countNonZero(cv2.inRange(colour, (0, 0, 0), (below, below, below)))
    saturated = 1.0 - unsaturated / float(grey.size)
    exposure = Exposure(saturated_fraction=saturated, bright_level=high, dynamic_range=high - low)
    if saturated > MAX_SATURATED_FRACTION:
        raise CaptureRefusedError(
            "vision.image_overexposed",
            f"{saturated:.0%} of the frame is saturated (at most {MAX_SATURATED_FRACTION:.0%} may be); "
            "reduce the light or exposure and capture again",
            saturated_fraction=saturated,
        )
    if high < MIN_BRIGHT_LEVEL:
        raise CaptureRefusedError(
            "vision.image_underexposed",
            f"the frame is too dark (99th percentile brightness {high:.0f}, needs {MIN_BRIGHT_LEVEL}); "
            "add light or exposure and capture again",
            bright_level=high,
        )
    if high - low < MIN_DYNAMIC_RANGE:
        raise CaptureRefusedError(
            "vision.image_underexposed",
            f"the frame is too flat (brightness from 1st to 99th percentile spans {high - low:.0f} levels, "
            f"needs {MIN_DYNAMIC_RANGE}); add light or exposure and capture again",
            dynamic_range=high - low,
        )
    return exposure


def sharpness(grey: Image, pills: Mask) -> float | None:
    """How much steeper the pills' outlines are at 1 px than at 2 px (1 = no steeper: fully soft; higher is
    sharper), or None when there are no pills to judge by."""
    ring = cv2.morphologyEx(pills, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
    image = grey.astype(np.float32)
    # Both gradients are taken on smoothed copies, so sensor noise (which the lens did not blur) cannot pass
    # for sharpness.
    steep = _gradient(np.asarray(cv2.GaussianBlur(image, (0, 0), _SCALES[0]), dtype=np.float32))
    softened = _gradient(np.asarray(cv2.GaussianBlur(image, (0, 0), _SCALES[1]), dtype=np.float32))
    if int(np.count_nonzero(ring)) < _MIN_OUTLINE_PIXELS:
        return None
    strongest = float(np.percentile(softened[ring], _STRONGEST_PERCENT))
    edge = ring & (softened >= max(strongest, _MIN_EDGE_GRADIENT))
    if int(np.count_nonzero(edge)) < _MIN_EDGE_POINTS:
        return 1.0  # pills are there, but no part of their outline is steep: as soft as it gets
    return float(np.median(steep[edge] / softened[edge]))


def _gradient(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(cv2.magnitude(gx, gy), dtype=np.float32)


def check_sharpness(grey: Image, pills: Mask) -> float | None:
    """Refuse a frame whose pill outlines are too soft to separate touching pills; return the sharpness."""
    value = sharpness(grey, pills)
    if value is not None and value < MIN_SHARPNESS:
        raise CaptureRefusedError(
            "vision.image_blurred",
            f"pill outlines are too soft (sharpness {value:.2f}, needs {MIN_SHARPNESS:.2f}: the outline's "
            "steepest gradients at 1 px over the same at 2 px); refocus or hold the tray still and capture again",
            sharpness=value,
        )
    return value
