"""What a scanned or photographed package is, and its verdict for a pocket: the engine's side of package checks.

Responsible for: turning a hand-scanner ``Scan`` or the camera's decoded symbols into a ``PackageReading``, and
judging it against a pocket's item with the database's formulary and quarantine list. The parsing (GS1 element
strings via biip, dropped group separators, day 00, UPC-A / GTIN-14 to NDC10) is ``controller.domain.package_label``
and the verdict (match, wrong drug, wrong strength or package, expired, short-dated, quarantined, not an NDC,
unreadable) is ``controller.domain.package_verification``: both paths share them, so a scanner and a camera give
the same verdict for the same package. ``PackageCheck.verdict`` keeps the restock machine's coarser
``ScanVerdict`` (match / wrong item / not an NDC / unreadable, with expired, short-dated and quarantined as flags);
``PackageCheck.verification`` holds the full verdict.

Not responsible for: refusing anything (the restock and fill workflows do), reading the scanner or the camera (the
caller awaits them), or writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from controller.domain.medication import Medication
from controller.domain.package_label import LabelProblem, LabelStatus, PackageLabel, read_label
from controller.domain.package_verification import PackageVerification, Verdict, choose_label, verify_package
from controller.fsm.workflows.restock import PackageScan, ScanVerdict
from controller.store.cabinet_store import CabinetReader
from controller.vision.symbols import DecodedSymbol
from firmware_protocols.scanner import Scan

_SCAN_VERDICT = {
    Verdict.MATCH: ScanVerdict.MATCH,
    Verdict.EXPIRED: ScanVerdict.MATCH,  # the right item; the restock machine refuses the lot by its flag
    Verdict.SHORT_DATED: ScanVerdict.MATCH,
    Verdict.QUARANTINED: ScanVerdict.MATCH,
    Verdict.WRONG_DRUG: ScanVerdict.WRONG_ITEM,
    Verdict.WRONG_STRENGTH_OR_PACKAGE: ScanVerdict.WRONG_ITEM,
    Verdict.NOT_AN_NDC: ScanVerdict.NOT_AN_NDC,
    Verdict.UNREADABLE: ScanVerdict.UNREADABLE,
}


@dataclass(frozen=True, slots=True)
class PackageReading:
    """What the barcode says, before any look-up. ``problem`` (a catalogue code) is set when no NDC could be read,
    with ``verdict`` saying whether the code was damaged (unreadable) or simply carries no NDC."""

    text: str
    symbology: str
    ndc10: str | None = None
    gtin: str | None = None
    lot_number: str | None = None
    expiry: date | None = None
    serial: str | None = None
    verdict: ScanVerdict | None = None  # None: an NDC was read; the item look-up decides
    problem: str | None = None
    label: PackageLabel | None = None  # the parsed barcode; None only when nothing was decoded

    @classmethod
    def from_label(cls, label: PackageLabel) -> PackageReading:
        verdict = {
            LabelStatus.NDC: None,
            LabelStatus.NOT_AN_NDC: ScanVerdict.NOT_AN_NDC,
            LabelStatus.UNREADABLE: ScanVerdict.UNREADABLE,
        }[label.status]
        problem = label.problem.code if label.problem is not None else None
        return cls(label.text, label.symbology_id, label.ndc10, label.gtin, label.lot, label.expiry, label.serial,
                   verdict, problem, label)  # fmt: skip

    @classmethod
    def from_symbol(cls, symbol: DecodedSymbol) -> PackageReading:
        """A symbol the camera decoded. The decoder keeps every group separator, so a GS1 string without one is
        read as it is."""
        return cls.from_label(_label_of(symbol))

    @classmethod
    def from_symbols(cls, symbols: Sequence[DecodedSymbol]) -> PackageReading:
        """Every symbol the camera saw on one package: they must agree on the NDC (``vision.conflicting_symbols``
        otherwise); the one with lot and expiry is read."""
        chosen = choose_label([_label_of(symbol) for symbol in symbols])
        if chosen is None:
            return cls("", "", verdict=ScanVerdict.UNREADABLE, problem="vision.no_symbol")
        if isinstance(chosen, PackageLabel):
            return cls.from_label(chosen)
        first = chosen.labels[0]
        conflict = LabelProblem(LabelStatus.UNREADABLE, "vision.conflicting_symbols",
                                f"the package's barcodes name different NDCs: {', '.join(chosen.ndc10s)}")  # fmt: skip
        return cls(first.text, first.symbology_id, verdict=ScanVerdict.UNREADABLE, problem=conflict.code,
                   label=PackageLabel(first.text, first.symbology_id, problem=conflict))  # fmt: skip

    def as_label(self) -> PackageLabel | None:
        """The parsed barcode; rebuilt from the fields for a reading made by hand (older callers)."""
        if self.label is not None or not self.text:
            return self.label
        problem = None
        if self.verdict is not None:
            status = LabelStatus.NOT_AN_NDC if self.verdict is ScanVerdict.NOT_AN_NDC else LabelStatus.UNREADABLE
            code = self.problem or (
                "identifier.not_an_ndc" if status is LabelStatus.NOT_AN_NDC else "identifier.bad_gs1"
            )
            problem = LabelProblem(status, code, f"barcode {self.text!r} carries no readable NDC ({code})")
        return PackageLabel(self.text, self.symbology, self.gtin, self.ndc10, self.lot_number, self.expiry,
                            self.serial, problem=problem)  # fmt: skip


def _label_of(symbol: DecodedSymbol) -> PackageLabel:
    return read_label(symbol.text, symbol.symbology_id, is_gs1=symbol.is_gs1, separators_kept=True)


@dataclass(frozen=True, slots=True)
class PackageCheck:
    """A reading judged against a pocket's item on ``today``."""

    reading: PackageReading
    verdict: ScanVerdict
    item_id: str | None = None  # the item the package is, when the NDC is on the formulary
    expired: bool = False
    short_dated: bool = False
    quarantined: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    verification: PackageVerification | None = None

    def package(self, units: int = 1) -> PackageScan:
        r = self.reading
        return PackageScan(self.verdict, r.ndc10, r.lot_number, r.expiry, r.serial, units)

    def view(self) -> dict[str, Any]:
        r = self.reading
        v = self.verification
        return {
            "verdict": self.verdict.value,
            "result": v.verdict.value if v else None,
            "reason": v.reason if v else None,
            "ndc10": r.ndc10,
            "gtin": r.gtin,
            "scanned_item": self.item_id,
            "lot": r.lot_number,
            "expiry": r.expiry.isoformat() if r.expiry else None,
            "serial": r.serial,
            "expired": self.expired,
            "short_dated": self.short_dated,
            "quarantined": self.quarantined,
            "problem": r.problem,
        }


def read_package(scan: Scan) -> PackageReading:
    """The NDC, lot, expiry and serial a scan carries (never raises for bad input: the verdict says why). A scanner
    may have dropped the group separators, so separator-less GS1 text is read only when unambiguous."""
    return PackageReading.from_label(read_label(scan.text, scan.symbology_id, is_gs1=scan.is_gs1))


def check_package(
    reader: CabinetReader,
    reading: PackageReading,
    pocket_item: Medication,
    *,
    today: date,
    short_dated_warning: timedelta = timedelta(days=30),
    pocket_id: str | None = None,
) -> PackageCheck:
    """The verdict of ``reading`` for a pocket holding ``pocket_item``."""
    verification = verify_package(
        reading.as_label(),
        pocket_item,
        find_item=reader.medication_by_ndc,
        is_quarantined=lambda item, lot: reader.is_quarantined(item.id, lot, pocket_id),
        today=today,
        short_dated_warning=short_dated_warning,
    )
    scanned = verification.scanned
    details: dict[str, Any] = {}
    if reading.ndc10 is not None and verification.label is not None and verification.label.ndc10 is not None:
        details = {"on_formulary": scanned is not None}
        if scanned is not None:
            details["scanned_name"] = scanned.display_name
    return PackageCheck(
        reading,
        _SCAN_VERDICT[verification.verdict],
        item_id=scanned.id if scanned is not None else None,
        expired=verification.expired,
        short_dated=verification.short_dated,
        quarantined=verification.quarantined,
        details=details,
        verification=verification,
    )
