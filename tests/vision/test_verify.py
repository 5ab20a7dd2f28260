"""Package verification: every verdict (match, wrong drug, wrong strength or package, expired, short-dated,
quarantined, not an NDC, unreadable) from barcode texts against the demo formulary, then from rendered package
photographs through the decoder, as the camera path sees them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from controller.domain.medication import Medication
from controller.domain.ndc import Ndc, gtin14_from_ndc, upca_from_ndc
from controller.domain.package_label import PackageLabel, read_label
from controller.domain.package_verification import PackageVerification, Verdict, verify_labels, verify_package
from controller.store.formulary_file import load_formulary
from controller.vision.decode import decode
from simulators.scene.barcodes import BarcodeKind
from simulators.scene.packages import DRUGS, Conditions, Drug, LabelSpec, Pose, render_package

TODAY = date(2026, 11, 25)
FORMULARY = [entry.medication for entry in load_formulary()]
BY_NDC10 = {n.ndc10: m for m in FORMULARY for n in m.all_ndcs if n.is_ten_digit}
HEPARIN_5000 = next(m for m in FORMULARY if m.id == "HEPARIN-5000U-ML-1ML")
RECALLED = {"RECALL1"}


def gs1(ndc: str, lot: str = "L1", expiry: str = "271231", serial: str = "S1") -> PackageLabel:
    return read_label(f"01{gtin14_from_ndc(Ndc.parse(ndc))}17{expiry}10{lot}\x1d21{serial}", "]d2")


def verify(label: PackageLabel | None, expected: Medication = HEPARIN_5000) -> PackageVerification:
    return verify_package(
        label,
        expected,
        find_item=BY_NDC10.get,
        is_quarantined=lambda _item, lot: lot in RECALLED,
        today=TODAY,
        short_dated_warning=timedelta(days=30),
    )


CASES = [
    # (name, label, verdict, code, scanned item)
    ("primary NDC", gs1("72603-456-25"), Verdict.MATCH, None, "HEPARIN-5000U-ML-1ML"),
    ("alternate NDC, UPC-A", read_label(upca_from_ndc(Ndc.parse("72603-456-01")), "]E0"), Verdict.MATCH, None,
     "HEPARIN-5000U-ML-1ML"),
    ("heparin 10,000 units/mL into the 5,000 pocket", gs1("0409-1316-32"), Verdict.WRONG_STRENGTH_OR_PACKAGE,
     "inventory.strength_or_package_mismatch", "HEPARIN-10000U-ML-CARP"),
    ("heparin premixed bag (diluent aside, same drug)", gs1("0409-7650-62"), Verdict.WRONG_STRENGTH_OR_PACKAGE,
     "inventory.strength_or_package_mismatch", "HEPARIN-25000U-250ML-BAG"),
    ("morphine", gs1("0409-1891-01"), Verdict.WRONG_DRUG, "inventory.item_mismatch", "MORPHINE-4MG-ML-CARP"),
    ("NDC not on the formulary", read_label(upca_from_ndc(Ndc.parse("0002-1433-80")), "]E0"), Verdict.WRONG_DRUG,
     "inventory.item_mismatch", None),
    ("expired", gs1("72603-456-25", expiry="261031"), Verdict.EXPIRED, "workflow.lot_expired",
     "HEPARIN-5000U-ML-1ML"),
    ("short-dated", gs1("72603-456-25", expiry="261215"), Verdict.SHORT_DATED, "workflow.lot_short_dated",
     "HEPARIN-5000U-ML-1ML"),
    ("recalled lot", gs1("72603-456-25", lot="RECALL1"), Verdict.QUARANTINED, "quarantine.lot_quarantined",
     "HEPARIN-5000U-ML-1ML"),
    ("groceries", read_label("4006381333931", "]E0"), Verdict.NOT_AN_NDC, "identifier.not_an_ndc", None),
    ("nothing decoded", None, Verdict.UNREADABLE, "vision.no_symbol", None),
    ("bad check digit", read_label(upca_from_ndc(Ndc.parse("72603-456-25"))[:-1] + "0", "]E0"), Verdict.UNREADABLE,
     "identifier.bad_check_digit", None),
    ("separator dropped, two readings", read_label(f"01{gtin14_from_ndc(Ndc.parse('72603-456-25'))}17271231"
     "10AB21CD", "]d2"), Verdict.UNREADABLE, "identifier.ambiguous_gs1", None),
]  # fmt: skip


@pytest.mark.parametrize(("label", "verdict", "code", "item"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdicts(label: PackageLabel | None, verdict: Verdict, code: str | None, item: str | None) -> None:
    result = verify(label)
    assert result.verdict is verdict
    assert result.code == code
    assert (result.scanned.id if result.scanned else None) == item
    assert result.reason


def test_every_verdict_is_covered() -> None:
    assert {c[2] for c in CASES} == set(Verdict)


def test_identity_comes_before_the_lot() -> None:
    """A wrong drug that is also expired is reported as the wrong drug, with the expiry flagged."""
    result = verify_package(gs1("0409-1316-32", expiry="251031"), HEPARIN_5000, find_item=BY_NDC10.get,
                            is_quarantined=lambda _i, _l: False, today=TODAY)  # fmt: skip
    assert result.verdict is Verdict.WRONG_STRENGTH_OR_PACKAGE and result.expired


def test_quarantine_comes_before_expiry() -> None:
    result = verify(gs1("72603-456-25", lot="RECALL1", expiry="251031"))
    assert result.verdict is Verdict.QUARANTINED and result.expired and result.quarantined


def test_scanned_ndc_is_segmented_by_the_formulary() -> None:
    result = verify(gs1("0409-1316-32"))
    view = result.view()
    assert view["ndc10"] == "0409131632"
    assert view["scanned"]["ndc"] == "0409-1316-32" and view["scanned"]["ndc11"] == "00409131632"
    assert (view["lot"], view["expiry"], view["serial"]) == ("L1", "2027-12-31", "S1")


def test_barcodes_that_disagree_are_unreadable() -> None:
    labels = [gs1("72603-456-25"), read_label(upca_from_ndc(Ndc.parse("0409-1316-32")), "]E0")]
    result = verify_labels(labels, HEPARIN_5000, find_item=BY_NDC10.get, is_quarantined=lambda _i, _l: False,
                           today=TODAY)  # fmt: skip
    assert (result.verdict, result.code) == (Verdict.UNREADABLE, "vision.conflicting_symbols")


def test_richest_of_agreeing_barcodes_is_judged() -> None:
    labels = [read_label(upca_from_ndc(Ndc.parse("72603-456-25")), "]E0"), gs1("72603-456-25", expiry="261031")]
    result = verify_labels(labels, HEPARIN_5000, find_item=BY_NDC10.get, is_quarantined=lambda _i, _l: False,
                           today=TODAY)  # fmt: skip
    assert result.verdict is Verdict.EXPIRED  # the UPC-A alone has no expiry; the DataMatrix does


# -- from photographs ---------------------------------------------------------------------------------------------

HEPARIN_10K = next(d for d in DRUGS if d.ndc == "0409-1316-32")
HEPARIN_5K = next(d for d in DRUGS if d.ndc == "72603-456-25")


@pytest.mark.parametrize(
    ("drug", "kind", "expiry", "lot", "verdict"),
    [
        (HEPARIN_5K, BarcodeKind.GS1_DATAMATRIX, date(2028, 3, 31), "HP7731", Verdict.MATCH),
        (HEPARIN_10K, BarcodeKind.GS1_DATAMATRIX, date(2028, 3, 31), "HX1", Verdict.WRONG_STRENGTH_OR_PACKAGE),
        (HEPARIN_5K, BarcodeKind.GS1_128, date(2026, 10, 31), "OLD9", Verdict.EXPIRED),
        (HEPARIN_5K, BarcodeKind.GS1_DATAMATRIX, date(2028, 3, 31), "RECALL1", Verdict.QUARANTINED),
        (HEPARIN_10K, BarcodeKind.UPC_A, date(2028, 3, 31), "X", Verdict.WRONG_STRENGTH_OR_PACKAGE),
        (HEPARIN_5K, BarcodeKind.NONE, date(2028, 3, 31), "X", Verdict.UNREADABLE),
    ],
)
def test_verdicts_from_rendered_packages(
    drug: Drug, kind: BarcodeKind, expiry: date, lot: str, verdict: Verdict
) -> None:
    label = LabelSpec(drug, lot, expiry, "SN00017", kind)
    scene = render_package(label, Pose(angle_deg=23.0, module_px=3.2, perspective=0.04), Conditions(noise_sigma=3.0),
                           seed=5)  # fmt: skip
    symbols = decode(scene.image).symbols
    labels = [read_label(s.text, s.symbology_id, is_gs1=s.is_gs1, separators_kept=True) for s in symbols]
    result = verify_labels(labels, HEPARIN_5000, find_item=BY_NDC10.get, is_quarantined=lambda _i, lot: lot in RECALLED,
                           today=TODAY)  # fmt: skip
    assert result.verdict is verdict
    if kind in (BarcodeKind.GS1_DATAMATRIX, BarcodeKind.GS1_128):
        assert result.label is not None and (result.label.lot, result.label.expiry) == (lot, expiry)
