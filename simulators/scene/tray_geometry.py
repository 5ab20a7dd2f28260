"""Where the pills lie on a counting tray: pill outlines and a seeded layout with touching clusters and piles.

Responsible for geometry only (outlines as polygons, placement without overlap, clusters whose members touch,
piles whose members overlap); painting them is ``tray_paint``. Coordinates are full-frame pixels, x right, y down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.uint8]

_OUTLINE_POINTS = 48
_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point shift: 1/16 px
_SUBPIXEL = float(1 << _SUBPIXEL_BITS)


class PillShape(StrEnum):
    ROUND = "round"
    OVAL = "oval"
    CAPSULE = "capsule"


@dataclass(frozen=True, slots=True)
class PillSize:
    shape: PillShape
    length: float  # along the long axis, px (equals width for a round tablet)
    width: float


@dataclass(frozen=True, slots=True)
class PlacedPill:
    x: float
    y: float
    angle: float  # radians, direction of the long axis
    size: PillSize
    on_top_of_another: bool = False  # part of a pile: overlaps a pill drawn before it

    @property
    def axis(self) -> tuple[float, float]:
        return math.cos(self.angle), math.sin(self.angle)


def outline(pill: PlacedPill) -> npt.NDArray[np.float64]:
    """The pill's outline as an (N, 2) polygon in frame coordinates."""
    t = np.linspace(0.0, 2.0 * math.pi, _OUTLINE_POINTS, endpoint=False)
    half_l, half_w = pill.size.length / 2.0, pill.size.width / 2.0
    if pill.size.shape is PillShape.CAPSULE:
        # A stadium: two half circles of radius half_w joined by straight sides.
        straight = half_l - half_w
        u = half_w * np.cos(t) + np.sign(np.cos(t)) * straight
        v = half_w * np.sin(t)
    else:
        u, v = half_l * np.cos(t), half_w * np.sin(t)
    ca, sa = pill.axis
    return np.stack([pill.x + u * ca - v * sa, pill.y + u * sa + v * ca], axis=1)


def fill_outline(canvas: Mask, pill: PlacedPill, origin: tuple[int, int], value: int, *, smooth: bool) -> None:
    """Draw the pill's filled outline into ``canvas`` whose top-left corner sits at ``origin`` in the frame."""
    points = outline(pill) - np.array(origin, dtype=np.float64)
    fixed = np.round(points * _SUBPIXEL).astype(np.int32)
    line = cv2.LINE_AA if smooth else cv2.LINE_8
    cv2.fillPoly(canvas, [fixed], (value,), lineType=line, shift=_SUBPIXEL_BITS)


def bounding_box(pill: PlacedPill, margin: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the pill plus ``margin`` px, in frame pixels, x1/y1 exclusive."""
    reach = pill.size.length / 2.0 + margin + 1
    return (
        math.floor(pill.x - reach),
        math.floor(pill.y - reach),
        math.ceil(pill.x + reach),
        math.ceil(pill.y + reach),
    )


class Occupancy:
    """Footprints of the pills placed so far, to test new placements.

    ``exact`` holds every footprint; ``kept_clear`` holds the footprints of finished groups (a lone pill, a
    cluster, a pile) grown by the clearance, so a new group keeps its distance while the members of the group
    being built may touch or overlap one another.
    """

    def __init__(self, height: int, width: int, area: tuple[int, int, int, int], clearance: int) -> None:
        self.exact: Mask = np.zeros((height, width), np.uint8)
        self.kept_clear: Mask = np.zeros((height, width), np.uint8)
        self.area = area  # (x0, y0, x1, y1) where pills may lie
        self._grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * clearance + 1, 2 * clearance + 1))
        self._group: list[PlacedPill] = []

    def inside(self, pill: PlacedPill) -> bool:
        x0, y0, x1, y1 = bounding_box(pill, 0)
        ax0, ay0, ax1, ay1 = self.area
        return x0 >= ax0 and y0 >= ay0 and x1 <= ax1 and y1 <= ay1

    def hits(self, pill: PlacedPill, *, placed: bool = True, others_clearance: bool = True) -> bool:
        """True when the pill would overlap a placed pill (``placed``) or come within the clearance of another
        group's pill (``others_clearance``)."""
        x0, y0, x1, y1 = bounding_box(pill, 1)
        patch = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fill_outline(patch, pill, (x0, y0), 1, smooth=False)
        if others_clearance and np.any(patch & self.kept_clear[y0:y1, x0:x1]):
            return True
        return placed and bool(np.any(patch & self.exact[y0:y1, x0:x1]))

    def add(self, pill: PlacedPill) -> None:
        x0, y0, x1, y1 = bounding_box(pill, 1)
        fill_outline(self.exact[y0:y1, x0:x1], pill, (x0, y0), 1, smooth=False)
        self._group.append(pill)

    def close_group(self) -> None:
        pad = self._grow.shape[0] // 2
        height, width = self.exact.shape
        for pill in self._group:
            x0, y0, x1, y1 = bounding_box(pill, pad + 1)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
            patch = np.zeros((y1 - y0, x1 - x0), np.uint8)
            fill_outline(patch, pill, (x0, y0), 1, smooth=False)
            self.kept_clear[y0:y1, x0:x1] |= np.asarray(cv2.dilate(patch, self._grow), dtype=np.uint8)
        self._group = []


@dataclass(frozen=True, slots=True)
class LayoutRequest:
    count: int
    touching: float  # fraction of the pills placed touching another one, 0..1
    piles: int  # pills laid partly on top of another one (what a count cannot always resolve)
    max_cluster: int  # largest group of touching pills
    pile_shift: tuple[float, float] = (0.35, 0.75)  # how far a piled pill sits off the one below, in widths


class LayoutError(RuntimeError):
    """The tray has no room left for the pills asked for (too many or too large)."""


def lay_out(
    request: LayoutRequest,
    sizes: list[PillSize],
    occupancy: Occupancy,
    rng: np.random.Generator,
) -> list[PlacedPill]:
    """Place ``request.count`` pills: clusters of touching pills first (they need the room), then piles, then
    lone pills at least the clearance away from every other pill."""
    piles = min(request.piles, request.count // 2)
    touching = min(round(request.touching * request.count), request.count - 2 * piles)
    cluster_sizes = _cluster_sizes(touching, request.max_cluster, rng)
    lone = request.count - 2 * piles - sum(cluster_sizes)
    pills: list[PlacedPill] = []
    next_size = iter(sizes)
    boxed_in: list[PillSize] = []  # pills a crowded cluster had no room for: they lie alone instead
    for members in cluster_sizes:
        cluster = [_place_free(next(next_size), occupancy, rng)]
        for _ in range(members - 1):
            size = next(next_size)
            touching_pill = _place_touching(size, cluster, occupancy, rng)
            if touching_pill is None:
                boxed_in.append(size)
            else:
                cluster.append(touching_pill)
        occupancy.close_group()
        pills.extend(cluster)
    for _ in range(piles):
        base = _place_free(next(next_size), occupancy, rng)
        pills.extend([base, _place_on_top(base, next(next_size), occupancy, rng, shift_range=request.pile_shift)])
        occupancy.close_group()
    for size in [*boxed_in, *(next(next_size) for _ in range(lone))]:
        pills.append(_place_free(size, occupancy, rng))
        occupancy.close_group()
    return pills


def _cluster_sizes(pills: int, largest: int, rng: np.random.Generator) -> list[int]:
    sizes: list[int] = []
    left = pills
    while left >= 2:
        # Pairs and triples are the common case on a real tray; bigger clumps less so.
        size = int(min(left, 1 + rng.geometric(0.45), largest))
        if left - size == 1:
            size = size + 1 if size < largest else size - 1
        sizes.append(size)
        left -= size
    return sizes


def _random_angle(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.0, math.pi))


def _place_free(size: PillSize, occupancy: Occupancy, rng: np.random.Generator, tries: int = 4000) -> PlacedPill:
    x0, y0, x1, y1 = occupancy.area
    for _ in range(tries):
        pill = PlacedPill(float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1)), _random_angle(rng), size)
        if occupancy.inside(pill) and not occupancy.hits(pill):
            occupancy.add(pill)
            return pill
    raise LayoutError("no free room left on the tray for another pill")


def _place_touching(
    size: PillSize, cluster: list[PlacedPill], occupancy: Occupancy, rng: np.random.Generator, tries: int = 400
) -> PlacedPill | None:
    """A pill slid towards a cluster member along a random direction until it just touches something; None
    when the cluster is boxed in."""
    for _ in range(tries):
        anchor = cluster[int(rng.integers(len(cluster)))]
        direction = float(rng.uniform(0.0, 2.0 * math.pi))
        dx, dy = math.cos(direction), math.sin(direction)
        angle = _random_angle(rng)
        far = (anchor.size.length + size.length) / 2.0 + 2.0
        near = 0.0
        if occupancy.hits(PlacedPill(anchor.x + far * dx, anchor.y + far * dy, angle, size)):
            continue
        while far - near > 0.25:
            mid = (far + near) / 2.0
            if occupancy.hits(PlacedPill(anchor.x + mid * dx, anchor.y + mid * dy, angle, size)):
                near = mid
            else:
                far = mid
        pill = PlacedPill(anchor.x + far * dx, anchor.y + far * dy, angle, size)
        # It stopped on a pill, not on another group's clearance: one px closer it overlaps a pill.
        closer = PlacedPill(anchor.x + (far - 1.0) * dx, anchor.y + (far - 1.0) * dy, angle, size)
        if occupancy.inside(pill) and occupancy.hits(closer, others_clearance=False):
            occupancy.add(pill)
            return pill
    return None


def _place_on_top(
    base: PlacedPill,
    size: PillSize,
    occupancy: Occupancy,
    rng: np.random.Generator,
    *,
    shift_range: tuple[float, float],
    tries: int = 400,
) -> PlacedPill:
    """A pill lying partly over ``base``, its centre ``shift_range`` widths away from the base's."""
    for _ in range(tries):
        direction = float(rng.uniform(0.0, 2.0 * math.pi))
        shift = size.width * float(rng.uniform(*shift_range))
        top = PlacedPill(
            base.x + shift * math.cos(direction),
            base.y + shift * math.sin(direction),
            _random_angle(rng),
            size,
            on_top_of_another=True,
        )
        if occupancy.inside(top) and not occupancy.hits(top, placed=False):
            occupancy.add(top)
            return top
    raise LayoutError("no room for a pile")
