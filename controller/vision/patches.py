"""Image geometry for the decoding ladder: cut a region out level, turn a whole image, and map points found in the
cut-out or turned copy back to the pixels of the original image.

Every function returns, with its image, the 3x3 transform from the new image's pixels to the original's, so a
decoder's corners can be reported where they are in the frame the caller gave.

Not responsible for: decoding (``decode.py``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from controller.vision.images import Image

Transform = NDArray[np.float64]  # 3x3: pixels of a derived image -> pixels of the original
IDENTITY: Transform = np.eye(3)


def as_uint8(array: object) -> Image:
    """OpenCV's result as the 8-bit array it is (its stubs type every result as a generic matrix)."""
    return np.asarray(array, dtype=np.uint8)


def map_back(points: list[tuple[float, float]], back: Transform) -> list[tuple[int, int]]:
    """Points of a derived image in the original's pixels, rounded."""
    homogeneous = np.array([[x, y, 1.0] for x, y in points], np.float64) @ back.T
    return [(round(x / w), round(y / w)) for x, y, w in homogeneous]


def side_lengths(quad: NDArray[np.float64]) -> list[float]:
    return [float(np.linalg.norm(quad[i] - quad[(i + 1) % 4])) for i in range(4)]


def sharpen(image: Image) -> Image:
    """Unsharp mask: restores module edges a little defocus has softened."""
    soft = cv2.GaussianBlur(image, (0, 0), 1.5)
    return as_uint8(cv2.addWeighted(image, 1.8, soft, -0.8, 0))


def rotate(image: Image, degrees: float) -> tuple[Image, Transform]:
    """``image`` turned by ``degrees`` on a canvas big enough to keep every pixel (white around it)."""
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
    new_w, new_h = int(height * sin + width * cos), int(height * cos + width * sin)
    turn[0, 2] += new_w / 2 - width / 2
    turn[1, 2] += new_h / 2 - height / 2
    turned = as_uint8(cv2.warpAffine(image, turn, (new_w, new_h), flags=cv2.INTER_LINEAR, borderValue=255))
    forward = np.vstack([turn, [0.0, 0.0, 1.0]])
    return turned, np.linalg.inv(forward)


def enlarge(image: Image, factor: float) -> tuple[Image, Transform]:
    big = as_uint8(cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC))
    return big, np.diag([1 / factor, 1 / factor, 1.0])


def level_patch(
    image: Image, quad: NDArray[np.float64], *, margin: float, target_side: float = 600.0
) -> tuple[Image, Transform]:
    """The region around ``quad`` turned upright along its longer side, enlarged (up to 4x) so that side spans
    about ``target_side`` pixels. Context around it: ``margin`` of the long side at both ends (the quiet zone and
    a little more) and half the short side (or ``margin`` of the long side, if more) above and below."""
    (cx, cy), (w, h), angle = cv2.minAreaRect(quad.astype(np.float32))
    if w < h:
        w, h, angle = h, w, angle + 90.0
    out_w = w * (1 + 2 * margin)
    out_h = h + 2 * max(0.5 * h, margin * w)
    scale = float(np.clip(target_side / max(out_w, 1.0), 1.0, 4.0))
    width, height = max(math.ceil(out_w * scale), 8), max(math.ceil(out_h * scale), 8)
    # Map the patch's centre to the region's centre, rotated so that the region's long side runs along x.
    theta = math.radians(angle)
    cos, sin = math.cos(theta) / scale, math.sin(theta) / scale
    to_image = np.array(
        [[cos, -sin, cx - cos * width / 2 + sin * height / 2], [sin, cos, cy - sin * width / 2 - cos * height / 2],
         [0.0, 0.0, 1.0]]
    )  # fmt: skip
    patch = cv2.warpAffine(
        image, to_image[:2], (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderValue=255
    )
    return as_uint8(patch), to_image


def enlargement_of(back: Transform) -> float:
    """How many derived-image pixels one original pixel became."""
    return 1.0 / float(np.hypot(back[0, 0], back[1, 0]))
