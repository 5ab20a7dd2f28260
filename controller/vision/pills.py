"""Counting pills spread on a counting tray from one camera frame.

The pipeline: exposure gate on the frame; the tray found (``pill_tray``); pills told from the tray under this
frame's light (``pill_segment``); sharpness gate on the pills' outlines; blobs measured (``pill_blobs``); the
single-pill size learnt from the lone pills on the same tray (``pill_model``); each blob counted from its area, read
two independent ways, with a split into distance-transform cores as the tie-breaker (``pill_split``). A blob those
readings leave in doubt is not guessed: the result says ``uncertain`` and the overlay boxes the blob, so a person
can spread those pills and capture again. Everything runs on a half-size working copy of a 1280x960 frame;
coordinates in the result are frame pixels. Pure: a frame in, a result out, no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from controller.vision.image_quality import check_exposure, check_sharpness
from controller.vision.pill_blobs import find_blobs
from controller.vision.pill_model import PillModel, learn_pill_model
from controller.vision.pill_overlay import draw_overlay
from controller.vision.pill_segment import segment
from controller.vision.pill_split import BlobCount, count_blob
from controller.vision.pill_tray import find_tray

Image = npt.NDArray[np.uint8]
Point = tuple[float, float]

WORKING_WIDTH = 640  # px; pills of 28 px and more in a 1280-wide frame keep at least 14 px here
_TRAY_INSET = 4  # px at the working scale kept clear of the tray's rim
MIN_LONE_PILLS = 5  # fewer lone pills than this and the single-pill size is trusted only ...
MIN_ALIKE_PILLS = 2  # ... from at least this many, all alike
MAX_PILL_SHARE = 0.02  # of the tray: a pill is far smaller (200 pills cover about a quarter of a tray)
CONFIDENT = 0.5  # below this confidence a count is reported as uncertain whatever else


@dataclass(frozen=True, slots=True)
class PillCount:
    count: int
    confidence: float  # 0..1: how likely the count is exact
    uncertain: bool  # True: at least one cluster could not be resolved; spread the pills and count again
    centers: tuple[Point, ...]  # frame pixels, one per counted pill
    overlay: Image = field(repr=False)  # the frame with numbered marks; unresolved blobs boxed in red
    reasons: tuple[str, ...] = ()  # why the count is uncertain, one line per cause
    pill_area: float | None = None  # learnt single-pill area, frame px (None: no pill seen)
    sharpness: float | None = None  # measured by the quality gate (see image_quality); None: no outline


def count_pills(frame: Image) -> PillCount:
    """Count the pills on the tray in ``frame`` (BGR or grey, 8 bit).

    Raises ``CaptureRefusedError`` (``vision.image_blurred``, ``vision.image_overexposed``,
    ``vision.image_underexposed``, ``vision.tray_not_found``) when the frame cannot be counted from.
    """
    colour = _as_bgr(frame)
    height, width = colour.shape[:2]
    scale = min(1.0, WORKING_WIDTH / width)
    size = (round(width * scale), round(height * scale))
    work = colour if scale == 1.0 else np.asarray(cv2.resize(colour, size, interpolation=cv2.INTER_AREA), np.uint8)
    grey = np.asarray(cv2.cvtColor(work, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    check_exposure(grey, work)
    tray = find_tray(work)
    tray_mask = tray.mask(size[1], size[0], 1.0, _TRAY_INSET)
    segmentation = segment(work, tray_mask)
    sharpness = check_sharpness(grey, segmentation.pills)

    blobs = find_blobs(segmentation.pills, segmentation.cores, segmentation.coverage)
    model = learn_pill_model(blobs.items)
    outline = np.round(tray.outline.astype(np.float32) / scale).astype(np.int32)
    if model is None:
        nothing = not blobs.items
        reasons = () if nothing else ("no blob looks like a single pill: the pills may all be touching",)
        return PillCount(
            count=0,
            confidence=1.0 if nothing else 0.0,
            uncertain=not nothing,
            centers=(),
            overlay=draw_overlay(colour, outline, (), [_frame_box(b.box, scale) for b in blobs.items]),
            reasons=reasons,
            sharpness=sharpness,
        )
    counts = [count_blob(blob, blobs.labels, segmentation, model) for blob in blobs.items]
    result = _result(colour, outline, counts, model, scale=scale, sharpness=sharpness)
    tray_area = float(cv2.countNonZero(tray_mask))
    if model.area > MAX_PILL_SHARE * tray_area:
        # Blobs that large are not pills (a box, a hand, a tray within the frame): no count stands.
        reason = f"a lone 'pill' covers {model.area / tray_area:.0%} of the tray: that is no pill"
        return dataclasses.replace(
            result,
            uncertain=True,
            confidence=min(result.confidence, CONFIDENT * 0.5),
            reasons=(reason, *result.reasons),
        )
    return result


def _result(
    colour: Image,
    outline: npt.NDArray[np.int32],
    counts: list[BlobCount],
    model: PillModel,
    *,
    scale: float,
    sharpness: float | None,
) -> PillCount:
    reasons = [
        f"blob at ({c.blob.centre[0] / scale:.0f}, {c.blob.centre[1] / scale:.0f}): {c.reason}"
        for c in counts
        if not c.resolved
    ]
    confidence = float(np.prod([1.0 - c.doubt for c in counts])) if counts else 1.0
    # Clumps are counted in units of the lone pills' size. A few lone pills that agree with each other set that
    # unit; a few that do not may be anything (pairs lying on each other, say), and then it is a guess.
    few = model.samples < MIN_LONE_PILLS and (model.samples < MIN_ALIKE_PILLS or not model.alike)
    if few and any(c.count > 1 for c in counts):
        reasons.insert(0, f"only {model.samples} lone pill(s), not alike enough, to learn the pill size from")
    if reasons:
        confidence = min(confidence, CONFIDENT * 0.5)
    elif confidence < CONFIDENT:
        reasons.append(f"the blob areas leave the count in doubt (confidence {confidence:.2f})")
    centres = tuple((x / scale, y / scale) for c in counts for x, y in c.centres)
    doubtful = [_frame_box(c.blob.box, scale) for c in counts if not c.resolved]
    return PillCount(
        count=sum(c.count for c in counts),
        confidence=round(confidence, 4),
        uncertain=bool(reasons),
        centers=centres,
        overlay=draw_overlay(colour, outline, centres, doubtful),
        reasons=tuple(reasons),
        pill_area=model.area / (scale * scale),
        sharpness=sharpness,
    )


def _frame_box(box: tuple[int, int, int, int], scale: float) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return round(x / scale), round(y / scale), round(w / scale), round(h / scale)


def _as_bgr(frame: Image) -> Image:
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
        raise ValueError(f"expected an 8-bit grey or BGR image, got {frame.dtype} with shape {frame.shape}")
    if frame.ndim == 2:
        return np.asarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if frame.shape[2] == 4:
        return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    return frame
