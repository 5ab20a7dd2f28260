"""Painting a counting-tray frame: tray and table, pill shadows, shaded pills, lighting, then the camera.

Responsible for pixels only; where the pills lie comes from ``tray_geometry``. Everything is drawn in float32
BGR 0..255 and turned into the camera's 8-bit JPEG-decoded frame at the very end, as a real camera would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from simulators.scene.tray_geometry import PillShape, PlacedPill, bounding_box, fill_outline

Canvas = npt.NDArray[np.float32]
Bgr = tuple[float, float, float]

LIGHT_DIRECTION = (-0.6, -0.8)  # the lamp sits up and to the left of the tray (unit vector towards it)


@dataclass(frozen=True, slots=True)
class PillLook:
    colour: Bgr
    second_colour: Bgr | None  # a capsule's other half
    gloss: float  # strength of the specular spot, 0 (matte) .. 1 (film-coated)
    scored: bool


@dataclass(frozen=True, slots=True)
class Lighting:
    vignetting: float  # fraction of brightness lost in the corners
    gradient: float  # brightness change across the frame along the light direction
    glare: tuple[tuple[float, float, float, float], ...]  # (x, y, sigma, strength) soft specular sheens
    shadow_strength: float  # fraction of light a pill's shadow takes away at its darkest
    shadow_offset: float  # px, away from the lamp
    shadow_softness: float  # Gaussian sigma, px


@dataclass(frozen=True, slots=True)
class CameraLook:
    blur_sigma: float
    noise_sigma: float
    jpeg_quality: int


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> Canvas:
    """Zero-mean noise with features about ``cell`` px wide, unit standard deviation."""
    coarse = rng.standard_normal((max(height // cell, 2), max(width // cell, 2))).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return (field / max(float(field.std()), 1e-6)).astype(np.float32)


def paint_table_and_tray(
    rng: np.random.Generator,
    size: tuple[int, int],
    tray: tuple[tuple[float, float], tuple[float, float], float],
    tray_colour: Bgr,
    table_colour: Bgr,
) -> Canvas:
    """The table, and on it the tray (a rotated rounded rectangle ``((cx, cy), (w, h), degrees)``) with a rim."""
    height, width = size
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = table_colour
    canvas *= (1.0 + 0.06 * smooth_noise(rng, height, width, 40))[..., None]
    inner = _rounded_rect_mask(size, tray, corner=36.0)
    rim_box = (tray[0], (tray[1][0] + 28.0, tray[1][1] + 28.0), tray[2])
    rim = _rounded_rect_mask(size, rim_box, corner=50.0)
    rim_colour = np.array(tray_colour, np.float32) * 0.82
    surface = (
        np.array(tray_colour, np.float32)[None, None, :]
        * (1.0 + 0.025 * smooth_noise(rng, height, width, 24) + 0.012 * smooth_noise(rng, height, width, 3))[..., None]
    )
    canvas = canvas * (1.0 - rim[..., None]) + rim_colour * rim[..., None]
    return np.asarray(canvas * (1.0 - inner[..., None]) + surface * inner[..., None], dtype=np.float32)


def _rounded_rect_mask(
    size: tuple[int, int], box: tuple[tuple[float, float], tuple[float, float], float], corner: float
) -> Canvas:
    (cx, cy), (w, h), degrees = box
    core = np.full(size, 255, np.uint8)
    points = cv2.boxPoints(((cx, cy), (w - 2 * corner, h - 2 * corner), degrees)).astype(np.int32)
    cv2.fillConvexPoly(core, points, (0,))
    # Distance from the shrunk rectangle, cut at the corner radius: rounded corners with a soft 1 px edge.
    distance = cv2.distanceTransform(core, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.asarray(np.clip(corner + 0.5 - distance, 0.0, 1.0), dtype=np.float32)


def paint_shadows(canvas: Canvas, pills: list[PlacedPill], lighting: Lighting) -> None:
    """Darken the tray where each pill blocks the lamp: the footprint pushed away from the light, blurred."""
    height, width = canvas.shape[:2]
    cast = np.zeros((height, width), np.uint8)
    dx, dy = -LIGHT_DIRECTION[0] * lighting.shadow_offset, -LIGHT_DIRECTION[1] * lighting.shadow_offset
    for pill in pills:
        shifted = PlacedPill(pill.x + dx, pill.y + dy, pill.angle, pill.size)
        x0, y0, x1, y1 = _clip(bounding_box(shifted, 1), width, height)
        fill_outline(cast[y0:y1, x0:x1], shifted, (x0, y0), 255, smooth=True)
    soft = cv2.GaussianBlur(cast.astype(np.float32) / 255.0, (0, 0), lighting.shadow_softness)
    canvas *= (1.0 - lighting.shadow_strength * soft)[..., None]


def paint_pills(canvas: Canvas, pills: list[PlacedPill], look: PillLook, rng: np.random.Generator) -> None:
    """Composite each pill in order (a pill on top of another is drawn after it), shaded as a low dome."""
    height, width = canvas.shape[:2]
    for pill in pills:
        x0, y0, x1, y1 = _clip(bounding_box(pill, 3), width, height)
        alpha8 = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fill_outline(alpha8, pill, (x0, y0), 255, smooth=True)
        alpha = alpha8.astype(np.float32) / 255.0
        colour = _shade(pill, look, alpha8, (x0, y0), float(rng.uniform(0.97, 1.03)))
        region = canvas[y0:y1, x0:x1]
        region *= (1.0 - alpha)[..., None]
        region += colour * alpha[..., None]


def _shade(
    pill: PlacedPill, look: PillLook, footprint: npt.NDArray[np.uint8], origin: tuple[int, int], tint: float
) -> Canvas:
    height, width = footprint.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    u = xs + origin[0] - pill.x  # frame offsets from the pill's centre
    v = ys + origin[1] - pill.y
    ax, ay = pill.axis
    along = u * ax + v * ay
    half_w = pill.size.width / 2.0
    # Depth from the edge gives the dome: a tablet's bevel and a capsule's curve fall off towards the rim.
    inside = cv2.distanceTransform((footprint > 127).astype(np.uint8), cv2.DIST_L2, 3)
    depth = np.clip(inside / (0.6 * half_w), 0.0, 1.0)
    shading = 0.74 + 0.26 * np.sqrt(depth)
    lit = (u * LIGHT_DIRECTION[0] + v * LIGHT_DIRECTION[1]) / max(pill.size.length / 2.0, 1.0)
    shading = shading * (1.0 + 0.07 * lit)
    base = np.empty((height, width, 3), np.float32)
    base[:] = np.array(look.colour, np.float32) * tint
    if look.second_colour is not None and pill.size.shape is PillShape.CAPSULE:
        base[along > 0] = np.array(look.second_colour, np.float32) * tint
        shading = shading * np.where(np.abs(along) < 0.8, 0.8, 1.0)  # the seam between the halves
    if look.scored and pill.size.shape is not PillShape.CAPSULE:
        shading = shading * np.where(np.abs(along) < 0.9, 0.82, 1.0)
    colour = base * shading[..., None]
    if look.gloss > 0:
        # The lamp's reflection: a small bright spot on the side facing the light.
        sx = 0.35 * half_w * LIGHT_DIRECTION[0]
        sy = 0.35 * half_w * LIGHT_DIRECTION[1]
        spot = np.exp(-((u - sx) ** 2 + (v - sy) ** 2) / (2.0 * (0.22 * half_w) ** 2)) * look.gloss
        colour = colour + (255.0 - colour) * spot[..., None]
    return np.asarray(colour, dtype=np.float32)


def apply_lighting(canvas: Canvas, lighting: Lighting) -> None:
    """Vignetting and a brightness gradient along the light direction, on everything the camera sees."""
    height, width = canvas.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width / 2.0, height / 2.0
    radius = ((xs - cx) ** 2 + (ys - cy) ** 2) / (cx**2 + cy**2)
    along = ((xs - cx) * LIGHT_DIRECTION[0] + (ys - cy) * LIGHT_DIRECTION[1]) / math.hypot(cx, cy)
    gain = (1.0 - lighting.vignetting * radius) * (1.0 + lighting.gradient * along)
    canvas *= gain[..., None]


def apply_sheen(canvas: Canvas, lighting: Lighting, strength: float) -> None:
    """The lamp's soft reflections, blending towards white: on the tray's surface at full ``strength``, then
    (painted after the pills, which hide the tray's own reflection) as a weaker veil from the lens."""
    height, width = canvas.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for gx, gy, sigma, peak in lighting.glare:
        sheen = (strength * peak) * np.exp(-((xs - gx) ** 2 + (ys - gy) ** 2) / (2.0 * sigma**2))
        canvas += (255.0 - np.minimum(canvas, 255.0)) * sheen[..., None]


def apply_camera(canvas: Canvas, camera: CameraLook, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """Lens blur, sensor noise, 8-bit clipping and the JPEG round trip of a networked camera."""
    image = cv2.GaussianBlur(canvas, (0, 0), camera.blur_sigma) if camera.blur_sigma > 0 else canvas
    image = image + rng.normal(0.0, camera.noise_sigma, image.shape).astype(np.float32)
    frame = np.clip(image, 0.0, 255.0).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, camera.jpeg_quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return np.asarray(decoded, dtype=np.uint8)


def _clip(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
