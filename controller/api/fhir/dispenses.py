"""MedicationDispense, read from the ledger: one resource per ``dose.removed``, ``dose.returned`` and
``dose.wasted`` entry of this cabinet (id ``dose-<seq>``). Read-only, as the ledger is.

- ``type`` says which (coding system ``urn:open-adc:ledger-event``); ``status`` is ``completed`` for all three.
- ``quantity``: units removed, minus the units returned, or the wasted amount in its dose unit (``2 mg``).
- the medication is a contained Medication with the item's NDCs and formulary code and the ``batch`` (lot, expiry)
  the entry names; ``subject``, ``authorizingPrescription``, ``performer`` (the user; a witness as ``checker``),
  ``location`` (the cabinet) and ``whenHandedOver`` (the entry's time) follow the entry.
- an entry made against simulated hardware carries the ``HTEST`` (test health data) security tag.

Search: ``_id``, ``patient`` (a merged patient's entries under the old id included), ``status``, ``type``.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from controller.api.fhir.clinical import FORMULARY_SYSTEM, NDC_SYSTEM, foreign_item_concept
from controller.api.fhir.ids import fhir_id
from controller.api.fhir.places import cabinet_ref
from controller.api.fhir.search import Query, reference_ids
from controller.domain.transactions import EventType
from controller.store.models import Hl7PatientMergeRow, LedgerEntryRow, MedicationRow, PocketLotRow

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


def dispense_resource(session: Session, body: dict[str, Any]) -> dict[str, Any]:
    event = str(body["event_type"])
    details = body.get("details") or {}
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": dispense_id(int(body["seq"])),
        "identifier": [{"system": LEDGER_SYSTEM, "value": f"{body['cabinet_id']}:{body['seq']}"}],
        "contained": [_medication(session, body)],
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
    if (quantity := _quantity(session, event, body, details)) is not None:
        resource["quantity"] = quantity
    if note := _note(event, body, details):
        resource["note"] = [{"text": note}]
    return resource


def search_dispenses(session: Session, cabinet_id: str, query: Query) -> tuple[int, list[dict[str, Any]]]:
    conditions: list[ColumnElement[bool]] = [
        LedgerEntryRow.cabinet_id == cabinet_id,
        LedgerEntryRow.event_type.in_(list(EVENTS)),
    ]
    if (ids := query.get("_id")) is not None:
        conditions.append(LedgerEntryRow.seq.in_([s for s in map(seq_of, ids) if s is not None]))
    if (patients := query.get("patient")) is not None:
        conditions.append(LedgerEntryRow.patient_id.in_(_with_merged(session, reference_ids(patients, "Patient"))))
    if (statuses := query.get("status")) is not None and "completed" not in statuses:
        conditions.append(LedgerEntryRow.seq.is_(None))
    if (types := query.get("type")) is not None:
        conditions.append(LedgerEntryRow.event_type.in_([t.rpartition("|")[2] for t in types]))
    total = session.execute(select(func.count()).select_from(LedgerEntryRow).where(*conditions)).scalar_one()
    bodies = session.execute(
        select(LedgerEntryRow.body).where(*conditions).order_by(LedgerEntryRow.seq).offset(query.offset)
        .limit(query.count)
    ).scalars()  # fmt: skip
    return int(total), [dispense_resource(session, json.loads(body)) for body in bodies]


def read_dispense(session: Session, cabinet_id: str, requested: str) -> dict[str, Any] | None:
    seq = seq_of(requested)
    if seq is None:
        return None
    body = session.execute(
        select(LedgerEntryRow.body).where(
            LedgerEntryRow.cabinet_id == cabinet_id,
            LedgerEntryRow.seq == seq,
            LedgerEntryRow.event_type.in_(list(EVENTS)),
        )
    ).scalar_one_or_none()
    return dispense_resource(session, json.loads(body)) if body is not None else None


def _with_merged(session: Session, patient_ids: list[str]) -> list[str]:
    """The requested patients and every identifier merged into them (entries keep the id they were written with)."""
    merged = session.execute(
        select(Hl7PatientMergeRow.prior_patient_id).where(Hl7PatientMergeRow.survivor_id.in_(patient_ids))
    ).scalars()
    return [*patient_ids, *merged]


def _medication(session: Session, body: dict[str, Any]) -> dict[str, Any]:
    item_id = str(body.get("item_id") or "")
    row = session.get(MedicationRow, item_id) if item_id else None
    medication: dict[str, Any] = {"resourceType": "Medication", "id": "med"}
    if row is not None:
        coding = [{"system": NDC_SYSTEM, "code": n.ndc} for n in sorted(row.ndcs, key=lambda n: not n.is_primary)]
        coding.append({"system": FORMULARY_SYSTEM, "code": row.id, "display": row.display_name})
        medication["code"] = {"coding": coding, "text": row.display_name}
    elif item_id:
        medication["code"] = foreign_item_concept(item_id)
    lot = body.get("lot_number")
    if lot:
        batch: dict[str, Any] = {"lotNumber": lot}
        expiry = session.execute(
            select(PocketLotRow.expiry).where(PocketLotRow.pocket_id == body.get("pocket_id"),
                                              PocketLotRow.lot_number == lot)
        ).scalar_one_or_none()  # fmt: skip
        if expiry is not None:
            batch["expirationDate"] = expiry.isoformat()
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


def _quantity(session: Session, event: str, body: dict[str, Any], details: dict[str, Any]) -> dict[str, Any] | None:
    if event == EventType.WASTE_RECORDED.value:
        try:
            amount = Decimal(str(details.get("amount")))
        except InvalidOperation:
            return None
        return {"value": float(amount) if amount != amount.to_integral_value() else int(amount),
                "unit": str(details.get("unit") or "")}  # fmt: skip
    units = abs(int(body.get("quantity_change") or 0))
    row = session.get(MedicationRow, str(body.get("item_id") or ""))
    value = -units if event == EventType.DOSE_RETURNED.value else units
    return {"value": value, "unit": row.unit} if row is not None else {"value": value}


def _note(event: str, body: dict[str, Any], details: dict[str, Any]) -> str:
    reason = body.get("reason_code")
    if event == EventType.DOSE_RETURNED.value:
        return f"returned to {reason or 'the cabinet'}"
    if event == EventType.WASTE_RECORDED.value:
        return f"wasted{' (partial dose)' if details.get('partial') else ''}, reason {reason or 'not given'}"
    return f"override removal, reason {reason}" if details.get("override") else ""
