"""Does a patient's recorded allergy touch this medication? The warning a cabinet shows before a removal.

Responsible for: matching free-text allergy entries from the ADT feed ("penicillin", "Codeine", "sulfa drugs")
against a medication's generic, brand and display names, directly or through a drug class with known
cross-sensitivity (a penicillin allergy warns on amoxicillin; a codeine allergy on morphine and the other
phenanthrene opioids). A match is a warning for the person at the cabinet, not a refusal: the pharmacist who
verified a profiled order has already weighed it; an override removal must acknowledge it.

Not responsible for: clinical decision support beyond this table (doses, interactions), or storing allergies.
The class table is deliberately short and conservative; a hospital replaces it with its own formulary's classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from controller.domain.medication import Medication


class AllergyBasis(StrEnum):
    NAME = "name"  # the allergen is (part of) the drug's name
    CLASS = "class"  # the allergen's class contains a drug in this medication


@dataclass(frozen=True, slots=True)
class AllergyConflict:
    allergen: str  # as recorded for the patient
    matched: str  # the ingredient or class member found in the medication
    basis: AllergyBasis
    drug_class: str | None = None

    def message(self, medication: Medication) -> str:
        if self.basis is AllergyBasis.NAME:
            return f"patient is allergic to {self.allergen}: {medication.display_name} contains {self.matched}"
        return (
            f"patient is allergic to {self.allergen} ({self.drug_class}): {medication.display_name} contains "
            f"{self.matched}, which may cross-react"
        )


# Allergen words (lower case, as recorded) -> (class name, ingredient words of that class).
_CLASSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "penicillin": (
        "penicillins",
        ("penicillin", "amoxicillin", "ampicillin", "piperacillin", "nafcillin", "oxacillin", "dicloxacillin"),
    ),
    "cephalosporin": ("cephalosporins", ("cephalexin", "cefazolin", "ceftriaxone", "cefepime", "cefuroxime")),
    "sulfa": ("sulfonamide antibiotics", ("sulfamethoxazole", "sulfadiazine", "sulfasalazine")),
    "sulfonamide": ("sulfonamide antibiotics", ("sulfamethoxazole", "sulfadiazine", "sulfasalazine")),
    "codeine": (
        "phenanthrene opioids",
        ("codeine", "morphine", "hydromorphone", "hydrocodone", "oxycodone", "oxymorphone"),
    ),
    "morphine": (
        "phenanthrene opioids",
        ("codeine", "morphine", "hydromorphone", "hydrocodone", "oxycodone", "oxymorphone"),
    ),
    "opioid": (
        "opioids",
        ("codeine", "morphine", "hydromorphone", "hydrocodone", "oxycodone", "oxymorphone", "fentanyl"),
    ),
    "nsaid": ("NSAIDs", ("ibuprofen", "naproxen", "ketorolac", "meloxicam", "aspirin", "diclofenac")),
    "aspirin": ("NSAIDs", ("aspirin", "ibuprofen", "naproxen", "ketorolac", "meloxicam", "diclofenac")),
    "heparin": ("heparins", ("heparin", "enoxaparin", "dalteparin")),
}

# Words an allergy entry carries that say nothing about the drug ("sulfa drugs", "penicillins", "allergy to").
_NOISE = frozenset({"drug", "drugs", "allergy", "allergic", "to", "class", "antibiotics", "antibiotic", "and", "or"})
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stem(word: str) -> str:
    """ "penicillins" -> "penicillin"; "nsaids" -> "nsaid" (plural only; drug names rarely end in a plain -s)."""
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


def _ingredient_words(medication: Medication) -> set[str]:
    return {word for name in medication.search_names() for word in _words(name)}


def allergy_conflicts(allergies: Iterable[str], medication: Medication) -> tuple[AllergyConflict, ...]:
    """Every recorded allergy that touches ``medication``, by name or by class; empty when none does."""
    ingredients = _ingredient_words(medication)
    conflicts: list[AllergyConflict] = []
    for allergen in allergies:
        words = [_stem(w) for w in _words(allergen) if w not in _NOISE]
        found = next((w for w in words if w in ingredients), None)
        if found is not None:
            conflicts.append(AllergyConflict(allergen, found, AllergyBasis.NAME))
            continue
        for word in words:
            drug_class = _CLASSES.get(word)
            if drug_class is None:
                continue
            member = next((m for m in drug_class[1] if m in ingredients), None)
            if member is not None:
                conflicts.append(AllergyConflict(allergen, member, AllergyBasis.CLASS, drug_class[0]))
                break
    return tuple(conflicts)
