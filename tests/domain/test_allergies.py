"""Allergy warnings: by name, by drug class with cross-sensitivity, and no false alarm on unrelated drugs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.domain.allergies import AllergyBasis, allergy_conflicts
from controller.store.formulary_file import load_formulary

FORMULARY = {e.medication.id: e.medication for e in load_formulary()}


# Drugs the demo formulary lacks, made from an existing item so every case runs.
_TEMPLATE = next(iter(FORMULARY.values()))
for _generic in ("amoxicillin", "penicillin G potassium", "sulfamethoxazole and trimethoprim"):
    _id = _generic.split()[0].upper() + "-TEST"
    FORMULARY[_id] = replace(_TEMPLATE, id=_id, generic_name=_generic, display_name=_generic, brand_name="")


def _by_generic(word: str) -> list[str]:
    return [m.id for m in FORMULARY.values() if word in m.generic_name.lower()]


@pytest.mark.parametrize(
    ("allergy", "generic_word", "basis"),
    [
        ("codeine", "codeine", AllergyBasis.NAME),
        ("Codeine", "morphine", AllergyBasis.CLASS),
        ("codeine", "hydromorphone", AllergyBasis.CLASS),
        ("penicillins", "penicillin", AllergyBasis.NAME),
        ("penicillin", "amoxicillin", AllergyBasis.CLASS),
        ("sulfa drugs", "sulfamethoxazole", AllergyBasis.CLASS),
        ("NSAIDs", "ibuprofen", AllergyBasis.CLASS),
        ("aspirin", "meloxicam", AllergyBasis.CLASS),
        ("heparin", "enoxaparin", AllergyBasis.CLASS),
        ("cephalosporin", "cephalexin", AllergyBasis.CLASS),
    ],
)
def test_allergy_touches_the_drug(allergy: str, generic_word: str, basis: AllergyBasis) -> None:
    ids = _by_generic(generic_word)
    assert ids, generic_word
    for item_id in ids:
        conflicts = allergy_conflicts([allergy], FORMULARY[item_id])
        assert len(conflicts) == 1, item_id
        assert conflicts[0].allergen == allergy
        assert conflicts[0].basis is basis
        assert FORMULARY[item_id].display_name in conflicts[0].message(FORMULARY[item_id])


@pytest.mark.parametrize(
    ("allergy", "generic_word"),
    [("penicillin", "ceftriaxone"), ("codeine", "fentanyl"), ("sulfa drugs", "famotidine"), ("latex", "morphine")],
)
def test_unrelated_drugs_give_no_warning(allergy: str, generic_word: str) -> None:
    for item_id in _by_generic(generic_word):
        assert allergy_conflicts([allergy], FORMULARY[item_id]) == ()


def test_no_allergies_no_warnings() -> None:
    assert all(allergy_conflicts([], m) == () for m in FORMULARY.values())
    assert all(allergy_conflicts(["", "  "], m) == () for m in FORMULARY.values())
