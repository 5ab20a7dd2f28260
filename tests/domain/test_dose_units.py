"""The number of dispensing units an order's dose needs, from the demo formulary's strength and package text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from controller.domain.dose_units import amount_per_unit, units_for_dose
from controller.domain.patients import Order, OrderStatus
from controller.store.formulary_file import load_formulary

FORMULARY = {e.medication.id: e.medication for e in load_formulary()}


def _order(item: str, dose: str, unit: str) -> Order:
    return Order("O", "P", item, Decimal(dose), unit, "IV", "q4h", OrderStatus.ACTIVE, True)


@pytest.mark.parametrize(
    ("item", "dose", "unit", "units"),
    [
        ("MORPHINE-4MG-ML-CARP", "4", "mg", 1),  # 4 mg/mL in a 1 mL cartridge
        ("MORPHINE-4MG-ML-CARP", "6", "mg", 2),
        ("HYDROMORPHONE-1MG-ML-SYR", "0.5", "mg", 1),  # a part dose is one syringe; the rest is wasted
        ("FENTANYL-50MCG-ML-2ML", "100", "mcg", 1),  # (100 mcg/2 mL) per vial
        ("FENTANYL-50MCG-ML-2ML", "0.15", "mg", 2),  # mg ordered, mcg stocked
        ("ACETAMINOPHEN-325MG-TAB", "650", "mg", 2),
        ("OXYCODONE-5MG-TAB", "10", "mg", 2),
        ("CEFTRIAXONE-2G-VIAL", "1", "g", 1),
        ("HEPARIN-5000U-ML-1ML", "5000", "units", 1),
        ("KCL-2MEQ-ML-10ML-CONC", "40", "mEq", 2),
        ("OXYCODONE-5MG-TAB", "2", "tablet", 2),  # ordered in dispensing units
        ("HYDROMORPHONE-1MG-ML-SYR", "2", "mL", None),  # a volume order: not read as units
        ("HYDROCODONE-APAP-5-325-TAB", "5", "mg", None),  # a combination tablet: not capped by a number
        ("ACETAMINOPHEN-325MG-TAB", "650", "units", None),  # units that do not match the strength
    ],
)
def test_units_for_dose(item: str, dose: str, unit: str, units: int | None) -> None:
    assert units_for_dose(_order(item, dose, unit), FORMULARY[item]) == units


def test_every_single_ingredient_item_is_read() -> None:
    """Every formulary strength is read except combinations ("5 mg / 325 mg") and percentages ("5%")."""
    unread = [
        m.id
        for m in FORMULARY.values()
        if amount_per_unit(m) is None and "/" not in m.strength.split("(")[0] and "%" not in m.strength
    ]
    assert unread == []
