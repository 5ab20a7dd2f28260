"""Every message in ../shared/external/hl7/ over a real socket: the right ACK and the right effect, or a documented
refusal; sent twice, the second copy gets the same ACK and changes nothing. Each file on a fresh store (the
Microsoft samples all carry MSH-10 ``MSG00001`` and the same order numbers)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from controller.domain.clock import FixedClock
from controller.store.database import Database
from tests.integration.hl7_rig import exchange, one, rows, sample, segments, set_field, snapshot

Check = Callable[[Database], None]


def _nothing_applied(db: Database) -> None:
    assert all(not found for found in snapshot(db).values())


def _adam(db: Database) -> None:
    patient = one(db, "patients", id="PATID1234")  # PID-3 repetition typed MR (the SS one is skipped)
    assert (patient["family_name"], patient["given_name"]) == ("EVERYMAN", "ADAM")
    assert patient["birth_date"] in (date(1988, 8, 18), "1988-08-18")


def _encounter(db: Database, ident: str, expected: tuple[str, str, str, bool]) -> None:
    """(care area, room, bed, active) of an encounter."""
    found = one(db, "encounters", id=ident)
    assert (found["care_area_id"], found["room"], found["bed"], bool(found["active"])) == expected
    assert bool(one(db, "care_areas", id=expected[0])["profiled"])  # a unit not known before: created, profiled


def _admitted(allergies: str) -> Check:
    def check(db: Database) -> None:
        _adam(db)
        assert one(db, "patients", id="PATID1234")["allergies"] == allergies  # from AL1-3's text
        _encounter(db, "40007716", ("HUH AE OMU", "OMU B", "Bed 03", True))

    return check


def _updated_discharged(db: Database) -> None:
    _adam(db)
    _encounter(db, "40007716", ("HUH AE OMU", "OMU B", "Bed 03", False))  # PV1-45 discharge time is set


def _patient_only(patient_id: str) -> Check:
    def check(db: Database) -> None:
        one(db, "patients", id=patient_id)
        assert rows(db, "encounters") == [] and rows(db, "orders") == []

    return check


def _donald(db: Database) -> None:
    assert one(db, "patients", id="10006579")["family_name"] == "DUCK"
    _encounter(db, "40007716", ("PREOP", "101", "1", True))


def _standing_visit(db: Database) -> None:
    one(db, "patients", id="PATID1234")
    _encounter(db, "PATID1234#visit", ("2000", "2012", "01", True))  # no PV1-19: one standing encounter


def _null_values(db: Database) -> None:
    patient = one(db, "patients", id="2148790")  # PID-3's MR, not PID-4's EMPI
    assert (patient["family_name"], patient["given_name"]) == ("RUFUSS", "MELLODIAL")
    _encounter(db, "01", ("MBN1", "MBN1", "06", True))


def _nicardipine(db: Database) -> None:
    _adam(db)
    order = one(db, "orders", id="1163422591")
    assert order["patient_id"] == "PATID1234"
    assert order["item_id"] == "NDC:0143963401"  # a bare 10-digit NDC the formulary does not hold
    assert Decimal(str(order["dose_amount"])) == 5 and order["dose_unit"] == "mg/hr"  # RXE-5 "43^mg/hr"
    assert order["route"] == "Intravenous"  # the RXR after RXE, not the RXO's "IV Infusion"
    assert (order["status"], bool(order["pharmacist_verified"])) == ("active", True)
    details = one(db, "hl7_orders", order_id="1163422591")
    assert (details["give_code"], details["give_code_system"]) == ("0143963401", "NDC")
    assert (
        Decimal(str(details["dispense_amount"])) == 3 and details["dispense_units"] == "BG"
    )  # the unit code of "BG^Bag"
    assert details["dosage_form"] == "Dosage form" and details["order_control"] == "NW"
    assert (details["start_time"], details["end_time"]) == ("20191104103000+0215", "20191104113000+0215")
    assert rows(db, "encounters") == []  # the census comes from ADT, not from an order's PV1


def _oseltamivir(db: Database) -> None:
    patient = one(db, "patients", id="EM010000008000000")
    assert patient["allergies"] == "Penicillin"  # created from the order's PID with its AL1
    order = one(db, "orders", id="101217-833651")
    assert order["item_id"] == "NDC:5456948880"  # 54569-4888-0 (5-4-1), not in the demo formulary
    assert (Decimal(str(order["dose_amount"])), order["dose_unit"], order["route"]) == (1, "75 mg", "Oral")
    assert Decimal(str(one(db, "hl7_orders", order_id="101217-833651")["dispense_amount"])) == 10


REFUSED: dict[str, tuple[str, str, str, str]] = {  # MSA-1, ERR-3 (table 0357), ERR-5 (catalogue), ERR-2
    "hl7apy_RSP_K22_with_MSA_v25.hl7": ("AR", "200", "hl7.unsupported_message_type", "MSH^1^9^1^1"),
    "linuxforhealth_RDE_O11_v26_RXA_Zsegs.hl7": ("AR", "103", "hl7.unsupported_order_control", "ORC^1^1^1"),
    "msft_DFT-P03-01.hl7": ("AR", "200", "hl7.unsupported_message_type", "MSH^1^9^1^1"),
    "msft_LAB-ORM-1.hl7": ("AR", "200", "hl7.unsupported_message_type", "MSH^1^9^1^1"),
    "msft_ORM-O01-01.hl7": ("AR", "200", "hl7.unsupported_message_type", "MSH^1^9^1^1"),
    "msft_RDE-O11-02.hl7": ("AE", "102", "hl7.bad_value", "RXE^2^2^1"),  # 2nd order's NDC "2669": neither filed
    "msft_RDS-O13-01.hl7": ("AR", "200", "hl7.unsupported_message_type", "MSH^1^9^1^1"),
    "nist_iz_ACK_V04_AE_with_ERR_v251.hl7": ("AR", "200", "hl7.unsupported_message_type", "MSH^1^9^1^1"),
    "openbedside_doc_RGV_O15_PCD03_v26.hl7": ("AR", "200", "hl7.unsupported_message_type", "MSH^1^9^1^1"),
    "pythonhl7_ACK_A01_AA_v23.hl7": ("AR", "200", "hl7.unsupported_message_type", "MSH^1^9^1^1"),
    "pythonhl7_ORU_R01_v24.hl7": ("AR", "200", "hl7.unsupported_message_type", "MSH^1^9^1^1"),
    "pythonhl7_batch_FHS_BHS_ADT_A04.hl7": ("AR", "200", "hl7.batch_not_supported", "FHS^1"),
}

APPLIED: dict[str, Check] = {
    "msft_ADT-A01-01.hl7": _admitted("PENICILLIN"),
    "msft_ADT-A02-01.hl7": _admitted(""),  # transferred to the PV1-3 it names
    "msft_ADT-A03-01.hl7": _patient_only("PATID1234"),  # discharge of a visit not held: nothing to close
    "msft_ADT-A08-01.hl7": _updated_discharged,
    "msft_ADT-A11-01.hl7": _patient_only("PATID1234"),
    "msft_ADT-A13-01.hl7": _admitted("PENICILLIN"),  # cancel discharge: active again
    "msft_ADT01-23.hl7": _donald,
    "msft_ADT01-28.hl7": _standing_visit,
    "msft_ADT04-251.hl7": _patient_only("MRN12345"),  # PV1-3 empty: no location, no encounter
    "msft_RDE-O11-01.hl7": _nicardipine,
    "msft_RDE-O25-01.hl7": _nicardipine,
    "nhapi_ADT_A08_v251_EXACTDATA.hl7": _patient_only("EM010000001000000"),  # PV1-3 has no point of care
    "nhapi_RDE_O11_v251_EXACTDATA.hl7": _oseltamivir,
    "pythonhl7_ADT_A01_v23_nullvalues.hl7": _null_values,
}


def test_every_shared_message_is_listed(shared_external: Path) -> None:
    files = {p.name for p in (shared_external / "hl7").glob("*.hl7")}
    assert files == set(REFUSED) | set(APPLIED)


@pytest.mark.parametrize("name", sorted(APPLIED))
def test_applied_once_and_the_repeat_gets_the_same_ack(
    name: str, shared_external: Path, store: Database, clock: FixedClock
) -> None:
    payload = sample(shared_external, name)
    first, again = exchange(store, clock, payload, payload)
    assert (first.code, first.error) == ("AA", ""), first.text
    assert first.control_id == segments(payload)[0].split("|")[9]  # MSA-2 = the incoming MSH-10
    APPLIED[name](store)
    state = snapshot(store)
    assert again.text == first.text  # byte for byte: the stored ACK
    assert snapshot(store) == state  # not applied twice
    outcomes = [(r["outcome"], r["ack_code"]) for r in rows(store, "hl7_inbound_messages")]
    assert sorted(outcomes) == [("applied", "AA"), ("duplicate", "AA")]
    assert len(rows(store, "hl7_processed_messages")) == 1


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_with_the_documented_reason_and_archived(
    name: str, shared_external: Path, store: Database, clock: FixedClock
) -> None:
    code, error, app_code, location = REFUSED[name]
    payload = sample(shared_external, name)
    first, again = exchange(store, clock, payload, payload)
    for ack in (first, again):  # a refusal is not remembered: the resend is judged again, the same way
        assert (ack.code, ack.error, ack.app_code, ack.location) == (code, error, app_code, location), ack.text
    _nothing_applied(store)
    archived = rows(store, "hl7_inbound_messages")
    assert len(archived) == 2 and all(bytes(r["payload"]) == payload for r in archived)
    assert {(r["outcome"], r["error_code"]) for r in archived} == {("rejected" if code == "AR" else "error", app_code)}
    assert rows(store, "hl7_processed_messages") == []


def test_msa_2_echoes_the_incoming_control_id(shared_external: Path, store: Database, clock: FixedClock) -> None:
    payload = sample(shared_external, "nhapi_RDE_O11_v251_EXACTDATA.hl7")
    (ack,) = exchange(store, clock, payload)
    assert ack.control_id == "EF010000000071000000_4"
    assert ack.msh[2:6] == ["OPEN-ADC", "CAB-T", "EXACTDATA", ""]  # our app/facility, then theirs
    assert ack.msh[8] == "ACK^O11^ACK" and ack.msh[11] == "2.5.1"


def test_the_linuxforhealth_order_with_z_segments_is_filed_when_its_control_is_nw(
    shared_external: Path, store: Database, clock: FixedClock
) -> None:
    """Its own ORC-1 is RE (refused above); as NW the Z-segments (ZXC, ZCL) and RXA are simply not read."""
    payload = set_field(sample(shared_external, "linuxforhealth_RDE_O11_v26_RXA_Zsegs.hl7"), "ORC", 1, "NW")
    (ack,) = exchange(store, clock, payload)
    assert ack.code == "AA", ack.text
    order = one(store, "orders", id="ACCESSION_62fd10ea-522a-4261-837a-30381a5aa04a")
    assert (order["patient_id"], order["item_id"]) == ("1234", "DEFAULTMED")  # local code: not stocked here
    assert (Decimal(str(order["dose_amount"])), order["dose_unit"], order["frequency"]) == (2, "g", "Q24H")
    assert one(store, "hl7_orders", order_id=order["id"])["verified_by"] == "2799 BY VERIFIED"  # ORC-11
