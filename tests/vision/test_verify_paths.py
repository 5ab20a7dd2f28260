"""The hand scanner and the camera reach the same verdict for the same package: ``check_package`` on a scanned line
and on the symbols decoded from a photograph of that package, against the seeded store's formulary."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from controller.domain.clock import FixedClock
from controller.domain.package_verification import Verdict
from controller.engine.package_check import PackageCheck, PackageReading, check_package, read_package
from controller.fsm.workflows.restock import ScanVerdict
from controller.store.cabinet_store import CabinetStore
from controller.store.database import Database
from controller.store.ledger import Ledger
from controller.vision.decode import decode
from firmware_protocols.scanner import Scan
from firmware_protocols.scanner.codec import parse_line
from simulators.scene.barcodes import BarcodeKind
from simulators.scene.packages import DRUGS, Conditions, LabelSpec, Pose, render_package
from tests.engine.pharmacy_rig import seed
from tests.engine.rig import CABINET, HEPARIN

TODAY = date(2026, 11, 25)
HEPARIN_5K = next(d for d in DRUGS if d.ndc == "72603-456-25")
HEPARIN_10K = next(d for d in DRUGS if d.ndc == "0409-1316-32")


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


def store(db: Database) -> CabinetStore:
    """The cabinet's store as the engine reads it (``check_package`` takes its reader)."""
    clock = FixedClock(datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC))
    return CabinetStore(db, Ledger(CABINET, clock, is_simulator=True))


def checks(db: Database, label: LabelSpec) -> tuple[PackageCheck, PackageCheck]:
    package = render_package(label, Pose(angle_deg=-31.0, module_px=3.0, perspective=0.03), Conditions(noise_sigma=4.0),
                             seed=2)  # fmt: skip
    assert package.truth.text is not None and package.truth.symbology_id is not None
    line = parse_line(package.truth.symbology_id.encode("ascii") + package.truth.text.encode("ascii"))
    assert isinstance(line, Scan)
    camera = PackageReading.from_symbols(decode(package.image).symbols)
    with store(db).read() as reader:
        pocket_item = reader.medication(HEPARIN)
        assert pocket_item is not None
        by_scanner = check_package(reader, read_package(line), pocket_item, today=TODAY)
        by_camera = check_package(reader, camera, pocket_item, today=TODAY)
    return by_scanner, by_camera


@pytest.mark.parametrize(
    ("label", "scan_verdict", "verdict"),
    [
        (LabelSpec(HEPARIN_5K, "HP7", date(2027, 8, 31), "S01", BarcodeKind.GS1_DATAMATRIX, day_zero=True),
         ScanVerdict.MATCH, Verdict.MATCH),
        (LabelSpec(HEPARIN_10K, "HX1", date(2027, 12, 31), "S02", BarcodeKind.GS1_DATAMATRIX, serial_first=True),
         ScanVerdict.WRONG_ITEM, Verdict.WRONG_STRENGTH_OR_PACKAGE),
        (LabelSpec(HEPARIN_5K, "OLD9", date(2026, 10, 31), "S03", BarcodeKind.GS1_128), ScanVerdict.MATCH,
         Verdict.EXPIRED),
        (LabelSpec(HEPARIN_5K, "L", date(2027, 1, 31), "S04", BarcodeKind.UPC_A), ScanVerdict.MATCH, Verdict.MATCH),
    ],
    ids=["match, day 00", "heparin 10,000 into the 5,000 pocket", "expired GS1-128", "UPC-A"],
)  # fmt: skip
def test_scanner_and_camera_agree(
    seeded: Database, label: LabelSpec, scan_verdict: ScanVerdict, verdict: Verdict
) -> None:
    by_scanner, by_camera = checks(seeded, label)
    for check in (by_scanner, by_camera):
        assert check.verdict is scan_verdict
        assert check.verification is not None and check.verification.verdict is verdict
    assert by_scanner.view() == by_camera.view()
    assert by_camera.package().ndc == label.ndc10


def test_camera_with_nothing_decoded_is_unreadable(seeded: Database) -> None:
    reading = PackageReading.from_symbols(())
    with store(seeded).read() as reader:
        pocket_item = reader.medication(HEPARIN)
        assert pocket_item is not None
        check = check_package(reader, reading, pocket_item, today=TODAY)
    assert check.verdict is ScanVerdict.UNREADABLE and check.view()["problem"] == "vision.no_symbol"
