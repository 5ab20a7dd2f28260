"""The overlay a person checks a count against: the tray outline, each pill numbered at its centre, and a box
with a question mark around every blob the counter could not resolve."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Point = tuple[float, float]
Box = tuple[int, int, int, int]

_TRAY = (80, 200, 80)
_MARK = (0, 220, 255)
_TEXT = (20, 20, 20)
_DOUBT = (0, 0, 255)


def draw_overlay(
    frame: Image, tray_outline: npt.NDArray[np.int32], centres: Sequence[Point], doubtful: Sequence[Box]
) -> Image:
    """A copy of ``frame`` with the marks drawn on it; coordinates are frame pixels."""
    overlay = frame.copy()
    cv2.polylines(overlay, [tray_outline], isClosed=True, color=_TRAY, thickness=2, lineType=cv2.LINE_AA)
    for number, (x, y) in enumerate(centres, start=1):
        centre = (round(x), round(y))
        cv2.circle(overlay, centre, 9, _MARK, thickness=cv2.FILLED, lineType=cv2.LINE_AA)
        label = str(number)
        scale = 0.35 if number < 100 else 0.28
        (text_w, text_h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        origin = (centre[0] - text_w // 2, centre[1] + text_h // 2)
        cv2.putText(overlay, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, _TEXT, 1, cv2.LINE_AA)
    for x, y, w, h in doubtful:
        cv2.rectangle(overlay, (x - 4, y - 4), (x + w + 4, y + h + 4), _DOUBT, 2, cv2.LINE_AA)
        cv2.putText(overlay, "?", (x + w + 6, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, _DOUBT, 2, cv2.LINE_AA)
    return np.asarray(overlay, dtype=np.uint8)
