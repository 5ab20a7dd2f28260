"""What a scanned package is: scan → GS1 element string (``biip``) or UPC-A → NDC10 → formulary item → verdict for a
pocket.

Responsible for: reading a ``Scan`` from the scanner driver (a GS1 DataMatrix or GS1-128 with AI 01 GTIN, 17
expiry YYMMDD with day 00 meaning the end of the month, 10 lot, 21 serial; or a bare UPC-A / EAN-13 / GTIN-14),
turning the GTIN or UPC-A into the 10 NDC digits (``controller.domain.ndc``), finding the item by its primary or
an alternate NDC, and the verdict for the pocket's item: match, wrong item (e.g. heparin 10,000 units/mL scanned
into the 5,000 units/mL pocket), not an NDC (a code that reads fine but carries no NDC), unreadable (a damaged or
malformed code: a failed check digit, a GS1 string that does not parse). With it: lot, expiry, serial, expired,
short-dated (``FsmSettings.short_dated_warning``) and quarantined (a recall of that lot, or a hold on it).

Not responsible for: refusing anything (the restock machine refuses what is not a match), reading the scanner
(the caller awaits ``next_scan``), or writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import biip
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.medication import Medication
from controller.domain.ndc import ndc10_from_barcode
from controller.errors import InvalidIdentifierError
from controller.fsm.workflows.restock import PackageScan, ScanVerdict
from controller.store import repositories as repo
from controller.store.engine_state import QUARANTINE_ACTIVE
from controller.store.models import QuarantinedLotRow
from firmware_protocols.scanner import Scan

_GS1_SYMBOLOGIES = ("]d2", "]C1", "]Q3", "]e0", "]J1")


@dataclass(frozen=True, slots=True)
class PackageReading:
    """What the barcode says, before any look-up. ``problem`` is set when no NDC could be read, with ``verdict``
    saying whether the code was damaged (unreadable) or simply carries no NDC."""

    text: str
    symbology: str
    ndc10: str | None = None
    gtin: str | None = None
    lot_number: str | None = None
    expiry: date | None = None
    serial: str | None = None
    verdict: ScanVerdict | None = None  # None: an NDC was read; the item look-up decides
    problem: str | None = None


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

    def package(self, units: int = 1) -> PackageScan:
        r = self.reading
        return PackageScan(self.verdict, r.ndc10, r.lot_number, r.expiry, r.serial, units)

    def view(self) -> dict[str, Any]:
        r = self.reading
        return {
            "verdict": self.verdict.value,
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
    """The NDC, lot, expiry and serial a scan carries (never raises for bad input: the verdict says why)."""
    text = scan.text
    symbology = scan.symbology_id
    if scan.is_gs1 or symbology in _GS1_SYMBOLOGIES:
        return _read_gs1(text, symbology or "]d2")
    digits = text.strip()
    try:
        ndc10 = ndc10_from_barcode(digits)
    except InvalidIdentifierError as error:
        verdict = ScanVerdict.UNREADABLE if error.code == "identifier.bad_check_digit" else ScanVerdict.NOT_AN_NDC
        return PackageReading(text, symbology, verdict=verdict, problem=error.code)
    return PackageReading(text, symbology, ndc10=ndc10, gtin=digits.zfill(14))


def _read_gs1(text: str, symbology: str) -> PackageReading:
    try:
        parsed = biip.parse(symbology + text)
    except biip.ParseError as error:
        return PackageReading(text, symbology, verdict=ScanVerdict.UNREADABLE, problem=str(error)[:200])
    message = parsed.gs1_message
    if message is None:
        problem = (parsed.gs1_message_error or "no GS1 element string")[:200]
        return PackageReading(text, symbology, verdict=ScanVerdict.UNREADABLE, problem=problem)
    values: dict[str, str] = {}
    expiry: date | None = None
    for element in message.element_strings:
        values[element.ai.ai] = element.value
        if element.ai.ai == "17":
            expiry = element.date  # biip reads day 00 as the last day of the month
    gtin = values.get("01")
    lot, serial = values.get("10"), values.get("21")
    if gtin is None:
        return PackageReading(text, symbology, None, None, lot, expiry, serial, ScanVerdict.NOT_AN_NDC, "no AI 01 GTIN")
    try:
        ndc10 = ndc10_from_barcode(gtin)
    except InvalidIdentifierError as error:
        verdict = ScanVerdict.UNREADABLE if error.code == "identifier.bad_check_digit" else ScanVerdict.NOT_AN_NDC
        return PackageReading(text, symbology, None, gtin, lot, expiry, serial, verdict, error.code)
    return PackageReading(text, symbology, ndc10, gtin, lot, expiry, serial)


def is_quarantined(session: Session, item_id: str, lot_number: str, pocket_id: str | None = None) -> bool:
    """An active recall of the item's lot (anywhere), or an active hold of the lot in ``pocket_id``."""
    query = select(QuarantinedLotRow.id).where(
        QuarantinedLotRow.status == QUARANTINE_ACTIVE,
        QuarantinedLotRow.item_id == item_id,
        QuarantinedLotRow.lot_number == lot_number,
    )
    rows = session.execute(query).scalars().all()
    if not rows:
        return False
    if pocket_id is None:
        return True
    held = session.execute(select(QuarantinedLotRow.pocket_id).where(QuarantinedLotRow.id.in_(rows))).scalars()
    return any(p is None or p == pocket_id for p in held)


def check_package(
    session: Session,
    reading: PackageReading,
    pocket_item: Medication,
    *,
    today: date,
    short_dated_warning: timedelta = timedelta(days=30),
    pocket_id: str | None = None,
) -> PackageCheck:
    """The verdict of ``reading`` for a pocket holding ``pocket_item``."""
    expired = reading.expiry is not None and reading.expiry < today
    short = reading.expiry is not None and not expired and reading.expiry - today <= short_dated_warning
    if reading.verdict is not None or reading.ndc10 is None:
        verdict = reading.verdict or ScanVerdict.UNREADABLE
        return PackageCheck(reading, verdict, expired=expired, short_dated=short)
    medication = repo.medication_by_ndc_digits(session, reading.ndc10)
    if medication is None:
        # A valid NDC that is not on the formulary cannot be this pocket's item (nor one of its alternates).
        return PackageCheck(reading, ScanVerdict.WRONG_ITEM, expired=expired, short_dated=short,
                            details={"on_formulary": False})  # fmt: skip
    verdict = ScanVerdict.MATCH if medication.id == pocket_item.id else ScanVerdict.WRONG_ITEM
    quarantined = bool(reading.lot_number) and is_quarantined(
        session, medication.id, reading.lot_number or "", pocket_id
    )
    return PackageCheck(
        reading,
        verdict,
        item_id=medication.id,
        expired=expired,
        short_dated=short,
        quarantined=quarantined,
        details={"on_formulary": True, "scanned_name": medication.display_name},
    )
