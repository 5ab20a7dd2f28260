"""The connected blobs of a pill mask, with the measurements the counter needs (area, convexity, axes).

Not responsible for deciding how many pills a blob holds (``pill_split``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.uint8]

_SQUARE = np.ones((3, 3), np.uint8)
MIN_BLOB_AREA = 25  # px at the working scale: smaller specks are sensor noise, not pills


@dataclass(frozen=True, slots=True)
class Blob:
    label: int  # in ``Blobs.labels``
    area: float  # pixels covered by pill, part-covered edge pixels counted in part
    pixels: int  # pixels in the blob (the pill mask, blur halo included) ...
    trimmed_pixels: int  # ... and those of them inside the pills' half-contrast edge (halo excluded)
    box: tuple[int, int, int, int]  # x, y, width, height
    centre: tuple[float, float]
    solidity: float  # area / convex hull area: 1 for a convex shape
    width: float  # short side of the minimum-area rectangle
    length: float  # long side


@dataclass(frozen=True, slots=True)
class Blobs:
    labels: npt.NDArray[np.int32]
    items: tuple[Blob, ...]


def find_blobs(mask: Mask, trimmed: Mask, coverage: npt.NDArray[np.float32]) -> Blobs:
    """Blobs of ``mask``; a blob's area is the sum of the pill ``coverage`` of its pixels and of the ring of
    pixels around it, so the part-covered pixels at its edge count for what they hold."""
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    trimmed_counts = np.bincount(labels[trimmed > 0], minlength=count)
    # Blob labels spread by one pixel (where two meet, the larger label wins: a pixel of ring either way).
    ring_labels = np.asarray(cv2.dilate(labels.astype(np.float32), _SQUARE), dtype=np.float32).astype(np.int32)
    ring_labels[labels > 0] = labels[labels > 0]
    covered_areas = np.bincount(ring_labels.ravel(), weights=coverage.ravel(), minlength=count)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    items: list[Blob] = []
    for contour in contours:
        x, y = contour[0][0]
        label = int(labels[y, x])
        area = float(covered_areas[label])
        if label == 0 or area < MIN_BLOB_AREA:
            continue
        hull_area = float(cv2.contourArea(cv2.convexHull(contour)))
        (_, _), (side_a, side_b), _ = cv2.minAreaRect(contour)
        items.append(
            Blob(
                label=label,
                area=area,
                pixels=int(stats[label, cv2.CC_STAT_AREA]),
                trimmed_pixels=int(trimmed_counts[label]),
                box=(
                    int(stats[label, cv2.CC_STAT_LEFT]),
                    int(stats[label, cv2.CC_STAT_TOP]),
                    int(stats[label, cv2.CC_STAT_WIDTH]),
                    int(stats[label, cv2.CC_STAT_HEIGHT]),
                ),
                centre=(float(centroids[label][0]), float(centroids[label][1])),
                solidity=float(cv2.contourArea(contour)) / hull_area if hull_area > 0 else 0.0,
                width=float(min(side_a, side_b)) + 1.0,  # the contour runs through edge pixel centres
                length=float(max(side_a, side_b)) + 1.0,
            )
        )
    del count
    return Blobs(labels=np.asarray(labels, dtype=np.int32), items=tuple(items))
