"""Counting pills on generated trays: exact counts, centres on the pills, uncertain instead of wrong."""

from __future__ import annotations

import numpy as np
import pytest

from controller.vision.pills import PillCount, count_pills
from simulators.scene.tray_geometry import PillShape
from simulators.scene.trays import TrayOptions, TrayScene, render_tray, tray_set

# A seeded spread over every count bucket up to 200 pills, a fifth to seven tenths of them touching.
SEEDED = tray_set(20, seed=11)


@pytest.fixture(scope="module")
def counted() -> list[tuple[TrayScene, PillCount]]:
    scenes = [render_tray(options) for options in SEEDED]
    return [(scene, count_pills(scene.image)) for scene in scenes]


def centres_match(scene: TrayScene, result: PillCount) -> bool:
    """As many centres as pills, every pill with a reported centre within its own outline (0.6 of its length:
    a centre placed in a clump may sit off the middle), and every reported centre on a pill."""
    reach = 0.6 * max(p.size.length for p in scene.pills) if scene.pills else 0.0
    truth, found = np.array(scene.centers, np.float64), np.array(result.centers, np.float64)
    if len(truth) != len(found):
        return False
    if not len(truth):
        return True
    distances = np.hypot(truth[:, None, 0] - found[None, :, 0], truth[:, None, 1] - found[None, :, 1])
    return bool(distances.min(axis=1).max() <= reach and distances.min(axis=0).max() <= reach)


def test_no_tray_in_the_seeded_set_gets_a_confident_wrong_count(counted: list[tuple[TrayScene, PillCount]]) -> None:
    wrong = [(s.count, r.count) for s, r in counted if not r.uncertain and r.count != s.count]
    assert wrong == []


def test_almost_every_seeded_tray_is_counted_exactly(counted: list[tuple[TrayScene, PillCount]]) -> None:
    exact = sum(not r.uncertain and r.count == s.count for s, r in counted)
    assert exact >= 18, f"{exact}/{len(counted)} exact"
    assert max(s.count for s, _ in counted) >= 176  # the set reaches 200-pill trays


def test_an_exact_count_puts_one_centre_on_every_pill(counted: list[tuple[TrayScene, PillCount]]) -> None:
    for scene, result in counted:
        if not result.uncertain:
            assert centres_match(scene, result), f"centres off for the {scene.count}-pill tray"


def test_confidence_agrees_with_uncertain(counted: list[tuple[TrayScene, PillCount]]) -> None:
    for _, result in counted:
        assert 0.0 <= result.confidence <= 1.0
        if result.uncertain:
            assert result.confidence < 0.5 and result.reasons
        else:
            assert result.confidence >= 0.5 and not result.reasons


@pytest.mark.parametrize(
    ("options", "what"),
    [
        (TrayOptions(count=200, seed=301, touching=0.6, shape=PillShape.ROUND), "200 round tablets, clusters"),
        (TrayOptions(count=90, seed=302, touching=0.5, shape=PillShape.CAPSULE), "two-colour capsules"),
        (TrayOptions(count=70, seed=303, touching=0.4, shape=PillShape.OVAL), "oval tablets"),
        (TrayOptions(count=60, seed=304, tray_colour="beige", pill_colour="white"), "white on a light tray"),
        (TrayOptions(count=50, seed=305, tray_colour="black", pill_colour="navy"), "dark on a dark tray"),
    ],
)
def test_each_kind_of_tray_is_counted_exactly(options: TrayOptions, what: str) -> None:
    scene = render_tray(options)
    result = count_pills(scene.image)
    assert not result.uncertain, f"{what}: {result.reasons}"
    assert result.count == scene.count, what
    assert centres_match(scene, result), what


@pytest.mark.parametrize("seed", [401, 402, 403, 404])
def test_pills_lying_on_each_other_come_back_uncertain_never_wrong(seed: int) -> None:
    # A pill lying over most of another: the blob is about one and a third pills, which no count can claim.
    scene = render_tray(TrayOptions(count=24, seed=seed, touching=0.2, piles=2, pile_shift=(0.2, 0.3)))
    result = count_pills(scene.image)
    assert result.uncertain, f"counted {result.count} of {scene.count} as certain"
    assert result.confidence < 0.5
    assert any("pills" in reason for reason in result.reasons)


def test_an_empty_tray_counts_zero_with_confidence() -> None:
    result = count_pills(render_tray(TrayOptions(count=0, seed=5)).image)
    assert (result.count, result.uncertain, result.centers) == (0, False, ())
    assert result.confidence == 1.0


@pytest.mark.parametrize("count", [1, 2])
def test_one_or_two_lone_pills_are_counted_without_doubt(count: int) -> None:
    scene = render_tray(TrayOptions(count=count, seed=6, touching=0.0))
    result = count_pills(scene.image)
    assert (result.count, result.uncertain) == (count, False)
    assert centres_match(scene, result)


def test_the_overlay_is_the_frame_with_a_mark_on_each_pill() -> None:
    scene = render_tray(TrayOptions(count=12, seed=7, touching=0.0))
    result = count_pills(scene.image)
    assert result.overlay.shape == scene.image.shape
    for x, y in result.centers:
        assert not np.array_equal(result.overlay[round(y), round(x)], scene.image[round(y), round(x)])
    assert np.array_equal(result.overlay[5, 5], scene.image[5, 5])  # away from marks the frame is untouched


def test_the_same_frame_always_gives_the_same_result() -> None:
    image = render_tray(TrayOptions(count=120, seed=8, touching=0.6)).image
    first, second = count_pills(image), count_pills(image.copy())
    assert (first.count, first.confidence, first.centers) == (second.count, second.confidence, second.centers)


def test_a_grey_frame_is_counted_too() -> None:
    scene = render_tray(TrayOptions(count=40, seed=9, tray_colour="black", pill_colour="white"))
    grey = np.asarray(scene.image.mean(axis=2), dtype=np.uint8)
    result = count_pills(grey)
    assert (result.count, result.uncertain) == (40, False)


def test_a_frame_that_is_not_8_bit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="8-bit"):
        count_pills(np.zeros((960, 1280, 3), np.float32))
