"""The package scene simulator: deterministic frames with truthful ground truth (its GS1 arithmetic agrees with the
controller's, its expected text is what a decoder reads, its spoiled frames are marked unreadable)."""

from __future__ import annotations

from datetime import date

import cv2
import numpy as np
import pytest

from controller.domain.ndc import Ndc, gtin14_from_ndc, upca_from_ndc
from controller.domain.package_label import read_label
from controller.vision.decode import decode
from simulators.scene.barcodes import BarcodeKind
from simulators.scene.gs1_payloads import gtin14_of, upca_of
from simulators.scene.packages import (
    DRUGS,
    FRAME_SIZE,
    LabelSpec,
    Pose,
    Unreadable,
    random_package_scene,
    render_package,
    scene_set,
)


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    a, b, c = random_package_scene(11), random_package_scene(11), random_package_scene(12)
    assert a.image.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image) and a.truth == b.truth
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("drug", DRUGS, ids=[d.ndc for d in DRUGS])
def test_simulator_gs1_arithmetic_agrees_with_the_controller(drug: object) -> None:
    ndc = Ndc.parse(drug.ndc)  # type: ignore[attr-defined]
    for indicator in (0, 1, 5):
        assert gtin14_of(ndc.ndc10, indicator) == gtin14_from_ndc(ndc, indicator)
    assert upca_of(ndc.ndc10) == upca_from_ndc(ndc)


@pytest.mark.parametrize("kind", [BarcodeKind.GS1_DATAMATRIX, BarcodeKind.UPC_A, BarcodeKind.GS1_128])
@pytest.mark.parametrize("serial_first", [False, True])
def test_truth_is_what_the_label_says(kind: BarcodeKind, serial_first: bool) -> None:
    label = LabelSpec(DRUGS[1], "LOT42", date(2028, 2, 29), "SER0001", kind, day_zero=True, serial_first=serial_first)
    scene = render_package(label, Pose(angle_deg=8.0, module_px=3.5), seed=3)
    truth = scene.truth
    assert truth.readable and truth.symbol_quad is not None and truth.module_px == pytest.approx(3.5, rel=0.05)
    assert "NDC 0409-1316-32" in truth.printed and any("LOT LOT42" in line for line in truth.printed)
    assert truth.text is not None
    parsed = read_label(truth.text, truth.symbology_id or "", separators_kept=True)
    assert (parsed.ndc10, parsed.lot, parsed.expiry, parsed.serial) == (
        truth.ndc10,
        truth.lot,
        truth.expiry,
        truth.serial,
    )
    assert parsed.ndc10 == "0409131632"
    symbols = decode(scene.image).symbols
    assert [s.text for s in symbols] == [truth.text]
    assert symbols[0].symbology_id == truth.symbology_id
    # The reported position is on the symbol (zxing-cpp gives a linear symbol the span of the rows it read; a
    # DataMatrix its four corners).
    quad = np.array(truth.symbol_quad, np.float32).reshape(-1, 1, 2)
    centre = tuple(float(v) for v in np.mean(symbols[0].position, axis=0))
    assert cv2.pointPolygonTest(quad, centre, False) >= 0
    if kind is BarcodeKind.GS1_DATAMATRIX:
        for corner in symbols[0].position:
            assert min(np.hypot(corner[0] - x, corner[1] - y) for x, y in truth.symbol_quad) < 3 * truth.module_px


@pytest.mark.parametrize("cause", list(Unreadable))
def test_spoiled_frames_are_marked_and_never_misread(cause: Unreadable) -> None:
    scene = random_package_scene(40 + list(Unreadable).index(cause), unreadable=cause)
    assert not scene.truth.readable and scene.truth.unreadable_because is cause
    texts = [s.text for s in decode(scene.image).symbols]
    assert all(text == scene.truth.text for text in texts)  # read anyway is fine; a wrong value never is


def test_a_seeded_set_reads_completely_without_wrong_values() -> None:
    scenes = scene_set(9, 24, unreadable_share=0.25)
    assert any(not s.truth.readable for s in scenes) and any(s.truth.readable for s in scenes)
    kinds = {s.truth.barcode for s in scenes if s.truth.readable}
    assert kinds == {BarcodeKind.GS1_DATAMATRIX, BarcodeKind.UPC_A, BarcodeKind.GS1_128}
    for scene in scenes:
        texts = [s.text for s in decode(scene.image).symbols]
        assert all(text == scene.truth.text for text in texts), scene.seed
        if scene.truth.readable:
            assert texts == [scene.truth.text], scene.seed
