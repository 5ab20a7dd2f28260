"""The store's query functions behind the API (``controller.store.queries``): what each answers, on a small
cabinet with patients, orders, quarantines and ledger entries, on SQLite and (when it answers) PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from controller.domain.clock import FixedClock
from controller.domain.credentials import CredentialHasher, HashCost
from controller.domain.patients import CareArea, Encounter, Patient
from controller.domain.topology import Cabinet
from controller.domain.transactions import EventType, LedgerRecord
from controller.errors import ConfigurationError
from controller.store import repositories as repo
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.models import ApiClientRow, Hl7OrderRow, Hl7PatientMergeRow, QuarantinedLotRow
from controller.store.queries import api_clients, fhir_reads, inventory_reads, ledger_reads, orders, patients
from controller.store.queries.fhir_reads import CodeMatch
from controller.store.queries.orders import OrderFields
from controller.store.seed import seed_cabinet

CABINET = "CAB-T"
MORPHINE = "MORPHINE-4MG-ML-CARP"
HEPARIN = "HEPARIN-5000U-ML-1ML"
INSULIN = "INSULIN-REGULAR-U100-10ML"
FAST_HASHER = CredentialHasher(HashCost(time_cost=1, memory_kib=8, parallelism=1))


def layout() -> dict[str, Any]:
    return {
        "loaded_by": "TECH1",
        "care_area": {"id": "ICU", "name": "ICU", "profiled": True},
        "cabinet": {"id": CABINET, "name": "Test station"},
        "user": [{"id": "TECH1", "name": "Tech", "roles": ["technician"], "pin": "4444"}],
        "drawer": [
            {
                "id": "D1",
                "kind": "lidded",
                "label": "lidded",
                "pocket": [
                    {
                        "id": "D1-P01",
                        "item": MORPHINE,
                        "par": 10,
                        "min": 3,
                        "max": 15,
                        "lots": [{"lot": "A1", "expiry": "2027-01-31", "quantity": 4}],
                    },
                    {"id": "D1-P02", "item": HEPARIN, "par": 5, "min": 1, "max": 10},
                ],
            },
            {"id": "D2", "kind": "refrigerator", "label": "fridge", "pocket": [{"id": "D2-P01", "item": INSULIN}]},
            {"id": "D3", "kind": "refrigerator", "label": "empty fridge"},  # no pockets: nothing it serves
            {"id": "D4", "kind": "return_bin", "label": "returns", "pocket": [{"id": "D4-P01"}]},
        ],
        "patient": [
            {
                "mrn": "MRN2",
                "family_name": "Zed",
                "given_name": "Ann",
                "encounter": "E2",
                "room": "101",
                "bed": "A",
                "allergies": ["penicillin", "latex"],
                "birth_date": "1950-02-03",
            },
            {"mrn": "MRN1", "family_name": "Young", "given_name": "Bo", "encounter": "E1", "room": "100", "bed": "B"},
            {"mrn": "MRN3", "family_name": "Xu", "given_name": "Cy", "encounter": "E3", "room": "100", "bed": "A"},
        ],
        "order": [
            {"id": "O1", "mrn": "MRN1", "item": MORPHINE, "dose": "2", "dose_unit": "mg", "route": "IV"},
            {"id": "O2", "mrn": "MRN1", "item": HEPARIN, "dose": "5000", "dose_unit": "units", "status": "held"},
            {
                "id": "O3",
                "mrn": "MRN1",
                "item": "NDC:12345-678-90",
                "dose": "0.5",
                "dose_unit": "mg",
                "verified": False,
            },
            {"id": "O4", "mrn": "MRN2", "item": MORPHINE, "dose": "1", "dose_unit": "mg", "prn": True},
        ],
    }


@pytest.fixture
def ledger(clock: FixedClock) -> Ledger:
    return Ledger(CABINET, clock, is_simulator=True)


@pytest.fixture
def store(db: Database, clock: FixedClock, ledger: Ledger) -> Database:
    with db.write() as session:
        seed_cabinet(session, layout(), load_formulary(), ledger=ledger, hasher=FAST_HASHER, clock=clock)
        # Another care area with its own patient, and a discharged patient of this one.
        repo.save_care_area(session, CareArea("ED", "Emergency", profiled=False))
        repo.save_cabinet(session, Cabinet("CAB-ED", "ED station", "ED"))
        repo.save_patient(session, Patient("MRN9", "Other", "Area"))
        repo.save_encounter(session, Encounter("E9", "MRN9", "ED", room="1"))
        repo.save_patient(session, Patient("MRN8", "Gone", "Home"))
        repo.save_encounter(session, Encounter("E8", "MRN8", "ICU", room="099", active=False))
    return db


def append(db: Database, ledger: Ledger, *records: LedgerRecord) -> list[int]:
    with db.write() as session:
        return [ledger.append(session, record).seq for record in records]


# --- patients -----------------------------------------------------------------------------------------------------


def test_area_patients_are_the_active_encounters_of_the_cabinets_area_by_room_and_bed(store: Database) -> None:
    with store.read() as session:
        found = patients.area_patients(session, CABINET)
    assert [(p.id, e.room, e.bed) for p, e in found] == [("MRN3", "100", "A"), ("MRN1", "100", "B"),
                                                         ("MRN2", "101", "A")]  # fmt: skip
    zed = found[2][0]
    assert (zed.allergies, zed.birth_date, found[2][1].id) == (("penicillin", "latex"), date(1950, 2, 3), "E2")
    with store.read() as session:
        assert [p.id for p, _ in patients.area_patients(session, "CAB-ED")] == ["MRN9"]
        assert patients.area_patients(session, "NO-SUCH-CABINET") == []


def test_due_orders_are_active_and_verified(store: Database) -> None:
    with store.read() as session:
        assert patients.due_counts(session, ["MRN1", "MRN2", "MRN3"]) == {"MRN1": 1, "MRN2": 1}
        assert patients.due_counts(session, []) == {}
        found = patients.patient_orders(session, "MRN1")
    assert [(o.id, o.due) for o in found] == [("O1", True), ("O2", False), ("O3", False)]
    morphine, _, foreign = found
    assert (morphine.item_name, morphine.dea_schedule, morphine.dose_amount) == ("morphine 4 mg/mL inj", "II", 2)
    assert (foreign.item_id, foreign.item_name, foreign.dea_schedule) == ("NDC:12345-678-90", None, None)


# --- inventory and layout -----------------------------------------------------------------------------------------


def test_active_holds_are_this_cabinets_active_quarantines(store: Database, clock: FixedClock) -> None:
    with store.write() as session:
        for cabinet, pocket, lot, status in (
            (CABINET, "D1-P01", "A1", "active"),
            (CABINET, None, "R7", "active"),
            (CABINET, "D1-P01", "OLD", "released"),
            ("CAB-ED", None, "A1", "active"),
        ):
            session.add(QuarantinedLotRow(cabinet_id=cabinet, item_id=MORPHINE, lot_number=lot, pocket_id=pocket,
                                          reason="recall", quarantined_at=clock.now(), ledger_seq=1,
                                          status=status))  # fmt: skip
    with store.read() as session:
        holds = inventory_reads.active_holds(session, CABINET)
    assert holds == {
        inventory_reads.LotHold("D1-P01", MORPHINE, "A1"),
        inventory_reads.LotHold(None, MORPHINE, "R7"),
    }


def test_stocked_items_and_refrigerators(store: Database) -> None:
    with store.read() as session:
        assert inventory_reads.stocked_items(session, CABINET) == {MORPHINE, HEPARIN, INSULIN}
        assert inventory_reads.refrigerator_drawers(session, CABINET) == ["D2"]  # D3 serves no pocket
        assert inventory_reads.stocked_items(session, "CAB-ED") == frozenset()


# --- the ledger ---------------------------------------------------------------------------------------------------


def test_ledger_entries_filter_and_page_by_sequence(store: Database, ledger: Ledger, clock: FixedClock) -> None:
    with store.read() as session:
        start = ledger_reads.last_seq(session, CABINET)
        assert ledger_reads.last_seq(session, "CAB-ED") == 0  # no entry yet
    first = clock.now() + timedelta(minutes=1)
    clock.advance(timedelta(minutes=1))
    a, b = append(store, ledger, LedgerRecord(EventType.LOGIN, actor_id="NURSE1"),
                  LedgerRecord(EventType.DOSE_REMOVED, actor_id="NURSE2", witness_id="NURSE1", patient_id="MRN1",
                               item_id=MORPHINE, pocket_id="D1-P01", lot_number="A1", quantity_change=-1))  # fmt: skip
    clock.advance(timedelta(minutes=1))
    (c,) = append(store, ledger, LedgerRecord(EventType.LOGIN, actor_id="NURSE2"))
    with store.read() as session:
        assert ledger_reads.last_seq(session, CABINET) == c == start + 3

        def seqs(where: ledger_reads.LedgerFilter, after: int = 0, limit: int = 100) -> list[int]:
            return [e.seq for e in ledger_reads.entries(session, CABINET, where, after_seq=after, limit=limit)]

        assert seqs(ledger_reads.LedgerFilter(user_id="NURSE1")) == [a, b]  # as actor, then as witness
        assert seqs(ledger_reads.LedgerFilter(since=first)) == [a, b, c]
        assert seqs(ledger_reads.LedgerFilter(since=first, until=first + timedelta(minutes=1))) == [a, b]
        assert seqs(ledger_reads.LedgerFilter(patient_id="MRN1", item_id=MORPHINE)) == [b]
        assert seqs(ledger_reads.LedgerFilter(event_type=EventType.LOGIN.value), after=a) == [c]
        assert seqs(ledger_reads.LedgerFilter(), after=start, limit=2) == [a, b]
        [entry] = ledger_reads.entries(session, CABINET, ledger_reads.LedgerFilter(), after_seq=b, limit=5)
        assert json.loads(entry.body)["seq"] == c and len(entry.hash) == 64
        assert [e.seq for e in ledger_reads.entries_after(session, CABINET, a, limit=500)] == [b, c]
        assert [json.loads(body)["seq"] for body in ledger_reads.latest_bodies(session, CABINET, "session.login",
                                                                                 limit=5)] == [c, a]  # fmt: skip
    assert ledger_reads.verify_ledger(store).ok


# --- FHIR reads ---------------------------------------------------------------------------------------------------


def test_patient_and_medication_pages(store: Database) -> None:
    with store.read() as session:
        total, page = fhir_reads.patients_page(session, offset=1, limit=2)
        assert (total, [p.id for p in page]) == (5, ["MRN2", "MRN3"])
        total, page = fhir_reads.patients_page(session, id_sets=[["MRN1", "MRN2"], ["MRN2", "MRN3"]], offset=0,
                                               limit=10)  # fmt: skip
        assert (total, [p.id for p in page]) == (1, ["MRN2"])
        assert "MRN9" in fhir_reads.patient_ids(session) and fhir_reads.has_patient(session, "MRN9")
        assert fhir_reads.patient(session, "NOPE") is None

        heparin = fhir_reads.medication(session, HEPARIN)
        assert heparin is not None and {(n.ndc, n.is_primary) for n in heparin.ndcs} == {
            ("72603-456-25", True), ("72603-456-01", False)}  # fmt: skip

        def codes(match: CodeMatch | None) -> tuple[int, list[str]]:
            total, found = fhir_reads.medications_page(session, codes=match, offset=0, limit=100)
            return total, [m.id for m in found]

        assert codes(CodeMatch(ndc_digits=("7260345601",))) == (1, [HEPARIN])  # an alternate NDC
        assert codes(CodeMatch(ndc_digits=("7260345601",), formulary_ids=(INSULIN,))) == (2, [HEPARIN, INSULIN])
        assert codes(CodeMatch()) == (0, [])  # a code of no system we know matches nothing
        assert codes(None)[0] == len(fhir_reads.medication_ids(session))
        assert fhir_reads.medications_with_ndc_digits(session, ["7260345601", "7260345625", "0"]) == [HEPARIN]


def test_dose_entries_carry_their_item_and_lot_expiry(store: Database, ledger: Ledger) -> None:
    removed, returned, login = append(
        store,
        ledger,
        LedgerRecord(EventType.DOSE_REMOVED, actor_id="NURSE1", patient_id="MRN-OLD", item_id=MORPHINE,
                     pocket_id="D1-P01", lot_number="A1", quantity_change=-1),
        LedgerRecord(EventType.DOSE_RETURNED, actor_id="NURSE1", patient_id="MRN1", item_id="NDC:1",
                     pocket_id="D4-P01", lot_number="GONE", quantity_change=1),
        LedgerRecord(EventType.LOGIN, actor_id="NURSE1"),
    )  # fmt: skip
    kinds = [EventType.DOSE_REMOVED.value, EventType.DOSE_RETURNED.value]
    with store.write() as session:
        session.add(Hl7PatientMergeRow(prior_patient_id="MRN-OLD", survivor_id="MRN1", merged_at=datetime.now(UTC),
                                       control_id="A40-1"))  # fmt: skip
    with store.read() as session:
        merged = fhir_reads.identifiers_with_merged(session, ["MRN1"])
        assert merged == ["MRN1", "MRN-OLD"]
        total, found = fhir_reads.dispenses_page(session, CABINET, kinds, patient_ids=merged, offset=0, limit=10)
        assert total == 2 and [d.entry["seq"] for d in found] == [removed, returned]
        first, second = found
        assert first.medication is not None and first.medication.unit and first.lot_expiry == date(2027, 1, 31)
        assert (second.medication, second.lot_expiry) == (None, None)  # not in the formulary; lot not in the bin
        assert fhir_reads.dispenses_page(session, CABINET, kinds, seqs=[returned], offset=0, limit=10)[0] == 1
        assert fhir_reads.dispenses_page(session, CABINET, kinds, offset=1, limit=10)[0] == 2
        assert fhir_reads.dispense(session, CABINET, login, kinds) is None  # not a dose entry
        assert fhir_reads.dispense(session, "CAB-ED", removed, kinds) is None


def test_layout_reads(store: Database) -> None:
    with store.read() as session:
        assert [a.id for a in fhir_reads.care_areas(session)] == ["ED", "ICU"]
        assert [(c.id, c.care_area_id) for c in fhir_reads.cabinets(session)] == [("CAB-ED", "ED"), (CABINET, "ICU")]
        devices = dict(fhir_reads.cabinets_with_drawers(session))
    assert [(d.id, d.kind) for d in devices[Cabinet(CABINET, "Test station", "ICU")]] == [
        ("D1", "lidded"), ("D2", "refrigerator"), ("D3", "refrigerator"), ("D4", "return_bin")]  # fmt: skip


# --- orders -------------------------------------------------------------------------------------------------------


def test_orders_read_create_and_update(store: Database, clock: FixedClock) -> None:
    with store.write() as session:
        session.add(Hl7OrderRow(order_id="O1", placer_number="PL1", filler_number="", order_control="NW",
                                give_code="x", control_id="MSG1", updated_at=clock.now()))  # fmt: skip
    with store.read() as session:
        o1, o3 = orders.order(session, "O1"), orders.order(session, "O3")
        assert o1 is not None and o3 is not None
        assert (o1.item_name is not None, o1.placer_number, o1.filler_number) == (True, "PL1", "")
        assert (o3.item_name, o3.placer_number, o3.fields.pharmacist_verified) == (None, None, False)
        total, page = orders.orders_page(session, patient_ids=["MRN1"], statuses=["active", "held"],
                                         verified=[True], offset=0, limit=10)  # fmt: skip
        assert (total, [o.id for o in page]) == (2, ["O1", "O2"])
        total, page = orders.orders_page(session, ids=["O4", "O1"], offset=1, limit=10)
        assert (total, [o.id for o in page]) == (2, ["O4"])
        assert sorted(orders.order_ids(session)) == ["O1", "O2", "O3", "O4"]
    fields = OrderFields("MRN2", HEPARIN, Decimal("2.5"), "mL", "SC", "q12h", "active", True, False)
    with store.write() as session:
        created = orders.create_order(session, "F1", fields)
        assert created.item_name is not None and created.fields == fields
        updated = orders.update_order(session, "F1", replace(fields, status="held"))
        assert updated.fields.status == "held"
        with pytest.raises(LookupError):
            orders.update_order(session, "NOPE", fields)
    with store.read() as session:
        stored = orders.order_fields(session, "F1")
        assert stored is not None and (stored.status, stored.dose_amount) == ("held", Decimal("2.5"))
        assert orders.order_fields(session, "NOPE") is None


# --- integrator clients -------------------------------------------------------------------------------------------


def test_clients_are_unique_and_only_active_ones_answer(db: Database, clock: FixedClock) -> None:
    api_clients.add_client(db, "lis", secret_hash="h", scopes=frozenset({"ledger:read", "fhir:read"}), now=clock.now())
    expected = api_clients.ClientCredentials("h", frozenset({"fhir:read", "ledger:read"}))
    assert api_clients.active_client(db, "lis") == expected
    with pytest.raises(ConfigurationError, match="already exists"):
        api_clients.add_client(db, "lis", secret_hash="other", scopes=frozenset(), now=clock.now())
    assert api_clients.active_client(db, "lis") is not None and api_clients.active_client(db, "nobody") is None
    with db.write() as session:
        session.execute(sa.update(ApiClientRow).where(ApiClientRow.id == "lis").values(active=False))
    assert api_clients.active_client(db, "lis") is None
