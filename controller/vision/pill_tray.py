"""Finding the counting tray in a frame, and its colour.

Responsible for telling tray from table: the tray is the large region around the middle of the frame whose colour
is the most common one there (pills cover well under half of a usable tray). Not responsible for pills.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from controller.vision.capture_errors import TrayNotFoundError

Image = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.uint8]

_SQUARE = np.ones((3, 3), np.uint8)
_PROBE_SIZE = (320, 240)  # the tray is found on a small copy: it is the biggest thing in the frame
_MIN_TRAY_FRACTION = 0.25  # of the frame; a camera over a counting tray sees mostly tray
_MIN_RECTANGULARITY = 0.85  # tray area / area of its minimum bounding rectangle
_CHROMA_TOLERANCE = 16.0  # Lab a*b* distance from the tray colour still counted as tray (shading, glare)
_LIGHTNESS_TOLERANCE = 0.45  # relative L* change still counted as tray (vignetting, sheen)


@dataclass(frozen=True, slots=True)
class Tray:
    outline: npt.NDArray[np.int32]  # convex polygon in frame pixels, (N, 1, 2)
    colour_lab: tuple[float, float, float]  # 8-bit OpenCV Lab of the bare tray
    fraction: float  # of the frame the tray covers

    def mask(self, height: int, width: int, scale: float, inset: int) -> Mask:
        """The tray at ``scale`` of the frame, shrunk by ``inset`` px so its rim never counts as a pill."""
        mask = np.zeros((height, width), np.uint8)
        points = np.round(self.outline.astype(np.float32) * scale).astype(np.int32)
        cv2.fillConvexPoly(mask, points, (255,))
        if inset > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1, 2 * inset + 1))
            mask = np.asarray(cv2.erode(mask, kernel), dtype=np.uint8)
        return mask


def find_tray(image: Image) -> Tray:
    """Locate the tray, or raise ``vision.tray_not_found`` saying which test failed."""
    height, width = image.shape[:2]
    small = cv2.resize(image, _PROBE_SIZE, interpolation=cv2.INTER_AREA)
    lab8 = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2Lab), dtype=np.uint8)
    colour = _dominant_colour(lab8)
    lab = lab8.astype(np.float32)
    chroma = np.hypot(lab[..., 1] - colour[1], lab[..., 2] - colour[2])
    lightness = np.abs(lab[..., 0] - colour[0]) / max(colour[0], 20.0)
    like_tray = (chroma < _CHROMA_TOLERANCE) & (lightness < _LIGHTNESS_TOLERANCE)
    # The tray's edge (its rim) is a closed wall of strong edges. Inside it, everything not an edge joins up
    # smoothly, glare and vignetting included; the part holding most tray-coloured pixels is the tray.
    edges = cv2.Canny(cv2.GaussianBlur(small, (3, 3), 0), 40, 90)
    smooth = np.asarray(cv2.dilate(edges, _SQUARE) == 0)
    hull = _largest_hull(smooth, like_tray)
    if _frame_sides_touched(hull) >= 3:
        # A gap in the rim let the table in (or the tray fills the frame): keep the tray-coloured part alone
        # unless that too reaches the frame's sides.
        coloured = _largest_hull(smooth & like_tray, like_tray)
        if _frame_sides_touched(coloured) < 3:
            hull = coloured
    fraction = _check_shape(hull)
    scale = np.array([width / _PROBE_SIZE[0], height / _PROBE_SIZE[1]], np.float32)
    outline = np.round((hull.astype(np.float32) + 0.5) * scale).astype(np.int32)
    return Tray(outline=outline, colour_lab=(colour[0], colour[1], colour[2]), fraction=fraction)


def _largest_hull(candidates: npt.NDArray[np.bool_], like_tray: npt.NDArray[np.bool_]) -> npt.NDArray[np.int32]:
    count, labels = cv2.connectedComponents(candidates.astype(np.uint8), connectivity=4)
    if count < 2:
        raise TrayNotFoundError("no region of one colour large enough to be a counting tray")
    votes = np.bincount(labels[like_tray], minlength=count)
    votes[0] = 0
    region = (labels == int(np.argmax(votes))).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return np.asarray(cv2.convexHull(np.concatenate(contours)), dtype=np.int32)


def _frame_sides_touched(hull: npt.NDArray[np.int32]) -> int:
    x0, y0 = hull.reshape(-1, 2).min(axis=0)
    x1, y1 = hull.reshape(-1, 2).max(axis=0)
    width, height = _PROBE_SIZE
    return int(x0 <= 1) + int(y0 <= 1) + int(x1 >= width - 2) + int(y1 >= height - 2)


def _check_shape(hull: npt.NDArray[np.int32]) -> float:
    """The fraction of the frame the tray covers, once it passed the size and shape tests."""
    area = float(cv2.contourArea(hull))
    fraction = area / float(_PROBE_SIZE[0] * _PROBE_SIZE[1])
    if fraction < _MIN_TRAY_FRACTION:
        raise TrayNotFoundError(
            f"the largest uniform region covers {fraction:.0%} of the frame, a tray needs at least "
            f"{_MIN_TRAY_FRACTION:.0%}"
        )
    (_, _), (rect_w, rect_h), _ = cv2.minAreaRect(hull)
    rectangularity = area / max(rect_w * rect_h, 1.0)
    if rectangularity < _MIN_RECTANGULARITY:
        raise TrayNotFoundError(
            f"the largest uniform region is not tray-shaped (fills {rectangularity:.0%} of its bounding "
            f"rectangle, a tray fills at least {_MIN_RECTANGULARITY:.0%})"
        )
    return fraction


def _dominant_colour(lab: npt.NDArray[np.uint8]) -> tuple[float, float, float]:
    """The most common colour in the middle of the frame, as the mean of its histogram bin."""
    height, width = lab.shape[:2]
    middle = lab[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4].reshape(-1, 3)
    # Coarse in lightness (shading spreads it), finer in chroma (which shading leaves alone).
    keys = (middle[:, 0].astype(np.int32) // 32 * 64 + middle[:, 1] // 6) * 64 + middle[:, 2] // 6
    chosen = middle[keys == int(np.argmax(np.bincount(keys)))]
    mean = chosen.mean(axis=0)
    return float(mean[0]), float(mean[1]), float(mean[2])
