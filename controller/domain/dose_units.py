"""How many dispensing units (tablets, vials, syringes) an order's dose needs: the cap on a profiled pull.

Responsible for: reading the amount one dispensing unit holds from the formulary's strength and package text
("5 mg" tablet; "4 mg/mL" in a "1 mL Carpuject cartridge"; "50 mcg/mL (100 mcg/2 mL)" vial; "10 mg" powder vial),
converting mass units (g, mg, mcg) and matching units/mEq, and rounding the dose up to whole units (0.5 mg from a
1 mg syringe is one syringe; 650 mg of a 325 mg tablet is two).

Not responsible for: clinical dose checking. When the strength cannot be read unambiguously (a combination tablet
such as "5 mg / 325 mg", a percentage) or the order's unit does not match it, the answer is None and the pull is
not capped by a number; the order still has to be active and verified.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from controller.domain.medication import Medication
from controller.domain.patients import Order

# unit -> (family, factor to the family's base unit)
_UNITS: dict[str, tuple[str, Decimal]] = {
    "g": ("mass", Decimal(1_000_000)),
    "mg": ("mass", Decimal(1_000)),
    "mcg": ("mass", Decimal(1)),
    "microgram": ("mass", Decimal(1)),
    "unit": ("units", Decimal(1)),
    "units": ("units", Decimal(1)),
    "meq": ("meq", Decimal(1)),
    "ml": ("volume", Decimal(1)),
}
_NUMBER = r"(\d[\d,]*(?:\.\d+)?)"
_AMOUNT = re.compile(_NUMBER + r"\s*(g|mg|mcg|units?|meq)\b", re.IGNORECASE)
_PER_ML = re.compile(_NUMBER + r"\s*(g|mg|mcg|units?|meq)\s*/\s*mL\b", re.IGNORECASE)
_PER_PACKAGE = re.compile(r"\(\s*" + _NUMBER + r"\s*(g|mg|mcg|units?|meq)\s*/\s*" + _NUMBER + r"\s*mL\s*\)",
                          re.IGNORECASE)  # fmt: skip
_VOLUME = re.compile(_NUMBER + r"\s*mL\b", re.IGNORECASE)


def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def _base(amount: Decimal, unit: str) -> tuple[str, Decimal] | None:
    known = _UNITS.get(unit.lower())
    if known is None:
        return None
    family, factor = known
    return family, amount * factor


def amount_per_unit(medication: Medication) -> tuple[str, Decimal] | None:
    """(family, amount in the family's base unit) one dispensing unit holds, or None when it is not clear."""
    strength = medication.strength
    if "/" in strength and not _PER_ML.search(strength):
        return None  # a combination ("5 mg / 325 mg") or a ratio this reader does not know
    package = _PER_PACKAGE.search(strength)
    if package is not None:
        return _base(_number(package.group(1)), package.group(2))
    per_ml = _PER_ML.search(strength)
    if per_ml is not None:
        volume = _VOLUME.search(medication.package)
        if volume is None:
            return None  # a concentration without the package's volume
        concentration = _base(_number(per_ml.group(1)), per_ml.group(2))
        if concentration is None:
            return None
        return concentration[0], concentration[1] * _number(volume.group(1))
    amounts = _AMOUNT.findall(strength)
    if len(amounts) != 1:
        return None
    return _base(_number(amounts[0][0]), amounts[0][1])


def units_for_dose(order: Order, medication: Medication) -> int | None:
    """Whole dispensing units the order's one dose needs, rounded up; None when it cannot be worked out."""
    try:
        dose = Decimal(order.dose_amount)
    except (InvalidOperation, TypeError):
        return None
    if dose <= 0:
        return None
    unit = order.dose_unit.strip().lower()
    if unit in (medication.unit.lower(), medication.unit.lower() + "s", "each", "ea"):
        return math.ceil(dose)
    ordered = _base(dose, unit)
    held = amount_per_unit(medication)
    if ordered is None or held is None or ordered[0] != held[0] or held[1] <= 0:
        return None
    return max(1, math.ceil(ordered[1] / held[1]))
