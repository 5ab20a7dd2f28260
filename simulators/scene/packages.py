"""Rendered drug packages: a carton or vial label with its printed text and barcode, seen by a camera, with the
ground truth of what a decoder must (or cannot) read.

Responsible for: drawing the label (drug name, strength, ``NDC 0409-1316-32``, lot, expiry, serial and one
barcode: GS1 DataMatrix with AI 01/17/10/21, UPC-A, or GS1-128 with AI 01/17/10) on a coloured carton, placing it
in a 1280x960 BGR frame under a pose (rotation, scale, perspective) and degrading it (blur, glare, noise, uneven
light, JPEG); and saying what the frame holds: the exact decoded text, NDC10, GTIN, lot, expiry, serial, where the
symbol is, and whether it is meant to be readable (and if not, why: no barcode, cut off by the frame edge, blurred
far beyond a module, washed out by glare, covered by a finger).

Everything is seeded: the same seed gives the same bytes.

Not responsible for: the camera transport that serves frames, or counting trays (other modules of this package).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum

import cv2
import numpy as np
from numpy.typing import NDArray

from simulators.scene.barcodes import BarcodeKind, Symbol, datamatrix, gs1_128, upc_a
from simulators.scene.gs1_payloads import ElementString, gtin14_of, ndc10_digits, upca_of, yymmdd

FRAME_SIZE = (1280, 960)  # width, height
_CANVAS_MODULE = 4  # canvas pixels per barcode module; the pose scales the canvas into the frame
_TEXT_BLOCK_H = 350  # canvas pixels of printed text above a linear symbol
_WHITE = (250, 250, 248)
_INK = (25, 25, 30)
Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]


class Unreadable(StrEnum):
    """How a frame is made unreadable on purpose (the benchmark's negatives)."""

    NO_BARCODE = "no_barcode"
    OUT_OF_FRAME = "out_of_frame"
    HEAVY_BLUR = "heavy_blur"
    GLARE_BLOWOUT = "glare_blowout"
    OCCLUDED = "occluded"


@dataclass(frozen=True, slots=True)
class Drug:
    name: str
    strength: str
    ndc: str  # hyphenated, 10 digits
    colour: tuple[int, int, int]  # carton colour, BGR


# Items of the demo formulary (so generated images verify against it), including the heparin strengths that
# were mixed up in 2006.
DRUGS: tuple[Drug, ...] = (
    Drug("Heparin Sodium", "5,000 units/mL", "72603-456-25", (60, 140, 60)),
    Drug("Heparin Sodium", "10,000 units/mL", "0409-1316-32", (40, 40, 170)),
    Drug("Heparin Sodium", "1,000 units/mL", "0409-2720-01", (170, 110, 40)),
    Drug("Ondansetron", "2 mg/mL", "70860-776-02", (150, 150, 40)),
    Drug("Amiodarone HCl", "50 mg/mL", "0409-1933-02", (40, 120, 200)),
    Drug("Dexamethasone", "10 mg/mL", "0641-0367-25", (120, 60, 140)),
    Drug("Morphine Sulfate", "4 mg/mL", "0409-1891-01", (30, 30, 120)),
    Drug("Fentanyl Citrate", "50 mcg/mL", "0409-9094-22", (90, 40, 40)),
    Drug("Naloxone HCl", "0.4 mg/mL", "0409-1782-69", (50, 160, 160)),
    Drug("Lisinopril", "10 mg", "52959-728-30", (200, 160, 120)),
    Drug("Oxycodone HCl", "5 mg", "0904-6966-61", (60, 90, 200)),
    Drug("Insulin Human Regular", "100 units/mL", "0169-1833-11", (180, 180, 60)),
)


@dataclass(frozen=True, slots=True)
class LabelSpec:
    drug: Drug
    lot: str
    expiry: date
    serial: str
    barcode: BarcodeKind
    day_zero: bool = False  # AI 17 written with day 00 (end of month); ``expiry`` is then that last day
    serial_first: bool = False  # element order 01, 21, 17, 10 (as on many packs) instead of 01, 17, 10, 21
    indicator: int = 0  # GTIN-14 packaging indicator

    @property
    def ndc10(self) -> str:
        return ndc10_digits(self.drug.ndc)

    @property
    def gtin(self) -> str:
        return gtin14_of(self.ndc10, self.indicator)

    def elements(self) -> ElementString:
        gtin, expiry = ("01", self.gtin), ("17", yymmdd(self.expiry, day_zero=self.day_zero))
        lot, serial = ("10", self.lot), ("21", self.serial)
        if self.barcode is BarcodeKind.GS1_128:
            return ElementString((gtin, expiry, lot))
        if self.serial_first:
            return ElementString((gtin, serial, expiry, lot))
        return ElementString((gtin, expiry, lot, serial))


@dataclass(frozen=True, slots=True)
class Pose:
    angle_deg: float = 0.0  # rotation in the image plane
    module_px: float = 3.0  # frame pixels per barcode module (scale)
    perspective: float = 0.0  # corner jitter as a share of the package's size (0 = seen square-on)
    center: Point = (0.5, 0.5)  # where the barcode's centre lands, as a share of the frame


@dataclass(frozen=True, slots=True)
class Conditions:
    blur_sigma: float = 0.0  # Gaussian, frame pixels
    noise_sigma: float = 0.0  # grey levels
    glare: float = 0.0  # peak brightness added (1.0 = +255)
    glare_radius: float = 0.0  # frame pixels
    glare_center: Point = (0.5, 0.5)  # share of the frame
    light_gradient: float = 0.0  # 0..0.4: one side darker than the other
    jpeg_quality: int = 0  # 0 = no JPEG round trip
    occlusion: float = 0.0  # share of the symbol covered by a finger (0 = none)


@dataclass(frozen=True, slots=True)
class PackageTruth:
    """What the frame holds. ``text`` is the exact decoded text (GS as 0x1D, UPC-A as 13 digits)."""

    barcode: BarcodeKind
    text: str | None
    symbology_id: str | None
    ndc10: str
    gtin: str
    lot: str | None  # None where the barcode does not carry it (UPC-A)
    expiry: date | None
    serial: str | None
    readable: bool
    unreadable_because: Unreadable | None
    symbol_quad: Quad | None  # the symbol's corners in the frame (without quiet zone)
    module_px: float  # smallest module size in the frame, pixels
    printed: tuple[str, ...]  # the text lines printed on the label


@dataclass(frozen=True, slots=True)
class PackageScene:
    image: NDArray[np.uint8]  # H x W x 3, BGR
    truth: PackageTruth
    label: LabelSpec
    pose: Pose
    conditions: Conditions
    seed: int
    extras: dict[str, float] = field(default_factory=dict)


# -- rendering ----------------------------------------------------------------------------------------------------


def render_package(
    label: LabelSpec,
    pose: Pose,
    conditions: Conditions = Conditions(),
    *,
    seed: int = 0,
    unreadable: Unreadable | None = None,
) -> PackageScene:
    """Draw ``label`` into a frame under ``pose`` and ``conditions``. ``unreadable`` only labels the truth (the
    caller chose the pose and conditions that make it so); the geometry checks below may also mark a frame
    unreadable (a symbol that left the frame)."""
    rng = np.random.default_rng(seed)
    symbol = _symbol(label)
    face, symbol_box, printed = _draw_face(label, symbol, rng)
    width, height = FRAME_SIZE
    homography = _homography(face.shape, symbol_box, pose, rng)
    image = _background(rng)
    image = _composite(image, face, homography, pose.module_px / _CANVAS_MODULE)
    quad = _project_box(symbol_box, homography) if symbol is not None else None
    if conditions.occlusion > 0 and quad is not None:
        _finger(image, quad, conditions.occlusion, rng)
    image = _degrade(image, conditions, rng)
    module_px = _smallest_module(quad, symbol) if quad is not None and symbol is not None else 0.0
    cause = unreadable
    if cause is None and symbol is None:
        cause = Unreadable.NO_BARCODE
    if cause is None and quad is not None and not _inside(quad, width, height, margin=2 * module_px):
        cause = Unreadable.OUT_OF_FRAME
    truth = PackageTruth(
        barcode=label.barcode,
        text=symbol.text if symbol is not None else None,
        symbology_id=symbol.symbology_id if symbol is not None else None,
        ndc10=label.ndc10,
        gtin=label.gtin if label.barcode is not BarcodeKind.UPC_A else "00" + upca_of(label.ndc10),
        lot=label.lot if label.barcode in (BarcodeKind.GS1_DATAMATRIX, BarcodeKind.GS1_128) else None,
        expiry=label.expiry if label.barcode in (BarcodeKind.GS1_DATAMATRIX, BarcodeKind.GS1_128) else None,
        serial=label.serial if label.barcode is BarcodeKind.GS1_DATAMATRIX else None,
        readable=cause is None,
        unreadable_because=cause,
        symbol_quad=quad,
        module_px=module_px,
        printed=printed,
    )
    return PackageScene(image, truth, label, pose, conditions, seed)


def _symbol(label: LabelSpec) -> Symbol | None:
    if label.barcode is BarcodeKind.GS1_DATAMATRIX:
        return datamatrix(label.elements())
    if label.barcode is BarcodeKind.GS1_128:
        return gs1_128(label.elements())
    if label.barcode is BarcodeKind.UPC_A:
        return upc_a(label.ndc10)
    return None


_Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in face (canvas) pixels


def _draw_face(
    label: LabelSpec, symbol: Symbol | None, rng: np.random.Generator
) -> tuple[NDArray[np.uint8], _Box, tuple[str, ...]]:
    """The package face: carton colour, a white label with text, the symbol. Returns the face, the symbol's box
    (dark modules only) and the printed lines."""
    m = _CANVAS_MODULE
    modules = symbol.modules if symbol is not None else np.full((24, 24), 255, np.uint8)
    sym = cv2.resize(modules, None, fx=m, fy=m, interpolation=cv2.INTER_NEAREST)
    sym_h, sym_w = sym.shape
    text_w = 620
    linear = symbol is not None and symbol.is_linear
    label_w = max(text_w, sym_w) + 60 if linear else text_w + sym_w + 60
    label_h = _TEXT_BLOCK_H + sym_h + 30 if linear else max(_TEXT_BLOCK_H, sym_h + 60)
    border = 70
    face = np.empty((label_h + 2 * border, label_w + 2 * border, 3), np.uint8)
    face[:] = label.drug.colour
    cv2.rectangle(face, (border, border), (border + label_w, border + label_h), _WHITE, -1)
    expiry_text = label.expiry.strftime("%Y-%m") if label.day_zero else label.expiry.isoformat()
    printed = (
        label.drug.name,
        label.drug.strength,
        f"NDC {label.drug.ndc}",
        f"LOT {label.lot}   EXP {expiry_text}",
        f"SN {label.serial}",
        "Rx only",
    )
    x, y = border + 24, border + 58
    scales = (1.45, 1.15, 0.95, 0.8, 0.8, 0.7)
    for line, scale in zip(printed, scales, strict=True):
        thickness = 3 if scale > 1.0 else 2
        cv2.putText(face, line, (x, y), cv2.FONT_HERSHEY_DUPLEX, scale, _INK, thickness, cv2.LINE_AA)
        y += int(44 * scale) + 6
    if linear:
        sx, sy = border + (label_w - sym_w) // 2, border + _TEXT_BLOCK_H
    else:
        sx, sy = border + text_w + 30, border + (label_h - sym_h) // 2
    if symbol is not None:
        face[sy : sy + sym_h, sx : sx + sym_w] = sym[:, :, np.newaxis]
    dark = np.argwhere(sym < 128)
    if dark.size:
        (y0, x0), (y1, x1) = dark.min(axis=0), dark.max(axis=0) + 1
    else:
        y0, x0, y1, x1 = 0, 0, sym_h, sym_w
    del rng  # the face is fully determined by the label
    return face, (sx + int(x0), sy + int(y0), sx + int(x1), sy + int(y1)), printed


def _homography(
    face_shape: tuple[int, ...], symbol_box: _Box, pose: Pose, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Face pixels -> frame pixels: scale, rotate about the symbol's centre, put that centre at ``pose.center``,
    then move each corner of the face a little (perspective)."""
    height, width = face_shape[:2]
    scale = pose.module_px / _CANVAS_MODULE
    cx, cy = (symbol_box[0] + symbol_box[2]) / 2, (symbol_box[1] + symbol_box[3]) / 2
    fx, fy = pose.center[0] * FRAME_SIZE[0], pose.center[1] * FRAME_SIZE[1]
    angle = math.radians(pose.angle_deg)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    placed = np.empty_like(corners)
    for i, (x, y) in enumerate(corners):
        dx, dy = x - cx, y - cy
        placed[i] = (fx + cos * dx - sin * dy, fy + sin * dx + cos * dy)
    if pose.perspective > 0:
        size = scale * math.hypot(width, height)
        placed += rng.uniform(-1, 1, placed.shape) * pose.perspective * size / 2
    return cv2.getPerspectiveTransform(corners.astype(np.float32), placed.astype(np.float32)).astype(np.float64)


def _background(rng: np.random.Generator) -> NDArray[np.uint8]:
    """A counter top: a base colour, a slow gradient and some grain."""
    width, height = FRAME_SIZE
    base = rng.uniform(90, 200, 3).astype(np.float32)
    tilt = rng.uniform(-0.15, 0.15, 2).astype(np.float32)
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[np.newaxis, :]
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, np.newaxis]
    shade = 1.0 + tilt[0] * xs + tilt[1] * ys
    # Grain drawn at quarter resolution and enlarged: a soft texture, at a sixteenth of the random numbers.
    coarse = rng.standard_normal((height // 4, width // 4), dtype=np.float32) * 6.0
    grain = np.asarray(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR), np.float32)
    image = np.stack([shade * base[c] + grain for c in range(3)], axis=-1)
    return np.asarray(np.clip(image, 0, 255), np.uint8)


def _composite(
    frame: NDArray[np.uint8], face: NDArray[np.uint8], homography: NDArray[np.float64], scale: float
) -> NDArray[np.uint8]:
    """Warp the face onto the frame. The face is first shrunk to about frame density with area averaging, so the
    warp never has to decimate (which would alias the bars into a pattern no camera produces)."""
    width, height = FRAME_SIZE
    small_scale = min(scale, 1.0)
    small = cv2.resize(face, None, fx=small_scale, fy=small_scale, interpolation=cv2.INTER_AREA)
    to_small = np.diag([small_scale, small_scale, 1.0])
    warp = homography @ np.linalg.inv(to_small)
    warped = cv2.warpPerspective(small, warp, (width, height), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full(small.shape[:2], 255, np.uint8), warp, (width, height), flags=cv2.INTER_LINEAR)
    alpha = (mask.astype(np.float32) / 255.0)[:, :, np.newaxis]
    return (warped * alpha + frame * (1 - alpha)).astype(np.uint8)


def _project_box(box: _Box, homography: NDArray[np.float64]) -> Quad:
    x0, y0, x1, y1 = box
    points = np.array([[[x0, y0]], [[x1, y0]], [[x1, y1]], [[x0, y1]]], np.float64)
    projected = cv2.perspectiveTransform(points, homography).reshape(4, 2)
    a, b, c, d = ((float(x), float(y)) for x, y in projected)
    return a, b, c, d


def _smallest_module(quad: Quad, symbol: Symbol) -> float:
    """Frame pixels per module along the symbol's shorter-resolved axis (the narrowest edge of the quad)."""
    dark = np.argwhere(symbol.modules < 128)
    rows = int(dark[:, 0].max() - dark[:, 0].min() + 1)
    cols = int(dark[:, 1].max() - dark[:, 1].min() + 1)
    edges = [math.dist(quad[i], quad[(i + 1) % 4]) for i in range(4)]
    horizontal = min(edges[0], edges[2]) / cols
    if symbol.is_linear:
        return horizontal  # a bar's height does not limit reading
    return min(horizontal, min(edges[1], edges[3]) / rows)


def _inside(quad: Quad, width: int, height: int, *, margin: float) -> bool:
    return all(margin <= x <= width - margin and margin <= y <= height - margin for x, y in quad)


def _finger(image: NDArray[np.uint8], quad: Quad, share: float, rng: np.random.Generator) -> None:
    """A fingertip over the symbol: an opaque skin-coloured ellipse covering about ``share`` of it."""
    points = np.array(quad)
    center = points.mean(axis=0)
    size = max(np.ptp(points[:, 0]), np.ptp(points[:, 1]))
    axes = (int(size * share * 1.3), int(size * 0.75))
    angle = float(rng.uniform(0, 180))
    skin = tuple(int(c) for c in rng.uniform([120, 150, 190], [150, 180, 230]))
    offset = rng.uniform(-0.1, 0.1, 2) * size
    at = (int(center[0] + offset[0]), int(center[1] + offset[1]))
    cv2.ellipse(image, at, axes, angle, 0, 360, skin, -1, cv2.LINE_AA)


def _degrade(image: NDArray[np.uint8], c: Conditions, rng: np.random.Generator) -> NDArray[np.uint8]:
    width, height = FRAME_SIZE
    xs = (np.arange(width, dtype=np.float32) / width)[np.newaxis, :]
    ys = (np.arange(height, dtype=np.float32) / height)[:, np.newaxis]
    gain = np.ones((height, width), np.float32)
    if c.light_gradient > 0:
        direction = rng.uniform(0, 2 * math.pi)
        along = (math.cos(direction) * (xs - 0.5) + math.sin(direction) * (ys - 0.5)) * 2
        gain *= 1.0 - c.light_gradient * (along + 1) / 2
    glow = np.zeros((height, width), np.float32)
    if c.glare > 0 and c.glare_radius > 0:
        gx, gy = c.glare_center
        scale = -1.0 / (2 * (c.glare_radius / width) ** 2)
        aspect = (height / width) ** 2
        glow = (255.0 * c.glare * np.exp(scale * ((xs - gx) ** 2 + aspect * (ys - gy) ** 2))).astype(np.float32)
    work = image.astype(np.float32) * gain[:, :, np.newaxis] + glow[:, :, np.newaxis]
    if c.blur_sigma > 0:
        work = np.asarray(cv2.GaussianBlur(work, (0, 0), c.blur_sigma), np.float32)
    if c.noise_sigma > 0:
        work += rng.standard_normal(work.shape, dtype=np.float32) * np.float32(c.noise_sigma)
    out = np.asarray(np.clip(work, 0, 255), np.uint8)
    if c.jpeg_quality > 0:
        ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, c.jpeg_quality])
        if ok:
            out = np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR), np.uint8)
    return out


# -- random scenes -----------------------------------------------------------------------------------------------

_LOT_CHARS = string.ascii_uppercase + string.digits
_KINDS = (BarcodeKind.GS1_DATAMATRIX, BarcodeKind.UPC_A, BarcodeKind.GS1_128)


def random_label(rng: np.random.Generator, barcode: BarcodeKind | None = None) -> LabelSpec:
    drug = DRUGS[int(rng.integers(len(DRUGS)))]
    kind = barcode if barcode is not None else _KINDS[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
    lot = "".join(rng.choice(list(_LOT_CHARS), int(rng.integers(4, 11))))
    serial = "".join(rng.choice(list(_LOT_CHARS), int(rng.integers(8, 17))))
    day_zero = bool(rng.random() < 0.3)
    expiry = date(2025, 1, 1) + timedelta(days=int(rng.integers(0, 6 * 365)))
    if day_zero:
        expiry = _month_end(expiry)
    serial_first = bool(rng.random() < 0.3)
    indicator = int(rng.choice([0, 0, 0, 1]))
    return LabelSpec(drug, lot, expiry, serial, kind, day_zero, serial_first, indicator)


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def random_pose(rng: np.random.Generator, kind: BarcodeKind) -> Pose:
    """A pose a person holding a package under the camera produces, with the barcode in the frame."""
    if kind is BarcodeKind.GS1_DATAMATRIX:
        module = rng.uniform(2.6, 7.0)
    elif kind is BarcodeKind.UPC_A:
        module = rng.uniform(1.8, 4.5)
    else:
        module = rng.uniform(1.5, 2.8)
    # Most packages are held roughly square to the camera (within 15 degrees of a quarter turn); some at any angle.
    square_on = rng.random() < 0.6
    angle = float(90 * rng.integers(4) + rng.uniform(-15, 15)) if square_on else float(rng.uniform(-180, 180))
    center = (float(rng.uniform(0.38, 0.62)), float(rng.uniform(0.38, 0.62)))
    return Pose(angle, float(module), float(rng.uniform(0.0, 0.08)), center)


def random_conditions(rng: np.random.Generator, pose: Pose) -> Conditions:
    """Mild, readable conditions: blur below a third of a module, glare that does not wash the symbol out."""
    glare_center = (float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9)))
    return Conditions(
        blur_sigma=float(rng.uniform(0.0, min(0.3 * pose.module_px, 1.2))),
        noise_sigma=float(rng.uniform(1.0, 8.0)),
        glare=float(rng.uniform(0.0, 0.35)),
        glare_radius=float(rng.uniform(60, 220)),
        glare_center=glare_center,
        light_gradient=float(rng.uniform(0.0, 0.3)),
        jpeg_quality=int(rng.choice([0, 0, 75, 90])),
    )


def random_package_scene(seed: int, *, unreadable: Unreadable | None = None) -> PackageScene:
    """One seeded scene: readable unless ``unreadable`` names how to spoil it."""
    rng = np.random.default_rng(seed)
    kind = BarcodeKind.NONE if unreadable is Unreadable.NO_BARCODE else None
    label = random_label(rng, kind)
    pose = random_pose(rng, label.barcode if kind is None else BarcodeKind.GS1_DATAMATRIX)
    conditions = random_conditions(rng, pose)
    if unreadable is Unreadable.OUT_OF_FRAME:
        # Put the symbol's centre on a frame edge: at least half of it is gone.
        edge = int(rng.integers(4))
        along = float(rng.uniform(0.3, 0.7))
        center = ((0.0, along), (1.0, along), (along, 0.0), (along, 1.0))[edge]
        pose = replace(pose, center=center)
    elif unreadable is Unreadable.HEAVY_BLUR:
        conditions = replace(conditions, blur_sigma=float(pose.module_px * rng.uniform(1.4, 2.2)))
    elif unreadable is Unreadable.GLARE_BLOWOUT:
        conditions = replace(
            conditions,
            glare=float(rng.uniform(2.5, 4.0)),
            glare_radius=float(pose.module_px * 40),
            glare_center=(pose.center[0], pose.center[1]),
        )
    elif unreadable is Unreadable.OCCLUDED:
        conditions = replace(conditions, occlusion=float(rng.uniform(0.7, 0.9)))
    return render_package(label, pose, conditions, seed=seed, unreadable=unreadable)


def scene_set(seed: int, count: int, *, unreadable_share: float = 0.2) -> list[PackageScene]:
    """``count`` scenes; about ``unreadable_share`` of them spoiled, cycling through the ways to spoil one."""
    rng = np.random.default_rng(seed)
    causes = list(Unreadable)
    scenes: list[PackageScene] = []
    for index in range(count):
        spoil = causes[index % len(causes)] if rng.random() < unreadable_share else None
        scenes.append(random_package_scene(seed * 100_003 + index, unreadable=spoil))
    return scenes
