"""Patient, Medication and MedicationRequest, read from the store: the mapping and the queries behind read and
search.

- Patient <- ``patients``: identifier (MR, the store's id), name, birthDate. Search: ``_id``, ``identifier``.
- Medication <- the formulary: code with every NDC of the item (``http://hl7.org/fhir/sid/ndc``, hyphenated as
  printed) and the formulary code (``urn:open-adc:formulary``), form, status active. Search: ``_id``, ``code``.
- MedicationRequest <- ``orders`` (and ``hl7_orders`` for the pharmacy's placer/filler numbers): status active /
  on-hold / stopped (held, discontinued), intent ``order`` when pharmacist-verified and ``proposal`` otherwise,
  the formulary item as ``medicationReference`` (an item not in the formulary as a coded concept: ``NDC:…``,
  ``SCT:…``, ``RXNORM:…`` or the code as sent), one dosage with dose, route, frequency and PRN. Search: ``_id``,
  ``patient``, ``status``, ``intent``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from controller.api.fhir.ids import fhir_id, find_raw, is_hashed
from controller.api.fhir.outcome import FhirError
from controller.api.fhir.search import Query, reference_ids, token
from controller.store.models import Hl7OrderRow, MedicationNdcRow, MedicationRow, OrderRow, PatientRow

NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
FORMULARY_SYSTEM = "urn:open-adc:formulary"
PATIENT_SYSTEM = "urn:open-adc:patient"
ORDER_SYSTEM = "urn:open-adc:order"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
# Coding systems of items that are not in the formulary, by the prefix their item id carries in ``orders``.
FOREIGN_SYSTEMS = {
    "NDC": NDC_SYSTEM,
    "SCT": "http://snomed.info/sct",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
}
STATUS_TO_FHIR = {"active": "active", "held": "on-hold", "discontinued": "stopped"}


# --- Patient ------------------------------------------------------------------------------------------------------


def patient_resource(row: PatientRow) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": fhir_id(row.id),
        "identifier": [_identifier(PATIENT_SYSTEM, row.id, "MR")],
        "active": True,
    }
    name = {
        k: v for k, v in (("family", row.family_name), ("given", [row.given_name] if row.given_name else None)) if v
    }
    if name:
        resource["name"] = [name]
    if row.birth_date is not None:
        resource["birthDate"] = row.birth_date.isoformat()
    return resource


def find_patient(session: Session, requested: str) -> PatientRow | None:
    return _find(session, PatientRow, requested)


def search_patients(session: Session, query: Query) -> tuple[int, list[dict[str, Any]]]:
    conditions: list[ColumnElement[bool]] = []
    if (ids := query.get("_id")) is not None:
        conditions.append(PatientRow.id.in_(_raw_ids(session, PatientRow, ids)))
    if (identifiers := query.get("identifier")) is not None:
        conditions.append(PatientRow.id.in_([token(value)[1] for value in identifiers]))
    total, rows = _page(session, select(PatientRow).where(*conditions).order_by(PatientRow.id), query)
    return total, [patient_resource(row) for row in rows]


# --- Medication ---------------------------------------------------------------------------------------------------


def medication_resource(row: MedicationRow) -> dict[str, Any]:
    ndcs = sorted(row.ndcs, key=lambda n: (not n.is_primary, n.ndc))
    coding = [{"system": NDC_SYSTEM, "code": n.ndc, "display": row.display_name} for n in ndcs]
    coding.append({"system": FORMULARY_SYSTEM, "code": row.id, "display": row.display_name})
    resource: dict[str, Any] = {
        "resourceType": "Medication",
        "id": fhir_id(row.id),
        "identifier": [_identifier(FORMULARY_SYSTEM, row.id)],
        "code": {"coding": coding, "text": row.display_name},
        "status": "active",
    }
    if row.dosage_form:
        resource["form"] = {"text": row.dosage_form}
    return resource


def find_medication(session: Session, requested: str) -> MedicationRow | None:
    return _find(session, MedicationRow, requested)


def search_medications(session: Session, query: Query) -> tuple[int, list[dict[str, Any]]]:
    conditions: list[ColumnElement[bool]] = []
    if (ids := query.get("_id")) is not None:
        conditions.append(MedicationRow.id.in_(_raw_ids(session, MedicationRow, ids)))
    if (codes := query.get("code")) is not None:
        matches: list[ColumnElement[bool]] = []
        for system, code in map(token, codes):
            if system in (None, NDC_SYSTEM):
                digits = select(MedicationNdcRow.medication_id).where(MedicationNdcRow.digits == code.replace("-", ""))
                matches.append(MedicationRow.id.in_(digits))
            if system in (None, FORMULARY_SYSTEM):
                matches.append(MedicationRow.id == code)
        conditions.append(or_(*matches) if matches else MedicationRow.id.is_(None))
    total, rows = _page(session, select(MedicationRow).where(*conditions).order_by(MedicationRow.id), query)
    return total, [medication_resource(row) for row in rows]


# --- MedicationRequest --------------------------------------------------------------------------------------------


def request_resource(session: Session, order: OrderRow) -> dict[str, Any]:
    medication = session.get(MedicationRow, order.item_id)
    details = session.get(Hl7OrderRow, order.id)
    identifiers = [_identifier(ORDER_SYSTEM, order.id)]
    if details is not None:
        identifiers += [
            _identifier(None, number, kind)
            for number, kind in ((details.placer_number, "PLAC"), (details.filler_number, "FILL"))
            if number
        ]
    dose = order.dose_amount.normalize()
    dosage: dict[str, Any] = {
        "text": " ".join(p for p in (f"{dose:f} {order.dose_unit}", order.route, order.frequency) if p)
        + (" as needed" if order.prn else ""),
        "asNeededBoolean": order.prn,
        "doseAndRate": [{"doseQuantity": {"value": _number(dose), "unit": order.dose_unit}}],
    }
    if order.route:
        dosage["route"] = {"text": order.route}
    if order.frequency:
        dosage["timing"] = {"code": {"text": order.frequency}}
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": fhir_id(order.id),
        "identifier": identifiers,
        "status": STATUS_TO_FHIR.get(order.status, "unknown"),
        "intent": "order" if order.pharmacist_verified else "proposal",
        "subject": {"reference": f"Patient/{fhir_id(order.patient_id)}"},
        "dosageInstruction": [dosage],
    }
    if medication is not None:
        resource["medicationReference"] = {
            "reference": f"Medication/{fhir_id(medication.id)}",
            "display": medication.display_name,
        }
    else:
        resource["medicationCodeableConcept"] = foreign_item_concept(order.item_id)
    return resource


def foreign_item_concept(item_id: str) -> dict[str, Any]:
    """An item this formulary does not hold, as the coded concept its id was made from."""
    prefix, colon, code = item_id.partition(":")
    system = FOREIGN_SYSTEMS.get(prefix) if colon else None
    concept: dict[str, Any] = {"text": f"{item_id} (not stocked here)"}
    if system is not None and code:
        concept["coding"] = [{"system": system, "code": code}]
    return concept


def find_order(session: Session, requested: str) -> OrderRow | None:
    return _find(session, OrderRow, requested)


def search_requests(session: Session, query: Query) -> tuple[int, list[dict[str, Any]]]:
    conditions: list[ColumnElement[bool]] = []
    if (ids := query.get("_id")) is not None:
        conditions.append(OrderRow.id.in_(_raw_ids(session, OrderRow, ids)))
    if (patients := query.get("patient")) is not None:
        conditions.append(OrderRow.patient_id.in_(_raw_ids(session, PatientRow, reference_ids(patients, "Patient"))))
    if (statuses := query.get("status")) is not None:
        ours = [status for status, theirs in STATUS_TO_FHIR.items() if theirs in statuses]
        conditions.append(OrderRow.status.in_(ours))
    if (intents := query.get("intent")) is not None:
        verified = {intent == "order" for intent in intents if intent in ("order", "proposal")}
        conditions.append(OrderRow.pharmacist_verified.in_(sorted(verified)))
    total, rows = _page(session, select(OrderRow).where(*conditions).order_by(OrderRow.id), query)
    return total, [request_resource(session, row) for row in rows]


# --- shared -------------------------------------------------------------------------------------------------------

RowT = TypeVar("RowT", PatientRow, MedicationRow, OrderRow)


def _find(session: Session, model: type[RowT], requested: str) -> RowT | None:
    if not is_hashed(requested):
        return session.get(model, requested)
    raw = find_raw(requested, session.execute(select(model.id)).scalars())
    return session.get(model, raw) if raw is not None else None


def _raw_ids(session: Session, model: type[Any], requested: Sequence[str]) -> list[str]:
    """The store ids behind FHIR ids (hashed ones found by comparing)."""
    plain = [value for value in requested if not is_hashed(value)]
    hashed = [value for value in requested if is_hashed(value)]
    if hashed:
        plain += [raw for raw in session.execute(select(model.id)).scalars() if fhir_id(raw) in hashed]
    return plain


def _page(session: Session, statement: Select[Any], query: Query) -> tuple[int, list[Any]]:
    total = session.execute(select(func.count()).select_from(statement.order_by(None).subquery())).scalar_one()
    rows = session.execute(statement.offset(query.offset).limit(query.count)).scalars().all()
    return int(total), list(rows)


def _identifier(system: str | None, value: str, kind: str | None = None) -> dict[str, Any]:
    identifier: dict[str, Any] = {"value": value}
    if system is not None:
        identifier["system"] = system
    if kind is not None:
        identifier["type"] = {"coding": [{"system": V2_0203, "code": kind}]}
    return identifier


def _number(value: Decimal) -> int | float:
    """A JSON number for a decimal the store holds exactly (4 places at most)."""
    return int(value) if value == value.to_integral_value() else float(value)


def not_found(resource_type: str, requested: str) -> FhirError:
    return FhirError("api.not_found", f"no {resource_type} with id {requested!r}", issue="not-found")
