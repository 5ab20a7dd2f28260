"""The retry ladder on rendered packages: what each pass rescues, the time budget, positions in frame pixels, the
screen every symbol passes (check digits, clashing readings), and the optional pyzbar backend."""

from __future__ import annotations

from datetime import date

import cv2
import numpy as np
import pytest

from controller.vision import zbar_backend
from controller.vision.decode import DecodeSettings, decode, read_raw
from controller.vision.images import from_frame_bytes, normalise
from controller.vision.screen import screen
from controller.vision.symbols import DecodedSymbol
from simulators.scene.barcodes import BarcodeKind
from simulators.scene.packages import DRUGS, Conditions, LabelSpec, PackageScene, Pose, render_package


def scene(kind: BarcodeKind, angle: float, module_px: float, noise_sigma: float = 0.0) -> PackageScene:
    label = LabelSpec(DRUGS[0], "LOT5", date(2028, 6, 30), "SER77", kind)
    pose = Pose(angle_deg=angle, module_px=module_px)
    return render_package(label, pose, Conditions(noise_sigma=noise_sigma), seed=1)


def centre_on_symbol(symbol: DecodedSymbol, package: PackageScene) -> bool:
    assert package.truth.symbol_quad is not None
    quad = np.array(package.truth.symbol_quad, np.float32).reshape(-1, 1, 2)
    centre = tuple(float(v) for v in np.mean(symbol.position, axis=0))
    return cv2.pointPolygonTest(quad, centre, False) >= 0


def test_datamatrix_reads_in_the_first_pass_at_any_angle() -> None:
    package = scene(BarcodeKind.GS1_DATAMATRIX, 137.0, 3.0, noise_sigma=3.0)
    result = decode(package.image)
    assert result.passes == ("direct",)
    assert [s.text for s in result.symbols] == [package.truth.text]


@pytest.mark.parametrize("kind", [BarcodeKind.UPC_A, BarcodeKind.GS1_128])
def test_tilted_linear_code_is_rescued_by_localising_it(kind: BarcodeKind) -> None:
    package = scene(kind, 40.0, 2.6, noise_sigma=3.0)
    assert [b.text for b in read_raw(package.image)] == []  # raw zxing-cpp misses a linear code at 40 degrees
    result = decode(package.image)
    assert [s.text for s in result.symbols] == [package.truth.text]
    assert result.passes[-1] == "localise" and result.symbols[0].decode_pass == "localise"
    assert centre_on_symbol(result.symbols[0], package)  # mapped back from the levelled patch to frame pixels


def test_light_on_dark_symbol_has_a_pass_of_its_own() -> None:
    package = scene(BarcodeKind.GS1_DATAMATRIX, 10.0, 4.0)
    result = decode(np.ascontiguousarray(255 - package.image))
    assert [s.text for s in result.symbols] == [package.truth.text]
    assert result.passes[-1] == "inverted"


def test_small_image_is_enlarged() -> None:
    """A 384x288 photograph with DataMatrix modules of 1.2 pixels: only the enlarged copy reads."""
    package = scene(BarcodeKind.GS1_DATAMATRIX, 0.0, 4.0)
    small = np.asarray(cv2.resize(package.image, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA), np.uint8)
    result = decode(small)
    assert [s.text for s in result.symbols] == [package.truth.text]
    assert result.passes[-1] == "enlarged"
    assert all(0 <= x <= small.shape[1] and 0 <= y <= small.shape[0] for x, y in result.symbols[0].position)


def test_time_budget_stops_the_ladder() -> None:
    blank = np.full((960, 1280, 3), 200, np.uint8)
    assert decode(blank, DecodeSettings(budget_s=0.0)).passes == ("direct",)
    full = decode(blank, DecodeSettings(budget_s=5.0))
    assert full.passes[:3] == ("direct", "localise", "candidates") and "smoothed" in full.passes
    assert full.symbols == ()


def test_grey_bgr_and_camera_bytes_decode_alike() -> None:
    package = scene(BarcodeKind.GS1_DATAMATRIX, 20.0, 3.5)
    grey = np.asarray(cv2.cvtColor(package.image, cv2.COLOR_BGR2GRAY), np.uint8)
    height, width = grey.shape
    from_camera = from_frame_bytes(package.image.tobytes(), width, height, 3)
    bgra = cv2.cvtColor(package.image, cv2.COLOR_BGR2BGRA)
    for image in (package.image, grey, from_camera, normalise(bgra)):
        assert [s.text for s in decode(image).symbols] == [package.truth.text]


def _symbol(text: str, fmt: str, quad: tuple[tuple[int, int], ...]) -> DecodedSymbol:
    return DecodedSymbol(fmt, "]E0", text, quad, False)  # type: ignore[arg-type]


def test_screen_refuses_a_failed_check_digit_and_clashing_readings() -> None:
    here = ((100, 100), (300, 100), (300, 160), (100, 160))
    there = ((600, 100), (800, 100), (800, 160), (600, 160))
    kept, refused = screen([
        _symbol("0300694200305", "UPC-A", here),  # the real one ...
        _symbol("9103121212114", "EAN-13", ((101, 120), (299, 121), (299, 123), (101, 122))),  # ... read backwards
        _symbol("0300694200304", "UPC-A", there),  # check digit fails
        _symbol("4006381333931", "EAN-13", there),
        _symbol("4006381333931", "EAN-13", there),  # the same symbol found twice
    ])  # fmt: skip
    assert [s.text for s in kept] == ["4006381333931"]
    assert sorted(refused) == ["0300694200304", "0300694200305", "9103121212114"]


def test_pyzbar_backend_reports_why_it_is_absent() -> None:
    status = zbar_backend.status()
    if zbar_backend.available():
        assert status == "available"
    else:
        assert status.startswith("pyzbar unavailable") and zbar_backend.decode(np.zeros((8, 8), np.uint8)) == []
    assert decode(np.full((100, 100), 255, np.uint8)).zbar == status


def test_pyzbar_backend_reads_a_upca() -> None:
    if not zbar_backend.available():
        pytest.skip(f"pyzbar backend not installed here ({zbar_backend.status()}); needs libzbar0 and the zbar extra")
    package = scene(BarcodeKind.UPC_A, 0.0, 3.0)
    symbols = zbar_backend.decode(np.asarray(cv2.cvtColor(package.image, cv2.COLOR_BGR2GRAY), np.uint8))
    assert [(s.format, s.symbology_id, s.text) for s in symbols] == [("UPC-A", "]E0", package.truth.text)]
