"""Is this package the item the pocket holds? One verdict from a package's barcodes, the formulary and the date.

Responsible for the verdict, exactly one of:

- ``match``: the pocket's item (its primary NDC or a linked alternate), in date, lot not quarantined;
- ``wrong_drug``: another drug, or an NDC the formulary does not know;
- ``wrong_strength_or_package``: the same drug (generic name, diluent aside) in another strength or package, the
  2006 heparin mix-up;
- ``expired``, ``short_dated`` (expires within ``short_dated_warning``), ``quarantined`` (the lot is recalled or
  held): the right item whose lot may not (or should not without a warning) be stocked;
- ``not_an_ndc``: a sound barcode that carries no NDC;
- ``unreadable``: nothing decoded, a failed check digit, a GS1 string that does not parse or is ambiguous, or
  barcodes on one package that name different NDCs;

with the details (NDC10, the NDC as the formulary writes it, GTIN, lot, expiry, serial, the scanned item) and the
catalogue code and sentence of the rule that refused it. Identity comes first: a wrong drug is reported as wrong
even when it is also expired.

Pure: the formulary look-up and the quarantine question are callables, so the scanner path, the camera path and the
CLI (which has no database) reach the same verdict from the same code.

Not responsible for: decoding images or reading scans (``package_label``), or refusing anything (the restock and
fill workflows act on the verdict).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from controller.domain.medication import Medication
from controller.domain.ndc import Ndc
from controller.domain.package_label import LabelStatus, PackageLabel

FindItem = Callable[[str], Medication | None]  # NDC10 digits -> the formulary item carrying them (alternates too)
IsQuarantined = Callable[[Medication, str], bool]  # (item, lot) -> recalled or held

DEFAULT_SHORT_DATED_WARNING = timedelta(days=30)


class Verdict(StrEnum):
    MATCH = "match"
    WRONG_DRUG = "wrong_drug"
    WRONG_STRENGTH_OR_PACKAGE = "wrong_strength_or_package"
    EXPIRED = "expired"
    SHORT_DATED = "short_dated"
    QUARANTINED = "quarantined"
    NOT_AN_NDC = "not_an_ndc"
    UNREADABLE = "unreadable"

    @property
    def is_expected_item(self) -> bool:
        """The package is the pocket's item (whatever its lot's state)."""
        return self in (Verdict.MATCH, Verdict.EXPIRED, Verdict.SHORT_DATED, Verdict.QUARANTINED)


_CODES = {
    Verdict.MATCH: None,
    Verdict.WRONG_DRUG: "inventory.item_mismatch",
    Verdict.WRONG_STRENGTH_OR_PACKAGE: "inventory.strength_or_package_mismatch",
    Verdict.EXPIRED: "workflow.lot_expired",
    Verdict.SHORT_DATED: "workflow.lot_short_dated",
    Verdict.QUARANTINED: "quarantine.lot_quarantined",
}


@dataclass(frozen=True, slots=True)
class PackageVerification:
    verdict: Verdict
    expected: Medication
    label: PackageLabel | None  # the barcode the verdict rests on; None when nothing decoded
    scanned: Medication | None = None  # the formulary item the package is, when its NDC is known
    scanned_ndc: Ndc | None = None  # the scanned NDC as the formulary writes it (segmentation resolved)
    expired: bool = False
    short_dated: bool = False
    quarantined: bool = False
    code: str | None = None  # catalogue code of the rule that refused (or warned); None for a match
    reason: str = ""

    def view(self) -> dict[str, Any]:
        label = self.label
        return {
            "verdict": self.verdict.value,
            "code": self.code,
            "reason": self.reason,
            "expected": _item_view(self.expected, self.expected.ndc),
            "scanned": _item_view(self.scanned, self.scanned_ndc) if self.scanned is not None else None,
            "ndc10": label.ndc10 if label else None,
            "gtin": label.gtin if label else None,
            "lot": label.lot if label else None,
            "expiry": label.expiry.isoformat() if label and label.expiry else None,
            "serial": label.serial if label else None,
            "expired": self.expired,
            "short_dated": self.short_dated,
            "quarantined": self.quarantined,
        }


def _item_view(item: Medication | None, ndc: Ndc | None) -> dict[str, str | None] | None:
    if item is None:
        return None
    return {
        "item_id": item.id,
        "name": item.display_name,
        "strength": item.strength,
        "ndc": str(ndc) if ndc is not None else None,
        "ndc11": ndc.ndc11 if ndc is not None and ndc.is_ten_digit else None,
    }


def verify_package(
    label: PackageLabel | None,
    expected: Medication,
    *,
    find_item: FindItem,
    is_quarantined: IsQuarantined,
    today: date,
    short_dated_warning: timedelta = DEFAULT_SHORT_DATED_WARNING,
) -> PackageVerification:
    """The verdict for one package's barcode against the pocket's item ``expected``."""
    if label is None:
        return PackageVerification(
            Verdict.UNREADABLE, expected, None, code="vision.no_symbol",
            reason="no barcode was read from the package; present it again, barcode towards the camera",
        )  # fmt: skip
    expired = label.expiry is not None and label.expiry < today
    short = label.expiry is not None and not expired and label.expiry - today <= short_dated_warning
    if label.problem is not None or label.ndc10 is None:
        problem = label.problem
        verdict = Verdict.NOT_AN_NDC if label.status is LabelStatus.NOT_AN_NDC else Verdict.UNREADABLE
        return PackageVerification(
            verdict, expected, label, expired=expired, short_dated=short,
            code=problem.code if problem else "identifier.not_an_ndc",
            reason=problem.detail if problem else "the barcode carries no NDC",
        )  # fmt: skip
    ndc10 = label.ndc10
    scanned = expected if expected.carries_ndc10(ndc10) else find_item(ndc10)
    scanned_ndc = _formulary_ndc(scanned, ndc10) if scanned is not None else None
    quarantined = scanned is not None and bool(label.lot) and is_quarantined(scanned, label.lot or "")
    flags = {"expired": expired, "short_dated": short, "quarantined": quarantined}
    if scanned is None or scanned.id != expected.id:
        verdict, reason = _identity_refusal(expected, scanned, scanned_ndc, ndc10)
        return PackageVerification(
            verdict, expected, label, scanned, scanned_ndc, code=_CODES[verdict], reason=reason, **flags
        )
    verdict, reason = _lot_verdict(
        expected,
        label,
        quarantined=quarantined,
        expired=expired,
        short=short,
        today=today,
        warning=short_dated_warning,
    )
    return PackageVerification(
        verdict, expected, label, scanned, scanned_ndc, code=_CODES[verdict], reason=reason, **flags
    )


def verify_labels(
    labels: Sequence[PackageLabel],
    expected: Medication,
    *,
    find_item: FindItem,
    is_quarantined: IsQuarantined,
    today: date,
    short_dated_warning: timedelta = DEFAULT_SHORT_DATED_WARNING,
) -> PackageVerification:
    """The verdict for a package that showed several barcodes (a carton often has a UPC-A and a DataMatrix): they
    must agree on the NDC; the richest one (lot and expiry) is judged."""
    chosen = choose_label(labels)
    if isinstance(chosen, LabelConflict):
        return PackageVerification(
            Verdict.UNREADABLE, expected, chosen.labels[0], code="vision.conflicting_symbols",
            reason=f"the package's barcodes name different NDCs ({', '.join(chosen.ndc10s)}); it cannot be identified "
            "and must not be stocked",
        )  # fmt: skip
    return verify_package(
        chosen,
        expected,
        find_item=find_item,
        is_quarantined=is_quarantined,
        today=today,
        short_dated_warning=short_dated_warning,
    )


@dataclass(frozen=True, slots=True)
class LabelConflict:
    labels: tuple[PackageLabel, ...]
    ndc10s: tuple[str, ...]


def choose_label(labels: Sequence[PackageLabel]) -> PackageLabel | LabelConflict | None:
    """The label that identifies the package: an NDC-bearing one (GS1 with a lot before a bare UPC-A), else an
    unreadable one (something that may have been an NDC failed), else the first."""
    with_ndc = [label for label in labels if label.ndc10 is not None]
    ndc10s = tuple(sorted({label.ndc10 for label in with_ndc if label.ndc10 is not None}))
    if len(ndc10s) > 1:
        return LabelConflict(tuple(with_ndc), ndc10s)
    if with_ndc:
        return max(with_ndc, key=lambda label: (label.lot is not None, label.expiry is not None, label.is_gs1))
    unreadable = [label for label in labels if label.status is LabelStatus.UNREADABLE]
    if unreadable:
        return unreadable[0]
    return labels[0] if labels else None


def same_drug(a: Medication, b: Medication) -> bool:
    """Same active ingredient: the generic names agree once case, spacing and a diluent ("... in 0.45% sodium
    chloride") are set aside."""
    return _ingredient(a.generic_name) == _ingredient(b.generic_name)


def _ingredient(generic_name: str) -> str:
    name = " ".join(generic_name.casefold().split())
    return re.split(r" in (?=[\d.]+ ?%| ?dextrose| ?sodium chloride| ?water)", name, maxsplit=1)[0]


def _formulary_ndc(item: Medication, ndc10: str) -> Ndc | None:
    return next((n for n in item.all_ndcs if n.is_ten_digit and n.ndc10 == ndc10), None)


def _identity_refusal(
    expected: Medication, scanned: Medication | None, scanned_ndc: Ndc | None, ndc10: str
) -> tuple[Verdict, str]:
    rule = f"the package must be {expected.display_name} ({expected.id}) or one of its linked alternate NDCs"
    if scanned is None:
        return Verdict.WRONG_DRUG, f"{rule}; scanned NDC {ndc10} is not on the formulary"
    shown = str(scanned_ndc) if scanned_ndc is not None else ndc10
    what = f"{scanned.display_name} ({scanned.id}, {scanned.strength}, NDC {shown})"
    if same_drug(scanned, expected):
        return (
            Verdict.WRONG_STRENGTH_OR_PACKAGE,
            f"{rule}; the package is {what}: the same drug in another strength or package "
            f"(pocket: {expected.strength})",
        )
    return Verdict.WRONG_DRUG, f"{rule}; the package is {what}"


def _lot_verdict(
    item: Medication,
    label: PackageLabel,
    *,
    quarantined: bool,
    expired: bool,
    short: bool,
    today: date,
    warning: timedelta,
) -> tuple[Verdict, str]:
    expiry = label.expiry.isoformat() if label.expiry else "?"
    if quarantined:
        return Verdict.QUARANTINED, f"lot {label.lot} of {item.display_name} is quarantined (recall or hold)"
    if expired:
        return Verdict.EXPIRED, f"lot {label.lot} expired on {expiry} (today is {today.isoformat()})"
    if short:
        return (
            Verdict.SHORT_DATED,
            f"lot {label.lot} expires on {expiry}, within the {warning.days}-day short-dated warning",
        )
    return Verdict.MATCH, f"{item.display_name} ({item.id})"


__all__ = [
    "DEFAULT_SHORT_DATED_WARNING",
    "FindItem",
    "IsQuarantined",
    "LabelConflict",
    "PackageVerification",
    "Verdict",
    "choose_label",
    "same_drug",
    "verify_labels",
    "verify_package",
]
