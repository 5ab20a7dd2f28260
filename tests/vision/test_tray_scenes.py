"""The counting-tray scene simulator: reproducible frames, and ground truth that means what it says."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from simulators.scene.tray_geometry import LayoutError, PillShape, PlacedPill, fill_outline
from simulators.scene.trays import (
    COUNT_BUCKETS,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    MIN_CONTRAST,
    PILL_COLOURS,
    TRAY_COLOURS,
    TrayOptions,
    choose_drug_and_tray,
    contrasts,
    delta_e,
    render_tray,
    tray_set,
)


def footprints(pills: tuple[PlacedPill, ...]) -> list[npt.NDArray[np.uint8]]:
    masks = []
    for pill in pills:
        mask = np.zeros((FRAME_HEIGHT, FRAME_WIDTH), np.uint8)
        fill_outline(mask, pill, (0, 0), 1, smooth=False)
        masks.append(mask)
    return masks


def gap_to_others(masks: list[npt.NDArray[np.uint8]], index: int, reach: int) -> bool:
    """True when pill ``index`` comes within ``reach`` px of another pill."""
    grown = np.asarray(cv2.dilate(masks[index], np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)), np.uint8)
    others = np.zeros_like(grown)
    for other, mask in enumerate(masks):
        if other != index:
            others |= mask
    return bool(np.any(grown & others))


def test_a_frame_is_1280x960_bgr_and_the_same_options_give_the_same_pixels() -> None:
    first = render_tray(TrayOptions(count=30, seed=5))
    again = render_tray(TrayOptions(count=30, seed=5))
    other = render_tray(TrayOptions(count=30, seed=6))
    assert first.image.shape == (FRAME_HEIGHT, FRAME_WIDTH, 3) and first.image.dtype == np.uint8
    assert np.array_equal(first.image, again.image)
    assert first.centers == again.centers
    assert not np.array_equal(first.image, other.image)


@pytest.mark.parametrize("count", [0, 1, 57, 200])
def test_ground_truth_has_the_count_asked_for_and_every_centre_lies_on_the_tray(count: int) -> None:
    scene = render_tray(TrayOptions(count=count, seed=count + 11, touching=0.5))
    assert scene.count == count == len(scene.centers) == len(scene.pills)
    tray = np.zeros((FRAME_HEIGHT, FRAME_WIDTH), np.uint8)
    cv2.fillConvexPoly(tray, cv2.boxPoints(scene.tray_box).astype(np.int32), (1,))
    assert all(tray[round(y), round(x)] for x, y in scene.centers)
    assert all(p.size.shape is scene.shape for p in scene.pills)  # one drug per tray


def test_the_pixels_at_a_pill_centre_are_the_pill_not_the_tray() -> None:
    scene = render_tray(TrayOptions(count=20, seed=3, tray_colour="blue", pill_colour="yellow", glare=False))
    tray_bgr = np.array(TRAY_COLOURS["blue"])
    for x, y in scene.centers:
        patch = scene.image[round(y) - 2 : round(y) + 3, round(x) - 2 : round(x) + 3].reshape(-1, 3).mean(axis=0)
        assert np.abs(patch - tray_bgr).max() > 60, "a pill centre should not look like the blue tray"


def test_touching_pills_touch_and_lone_pills_keep_clear() -> None:
    clustered = render_tray(TrayOptions(count=16, seed=21, touching=1.0, max_cluster=4))
    masks = footprints(clustered.pills)
    touching = sum(gap_to_others(masks, i, reach=2) for i in range(len(masks)))
    assert touching >= 14  # all but pills a crowded cluster had no room for
    assert not np.any(np.sum(masks, axis=0) > 1), "touching pills must not overlap"

    apart = render_tray(TrayOptions(count=25, seed=22, touching=0.0))
    masks = footprints(apart.pills)
    assert not any(gap_to_others(masks, i, reach=3) for i in range(len(masks)))


def test_a_pile_lays_a_pill_partly_over_another() -> None:
    scene = render_tray(TrayOptions(count=10, seed=8, touching=0.0, piles=2, pile_shift=(0.4, 0.5)))
    tops = [i for i, p in enumerate(scene.pills) if p.on_top_of_another]
    assert len(tops) == 2
    masks = footprints(scene.pills)
    for top in tops:
        overlap = masks[top] & masks[top - 1]  # the pill below is laid just before the one on top
        assert 0.2 * masks[top].sum() < overlap.sum() < 0.9 * masks[top].sum()


@pytest.mark.parametrize("shape", list(PillShape))
def test_each_shape_has_its_proportions(shape: PillShape) -> None:
    scene = render_tray(TrayOptions(count=5, seed=4, shape=shape))
    size = scene.pills[0].size
    if shape is PillShape.ROUND:
        assert size.length == size.width
    else:
        assert size.length > 1.3 * size.width
    if shape is PillShape.CAPSULE:
        assert scene.second_colour is not None
    (_, _), (side_a, side_b), _ = cv2.minAreaRect(cv2.findNonZero(footprints(scene.pills[:1])[0]))
    assert max(side_a, side_b) == pytest.approx(size.length, abs=1.5)
    assert min(side_a, side_b) == pytest.approx(size.width, abs=1.5)


def test_pill_colours_are_chosen_to_contrast_with_the_tray() -> None:
    trays_seen, pairs_seen = set(), set()
    for seed in range(400):
        _, tray, pill, second = choose_drug_and_tray(TrayOptions(count=1, seed=seed), np.random.default_rng(seed))
        trays_seen.add(tray)
        pairs_seen.add((pill, tray))
        assert contrasts(pill, tray)
        if second is not None:
            assert second != pill and contrasts(second, tray)
    assert trays_seen == set(TRAY_COLOURS)
    # White tablets on a light tray, the hard case, are in the mix; green on the green tray is not.
    assert ("white", "light_grey") in pairs_seen and ("white", "beige") in pairs_seen
    assert ("green", "green") not in pairs_seen
    assert delta_e(PILL_COLOURS["white"], TRAY_COLOURS["light_grey"]) < MIN_CONTRAST


def test_exposure_and_blur_options_change_the_frame_as_asked() -> None:
    base = render_tray(TrayOptions(count=20, seed=9, blur_sigma=0.5))
    bright = render_tray(TrayOptions(count=20, seed=9, blur_sigma=0.5, exposure=2.0))
    blurred = render_tray(TrayOptions(count=20, seed=9, blur_sigma=4.0))
    assert bright.image.mean() > 1.4 * base.image.mean()
    sharp_edges = cv2.Laplacian(cv2.cvtColor(base.image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    soft_edges = cv2.Laplacian(cv2.cvtColor(blurred.image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    assert soft_edges < 0.7 * sharp_edges


def test_tray_set_spreads_counts_over_every_bucket_up_to_200() -> None:
    options = tray_set(50, seed=1)
    assert options == tray_set(50, seed=1)
    for low, high in COUNT_BUCKETS:
        assert sum(low <= o.count <= high for o in options) == 10
    assert max(o.count for o in options) <= 200
    assert all(0.2 <= o.touching <= 0.7 for o in options)


def test_more_pills_than_the_tray_holds_is_an_error() -> None:
    with pytest.raises(LayoutError):
        render_tray(TrayOptions(count=900, seed=1, pill_length=70.0, shape=PillShape.ROUND))
