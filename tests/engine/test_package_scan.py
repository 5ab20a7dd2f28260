"""Package scan → NDC → formulary verdict, table-driven, including the real GS1 texts of the public barcode
samples (the #794 pharma DataMatrix) and the heparin wrong-strength mix-up."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from controller.domain.clock import FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.engine.package_check import check_package, read_package
from controller.fsm.workflows.restock import ScanVerdict
from controller.store.cabinet_store import CabinetStore
from controller.store.database import Database
from controller.store.ledger import Ledger
from firmware_protocols.scanner import Scan
from firmware_protocols.scanner.codec import parse_line
from tests.engine.pharmacy_rig import gs1, seed, upca
from tests.engine.rig import CABINET, HEPARIN

TODAY = date(2026, 11, 25)


def scan(text: str, symbology: str = "]d2") -> Scan:
    item = parse_line(symbology.encode("ascii") + text.encode("utf-8"))
    assert isinstance(item, Scan)
    return item


CASES = [
    # (name, barcode, symbology, verdict, lot, expiry, serial, expired, short_dated)
    ("primary NDC, GS1", gs1("72603-456-25", "L1", "271231", "S1"), "]d2", ScanVerdict.MATCH, "L1",
     date(2027, 12, 31), "S1", False, False),
    ("alternate NDC, day 00", gs1("72603-456-01", "L2", "270200", "S2"), "]d2", ScanVerdict.MATCH, "L2",
     date(2027, 2, 28), "S2", False, False),
    ("primary NDC, UPC-A", upca("72603-456-25"), "]E0", ScanVerdict.MATCH, None, None, None, False, False),
    ("heparin 10,000 units/mL into the 5,000 pocket", gs1("0409-1316-32", "H9", "271231", "S3"), "]d2",
     ScanVerdict.WRONG_ITEM, "H9", date(2027, 12, 31), "S3", False, False),
    ("heparin 10,000 units/mL UPC-A", upca("0409-1316-32"), "]E0", ScanVerdict.WRONG_ITEM, None, None, None,
     False, False),
    ("valid NDC not on the formulary", upca("0002-1433-80"), "]E0", ScanVerdict.WRONG_ITEM, None, None, None,
     False, False),
    ("expired", gs1("72603-456-25", "L3", "261031", "S4"), "]d2", ScanVerdict.MATCH, "L3", date(2026, 10, 31),
     "S4", True, False),
    ("short-dated", gs1("72603-456-25", "L4", "261215", "S5"), "]d2", ScanVerdict.MATCH, "L4", date(2026, 12, 15),
     "S5", False, True),
    ("EAN-13 groceries", "4006381333931", "]E0", ScanVerdict.NOT_AN_NDC, None, None, None, False, False),
    ("UPC-A bad check digit", upca("72603-456-25")[:-1] + "0", "]E0", ScanVerdict.UNREADABLE, None, None, None,
     False, False),
    ("GS1 garbage", "garbage", "]d2", ScanVerdict.UNREADABLE, None, None, None, False, False),
    ("plain text code", "HelloWorld", "]d1", ScanVerdict.NOT_AN_NDC, None, None, None, False, False),
]  # fmt: skip


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


@pytest.mark.parametrize(
    ("barcode", "symbology", "verdict", "lot", "expiry", "serial", "expired", "short"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_verdicts(
    *,
    seeded: Database,
    clock: FixedClock,
    barcode: str,
    symbology: str,
    verdict: ScanVerdict,
    lot: str | None,
    expiry: date | None,
    serial: str | None,
    expired: bool,
    short: bool,
) -> None:
    store = CabinetStore(seeded, Ledger(CABINET, clock, is_simulator=True))
    with store.read() as reader:
        heparin = reader.medication(HEPARIN)
        assert heparin is not None
        check = check_package(reader, read_package(scan(barcode, symbology)), heparin, today=TODAY)
    assert check.verdict is verdict
    r = check.reading
    assert (r.lot_number, r.expiry, r.serial) == (lot, expiry, serial)
    assert (check.expired, check.short_dated) == (expired, short)


@pytest.mark.parametrize(
    ("path", "gtin", "lot", "expiry", "serial"),
    [
        ("datamatrix-3/#794.txt", "08903819987659", "BNav4Cam2", date(2031, 6, 30), "S1ND6MPPFCGG6B869XES"),
        ("datamatrix-1/gs1-figure-4.15.1-2-32x32.txt", "09504000059101", "1234567p", date(2014, 11, 20),
         "12345678p901"),
    ],
)  # fmt: skip
def test_real_gs1_datamatrix_texts(
    *, shared_external: Path, path: str, gtin: str, lot: str, expiry: date, serial: str
) -> None:
    """Real pharma DataMatrix contents: read field by field; their GTINs are not NDC-bearing (no ``03`` after the
    indicator), so they are not an NDC, and nothing is guessed."""
    text = (shared_external / "barcodes" / path).read_bytes().decode("utf-8")
    reading = read_package(scan(text, "]d2"))
    assert (reading.gtin, reading.lot_number, reading.expiry, reading.serial) == (gtin, lot, expiry, serial)
    assert reading.verdict is ScanVerdict.NOT_AN_NDC and reading.ndc10 is None


def test_real_upca_sample_carries_its_ndc(shared_external: Path) -> None:
    text = (shared_external / "barcodes" / "upca-5" / "03.txt").read_text("utf-8").strip()
    assert read_package(scan(text, "]E0")).ndc10 == "1254770131"
    viagra = (shared_external / "barcodes" / "fda-spl-viagra" / "viagra-11.txt").read_text("utf-8").strip()
    assert read_package(scan(viagra, "]E0")).ndc10 == "0069420030"


def test_a_held_lot_is_flagged_where_it_is_held(seeded: Database, clock: FixedClock) -> None:
    """A recall holds the lot in every pocket; an excursion hold only in its own pocket: the check is made for a
    pocket (``pocket_id``), so the same lot may be held in one pocket and not in another."""
    store = CabinetStore(seeded, Ledger(CABINET, clock, is_simulator=True))
    with store.write() as tx:
        for lot, pocket, reason in (("L7", None, "recall"), ("L8", "D3-P01", "temperature_excursion")):
            record = LedgerRecord(
                event_type=EventType.LOT_QUARANTINED,
                item_id=HEPARIN,
                lot_number=lot,
                pocket_id=pocket,
                reason_code=reason,
                details={"kind": "stock.quarantined"},
            )
            entry = tx.append(record)
            tx.add_hold(item_id=HEPARIN, lot_number=lot, pocket_id=pocket, ndc=None, reason=reason,
                        quarantined_by=None, ledger_seq=entry.seq)  # fmt: skip
    with store.read() as reader:
        heparin = reader.medication(HEPARIN)
        assert heparin is not None

        def held(lot: str, pocket: str) -> bool:
            reading = read_package(scan(gs1("72603-456-25", lot, "271231", "Q1")))
            check = check_package(reader, reading, heparin, today=TODAY, pocket_id=pocket)
            assert check.verdict is ScanVerdict.MATCH  # the right item: the hold is a flag the workflow refuses on
            return check.quarantined

        assert held("L7", "D1-P01") and held("L7", "D3-P01")  # recalled everywhere
        assert held("L8", "D3-P01") and not held("L8", "D1-P01")  # held where the fridge went warm only
        assert not held("L9", "D1-P01")
