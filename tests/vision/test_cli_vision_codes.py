"""``adc vision decode`` and ``adc vision verify`` on real files (others' images and rendered packages): JSON shapes,
exit codes, and one-line errors without tracebacks. Most run in-process through typer's runner on the ``adc`` app;
two run as a real process, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from controller.cli.app import app
from simulators.scene.barcodes import BarcodeKind
from simulators.scene.packages import DRUGS, Conditions, LabelSpec, Pose, render_package

HEPARIN_5K = next(d for d in DRUGS if d.ndc == "72603-456-25")
HEPARIN_10K = next(d for d in DRUGS if d.ndc == "0409-1316-32")

VIAGRA_FORMULARY = """
[[medication]]
id = "SILDENAFIL-25MG-TAB"
ndc = "0069-4200-30"
generic_name = "sildenafil citrate"
brand_name = "Viagra"
display_name = "Viagra 25 mg tab"
strength = "25 mg"
dosage_form = "tablet, film coated"
route = "oral"
package = "bottle of 30"
unit = "bottle"

[[medication]]
id = "SILDENAFIL-50MG-TAB"
ndc = "0069-4210-30"
generic_name = "sildenafil citrate"
brand_name = "Viagra"
display_name = "Viagra 50 mg tab"
strength = "50 mg"
dosage_form = "tablet, film coated"
route = "oral"
package = "bottle of 30"
unit = "bottle"
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def real_adc(*args: str | Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli.app", "vision", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def adc(*args: str | Path) -> Run:
    result = CliRunner().invoke(app, ["vision", *map(str, args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def one_error_line(result: Run, code: str) -> None:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("adc: error: [") for line in lines), result.stderr
    assert any(f"[{code}]" in line for line in lines), result.stderr


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("packages")
    specs = {
        "heparin5k_dm": LabelSpec(
            HEPARIN_5K, "HP7", date(2027, 8, 31), "SN0001", BarcodeKind.GS1_DATAMATRIX, day_zero=True
        ),
        "heparin10k_dm": LabelSpec(HEPARIN_10K, "HX1", date(2027, 12, 31), "SN0002", BarcodeKind.GS1_DATAMATRIX),
        "heparin5k_128": LabelSpec(HEPARIN_5K, "OLD9", date(2026, 10, 31), "SN0003", BarcodeKind.GS1_128),
    }  # fmt: skip
    paths = {}
    for name, spec in specs.items():
        scene = render_package(spec, Pose(angle_deg=-17.0, module_px=3.2), Conditions(noise_sigma=3.0), seed=4)
        paths[name] = folder / f"{name}.png"
        cv2.imwrite(str(paths[name]), scene.image)
    (folder / "not-an-image.png").write_text("hello")
    paths["not_an_image"] = folder / "not-an-image.png"
    (folder / "viagra.toml").write_text(VIAGRA_FORMULARY)
    paths["viagra_formulary"] = folder / "viagra.toml"
    return paths


def test_decode_one_image_prints_one_object(packages: dict[str, Path]) -> None:
    result = real_adc("decode", packages["heparin5k_dm"], "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["image"] == str(packages["heparin5k_dm"])
    (symbol,) = document["symbols"]
    assert list(symbol) == ["format", "symbology_id", "text", "gs1", "position"]
    assert (symbol["format"], symbol["symbology_id"]) == ("DataMatrix", "]d2")
    assert symbol["text"].startswith("0100372603456257") and "\x1d21SN0001" in symbol["text"]
    assert symbol["gs1"] == {"gtin": "00372603456257", "ndc10": "7260345625", "expiry": "2027-08-31", "lot": "HP7",
                             "serial": "SN0001"}  # fmt: skip
    assert len(symbol["position"]) == 4 and all(len(p) == 2 and all(isinstance(v, int) for v in p)
                                                for p in symbol["position"])  # fmt: skip


def test_decode_several_images_prints_a_list(packages: dict[str, Path], shared_external: Path) -> None:
    barcodes = shared_external / "barcodes"
    images = [barcodes / "datamatrix-3" / "#794.png", barcodes / "upca-5" / "03.webp", packages["heparin5k_128"]]
    result = adc("decode", *images, "--json")
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)
    assert [d["image"] for d in documents] == [str(p) for p in images]
    pharma, upca, gs1_128 = (d["symbols"][0] for d in documents)
    assert pharma["gs1"]["ndc10"] is None and pharma["gs1"]["serial"] == "S1ND6MPPFCGG6B869XES"  # not an NDC GTIN
    assert (upca["format"], upca["text"], upca["gs1"]["ndc10"]) == ("UPC-A", "0312547701310", "1254770131")
    assert (gs1_128["symbology_id"], gs1_128["gs1"]["lot"], gs1_128["gs1"]["expiry"]) == ("]C1", "OLD9", "2026-10-31")


def test_decode_human_output(packages: dict[str, Path]) -> None:
    result = adc("decode", packages["heparin10k_dm"])
    assert result.returncode == 0, result.stderr
    assert "DataMatrix ]d2" in result.stdout and "<GS>21SN0002" in result.stdout and "ndc10 0409131632" in result.stdout


def test_decode_missing_unreadable_and_empty_files(packages: dict[str, Path], shared_external: Path) -> None:
    missing = packages["heparin5k_dm"].with_name("nope.png")
    blank = shared_external / "barcodes" / "fda-spl-viagra" / "viagra-01.jpg"  # a label with no barcode
    result = adc("decode", missing, packages["not_an_image"], blank, packages["heparin5k_dm"], "--json")
    assert result.returncode == 1
    one_error_line(result, "vision.unreadable_image")
    assert "[vision.no_symbol]" in result.stderr and "no such file" in result.stderr
    documents = json.loads(result.stdout)
    assert [d.get("error", {}).get("code") for d in documents] == [
        "vision.unreadable_image", "vision.unreadable_image", None, None,
    ]  # fmt: skip
    assert documents[2]["symbols"] == [] and len(documents[3]["symbols"]) == 1
    alone = real_adc("decode", missing)
    assert alone.returncode == 1 and alone.stdout == ""
    one_error_line(alone, "vision.unreadable_image")


def test_verify_verdicts(packages: dict[str, Path]) -> None:
    match = adc("verify", packages["heparin5k_dm"], "--ndc", "72603-456-25", "--today", "2026-11-25")
    assert match.returncode == 0, match.stderr
    assert "MATCH" in match.stdout and "lot HP7" in match.stdout

    mixed_up = adc("verify", packages["heparin10k_dm"], "--ndc", "7260345625", "--json", "--today", "2026-11-25")
    assert mixed_up.returncode == 1
    document = json.loads(mixed_up.stdout)
    assert (document["verdict"], document["code"]) == (
        "wrong_strength_or_package",
        "inventory.strength_or_package_mismatch",
    )
    assert document["scanned"]["item_id"] == "HEPARIN-10000U-ML-CARP" and document["ndc10"] == "0409131632"
    assert document["expected"]["item_id"] == "HEPARIN-5000U-ML-1ML"

    expired = adc("verify", packages["heparin5k_128"], "--ndc", "72603-0456-25", "--json", "--today", "2026-11-25")
    assert expired.returncode == 1 and json.loads(expired.stdout)["verdict"] == "expired"  # 11-digit NDC accepted

    recalled = adc("verify", packages["heparin5k_dm"], "--ndc", "72603-456-01", "--recalled-lot", "HP7", "--json")
    assert recalled.returncode == 1 and json.loads(recalled.stdout)["verdict"] == "quarantined"  # alternate NDC


def test_verify_refusals_are_one_line(packages: dict[str, Path]) -> None:
    unknown = adc("verify", packages["heparin5k_dm"], "--ndc", "0002-1433-80")
    assert unknown.returncode == 1
    one_error_line(unknown, "inventory.unknown_item")
    missing = adc("verify", packages["heparin5k_dm"].with_name("nope.png"), "--ndc", "72603-456-25")
    assert missing.returncode == 1
    one_error_line(missing, "vision.unreadable_image")
    bad_day = adc("verify", packages["heparin5k_dm"], "--ndc", "72603-456-25", "--today", "25/11/2026")
    assert bad_day.returncode == 2 and "Traceback" not in bad_day.stderr and "--today" in bad_day.stderr


def test_verify_fda_label_photographs(packages: dict[str, Path], shared_external: Path) -> None:
    """Viagra 25 mg's own label against its formulary item, and against the 50 mg pocket."""
    label = shared_external / "barcodes" / "fda-spl-viagra" / "viagra-11.jpg"
    formulary = packages["viagra_formulary"]
    right = adc("verify", label, "--ndc", "0069-4200-30", "--formulary", formulary, "--json")
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["verdict"] == "match"
    wrong = adc("verify", label, "--ndc", "0069-4210-30", "--formulary", formulary, "--json")
    assert wrong.returncode == 1
    document = json.loads(wrong.stdout)
    assert document["verdict"] == "wrong_strength_or_package" and document["scanned"]["strength"] == "25 mg"
