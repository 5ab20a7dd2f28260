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

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from controller.api.fhir.ids import fhir_id, find_raw, is_hashed
from controller.api.fhir.outcome import FhirError
from controller.api.fhir.search import Query, reference_ids, token
from controller.domain.patients import Patient
from controller.store.queries import Session, fhir_reads, orders
from controller.store.queries.fhir_reads import CodeMatch, MedicationRecord
from controller.store.queries.orders import OrderRecord

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


def patient_resource(patient: Patient) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": fhir_id(patient.id),
        "identifier": [_identifier(PATIENT_SYSTEM, patient.id, "MR")],
        "active": True,
    }
    name = {
        k: v
        for k, v in (("family", patient.family_name), ("given", [patient.given_name] if patient.given_name else None))
        if v
    }
    if name:
        resource["name"] = [name]
    if patient.birth_date is not None:
        resource["birthDate"] = patient.birth_date.isoformat()
    return resource


def find_patient(session: Session, requested: str) -> Patient | None:
    return _find(session, requested, fhir_reads.patient, fhir_reads.patient_ids)


def find_patient_id(session: Session, requested: str) -> str | None:
    """The store id of the patient with this FHIR id (None: no such patient)."""
    return _find_id(session, requested, fhir_reads.has_patient, fhir_reads.patient_ids)


def search_patients(session: Session, query: Query) -> tuple[int, list[dict[str, Any]]]:
    id_sets: list[list[str]] = []
    if (ids := query.get("_id")) is not None:
        id_sets.append(_raw_ids(session, fhir_reads.patient_ids, ids))
    if (identifiers := query.get("identifier")) is not None:
        id_sets.append([token(value)[1] for value in identifiers])
    total, rows = fhir_reads.patients_page(session, id_sets=id_sets, offset=query.offset, limit=query.count)
    return total, [patient_resource(row) for row in rows]


# --- Medication ---------------------------------------------------------------------------------------------------


def medication_resource(medication: MedicationRecord) -> dict[str, Any]:
    ndcs = sorted(medication.ndcs, key=lambda n: (not n.is_primary, n.ndc))
    coding = [{"system": NDC_SYSTEM, "code": n.ndc, "display": medication.display_name} for n in ndcs]
    coding.append({"system": FORMULARY_SYSTEM, "code": medication.id, "display": medication.display_name})
    resource: dict[str, Any] = {
        "resourceType": "Medication",
        "id": fhir_id(medication.id),
        "identifier": [_identifier(FORMULARY_SYSTEM, medication.id)],
        "code": {"coding": coding, "text": medication.display_name},
        "status": "active",
    }
    if medication.dosage_form:
        resource["form"] = {"text": medication.dosage_form}
    return resource


def find_medication(session: Session, requested: str) -> MedicationRecord | None:
    return _find(session, requested, fhir_reads.medication, fhir_reads.medication_ids)


def find_medication_id(session: Session, requested: str) -> str | None:
    """The formulary id of the medication with this FHIR id (None: not in the formulary)."""
    return _find_id(session, requested, fhir_reads.has_medication, fhir_reads.medication_ids)


def search_medications(session: Session, query: Query) -> tuple[int, list[dict[str, Any]]]:
    id_sets: list[list[str]] = []
    codes: CodeMatch | None = None
    if (ids := query.get("_id")) is not None:
        id_sets.append(_raw_ids(session, fhir_reads.medication_ids, ids))
    if (requested := query.get("code")) is not None:
        digits: list[str] = []
        formulary: list[str] = []
        for system, code in map(token, requested):
            if system in (None, NDC_SYSTEM):
                digits.append(code.replace("-", ""))
            if system in (None, FORMULARY_SYSTEM):
                formulary.append(code)
        codes = CodeMatch(tuple(digits), tuple(formulary))
    total, rows = fhir_reads.medications_page(
        session, id_sets=id_sets, codes=codes, offset=query.offset, limit=query.count
    )
    return total, [medication_resource(row) for row in rows]


# --- MedicationRequest --------------------------------------------------------------------------------------------


def request_resource(order: OrderRecord) -> dict[str, Any]:
    fields = order.fields
    identifiers = [_identifier(ORDER_SYSTEM, order.id)]
    identifiers += [
        _identifier(None, number, kind)
        for number, kind in ((order.placer_number, "PLAC"), (order.filler_number, "FILL"))
        if number
    ]
    dose = fields.dose_amount.normalize()
    dosage: dict[str, Any] = {
        "text": " ".join(p for p in (f"{dose:f} {fields.dose_unit}", fields.route, fields.frequency) if p)
        + (" as needed" if fields.prn else ""),
        "asNeededBoolean": fields.prn,
        "doseAndRate": [{"doseQuantity": {"value": _number(dose), "unit": fields.dose_unit}}],
    }
    if fields.route:
        dosage["route"] = {"text": fields.route}
    if fields.frequency:
        dosage["timing"] = {"code": {"text": fields.frequency}}
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": fhir_id(order.id),
        "identifier": identifiers,
        "status": STATUS_TO_FHIR.get(fields.status, "unknown"),
        "intent": "order" if fields.pharmacist_verified else "proposal",
        "subject": {"reference": f"Patient/{fhir_id(fields.patient_id)}"},
        "dosageInstruction": [dosage],
    }
    if order.item_name is not None:
        resource["medicationReference"] = {
            "reference": f"Medication/{fhir_id(fields.item_id)}",
            "display": order.item_name,
        }
    else:
        resource["medicationCodeableConcept"] = foreign_item_concept(fields.item_id)
    return resource


def foreign_item_concept(item_id: str) -> dict[str, Any]:
    """An item this formulary does not hold, as the coded concept its id was made from."""
    prefix, colon, code = item_id.partition(":")
    system = FOREIGN_SYSTEMS.get(prefix) if colon else None
    concept: dict[str, Any] = {"text": f"{item_id} (not stocked here)"}
    if system is not None and code:
        concept["coding"] = [{"system": system, "code": code}]
    return concept


def find_order(session: Session, requested: str) -> OrderRecord | None:
    return _find(session, requested, orders.order, orders.order_ids)


def search_requests(session: Session, query: Query) -> tuple[int, list[dict[str, Any]]]:
    ids: list[str] | None = None
    patients: list[str] | None = None
    statuses: list[str] | None = None
    verified: list[bool] | None = None
    if (requested := query.get("_id")) is not None:
        ids = _raw_ids(session, orders.order_ids, requested)
    if (references := query.get("patient")) is not None:
        patients = _raw_ids(session, fhir_reads.patient_ids, reference_ids(references, "Patient"))
    if (wanted := query.get("status")) is not None:
        statuses = [status for status, theirs in STATUS_TO_FHIR.items() if theirs in wanted]
    if (intents := query.get("intent")) is not None:
        verified = sorted({intent == "order" for intent in intents if intent in ("order", "proposal")})
    total, rows = orders.orders_page(
        session,
        ids=ids,
        patient_ids=patients,
        statuses=statuses,
        verified=verified,
        offset=query.offset,
        limit=query.count,
    )
    return total, [request_resource(row) for row in rows]


# --- shared -------------------------------------------------------------------------------------------------------

RecordT = TypeVar("RecordT")


def _find(
    session: Session,
    requested: str,
    get: Callable[[Session, str], RecordT | None],
    all_ids: Callable[[Session], list[str]],
) -> RecordT | None:
    if not is_hashed(requested):
        return get(session, requested)
    raw = find_raw(requested, all_ids(session))
    return get(session, raw) if raw is not None else None


def _find_id(
    session: Session, requested: str, exists: Callable[[Session, str], bool], all_ids: Callable[[Session], list[str]]
) -> str | None:
    if not is_hashed(requested):
        return requested if exists(session, requested) else None
    return find_raw(requested, all_ids(session))


def _raw_ids(session: Session, all_ids: Callable[[Session], list[str]], requested: Sequence[str]) -> list[str]:
    """The store ids behind FHIR ids (hashed ones found by comparing)."""
    plain = [value for value in requested if not is_hashed(value)]
    hashed = [value for value in requested if is_hashed(value)]
    if hashed:
        plain += [raw for raw in all_ids(session) if fhir_id(raw) in hashed]
    return plain


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
