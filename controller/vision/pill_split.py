"""How many pills one blob holds, where they are, and whether that answer can be trusted.

The count comes from the area, read two ways that fail for different reasons: the blob's pill coverage (which
counts a blurred edge pixel for the part of it a pill covers) and the mean of two pixel counts (the blob with its
blur halo, which contacts make read low, and the blob trimmed to its half-contrast edge, which contacts make read
high), each divided by the same measure of the lone pills on the same tray. For pills that touch without lying on
each other, both are a whole number plus noise whose size the model knows (it grows with the square root of the
count, plus a small systematic share per contact). A blob is resolved when both round to the same number and
their mean is within ``_Z`` standard deviations of it, never ``_MAX_DEVIATION`` or more away. Between that and
``_CONFIRMED_DEVIATION``, a third reading settles it: the blob must split into exactly that many pill-sized
segments. A lone blob reading a little small but with a whole pill's outline is one pill (a pale tablet loses
its rim to the threshold); never the reverse, since a blob reading large with a pill's outline may be two pills
lying on each other. Anything else (a pile, a broken tablet, a clump between two counts) stays unresolved and the
counter reports it as uncertain instead of guessing.

The centres come from the distance transform of the blob trimmed to its half-contrast edges (where touching
pills show a neck): each pill leaves a core at least about half its width from that edge. Cores taken at the
level that yields exactly the counted number are grown back over the blob (a watershed of the distance to the
cores: every pixel joins its nearest core), and each segment must hold about one pill's area. When no level
does that (capsules lying side by side leave no neck between them), k-means on the blob's pixels places them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from controller.vision.pill_blobs import Blob
from controller.vision.pill_model import MIN_SOLIDITY, PillModel
from controller.vision.pill_segment import Segmentation

Mask = npt.NDArray[np.uint8]
Point = tuple[float, float]

_NOISE = 0.25  # blobs under this many pills' area are specks, not pills
_FRAGMENT = 0.6  # up to this many pills' area: a broken tablet or a pill mostly hidden, never guessed
_LONE_PILL_AREA = (0.6, 1.0)  # a lone blob with a pill's outline reading this small still counts as one
_MAX_CLUMP = 40.0  # a blob of more pills than this is not counted: a heap, or not pills at all
_Z = 4.0  # a count is accepted when the area is within this many standard deviations of it ...
_MAX_DEVIATION = 0.35  # ... and never when it is this many pills or more away from it ...
_CONFIRMED_DEVIATION = 0.42  # ... unless the blob also splits into exactly that many pill-sized segments
_SIGMA_MARGIN = 1.5  # the noise model is an estimate: doubts are computed with sigma widened by this
_SHAPE_TOLERANCE = 0.15  # a lone pill's width/length matches the model's within this
_MIN_SIZE_SHARE = 0.7  # and its width and length are at least this share of the model's
_CORE_LEVELS = (0.55, 0.65, 0.75, 0.85, 0.5, 0.95)  # of the half width; tried in this order
_SEGMENT_AREA = (0.6, 1.5)  # a segment must hold this many pills' area to be one pill


@dataclass(frozen=True, slots=True)
class BlobCount:
    blob: Blob
    count: int
    centres: tuple[Point, ...]  # at the working scale
    resolved: bool
    doubt: float  # 0..1, how likely the count is off by one, given the area
    area_count: float  # area / single-pill area
    reason: str  # for an unresolved blob: why


@dataclass(frozen=True, slots=True)
class _Reading:
    count: int
    resolved: bool
    doubt: float


@dataclass(frozen=True, slots=True)
class _Crop:
    """A blob cut out with a one-pixel margin: its pixels, its edge-trimmed pixels, and the pill coverage."""

    inside: npt.NDArray[np.uint8]
    trimmed: npt.NDArray[np.uint8]
    necks: npt.NDArray[np.uint8]  # trimmed everywhere, for the distance transform
    coverage: npt.NDArray[np.float32]  # of the blob and of the ring of pixels around it, zero elsewhere
    origin: tuple[int, int]  # of the crop in the working image


def count_blob(blob: Blob, labels: npt.NDArray[np.int32], segmentation: Segmentation, model: PillModel) -> BlobCount:
    """Count the pills in ``blob`` (``labels`` are the blob labels of ``segmentation.pills``)."""
    area_count = blob.area / model.area
    if area_count < _NOISE:
        return BlobCount(blob, 0, (), True, 0.0, area_count, "")
    if area_count < _FRAGMENT:
        return BlobCount(
            blob, 1, (blob.centre,), False, 1.0, area_count, f"a blob of {area_count:.2f} pill: part of a pill?"
        )
    if area_count > _MAX_CLUMP:
        reason = f"a clump of about {area_count:.0f} pills, or something that is not a pill: spread it out"
        return BlobCount(blob, round(area_count), (blob.centre,), False, 1.0, area_count, reason)
    pixel_count = model.pixel_count(blob.pixels, blob.trimmed_pixels)
    reading = _read(area_count, pixel_count, model)
    if reading.count == 1:
        if (
            not reading.resolved
            and _LONE_PILL_AREA[0] <= area_count <= _LONE_PILL_AREA[1]
            and round(pixel_count) == 1
            and _looks_like_one(blob, model)
        ):
            # A pale pill reads small, but its outline is one pill's, not a half's. (Never the other way: a
            # blob reading large with a pill's outline may be two pills lying on each other.)
            reading = _Reading(1, True, _odds_off_by_one(abs(area_count - 1.0), model.sigma(1)))
        reason = _why(reading.resolved, area_count, pixel_count)
        return BlobCount(blob, 1, (blob.centre,), reading.resolved, reading.doubt, area_count, reason)

    crop = _cut(blob, labels, segmentation)
    pieces = _pieces(crop, model)
    if not pieces:
        pieces = [_Piece(crop.inside, area_count, pixel_count)]
    # Parts that only the blur joined are counted each on its own, with its own (smaller) noise.
    readings = [_count_part(crop, piece, model) for piece in pieces]
    resolved = all(r.resolved for r, _ in readings)
    return BlobCount(
        blob,
        sum(r.count for r, _ in readings),
        tuple(c for _, centres in readings for c in centres),
        resolved,
        1.0 - float(np.prod([1.0 - r.doubt for r, _ in readings])),
        area_count,
        _why(resolved, area_count, pixel_count),
    )


def _count_part(crop: _Crop, piece: _Piece, model: PillModel) -> tuple[_Reading, tuple[Point, ...]]:
    """The reading of one part of a blob, and its centres. When the two area readings alone leave the count
    in doubt, a split of the part into exactly that many pill-sized segments settles it, as long as the
    area is not nearly half-way between two counts."""
    reading = _read(piece.area_count, piece.pixel_count, model)
    if reading.resolved:
        centres = _centres(crop, piece.mask, reading.count, model)
        return reading, centres
    mean = 0.5 * (piece.area_count + piece.pixel_count)
    candidates = {round(piece.area_count), round(piece.pixel_count)}
    for count in sorted((k for k in candidates if k > 1), key=lambda k: abs(mean - k)):
        deviation = abs(mean - count)
        if deviation > _CONFIRMED_DEVIATION:
            continue
        split = _split_at_cores(piece.mask, _neck_distance(crop, piece.mask), crop.origin, count, model)
        if split is not None:
            # Independent evidence: the shape, not only the area, says ``count`` pills.
            return _Reading(count, True, 0.2 * _odds_off_by_one(deviation, model.sigma(count))), split
    return reading, _centres(crop, piece.mask, reading.count, model)


def _read(area_count: float, pixel_count: float, model: PillModel) -> _Reading:
    """The count both readings round to, resolved when their mean is close enough to it; unresolved when
    they round to different numbers or their mean lies too far between two."""
    whole = max(1, round(area_count))
    deviation = abs(0.5 * (area_count + pixel_count) - whole)
    sigma = model.sigma(whole)
    resolved = round(pixel_count) == whole and deviation <= min(_MAX_DEVIATION, _Z * sigma)
    return _Reading(whole, resolved, _odds_off_by_one(deviation, sigma) if resolved else 1.0)


def _why(resolved: bool, area_count: float, pixel_count: float) -> str:
    if resolved:
        return ""
    return (
        f"area says {area_count:.2f} pills, pixel count {pixel_count:.2f}: not both close enough to "
        f"{max(1, round(area_count))}"
    )


def _cut(blob: Blob, labels: npt.NDArray[np.int32], segmentation: Segmentation) -> _Crop:
    x, y, w, h = blob.box
    height, width = labels.shape
    x0, y0, x1, y1 = max(x - 1, 0), max(y - 1, 0), min(x + w + 1, width), min(y + h + 1, height)
    inside = np.zeros((h + 2, w + 2), np.uint8)
    trimmed = np.zeros_like(inside)
    coverage = np.zeros(inside.shape, np.float32)
    window = (slice(y0 - y + 1, y1 - y + 1), slice(x0 - x + 1, x1 - x + 1))
    inside[window] = labels[y0:y1, x0:x1] == blob.label
    trimmed[window] = (segmentation.cores[y0:y1, x0:x1] > 0) & (inside[window] > 0)
    necks = np.zeros_like(inside)
    necks[window] = (segmentation.necks[y0:y1, x0:x1] > 0) & (inside[window] > 0)
    ring = np.asarray(cv2.dilate(inside, np.ones((3, 3), np.uint8))) > 0
    coverage[window] = segmentation.coverage[y0:y1, x0:x1]
    coverage[~ring] = 0.0
    return _Crop(inside, trimmed, necks, coverage, (x - 1, y - 1))


@dataclass(frozen=True, slots=True)
class _Piece:
    mask: npt.NDArray[np.uint8]  # in crop coordinates
    area_count: float
    pixel_count: float


def _pieces(crop: _Crop, model: PillModel) -> list[_Piece]:
    """The blob's parts that are apart once pills are trimmed to their true edge, each with its two readings
    in pills; empty unless there are two or more and each is at least a whole-looking pill."""
    found, parts = cv2.connectedComponents(crop.trimmed, connectivity=8, ltype=cv2.CV_32S)
    if found - 1 < 2:
        return []
    # Every pixel of the blob and of its ring goes to the nearest part.
    # With per-pixel labels, the sites (the trimmed pixels) are numbered 1, 2, ... in raster order.
    _, nearest = cv2.distanceTransformWithLabels(
        np.where(crop.trimmed > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    part_of_site = np.concatenate([[0], parts[crop.trimmed > 0]]).astype(np.int32)
    owner = part_of_site[nearest]
    areas = np.bincount(owner.ravel(), weights=crop.coverage.ravel(), minlength=found) / model.area
    if np.any(areas[1:] < _FRAGMENT):
        return []
    inside = crop.inside > 0
    pixels = np.bincount(owner[inside], minlength=found)
    trimmed = np.bincount(owner[crop.trimmed > 0], minlength=found)
    return [
        _Piece(
            mask=((owner == part) & inside).astype(np.uint8),
            area_count=float(areas[part]),
            pixel_count=model.pixel_count(float(pixels[part]), float(trimmed[part])),
        )
        for part in range(1, found)
    ]


def _centres(crop: _Crop, mask: npt.NDArray[np.uint8], count: int, model: PillModel) -> tuple[Point, ...]:
    """Where the ``count`` pills of ``mask`` (a blob or a part of one, in crop coordinates) lie."""
    ox, oy = crop.origin
    if count <= 1:
        ys, xs = np.nonzero(mask)
        return ((float(xs.mean()) + ox, float(ys.mean()) + oy),)
    split = _split_at_cores(mask, _neck_distance(crop, mask), crop.origin, count, model)
    return split if split is not None else _spread_centres(mask, crop.origin, count)


def _neck_distance(crop: _Crop, mask: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    trimmed = ((crop.necks > 0) & (mask > 0)).astype(np.uint8)
    return np.asarray(cv2.distanceTransform(trimmed, cv2.DIST_L2, cv2.DIST_MASK_PRECISE), dtype=np.float32)


def _looks_like_one(blob: Blob, model: PillModel) -> bool:
    """A lone blob with a whole pill's outline: convex, the pill's proportions, and not much smaller than it
    (a broken half keeps one dimension but not the proportions; a crumb is too small)."""
    proportion = blob.width / max(blob.length, 1.0)
    return (
        blob.solidity >= MIN_SOLIDITY
        and abs(proportion - model.width / max(model.length, 1.0)) <= _SHAPE_TOLERANCE
        and blob.width >= _MIN_SIZE_SHARE * model.width
        and blob.length >= _MIN_SIZE_SHARE * model.length
    )


def _odds_off_by_one(deviation: float, sigma: float) -> float:
    """Posterior probability that the count is off by one, given the area: the likelihood of the nearest
    whole number against its two neighbours under Gaussian noise, with sigma widened by ``_SIGMA_MARGIN``
    because the noise model is itself an estimate."""
    wide = sigma * _SIGMA_MARGIN
    exponent = (1.0 - 2.0 * deviation) / (2.0 * wide * wide)
    return float(2.0 / (1.0 + math.exp(min(exponent, 700.0))))


def _split_at_cores(
    inside: npt.NDArray[np.uint8],
    distance: npt.NDArray[np.float32],
    origin: tuple[int, int],
    whole: int,
    model: PillModel,
) -> tuple[Point, ...] | None:
    """Centres of ``whole`` segments grown from distance-transform cores, if some core level gives exactly that
    many cores and every segment is about one pill; None otherwise."""
    half_width = model.width / 2.0
    for level in _CORE_LEVELS:
        cores = (distance >= level * half_width).astype(np.uint8)
        found, markers = cv2.connectedComponents(cores, connectivity=8, ltype=cv2.CV_32S)
        if found - 1 != whole:
            continue
        segments = _grow(inside, cores, np.asarray(markers, dtype=np.int32))
        areas = np.bincount(segments.ravel(), minlength=whole + 1)[1:]
        if np.all((areas >= _SEGMENT_AREA[0] * model.area) & (areas <= _SEGMENT_AREA[1] * model.area)):
            return _segment_centres(segments, origin, whole)
    return None


def _grow(
    inside: npt.NDArray[np.uint8], cores: npt.NDArray[np.uint8], markers: npt.NDArray[np.int32]
) -> npt.NDArray[np.int32]:
    """Grow the cores over the blob: every pixel joins the core nearest to it. That is the watershed of the
    distance to the cores, flooded from the cores; the segments meet half-way between them, at the necks
    between touching pills."""
    # With per-pixel labels, the core pixels are numbered 1, 2, ... in raster order.
    _, nearest = cv2.distanceTransformWithLabels(
        np.where(cores > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    marker_of_site = np.concatenate([[0], markers[cores > 0]]).astype(np.int32)
    return np.where(inside > 0, marker_of_site[nearest], 0).astype(np.int32)


def _segment_centres(segments: npt.NDArray[np.int32], origin: tuple[int, int], whole: int) -> tuple[Point, ...]:
    centres: list[Point] = []
    for label in range(1, whole + 1):
        ys, xs = np.nonzero(segments == label)
        centres.append((float(xs.mean()) + origin[0], float(ys.mean()) + origin[1]))
    return tuple(centres)


def _spread_centres(inside: npt.NDArray[np.uint8], origin: tuple[int, int], whole: int) -> tuple[Point, ...]:
    """Best-effort centres when the pills do not separate: k-means on the blob's pixel positions, started
    from far-apart pixels so the same blob always gives the same centres."""
    ys, xs = np.nonzero(inside)
    points = np.stack([xs, ys], axis=1).astype(np.float32)
    if whole <= 1 or len(points) < whole:
        return ((float(xs.mean()) + origin[0], float(ys.mean()) + origin[1]),)
    seeds = [int(np.argmax(((points - points.mean(axis=0)) ** 2).sum(axis=1)))]
    nearest = ((points - points[seeds[0]]) ** 2).sum(axis=1)
    for _ in range(whole - 1):
        seeds.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, ((points - points[seeds[-1]]) ** 2).sum(axis=1))
    start = np.argmin(((points[:, None, :] - points[seeds][None, :, :]) ** 2).sum(axis=2), axis=1).astype(np.int32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 0.5)
    _, _, means = cv2.kmeans(points, whole, start.reshape(-1, 1), criteria, 1, cv2.KMEANS_USE_INITIAL_LABELS)
    return tuple((float(mx) + origin[0], float(my) + origin[1]) for mx, my in means)
