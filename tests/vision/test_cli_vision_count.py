"""``adc vision count`` as a user runs it: a real process on real image files, exit codes and messages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from simulators.scene.trays import TrayOptions, TrayScene, render_tray


def adc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.app", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def tray(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrayScene]:
    scene = render_tray(TrayOptions(count=37, seed=61, touching=0.4))
    path = tmp_path_factory.mktemp("trays") / "tray.jpg"
    assert cv2.imwrite(str(path), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path, scene


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: str) -> None:
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"adc: error: [{code}] "), result.stderr
    assert "Traceback" not in result.stderr


def test_json_gives_the_count_confidence_and_a_centre_per_pill(tray: tuple[Path, TrayScene]) -> None:
    path, scene = tray
    result = adc("vision", "count", str(path), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"count", "confidence", "uncertain", "centers"}
    assert document["count"] == scene.count
    assert document["uncertain"] is False
    assert 0.5 <= document["confidence"] <= 1.0
    assert len(document["centers"]) == scene.count
    assert all(len(point) == 2 and 0 <= point[0] < 1280 and 0 <= point[1] < 960 for point in document["centers"])


def test_without_json_one_line_says_the_count(tray: tuple[Path, TrayScene]) -> None:
    path, scene = tray
    result = adc("vision", "count", str(path))
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"{re.escape(str(path))}: {scene.count} pills \(confidence [01]\.\d\d\)\n", result.stdout)


def test_overlay_is_written_as_a_png_the_size_of_the_photograph(tray: tuple[Path, TrayScene], tmp_path: Path) -> None:
    path, scene = tray
    out = tmp_path / "overlay.png"
    result = adc("vision", "count", str(path), "--overlay", str(out))
    assert result.returncode == 0, result.stderr
    overlay = cv2.imread(str(out))
    assert overlay is not None and overlay.shape == scene.image.shape


def test_an_uncertain_count_says_why(tmp_path: Path) -> None:
    scene = render_tray(TrayOptions(count=24, seed=401, touching=0.2, piles=2, pile_shift=(0.2, 0.3)))
    path = tmp_path / "piled.png"
    cv2.imwrite(str(path), scene.image)
    result = adc("vision", "count", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["uncertain"] is True
    human = adc("vision", "count", str(path))
    assert "UNCERTAIN" in human.stdout and "pills" in human.stdout


def test_a_missing_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    assert_one_line_error(adc("vision", "count", str(tmp_path / "nowhere.jpg")), "vision.unreadable_image")


def test_a_file_that_is_not_an_image_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    assert_one_line_error(adc("vision", "count", str(path), "--json"), "vision.unreadable_image")


def test_a_blurred_photograph_is_refused_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "blurred.png"
    cv2.imwrite(str(path), render_tray(TrayOptions(count=40, seed=31, blur_sigma=6.0)).image)
    result = adc("vision", "count", str(path), "--json")
    assert_one_line_error(result, "vision.image_blurred")
    assert "capture again" in result.stderr


def test_an_overlay_that_cannot_be_written_is_one_line_and_exit_1(tray: tuple[Path, TrayScene], tmp_path: Path) -> None:
    path, _ = tray
    target = tmp_path / "no-such-folder" / "overlay.png"
    assert_one_line_error(adc("vision", "count", str(path), "--overlay", str(target)), "vision.overlay_not_written")
