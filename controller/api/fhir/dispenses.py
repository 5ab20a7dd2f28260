"""MedicationDispense, read from the ledger: one resource per ``dose.removed``, ``dose.returned`` and
``dose.wasted`` entry of this cabinet (id ``dose-<seq>``). Read-only, as the ledger is.

- ``type`` says which (coding system ``urn:open-adc:ledger-event``); ``status`` is ``completed`` for all three.
- ``quantity``: units removed, minus the units returned, or the wasted amount in its dose unit (``2 mg``).
- the medication is a contained Medication with the item's NDCs and formulary code and the ``batch`` (lot, expiry)
  the entry names; ``subject``, ``authorizingPrescription``, ``performer`` (the user; a witness as ``checker``),
  ``location`` (the cabinet) and ``whenHandedOver`` (the entry's time) follow the entry.
- an entry made against simulated hardware carries the ``HTEST`` (test health data) security tag.

Search: ``_id``, ``patient`` (a merged patient's entries under the old id included), ``status``, ``type``.

At the central server the same resources come from every cabinet's chain (``fleet_ledger``), with ids
``dose.<cabinet>.<seq>`` (the cabinet part hashed where it is not a short FHIR id).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from controller.api.fhir.clinical import FORMULARY_SYSTEM, NDC_SYSTEM, foreign_item_concept
from controller.api.fhir.ids import HASHED_PREFIX, fhir_id
from controller.api.fhir.places import cabinet_ref
from controller.api.fhir.search import Query, reference_ids
from controller.domain.transactions import EventType
from controller.store.central import fhir_reads as fleet_reads
from controller.store.queries import Session, fhir_reads
from controller.store.queries.fhir_reads import DispenseEntry

EVENT_SYSTEM = "urn:open-adc:ledger-event"
LEDGER_SYSTEM = "urn:open-adc:ledger"
USER_SYSTEM = "urn:open-adc:user"
PERFORMER_FUNCTION = "http://terminology.hl7.org/CodeSystem/medicationdispense-performer-function"
TEST_DATA = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST",
             "display": "test health data"}  # fmt: skip
EVENTS = {
    EventType.DOSE_REMOVED.value: "dose removed from the cabinet",
    EventType.DOSE_RETURNED.value: "dose returned to the cabinet",
    EventType.WASTE_RECORDED.value: "dose wasted",
}
PREFIX = "dose-"


def dispense_id(seq: int) -> str:
    return f"{PREFIX}{seq}"


def seq_of(requested: str) -> int | None:
    digits = requested.removeprefix(PREFIX)
    return int(digits) if requested.startswith(PREFIX) and digits.isdigit() and len(digits) < 19 else None


def fleet_dispense_id(cabinet_id: str, seq: int) -> str:
    return f"dose.{_cabinet_token(cabinet_id)}.{seq}"


def _cabinet_token(cabinet_id: str) -> str:
    token = fhir_id(cabinet_id)
    return token if len(token) <= 35 else fhir_id(HASHED_PREFIX + cabinet_id)  # room for "dose." and the seq


def _fleet_keys(session: Session, requested: list[str]) -> list[tuple[str, int]]:
    """The (cabinet, seq) of each id of the form ``dose.<cabinet>.<seq>`` that names a registered cabinet."""
    by_token = {_cabinet_token(c): c for c in fleet_reads.cabinet_ids(session)}  # the registry read once
    keys = []
    for value in requested:
        head, _, digits = value.rpartition(".")
        prefix, _, token = head.partition(".")
        if prefix == "dose" and token in by_token and digits.isdigit() and len(digits) <= 18:
            keys.append((by_token[token], int(digits)))
    return keys


def dispense_resource(found: DispenseEntry, *, fleet: bool = False) -> dict[str, Any]:
    body = found.entry
    event = str(body["event_type"])
    details = body.get("details") or {}
    seq = int(body["seq"])
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": fleet_dispense_id(str(body["cabinet_id"]), seq) if fleet else dispense_id(seq),
        "identifier": [{"system": LEDGER_SYSTEM, "value": f"{body['cabinet_id']}:{body['seq']}"}],
        "contained": [_medication(found)],
        "status": "completed",
        "type": {"coding": [{"system": EVENT_SYSTEM, "code": event, "display": EVENTS[event]}]},
        "medicationReference": {"reference": "#med"},
        "performer": _performers(body),
        "location": {"reference": f"Location/{cabinet_ref(str(body['cabinet_id']))}"},
        "whenHandedOver": body["recorded_at"],
    }
    if body.get("is_simulator"):
        resource["meta"] = {"security": [TEST_DATA]}
    if body.get("patient_id"):
        resource["subject"] = {"reference": f"Patient/{fhir_id(str(body['patient_id']))}"}
    if body.get("order_id"):
        resource["authorizingPrescription"] = [{"reference": f"MedicationRequest/{fhir_id(str(body['order_id']))}"}]
    if (quantity := _quantity(found, event, details)) is not None:
        resource["quantity"] = quantity
    if note := _note(event, body, details):
        resource["note"] = [{"text": note}]
    return resource


def search_dispenses(session: Session, cabinet_id: str, query: Query) -> tuple[int, list[dict[str, Any]]]:
    filters = _filters(session, query)
    if filters is None:
        return 0, []  # every dose record is completed
    event_types, patients = filters
    seqs = None if (ids := query.get("_id")) is None else [s for s in map(seq_of, ids) if s is not None]
    total, found = fhir_reads.dispenses_page(
        session, cabinet_id, event_types, seqs=seqs, patient_ids=patients, offset=query.offset, limit=query.count
    )
    return total, [dispense_resource(entry) for entry in found]


def search_fleet_dispenses(session: Session, query: Query) -> tuple[int, list[dict[str, Any]]]:
    """Every cabinet's dose records, at the central."""
    filters = _filters(session, query)
    if filters is None:
        return 0, []
    event_types, patients = filters
    keys = None
    if (ids := query.get("_id")) is not None:
        keys = _fleet_keys(session, list(ids))
    total, found = fleet_reads.dispenses_page(
        session, event_types, keys=keys, patient_ids=patients, offset=query.offset, limit=query.count
    )
    return total, [dispense_resource(entry, fleet=True) for entry in found]


def read_fleet_dispense(session: Session, requested: str) -> dict[str, Any] | None:
    keys = _fleet_keys(session, [requested])
    found = fleet_reads.dispense(session, *keys[0], list(EVENTS)) if keys else None
    return dispense_resource(found, fleet=True) if found is not None else None


def _filters(session: Session, query: Query) -> tuple[list[str], list[str] | None] | None:
    """The event types and patients asked for (None: a status no dose record has)."""
    if (statuses := query.get("status")) is not None and "completed" not in statuses:
        return None
    patients = None
    if (requested := query.get("patient")) is not None:
        patients = fhir_reads.identifiers_with_merged(session, reference_ids(requested, "Patient"))
    if (types := query.get("type")) is not None:
        wanted = [t.rpartition("|")[2] for t in types]
        return [event for event in EVENTS if event in wanted], patients
    return list(EVENTS), patients


def read_dispense(session: Session, cabinet_id: str, requested: str) -> dict[str, Any] | None:
    seq = seq_of(requested)
    if seq is None:
        return None
    found = fhir_reads.dispense(session, cabinet_id, seq, list(EVENTS))
    return dispense_resource(found) if found is not None else None


def _medication(found: DispenseEntry) -> dict[str, Any]:
    body, item = found.entry, found.medication
    item_id = str(body.get("item_id") or "")
    medication: dict[str, Any] = {"resourceType": "Medication", "id": "med"}
    if item is not None:
        coding = [{"system": NDC_SYSTEM, "code": n.ndc} for n in sorted(item.ndcs, key=lambda n: not n.is_primary)]
        coding.append({"system": FORMULARY_SYSTEM, "code": item.id, "display": item.display_name})
        medication["code"] = {"coding": coding, "text": item.display_name}
    elif item_id:
        medication["code"] = foreign_item_concept(item_id)
    lot = body.get("lot_number")
    if lot:
        batch: dict[str, Any] = {"lotNumber": lot}
        if found.lot_expiry is not None:
            batch["expirationDate"] = found.lot_expiry.isoformat()
        medication["batch"] = batch
    return medication


def _performers(body: dict[str, Any]) -> list[dict[str, Any]]:
    performers = []
    if body.get("actor_id"):
        performers.append({"actor": _user(str(body["actor_id"]))})
    if body.get("witness_id"):
        function = {"coding": [{"system": PERFORMER_FUNCTION, "code": "checker", "display": "Checker"}]}
        performers.append({"function": function, "actor": _user(str(body["witness_id"]))})
    return performers


def _user(user_id: str) -> dict[str, Any]:
    return {"identifier": {"system": USER_SYSTEM, "value": user_id}, "display": user_id}


def _quantity(found: DispenseEntry, event: str, details: dict[str, Any]) -> dict[str, Any] | None:
    if event == EventType.WASTE_RECORDED.value:
        try:
            amount = Decimal(str(details.get("amount")))
        except InvalidOperation:
            return None
        return {"value": float(amount) if amount != amount.to_integral_value() else int(amount),
                "unit": str(details.get("unit") or "")}  # fmt: skip
    units = abs(int(found.entry.get("quantity_change") or 0))
    value = -units if event == EventType.DOSE_RETURNED.value else units
    return {"value": value, "unit": found.medication.unit} if found.medication is not None else {"value": value}


def _note(event: str, body: dict[str, Any], details: dict[str, Any]) -> str:
    reason = body.get("reason_code")
    if event == EventType.DOSE_RETURNED.value:
        return f"returned to {reason or 'the cabinet'}"
    if event == EventType.WASTE_RECORDED.value:
        return f"wasted{' (partial dose)' if details.get('partial') else ''}, reason {reason or 'not given'}"
    return f"override removal, reason {reason}" if details.get("override") else ""
