"""Counting-tray scenes: seeded 1280x960 camera frames of a tray with N pills, and their ground truth.

One drug per tray, as in a pharmacy count: every pill on a tray has the same shape, colour and nominal size (sizes
vary by under a percent: tablets are punched and capsules moulded to size). What varies from seed to seed is
everything a counting pipeline must cope with: tray and table colour, texture, vignetting, soft shadows, specular
glare on the tray and on coated pills, sensor noise, mild lens blur, JPEG artefacts, and how many pills touch
(``touching``) or lie partly on top of another one (``piles``). The ground truth is the count and every pill's
centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from simulators.scene.tray_geometry import LayoutRequest, Occupancy, PillShape, PillSize, PlacedPill, lay_out
from simulators.scene.tray_paint import (
    Bgr,
    CameraLook,
    Lighting,
    PillLook,
    apply_camera,
    apply_lighting,
    apply_sheen,
    paint_pills,
    paint_shadows,
    paint_table_and_tray,
)

FRAME_WIDTH, FRAME_HEIGHT = 1280, 960

# Counting trays come in colours chosen to contrast with tablets; light ones make white tablets hard.
TRAY_COLOURS: dict[str, Bgr] = {
    "blue": (165.0, 105.0, 40.0),
    "green": (85.0, 140.0, 60.0),
    "black": (40.0, 38.0, 36.0),
    "light_grey": (196.0, 198.0, 196.0),
    "beige": (160.0, 192.0, 208.0),
}
TABLE_COLOURS: dict[str, Bgr] = {
    "wood": (70.0, 105.0, 145.0),
    "dark_grey": (72.0, 72.0, 72.0),
    "steel": (170.0, 168.0, 165.0),
}
PILL_COLOURS: dict[str, Bgr] = {
    "white": (238.0, 240.0, 240.0),
    "cream": (196.0, 226.0, 236.0),
    "yellow": (70.0, 198.0, 235.0),
    "pink": (185.0, 160.0, 236.0),
    "orange": (50.0, 128.0, 232.0),
    "light_blue": (226.0, 190.0, 140.0),
    "peach": (150.0, 184.0, 240.0),
    "red": (55.0, 50.0, 190.0),
    "brown": (55.0, 85.0, 130.0),
    "green": (110.0, 182.0, 110.0),
    "lavender": (210.0, 160.0, 185.0),
    "navy": (120.0, 55.0, 30.0),
}
MIN_CONTRAST = 18.0  # CIE76 delta E between a pill colour and its tray: nobody counts on a tray that hides pills
# ... except white tablets on a light grey tray, the everyday hard case (delta E 15), kept in on purpose.
LOW_CONTRAST_ALLOWED = frozenset({("white", "light_grey")})

# Nominal sizes at this camera distance, px (long axis, short axis): smallest .. largest.
_SIZE_RANGES: dict[PillShape, tuple[tuple[float, float], tuple[float, float]]] = {
    PillShape.ROUND: ((28.0, 28.0), (52.0, 52.0)),
    PillShape.OVAL: ((40.0, 26.0), (62.0, 36.0)),
    PillShape.CAPSULE: ((50.0, 20.0), (74.0, 28.0)),
}
_MAX_COVER = 0.27  # the pills may cover at most this fraction of the usable tray
_CLEARANCE = 5  # px between pills that are not meant to touch
_VEIL = 0.25  # share of the tray's sheen that also veils the pills (lens glare)


@dataclass(frozen=True, slots=True)
class TrayOptions:
    count: int
    seed: int
    touching: float = 0.3  # fraction of the pills in clusters of touching pills
    max_cluster: int = 6
    piles: int = 0  # pills lying partly over another one: the case a count must call uncertain
    pile_shift: tuple[float, float] = (0.35, 0.75)  # a piled pill's offset from the one below, in widths
    shape: PillShape | None = None  # None: chosen by the seed
    tray_colour: str | None = None
    pill_colour: str | None = None
    second_colour: str | None = None  # a capsule's other half
    glare: bool = True
    blur_sigma: float | None = None  # None: mild, chosen by the seed
    noise_sigma: float | None = None
    jpeg_quality: int | None = None
    exposure: float = 1.0  # light level: > 1 over-exposes, < 1 under-exposes
    pill_length: float | None = None  # px; None: chosen by the seed within what fits ``count``


@dataclass(frozen=True, slots=True)
class TrayScene:
    image: npt.NDArray[np.uint8]  # BGR, FRAME_HEIGHT x FRAME_WIDTH
    count: int
    centers: tuple[tuple[float, float], ...]
    pills: tuple[PlacedPill, ...]
    shape: PillShape
    tray_colour: str
    pill_colour: str
    second_colour: str | None
    tray_box: tuple[tuple[float, float], tuple[float, float], float] = field(repr=False)  # cv2 rotated rect


def render_tray(options: TrayOptions) -> TrayScene:
    """Render one frame; the same options (seed included) always give the same pixels."""
    rng = np.random.default_rng(options.seed)
    shape, tray_name, pill_name, second = choose_drug_and_tray(options, rng)
    table_name = _table_for(rng, TRAY_COLOURS[tray_name])

    tray_box = (
        (FRAME_WIDTH / 2 + float(rng.uniform(-15, 15)), FRAME_HEIGHT / 2 + float(rng.uniform(-15, 15))),
        (1120.0 + float(rng.uniform(-20, 20)), 820.0 + float(rng.uniform(-20, 20))),
        float(rng.uniform(-2.0, 2.0)),
    )
    (cx, cy), (tw, th), _ = tray_box
    inset = 48.0  # keeps pills off the rim whatever the small rotation of the tray
    area = (int(cx - tw / 2 + inset), int(cy - th / 2 + inset), int(cx + tw / 2 - inset), int(cy + th / 2 - inset))
    usable = (area[2] - area[0]) * (area[3] - area[1])
    nominal = _nominal_size(rng, shape, options, usable)
    sizes = [_jitter(rng, nominal) for _ in range(options.count)]
    occupancy = Occupancy(FRAME_HEIGHT, FRAME_WIDTH, area, _CLEARANCE)
    pills = lay_out(
        LayoutRequest(options.count, options.touching, options.piles, options.max_cluster, options.pile_shift),
        sizes,
        occupancy,
        rng,
    )

    lighting = _lighting(rng, options.glare, (cx, cy), (tw, th))
    look = PillLook(
        colour=PILL_COLOURS[pill_name],
        second_colour=PILL_COLOURS[second] if second else None,
        gloss=float(rng.choice([0.0, 0.35, 0.7])),
        scored=bool(rng.random() < 0.4),
    )
    camera = CameraLook(
        blur_sigma=options.blur_sigma if options.blur_sigma is not None else float(rng.uniform(0.3, 0.9)),
        noise_sigma=options.noise_sigma if options.noise_sigma is not None else float(rng.uniform(1.0, 3.5)),
        jpeg_quality=options.jpeg_quality if options.jpeg_quality is not None else int(rng.integers(72, 93)),
    )
    canvas = paint_table_and_tray(
        rng, (FRAME_HEIGHT, FRAME_WIDTH), tray_box, TRAY_COLOURS[tray_name], TABLE_COLOURS[table_name]
    )
    paint_shadows(canvas, pills, lighting)
    apply_sheen(canvas, lighting, 1.0)
    paint_pills(canvas, pills, look, rng)
    apply_sheen(canvas, lighting, _VEIL)
    apply_lighting(canvas, lighting)
    canvas *= options.exposure
    image = apply_camera(canvas, camera, rng)
    return TrayScene(
        image=image,
        count=len(pills),
        centers=tuple((p.x, p.y) for p in pills),
        pills=tuple(pills),
        shape=shape,
        tray_colour=tray_name,
        pill_colour=pill_name,
        second_colour=second,
        tray_box=tray_box,
    )


def choose_drug_and_tray(options: TrayOptions, rng: np.random.Generator) -> tuple[PillShape, str, str, str | None]:
    """Shape, tray colour, pill colour and a capsule's second colour: as given, or seeded choices that
    contrast with the tray."""
    shape = options.shape or PillShape(str(rng.choice([s.value for s in PillShape])))
    tray_name = options.tray_colour or str(rng.choice(list(TRAY_COLOURS)))
    pill_name = options.pill_colour or _contrasting(rng, tray_name, exclude=None)
    second = None
    if shape is PillShape.CAPSULE:
        second = options.second_colour or _contrasting(rng, tray_name, exclude=pill_name)
    return shape, tray_name, pill_name, second


def _nominal_size(rng: np.random.Generator, shape: PillShape, options: TrayOptions, usable: int) -> PillSize:
    (min_l, min_w), (max_l, max_w) = _SIZE_RANGES[shape]
    if options.pill_length is not None:
        t = (options.pill_length - min_l) / (max_l - min_l)
    else:
        # The largest size that keeps the cover below _MAX_COVER, then a seeded size up to it.
        fits = 1.0
        if options.count > 0:
            per_pill = _MAX_COVER * usable / options.count
            fits = (math.sqrt(per_pill / _area(shape, max_l, max_w)) * max_l - min_l) / (max_l - min_l)
        t = float(rng.uniform(0.0, float(np.clip(fits, 0.0, 1.0))))
    length, width = min_l + t * (max_l - min_l), min_w + t * (max_w - min_w)
    return PillSize(shape, length, width if shape is not PillShape.ROUND else length)


def _area(shape: PillShape, length: float, width: float) -> float:
    if shape is PillShape.CAPSULE:
        return (length - width) * width + math.pi * width * width / 4.0
    return math.pi * length * width / 4.0


def _jitter(rng: np.random.Generator, nominal: PillSize) -> PillSize:
    scale = float(rng.normal(1.0, 0.006))
    return PillSize(nominal.shape, nominal.length * scale, nominal.width * scale)


def _contrasting(rng: np.random.Generator, tray: str, exclude: str | None) -> str:
    names = [n for n in PILL_COLOURS if n != exclude and contrasts(n, tray)]
    return str(rng.choice(names))


def contrasts(pill: str, tray: str) -> bool:
    """Whether the simulator lays pills of this colour on this tray."""
    return (pill, tray) in LOW_CONTRAST_ALLOWED or delta_e(PILL_COLOURS[pill], TRAY_COLOURS[tray]) >= MIN_CONTRAST


def _table_for(rng: np.random.Generator, tray: Bgr) -> str:
    names = [n for n, c in TABLE_COLOURS.items() if delta_e(c, tray) >= 25.0]
    return str(rng.choice(names))


def delta_e(first: Bgr, second: Bgr) -> float:
    """CIE76 colour difference between two BGR colours (0..255)."""
    pair = np.array([[first, second]], np.float32) / 255.0
    lab = cv2.cvtColor(pair, cv2.COLOR_BGR2Lab)[0]
    return float(np.linalg.norm(lab[0] - lab[1]))


def _lighting(
    rng: np.random.Generator, glare: bool, centre: tuple[float, float], size: tuple[float, float]
) -> Lighting:
    sheens: tuple[tuple[float, float, float, float], ...] = ()
    if glare:
        sheens = tuple(
            (
                centre[0] + float(rng.uniform(-0.4, 0.4)) * size[0],
                centre[1] + float(rng.uniform(-0.4, 0.4)) * size[1],
                float(rng.uniform(90.0, 220.0)),
                float(rng.uniform(0.12, 0.35)),
            )
            for _ in range(int(rng.integers(1, 3)))
        )
    return Lighting(
        vignetting=float(rng.uniform(0.1, 0.3)),
        gradient=float(rng.uniform(0.0, 0.12)),
        glare=sheens,
        shadow_strength=float(rng.uniform(0.25, 0.45)),
        shadow_offset=float(rng.uniform(3.0, 8.0)),
        shadow_softness=float(rng.uniform(2.5, 5.0)),
    )


COUNT_BUCKETS = ((1, 25), (26, 75), (76, 125), (126, 175), (176, 200))


def tray_set(frames: int, seed: int, *, piles: int = 0) -> list[TrayOptions]:
    """A reproducible spread of trays: counts drawn evenly across ``COUNT_BUCKETS`` (up to 200), touching from a
    fifth to seven tenths of the pills, every shape and colour; ``piles`` pills per tray lie on another one."""
    rng = np.random.default_rng(seed)
    options = []
    for index in range(frames):
        low, high = COUNT_BUCKETS[index % len(COUNT_BUCKETS)]
        count = int(rng.integers(low, high + 1))
        options.append(
            TrayOptions(
                count=count,
                seed=int(rng.integers(2**31)),
                touching=float(rng.uniform(0.2, 0.7)),
                piles=min(piles, count // 2),
            )
        )
    return options
