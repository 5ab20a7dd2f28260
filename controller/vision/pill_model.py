"""What one pill of this tray looks like, learnt from the pills lying alone on the same tray.

A tray holds one drug, so every pill has nearly the same area and width. Lone pills are convex blobs and the
most common convex size; touching pairs are either not convex or about twice as large. The model is the median
area and width of the convex blobs around the smallest well-supported area mode, with the spread of their areas
(how sure an area-based count can be). Not responsible for finding blobs (``pill_blobs``) or splitting them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from controller.vision.pill_blobs import Blob

MIN_SOLIDITY = 0.92  # a lone tablet or capsule is convex; two touching ones are (mostly) not
_MODE_BIN = 0.1  # log-area histogram bin: areas within about 10 %
_MODE_SUPPORT = 0.3  # a mode must hold this share of the tallest one to count as the single-pill size
_CONTACT_SHARE = 0.015  # touching pills lose or gain about this much of a pill each at their contacts
_ALIKE_AREA = 0.12  # lone pills of one drug: areas within this share of their median ...
_ALIKE_PROPORTION = 0.1  # ... and width/length within this of theirs
_MIN_SPREAD = 0.03  # relative area spread never trusted below this: segmentation jitters at the boundary


@dataclass(frozen=True, slots=True)
class PillModel:
    area: float  # px at the working scale
    width: float  # the short axis, px
    length: float  # the long axis, px
    spread: float  # relative standard deviation of a lone pill's area
    samples: int  # lone pills the model was learnt from
    pixels: float  # a lone pill's pixel count in the pill mask, blur halo included ...
    trimmed_pixels: float  # ... and inside its half-contrast edge
    alike: bool  # the lone pills agree in size and shape, as one drug's tablets do (see ``_alike``)

    def pixel_count(self, pixels: float, trimmed_pixels: float) -> float:
        """A second reading of how many pills a blob holds, from pixel counts instead of coverage. Contacts
        make the halo-included count read low and the trimmed count read high by about as much, so their mean
        is unbiased; its errors come from other causes than the coverage's, which is the point of it."""
        return 0.5 * (pixels / max(self.pixels, 1.0) + trimmed_pixels / max(self.trimmed_pixels, 1.0))

    def sigma(self, pills: int) -> float:
        """Standard deviation of the area of ``pills`` touching pills, in pills: their own spread; the error
        of the single-pill area itself (the standard error of a median of ``samples`` pills), which grows
        with the count; and what contacts do to a blob's edge (``_CONTACT_SHARE`` of a pill per pill)."""
        own = self.spread * self.spread * pills
        learnt = (pills * self.spread * 1.25) ** 2 / max(self.samples, 1)
        contacts = (_CONTACT_SHARE * (pills - 1)) ** 2
        return math.sqrt(own + learnt + contacts)


def learn_pill_model(blobs: Sequence[Blob]) -> PillModel | None:
    """The single-pill model, or None when no blob looks like a lone pill."""
    convex = [b for b in blobs if b.solidity >= MIN_SOLIDITY]
    if not convex:
        return None
    areas = np.array([b.area for b in convex], np.float64)
    centre = _smallest_supported_mode(np.log(areas))
    chosen = [b for b in convex if abs(math.log(b.area) - centre) <= 0.22]
    if not chosen:
        return None
    chosen_areas = np.array([b.area for b in chosen], np.float64)
    area = float(np.median(chosen_areas))
    # Median absolute deviation, scaled to a standard deviation for a normal distribution.
    mad = float(np.median(np.abs(chosen_areas - area))) * 1.4826
    return PillModel(
        area=area,
        width=float(np.median([b.width for b in chosen])),
        length=float(np.median([b.length for b in chosen])),
        spread=max(mad / area, _MIN_SPREAD),
        samples=len(chosen),
        pixels=float(np.median([b.pixels for b in chosen])),
        trimmed_pixels=float(np.median([b.trimmed_pixels for b in chosen])),
        alike=_alike(chosen),
    )


def _alike(chosen: Sequence[Blob]) -> bool:
    """Whether the lone pills agree with each other: areas within a few per cent and the same proportions.
    With only a handful of them that is what tells real lone pills from, say, pairs lying on each other."""
    areas = np.array([b.area for b in chosen], np.float64)
    proportions = np.array([b.width / b.length for b in chosen], np.float64)
    return bool(
        np.all(np.abs(areas / np.median(areas) - 1.0) <= _ALIKE_AREA)
        and np.all(np.abs(proportions - np.median(proportions)) <= _ALIKE_PROPORTION)
    )


def _smallest_supported_mode(log_areas: np.ndarray) -> float:
    low, high = float(log_areas.min()), float(log_areas.max())
    bins = max(math.ceil((high - low) / _MODE_BIN), 1)
    counts, edges = np.histogram(log_areas, bins=bins, range=(low, low + bins * _MODE_BIN))
    # Smooth over neighbouring bins so one size split across a bin edge still forms one mode.
    smooth = np.convolve(np.pad(counts.astype(np.float64), 1), [1.0, 2.0, 1.0], mode="valid")
    tallest = float(smooth.max())
    for index, height in enumerate(smooth):
        left = smooth[index - 1] if index > 0 else -1.0
        right = smooth[index + 1] if index + 1 < len(smooth) else -1.0
        if height >= _MODE_SUPPORT * tallest and height >= left and height >= right:
            in_bin = log_areas[(log_areas >= edges[max(index - 1, 0)]) & (log_areas < edges[min(index + 2, bins)])]
            return float(np.median(in_bin))
    return float(np.median(log_areas))
