"""Separating pills from the tray: a model of the bare tray under this frame's light, then a per-pixel test.

The bare tray is not one colour: vignetting, a brightness gradient and soft specular sheens change it slowly
across the frame. It is modelled as a smooth field (normalized convolution on an eighth-size copy) of the pixels
that are bare tray. Which those are is first judged without colour, so that sheen (which changes the tray's
colour but has no outline) stays tray: pixels on or inside a closed outline are not bare; neither are pixels
whose chromaticity no mix of the tray's colour and white can give (a pale tablet in a clump may leave no closed
outline, but it has a colour). A second pass drops what disagrees with the first model.

A pixel is pill when its chromaticity differs from the tray's there, or it is brighter, or much darker, than the
tray there. Chromaticity ignores how much light falls on a surface, so soft shadows (darker tray, same
chromaticity, never darker than ``_SHADOW_FLOOR``) stay tray, while a white tablet on a light tray is still found
by being brighter. Besides the pill mask it returns the masks and the per-pixel coverage ``pill_blobs`` and
``pill_split`` measure. Not responsible for counting.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.uint8]
Field = npt.NDArray[np.float32]

_MODEL_SCALE = 4  # the tray model is estimated on a copy this many times smaller than the working image
_SMOOTHING = (3.0, 2.5)  # Gaussian sigma of the two model passes, in model pixels
_CHROMA_STEP = 0.022  # chromaticity distance that makes a pixel pill on a bright tray ...
_CHROMA_NOISE = 5.0  # ... plus this over the tray's brightness (sum of B, G, R): dark trays are noisier
_BRIGHTER = 1.09  # brightness ratio to the tray above which a pixel is pill (shadows only darken)
_BRIGHT_NOISE = 18.0  # levels summed over B, G and R: brightening below this is noise, however dark the tray
_SHADOW_FLOOR = 0.42  # ratio below which a pixel is too dark to be a shadow
_SHADOW_ONSET = 0.72  # ratio down to which darkening scores nothing: a pill's soft shadow
_MAX_SHEEN = 0.7  # sheen washes the tray at most this far towards white
_SHEEN_TOLERANCE = 0.02  # chromaticity noise allowed around that, on the eighth-size copy
_EDGE_THRESHOLDS = (30, 70)  # Canny, per colour channel, on the quarter-size copy
_TRAY_NOISE = 0.3  # difference the bare tray reaches through noise and texture, in threshold units
_GLINT_CAP = 1.5  # differences above this many times the median pill's are glints
_EDGE_REACH = 5  # px window in which a pixel is compared with the pill's contrast
_MAX_HOLE = 4.0  # px: a score line or seam leaves a hole this small; a gap between three touching pills, larger
_MAX_ENCLOSED = 0.004  # of the frame: a region cut out by edges and smaller than this is (part of) a pill


@dataclass(frozen=True, slots=True)
class Segmentation:
    pills: Mask  # 255 where a pill is, at the working scale: the blobs and their areas come from here
    cores: Mask  # the same pills trimmed to their half-contrast edge where they meet bare tray
    necks: Mask  # trimmed to half contrast everywhere: the necks between touching pills open up here
    coverage: Field  # how much of each pixel a pill covers, 0..1: sums to a pill's area whatever the blur


def segment(work: Image, tray: Mask) -> Segmentation:
    """Pill pixels in ``work`` (BGR), looked for inside ``tray``."""
    pixel = work.astype(np.float32)
    # A light smoothing keeps a pill whole across its thin dark details (a score line, a capsule's seam, where
    # the two colours blend into something close to the tray's) and quiets sensor noise on dark trays.
    difference = cv2.GaussianBlur(_difference(pixel, _tray_model(work, tray)), (3, 3), 0)
    pills = _clean((difference > 1.0) & (tray > 0))
    # Blur and JPEG spread a pill's colour a pixel or two onto the tray. That fattens every pill alike, which
    # the area count does not mind (the single-pill area is fattened too), but it widens the neck between two
    # touching pills. The true edge lies where the difference reaches half the pill's own contrast: next to
    # bare tray, a pixel stays only if it reaches half the highest difference close by. (At the seam of a
    # two-colour capsule this notches the paler half; only the splitting reads this mask, never the areas.)
    window = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_EDGE_REACH, _EDGE_REACH))
    nearby_high = cv2.dilate(difference, window)
    near_tray = cv2.erode(difference, window) < 0.5  # within reach of a pixel that is clearly tray
    half_contrast = difference > 0.5 * nearby_high
    cores = _clean((difference > 1.0) & (~near_tray | half_contrast) & (tray > 0))
    # For the necks, a glint (far above the pill's own contrast) must not cut a notch around itself.
    plateau = _GLINT_CAP * float(np.median(difference[pills > 0])) if np.any(pills) else 1.0
    below_glint = np.minimum(difference, max(plateau, 1.0))
    necks = _clean((difference > 1.0) & (difference > 0.5 * cv2.dilate(below_glint, window)) & (tray > 0))
    # Blur moves light around without changing its total: a pixel's difference over the pill's own contrast
    # close by is the share of the pixel the pill covers. Summed, that is the pill's area, halo or not, and
    # the narrow gaps between touching pills count for the part of them that is pill.
    # (The tray's own noise, up to about ``_TRAY_NOISE``, covers nothing.)
    coverage = np.clip((difference - _TRAY_NOISE) / np.maximum(nearby_high - _TRAY_NOISE, 0.5), 0.0, 1.0)
    return Segmentation(pills=pills, cores=cores, necks=necks, coverage=coverage.astype(np.float32))


def _clean(pixels: npt.NDArray[np.bool_]) -> Mask:
    mask = np.where(pixels, np.uint8(255), np.uint8(0))
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return _fill_small_holes(np.asarray(opened, dtype=np.uint8))


_SUM = np.ones((1, 3), np.float32)


def _difference(pixel: Field, background: Field) -> Field:
    """How strongly each pixel differs from the bare tray, in units of the pill threshold (> 1 is pill).

    With P the pixel and B the tray there, both BGR, and s() the sum of the channels: the brightness ratio is
    r = s(P) / s(B) and the chromaticity difference P / s(P) - B / s(B) = (P - r B) / s(P).
    """
    pixel_sum = cv2.transform(pixel, _SUM) + 1.0
    tray_sum = cv2.transform(background, _SUM) + 1.0
    ratio = pixel_sum / tray_sum
    residue = pixel - background * ratio[..., None]
    chroma = np.sqrt(cv2.transform(residue * residue, _SUM)) / pixel_sum
    # Chromaticity noise grows as light falls: judge it by the darker of the pixel and the tray (a shadow).
    chroma_score = chroma / (_CHROMA_STEP + _CHROMA_NOISE / np.minimum(pixel_sum, tray_sum))
    # On a dark tray a few levels of noise or a JPEG block are a large ratio: brightening is also measured
    # against an absolute floor.
    bright_score = (pixel_sum - tray_sum) / np.maximum((_BRIGHTER - 1.0) * tray_sum, _BRIGHT_NOISE)
    # Shadows darken the tray down to about _SHADOW_FLOOR; darkening that a shadow explains scores nothing,
    # so the shadows trapped between touching pills do not add to their area.
    dark_score = (_SHADOW_ONSET - ratio) * (1.0 / (_SHADOW_ONSET - _SHADOW_FLOOR))
    return np.asarray(np.maximum(np.maximum(chroma_score, bright_score), dark_score), dtype=np.float32)


def _tray_model(work: Image, tray: Mask) -> Field:
    height, width = work.shape[:2]
    size = (max(width // _MODEL_SCALE, 1), max(height // _MODEL_SCALE, 1))
    # First guess, from outlines alone so that sheen (which changes the tray's colour but has no outline) is
    # kept as tray: whatever lies inside a closed edge, or on one, is not bare tray.
    half = np.asarray(cv2.resize(work, (width // 2, height // 2), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    outlined = _outlined(half)
    small = cv2.resize(work, size, interpolation=cv2.INTER_AREA)
    small_tray = cv2.resize(tray, size, interpolation=cv2.INTER_NEAREST) > 0
    covered = cv2.resize(outlined.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    bare = small_tray & (covered < 0.05)
    pixel = small.astype(np.float32)
    # A pale pill in a clump may leave no closed outline; it still has a colour the tray cannot take. Light
    # only dims the tray or washes it towards white (sheen), so a bare tray pixel's chromaticity lies between
    # the tray's own and half-way to grey.
    bare &= _sheen_distance(pixel, bare) < _SHEEN_TOLERANCE
    model = _masked_blur(pixel, bare, _SMOOTHING[0])
    # Second pass: of the bare tray, keep what agrees with the first model; a pill whose outline did not
    # close (a white tablet on a light tray) drops out here.
    bare &= _difference(pixel, model) < 0.8
    model = _masked_blur(pixel, bare, _SMOOTHING[1], fallback=model)
    return np.asarray(cv2.resize(model, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.float32)


def _sheen_distance(pixel: Field, bare: npt.NDArray[np.bool_]) -> Field:
    """Chromaticity distance from the line between the bare tray's chromaticity and grey: from a little more
    saturated than the median (the median itself is a little washed by sheen) to ``_MAX_SHEEN`` of the way
    to grey."""
    chroma = pixel / (cv2.transform(pixel, _SUM) + 1.0)[..., None]
    if not np.any(bare):
        return np.zeros(pixel.shape[:2], np.float32)
    tray = np.median(chroma[bare], axis=0)
    towards_grey = (np.full(3, 1.0 / 3.0, np.float32) - tray) * _MAX_SHEEN
    reach = float(np.dot(towards_grey, towards_grey))
    offset = chroma - tray
    if reach < 1e-9:  # a grey tray: sheen does not move its chromaticity at all
        return np.asarray(np.sqrt((offset * offset).sum(axis=2)), dtype=np.float32)
    along = np.clip((offset @ towards_grey) / reach, -0.5, 1.0)
    residue = offset - along[..., None] * towards_grey
    return np.asarray(np.sqrt((residue * residue).sum(axis=2)), dtype=np.float32)


def _outlined(image: Image) -> npt.NDArray[np.bool_]:
    """Edges in any colour channel, and the small regions they enclose."""
    edges = np.zeros(image.shape[:2], np.uint8)
    for channel in cv2.split(cv2.GaussianBlur(image, (3, 3), 0)):  # the blur keeps tray texture out
        edges |= np.asarray(cv2.Canny(channel, _EDGE_THRESHOLDS[0], _EDGE_THRESHOLDS[1]), dtype=np.uint8)
    # Enclosed: the small regions edges cut out. The bare tray is one large region, sheen and all.
    _, labels, stats, _ = cv2.connectedComponentsWithStats(255 - edges, connectivity=4)
    small_regions = stats[:, cv2.CC_STAT_AREA] < _MAX_ENCLOSED * edges.size
    small_regions[0] = True  # label 0 is the edges themselves
    return np.asarray(small_regions[labels])


def _masked_blur(pixel: Field, known: npt.NDArray[np.bool_], sigma: float, fallback: Field | None = None) -> Field:
    """Normalized convolution: the Gaussian-weighted mean of the ``known`` pixels around each pixel."""
    weight = known.astype(np.float32)
    total = cv2.GaussianBlur(pixel * weight[..., None], (0, 0), sigma)
    norm = cv2.GaussianBlur(weight, (0, 0), sigma)
    model = total / np.maximum(norm, 1e-3)[..., None]
    # Far from any known tray pixel the estimate is meaningless: widen the blur there.
    thin = norm < 0.05
    if np.any(thin):
        wide_total = cv2.GaussianBlur(pixel * weight[..., None], (0, 0), sigma * 4)
        wide_norm = cv2.GaussianBlur(weight, (0, 0), sigma * 4)
        wide = wide_total / np.maximum(wide_norm, 1e-6)[..., None]
        if fallback is not None:
            wide = np.where((wide_norm < 1e-3)[..., None], fallback, wide)
        model[thin] = wide[thin]
    return np.asarray(model, dtype=np.float32)


def _fill_small_holes(mask: Mask) -> Mask:
    """Fill holes in pills (a score line, a capsule seam, a glint that reads as tray), not gaps between pills."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return mask
    filled = mask.copy()
    for index, contour in enumerate(contours):
        is_hole = hierarchy[0][index][3] >= 0
        if is_hole and cv2.contourArea(contour) <= _MAX_HOLE:
            cv2.drawContours(filled, [contour], 0, (255,), thickness=cv2.FILLED)
    return filled
