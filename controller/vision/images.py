"""Images in, 8-bit grey or BGR arrays out: the only place vision code reads a file or reshapes a camera frame.

Responsible for: loading PNG, JPEG, WebP (anything OpenCV reads) as grey or BGR, flattening an alpha channel onto
white (a transparent PNG's barcode is in its alpha, and zxing-cpp reads no alpha), and turning a camera frame's
raw bytes into an array. A file that is missing or is not an image is ``vision.unreadable_image``.

Not responsible for: decoding (``decode.py``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from controller.errors import VerificationError

Image = NDArray[np.uint8]


def load_image(path: Path) -> Image:
    """The file as grey (H x W) or BGR (H x W x 3), alpha flattened onto white."""
    if not path.is_file():
        why = "no such file" if not path.exists() else "not a regular file"
        raise VerificationError("vision.unreadable_image", f"cannot read image {str(path)!r}: {why}", path=str(path))
    data = np.fromfile(path, dtype=np.uint8)  # cv2.imread cannot report why it failed; decode bytes instead
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise VerificationError(
            "vision.unreadable_image",
            f"cannot read image {str(path)!r}: not an image OpenCV can decode (PNG, JPEG, WebP, BMP, TIFF ...)",
            path=str(path),
        )
    return normalise(image)


def normalise(image: NDArray[np.generic]) -> Image:
    """Any OpenCV image as 8-bit grey or BGR: 16-bit scaled down, alpha flattened onto white."""
    if image.dtype == np.uint16:
        image = (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise VerificationError("vision.unreadable_image", f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return np.ascontiguousarray(image, dtype=np.uint8)
    channels = image.shape[2]
    if channels == 1:
        return np.ascontiguousarray(image[:, :, 0], dtype=np.uint8)
    if channels == 3:
        return np.ascontiguousarray(image, dtype=np.uint8)
    if channels == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        flat = image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(flat.round(), dtype=np.uint8)
    raise VerificationError("vision.unreadable_image", f"unsupported image with {channels} channels")


def grey(image: Image) -> Image:
    return image if image.ndim == 2 else np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def from_frame_bytes(data: bytes, width: int, height: int, channels: int) -> Image:
    """A camera frame's row-major bytes (1 = grey, 3 = BGR) as an array, without copying."""
    expected = width * height * channels
    if channels not in (1, 3) or len(data) != expected:
        raise VerificationError(
            "vision.unreadable_image",
            f"frame of {len(data)} bytes does not hold {width}x{height}x{channels} pixels ({expected} bytes)",
        )
    array = np.frombuffer(data, dtype=np.uint8)
    return array.reshape((height, width) if channels == 1 else (height, width, channels))
