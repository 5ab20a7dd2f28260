"""The shipped demo formulary: real NDCs, the stock a hospital cabinet carries, schedules and flags right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.domain.medication import DeaSchedule
from controller.store.formulary_file import load_formulary

ENTRIES = load_formulary()
BY_ID = {entry.medication.id: entry.medication for entry in ENTRIES}


def by_generic(word: str) -> list[str]:
    return [m.id for m in BY_ID.values() if word in m.generic_name.lower()]


def test_at_least_forty_items() -> None:
    assert len(ENTRIES) >= 40


@pytest.mark.parametrize(
    "drug",
    [
        "morphine",
        "hydromorphone",
        "fentanyl",
        "oxycodone",
        "midazolam",
        "lorazepam",
        "ketamine",
        "heparin",
        "insulin",
        "potassium chloride",
        "vecuronium",
        "rocuronium",
        "ondansetron",
        "acetaminophen",
        "naloxone",
    ],
)
def test_typical_cabinet_stock_is_there(drug: str) -> None:
    assert by_generic(drug), f"no {drug} in the demo formulary"


@pytest.mark.parametrize(
    ("drug", "schedules"),
    [
        ("morphine", {DeaSchedule.II}),
        ("hydromorphone", {DeaSchedule.II}),
        ("fentanyl", {DeaSchedule.II}),
        ("oxycodone", {DeaSchedule.II}),
        ("midazolam", {DeaSchedule.IV}),
        ("lorazepam", {DeaSchedule.IV}),
        ("ketamine", {DeaSchedule.IIIN}),
        ("methylphenidate", {DeaSchedule.IIN}),
        ("heparin", {DeaSchedule.NONE}),
        ("ondansetron", {DeaSchedule.NONE}),
    ],
)
def test_schedules(drug: str, schedules: set[DeaSchedule]) -> None:
    assert {BY_ID[i].dea_schedule for i in by_generic(drug)} == schedules


def test_flags_that_drive_safety_rules() -> None:
    for item in by_generic("vecuronium") + by_generic("rocuronium") + by_generic("succinylcholine"):
        assert BY_ID[item].neuromuscular_blocker and BY_ID[item].high_alert
    for item in by_generic("insulin") + by_generic("heparin") + by_generic("fentanyl"):
        assert BY_ID[item].high_alert
    assert all(BY_ID[i].refrigerated for i in by_generic("insulin") + by_generic("rocuronium"))
    assert all(BY_ID[i].hazardous for i in by_generic("methotrexate"))
    # Heparin comes in strengths that must never be confused (2006): more than one strength is stocked.
    assert len({BY_ID[i].strength for i in by_generic("heparin")}) >= 3


def test_ndcs_taken_from_the_shared_directory_sample_are_in_it(shared_external: Path) -> None:
    package_ndcs: set[str] = set()
    with (shared_external / "ndc" / "openfda_harmonized.small.ndjson").open(encoding="utf-8") as handle:
        for line in handle:
            package_ndcs.update(json.loads(line).get("package_ndc", []))
    sourced = [e for e in ENTRIES if e.source == "openfda_harmonized.small.ndjson"]
    assert len(sourced) >= 30
    for entry in sourced:
        for ndc in entry.medication.all_ndcs:
            assert str(ndc) in package_ndcs, f"{entry.medication.id}: {ndc} is not in the openFDA sample"


def test_every_entry_says_where_its_ndc_comes_from() -> None:
    assert all(entry.source for entry in ENTRIES)
