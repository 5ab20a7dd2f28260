"""ADT over a real socket: admit, transfer between care areas, discharge and its cancels, updates, merges; and
refusals that leave the census exactly as it was."""

from __future__ import annotations

from decimal import Decimal

from controller.domain.clock import FixedClock
from controller.store.database import Database
from tests.integration.hl7_rig import adt, archive, exchange, one, rde, rows, snapshot


def _encounter(store: Database, ident: str = "V1") -> tuple[str, str, str, bool]:
    found = one(store, "encounters", id=ident)
    return found["care_area_id"], found["room"], found["bed"], bool(found["active"])


def test_a02_moves_the_encounter_to_another_care_area(store: Database, clock: FixedClock) -> None:
    acks = exchange(
        store,
        clock,
        adt("A01", "1", "MRN1", location="4W^401^A^GOOD HOSP"),
        adt("A02", "2", "MRN1", location="ICU^12^B^GOOD HOSP"),
    )
    assert [a.code for a in acks] == ["AA", "AA"]
    assert _encounter(store) == ("ICU", "12", "B", True)
    assert one(store, "encounters", id="V1")["patient_id"] == "MRN1"
    assert one(store, "care_areas", id="ICU")["name"] == "ICU (GOOD HOSP)"
    assert "encounter V1: care area 4W -> ICU" in archive(store)[-1]["detail"]


def test_discharge_cancels_and_cancel_transfer(store: Database, clock: FixedClock) -> None:
    exchange(store, clock, adt("A01", "1", "MRN1"), adt("A02", "2", "MRN1", location="ICU^1^A"))
    exchange(store, clock, adt("A12", "3", "MRN1", location="4W^401^A"))  # PV1-3: where the patient returns
    assert _encounter(store) == ("4W", "401", "A", True)
    exchange(store, clock, adt("A03", "4", "MRN1"))
    assert _encounter(store)[3] is False
    exchange(store, clock, adt("A13", "5", "MRN1"))
    assert _encounter(store)[3] is True
    exchange(store, clock, adt("A11", "6", "MRN1"))
    assert _encounter(store)[3] is False


def test_a08_updates_demographics_and_replaces_allergies_only_when_al1_is_sent(
    store: Database, clock: FixedClock
) -> None:
    allergic = "AL1|1|DA|70618^Penicillin^RXNORM\rAL1|2|DA|^Codeine\r"
    exchange(store, clock, adt("A01", "1", "MRN1", extra=allergic))
    assert one(store, "patients", id="MRN1")["allergies"] == "Penicillin\nCodeine"
    renamed = adt("A08", "2", "MRN1").replace(b"Doe^Jane", b"Roe^Janet")
    exchange(store, clock, renamed)
    patient = one(store, "patients", id="MRN1")
    assert (patient["family_name"], patient["given_name"], patient["allergies"]) == (
        "Roe",
        "Janet",
        "Penicillin\nCodeine",
    )
    exchange(store, clock, adt("A08", "3", "MRN1", extra="AL1|1|DA|^Sulfa\r"))
    assert one(store, "patients", id="MRN1")["allergies"] == "Sulfa"


def test_the_trigger_comes_from_msh_9_2_not_the_structure_and_from_evn_when_it_is_missing(
    store: Database, clock: FixedClock
) -> None:
    exchange(store, clock, adt("A01", "1", "MRN1"))
    wrong_structure = adt("A03", "2", "MRN1").replace(b"ADT^A03^ADT_A01", b"ADT^A03^ADT_A02")
    assert exchange(store, clock, wrong_structure)[0].code == "AA"
    assert _encounter(store)[3] is False
    no_trigger = adt("A13", "3", "MRN1").replace(b"ADT^A13^ADT_A01", b"ADT")  # EVN-1 says A13
    assert exchange(store, clock, no_trigger)[0].code == "AA"
    assert _encounter(store)[3] is True


def test_refusals_leave_the_census_untouched(store: Database, clock: FixedClock) -> None:
    exchange(store, clock, adt("A01", "1", "MRN1"))
    before = snapshot(store)
    no_location = adt("A02", "2", "MRN1", location="")
    other_patients_visit = adt("A01", "3", "MRN2", visit="V1")  # V1 belongs to MRN1
    no_pid = b"MSH|^~\\&|ADT|HOSP|ADC|CAB|2026||ADT^A01|4|P|2.5.1\rPV1|1|I|4W\r"
    pre_admit = adt("A05", "5", "MRN3")
    acks = exchange(store, clock, no_location, other_patients_visit, no_pid, pre_admit)
    got = [(a.code, a.error, a.app_code, a.location) for a in acks]
    assert got == [
        ("AE", "101", "hl7.field_missing", "PV1^1^3^1^1"),
        ("AE", "205", "hl7.identity_conflict", "PV1^1^19"),
        ("AE", "100", "hl7.segment_missing", "PID^1"),
        ("AR", "201", "hl7.unsupported_event", "MSH^1^9^1^2"),
    ]
    assert snapshot(store) == before  # MRN2 was read and stored inside the refused message: rolled back
    assert [r["outcome"] for r in archive(store)][-4:] == ["error", "error", "error", "rejected"]


def test_a40_merge_moves_encounters_and_orders_to_the_surviving_patient(store: Database, clock: FixedClock) -> None:
    exchange(
        store,
        clock,
        adt("A01", "1", "OLD", visit="V-OLD", extra="AL1|1|DA|^Latex\r"),
        adt("A01", "2", "NEW", visit="V-NEW", extra="AL1|1|DA|^Penicillin\r"),
        rde("3", "ORD-A", "OLD"),
        rde("4", "ORD-B", "OLD", amount="2"),
    )
    merge = (
        b"MSH|^~\\&|ADT|HOSP|ADC|CAB|2026||ADT^A40^ADT_A39|5|P|2.5.1\rEVN|A40|2026\r"
        b"PID|1||NEW^^^HOSP^MR||Doe^Jane\rMRG|OLD^^^HOSP^MR\r"
    )
    (ack,) = exchange(store, clock, merge)
    assert ack.code == "AA", ack.text
    assert [p["id"] for p in rows(store, "patients")] == ["NEW"]
    assert {o["id"]: o["patient_id"] for o in rows(store, "orders")} == {"ORD-A": "NEW", "ORD-B": "NEW"}
    assert {e["id"]: e["patient_id"] for e in rows(store, "encounters")} == {"V-NEW": "NEW", "V-OLD": "NEW"}
    assert one(store, "patients", id="NEW")["allergies"] == "Penicillin\nLatex"
    assert one(store, "hl7_patient_merges", prior_patient_id="OLD")["survivor_id"] == "NEW"
    # A late order message that still names the old identifier reaches the same order.
    (late,) = exchange(store, clock, rde("6", "ORD-A", "OLD", control="DC"))
    assert late.code == "AA" and one(store, "orders", id="ORD-A")["status"] == "discontinued"
    assert Decimal(str(one(store, "orders", id="ORD-B")["dose_amount"])) == 2


def test_a40_naming_the_survivor_as_its_own_prior_is_refused(store: Database, clock: FixedClock) -> None:
    merge = b"MSH|^~\\&|ADT|HOSP|ADC|CAB|2026||ADT^A40|1|P|2.5.1\rPID|1||A^^^H^MR\rMRG|A^^^H^MR\r"
    (ack,) = exchange(store, clock, merge)
    assert (ack.code, ack.app_code, ack.location) == ("AE", "hl7.bad_value", "MRG^1^1")
    assert rows(store, "patients") == []
