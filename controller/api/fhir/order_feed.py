"""MedicationRequest create and update: FHIR as an alternative order feed into ``orders``.

What a request must say, and what it becomes:

- ``status``: active -> active; on-hold -> held; stopped, cancelled, completed, entered-in-error -> discontinued.
  ``draft`` and ``unknown`` are refused (``fhir.unsupported_value``): a draft is not an order yet.
- ``intent``: order, original-order, reflex-order, filler-order, instance-order -> a verified order (a profiled
  pull may release against it while active); proposal and plan -> stored unverified; option is refused.
- ``subject``: ``Patient/<id>`` of a patient this store holds (``fhir.unknown_reference`` otherwise).
- the medication: ``medicationReference`` to ``Medication/<id>`` of the formulary, or to a contained Medication,
  or ``medicationCodeableConcept``; a code is resolved like an RDE give code: an NDC
  (``http://hl7.org/fhir/sid/ndc``) through every NDC of the formulary, a formulary code
  (``urn:open-adc:formulary``) by id; anything else is filed as an item not stocked here (``NDC:…``, ``SCT:…``,
  ``RXNORM:…`` or the code as sent), as the HL7 feed does.
- the dose: the first ``dosageInstruction``'s first ``doseAndRate``: ``doseQuantity``, or the low end of
  ``doseRange`` (the HL7 feed keeps RXE-3, the minimum, too); value and unit required. Route, timing (code, or
  the repeat as "1 every 4-6 h") and ``asNeeded[x]`` (PRN) are kept as text.
- update (``PUT``) of an existing order: the patient cannot change (``fhir.patient_conflict``); a discontinued order
  cannot be changed or reactivated (``fhir.order_closed``). Update of an unknown id creates it.

Not kept: identifiers, notes, dispense requests and the rest of the resource (the read returns what the store
holds); no version history.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

from controller.api.fhir.clinical import (
    FOREIGN_SYSTEMS,
    FORMULARY_SYSTEM,
    NDC_SYSTEM,
    find_medication_id,
    find_patient_id,
)
from controller.api.fhir.outcome import FhirError
from controller.domain.ndc import Ndc, NdcFormat
from controller.errors import InvalidIdentifierError
from controller.store.queries import Session, fhir_reads, orders
from controller.store.queries.orders import OrderFields, OrderRecord

STATUSES = {
    "active": "active",
    "on-hold": "held",
    "stopped": "discontinued",
    "cancelled": "discontinued",
    "completed": "discontinued",
    "entered-in-error": "discontinued",
}
ORDER_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order"})
UNVERIFIED_INTENTS = frozenset({"proposal", "plan"})
ID_LIMIT, UNIT_LIMIT, TEXT_LIMIT = 64, 40, 100
AMOUNT_PLACES = Decimal("0.0001")
_SYSTEM_PREFIX = {system: prefix for prefix, system in FOREIGN_SYSTEMS.items() if system != NDC_SYSTEM}


@dataclass(frozen=True, slots=True)
class OrderValues:
    patient_id: str
    item_id: str
    dose_amount: Decimal
    dose_unit: str
    route: str
    frequency: str
    prn: bool
    status: str
    verified: bool


def parse_request(body: bytes) -> MedicationRequest:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirError("api.malformed_json", f"the body is not JSON: {exc}", issue="structure") from exc
    if not isinstance(document, dict) or document.get("resourceType") != "MedicationRequest":
        raise FhirError(
            "fhir.invalid_resource",
            "the body must be a MedicationRequest resource (resourceType MedicationRequest)",
            issue="structure",
            expression=["MedicationRequest.resourceType"],
        )
    try:
        return MedicationRequest.model_validate(document)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> FhirError:
    # Locations and messages only: pydantic's "input" would echo the request (patient data).
    problems = [
        ("MedicationRequest." + ".".join(str(part) for part in error["loc"]), error["msg"]) for error in exc.errors()
    ]
    where = "; ".join(f"{path}: {message}" for path, message in problems[:5])
    return FhirError(
        "fhir.invalid_resource",
        f"not a valid FHIR R4 MedicationRequest: {where}",
        issue="structure",
        expression=[path for path, _ in problems[:5]],
    )


def order_values(session: Session, request: MedicationRequest) -> OrderValues:
    status = STATUSES.get(str(request.status))
    if status is None:
        raise FhirError(
            "fhir.unsupported_value",
            f"status {request.status!r} is not an order this cabinet can act on; send {', '.join(STATUSES)}",
            issue="not-supported",
            expression=["MedicationRequest.status"],
        )
    intent = str(request.intent)
    if intent not in ORDER_INTENTS | UNVERIFIED_INTENTS:
        raise FhirError(
            "fhir.unsupported_value",
            f"intent {intent!r} is not taken; send order (a verified order) or proposal/plan (unverified)",
            issue="not-supported",
            expression=["MedicationRequest.intent"],
        )
    dosage = _dosage(request)
    amount, unit = _dose(dosage)
    return OrderValues(
        patient_id=_patient(session, request),
        item_id=_item(session, request),
        dose_amount=amount,
        dose_unit=unit,
        route=_text(dosage.route) if dosage.route is not None else "",
        frequency=_frequency(dosage),
        prn=bool(dosage.asNeededBoolean) or dosage.asNeededCodeableConcept is not None,
        status=status,
        verified=intent in ORDER_INTENTS,
    )


def create(session: Session, order_id: str, values: OrderValues) -> OrderRecord:
    return orders.create_order(session, order_id, _fields(values))


def update(session: Session, order_id: str, stored: OrderFields, values: OrderValues) -> OrderRecord:
    """File ``values`` over the order ``order_id`` whose stored fields are ``stored``."""
    if stored.patient_id != values.patient_id:
        raise FhirError(
            "fhir.patient_conflict",
            f"order {order_id} belongs to patient {stored.patient_id}; an order never moves to another patient",
            issue="conflict",
            expression=["MedicationRequest.subject"],
        )
    if stored.status == "discontinued" and values.status != "discontinued":
        raise FhirError(
            "fhir.order_closed",
            f"order {order_id} is discontinued; it cannot be changed or reactivated (send a new order)",
            issue="business-rule",
            expression=["MedicationRequest.status"],
        )
    return orders.update_order(session, order_id, _fields(values))


def _fields(values: OrderValues) -> OrderFields:
    return OrderFields(
        patient_id=values.patient_id,
        item_id=values.item_id,
        dose_amount=values.dose_amount,
        dose_unit=values.dose_unit,
        route=values.route,
        frequency=values.frequency,
        status=values.status,
        pharmacist_verified=values.verified,
        prn=values.prn,
    )


def _patient(session: Session, request: MedicationRequest) -> str:
    reference = request.subject.reference or ""
    kind, _, ident = reference.rstrip("/").rpartition("/")
    patient_id = find_patient_id(session, ident) if kind.rsplit("/", 1)[-1] == "Patient" and ident else None
    if patient_id is None:
        raise FhirError(
            "fhir.unknown_reference",
            f"subject {reference or '(no reference)'!r} is not a Patient held here (create it by ADT first)",
            issue="not-found",
            expression=["MedicationRequest.subject"],
        )
    return patient_id


def _item(session: Session, request: MedicationRequest) -> str:
    where = "MedicationRequest.medicationReference"
    if request.medicationReference is None:
        concept = request.medicationCodeableConcept
        assert concept is not None  # the model requires one of the two
        return _item_of(session, concept, "MedicationRequest.medicationCodeableConcept")
    reference = request.medicationReference.reference or ""
    if reference.startswith("#"):
        contained = next(
            (c for c in request.contained or () if c.get_resource_type() == "Medication" and c.id == reference[1:]),
            None,
        )
        code = getattr(contained, "code", None)
        if not isinstance(code, CodeableConcept):
            raise FhirError(
                "fhir.unknown_reference",
                f"{reference!r} names no contained Medication with a code",
                issue="not-found",
                expression=[where],
            )
        return _item_of(session, code, f"MedicationRequest.contained.where(id='{reference[1:]}').code")
    kind, _, ident = reference.rstrip("/").rpartition("/")
    item_id = find_medication_id(session, ident) if kind.rsplit("/", 1)[-1] == "Medication" and ident else None
    if item_id is None:
        raise FhirError(
            "fhir.unknown_reference",
            f"medication {reference or '(no reference)'!r} is not a Medication of this formulary",
            issue="not-found",
            expression=[where],
        )
    return item_id


def _item_of(session: Session, concept: CodeableConcept, where: str) -> str:
    unmapped: str | None = None
    for coding in concept.coding or ():
        system, code = str(coding.system or ""), str(coding.code or "").strip()
        if not code:
            continue
        if system == FORMULARY_SYSTEM:
            if not fhir_reads.has_medication(session, code):
                raise FhirError(
                    "fhir.unknown_reference", f"{code!r} is not in this formulary", issue="not-found",
                    expression=[f"{where}.coding"],
                )  # fmt: skip
            return code
        if system == NDC_SYSTEM:
            candidates = _ndc_digits(code, where)
            found = fhir_reads.medications_with_ndc_digits(session, candidates)
            if len(found) > 1:
                raise FhirError(
                    "fhir.unsupported_value", f"NDC {code} may be any of {', '.join(found)}; send it hyphenated",
                    issue="value", expression=[f"{where}.coding"],
                )  # fmt: skip
            if found:
                return found[0]
            unmapped = unmapped or f"NDC:{candidates[-1]}"
            continue
        prefix = _SYSTEM_PREFIX.get(system)
        unmapped = unmapped or (f"{prefix}:{code}" if prefix else code)
    if unmapped is None:
        raise FhirError(
            "fhir.invalid_resource", "the medication carries no code", issue="required", expression=[f"{where}.coding"]
        )
    if len(unmapped) > ID_LIMIT:
        raise FhirError(
            "fhir.unsupported_value", f"medication code {unmapped[:40]!r}… is longer than {ID_LIMIT} characters",
            issue="value", expression=[f"{where}.coding"],
        )  # fmt: skip
    return unmapped


def _ndc_digits(code: str, where: str) -> list[str]:
    """Every digit string under which the formulary may hold this NDC (an 11-digit one may pad three)."""
    try:
        if "-" in code:
            ndc = Ndc.parse(code)
            if ndc.format is not NdcFormat.F5_4_2:
                return [ndc.digits]
            return [*(c.digits for c in Ndc.candidates_from_ndc11(ndc.digits)), ndc.digits]
        if len(code) == 11 and code.isascii() and code.isdigit():
            return [*(c.digits for c in Ndc.candidates_from_ndc11(code)), code]
        if len(code) == 10 and code.isascii() and code.isdigit():
            return [code]
        return [Ndc.parse(code).digits]
    except InvalidIdentifierError as exc:
        raise FhirError(
            "fhir.unsupported_value", f"NDC {code!r}: {exc.detail}", issue="value", expression=[f"{where}.coding"]
        ) from exc


def _dosage(request: MedicationRequest) -> Dosage:
    if not request.dosageInstruction:
        raise FhirError(
            "fhir.invalid_resource", "the order needs a dosageInstruction with its dose", issue="required",
            expression=["MedicationRequest.dosageInstruction"],
        )  # fmt: skip
    return request.dosageInstruction[0]


def _dose(dosage: Dosage) -> tuple[Decimal, str]:
    where = "MedicationRequest.dosageInstruction[0].doseAndRate[0]"
    rate = dosage.doseAndRate[0] if dosage.doseAndRate else None
    quantity = None
    if rate is not None:
        quantity = rate.doseQuantity or (rate.doseRange.low if rate.doseRange is not None else None)
    value = quantity.value if quantity is not None else None
    unit = str(quantity.unit or quantity.code or "").strip() if quantity is not None else ""
    if value is None or not unit:
        raise FhirError(
            "fhir.invalid_resource", "the dose needs a value and a unit (doseQuantity, or doseRange.low)",
            issue="required", expression=[f"{where}.doseQuantity"],
        )  # fmt: skip
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal(0)
    if not 0 < amount < Decimal(10) ** 8 or amount != amount.quantize(AMOUNT_PLACES) or len(unit) > UNIT_LIMIT:
        raise FhirError(
            "fhir.unsupported_value",
            f"dose {value} {unit[:20]}: the amount must be positive, below 10^8, with at most 4 decimals, and the "
            f"unit at most {UNIT_LIMIT} characters",
            issue="value",
            expression=[f"{where}.doseQuantity"],
        )
    return amount, unit


def _frequency(dosage: Dosage) -> str:
    timing = dosage.timing
    if timing is None:
        return ""
    if timing.code is not None:
        return _text(timing.code)
    repeat = timing.repeat
    if repeat is not None and repeat.period is not None and repeat.periodUnit:
        period = f"{repeat.period.normalize():f}" + (f"-{repeat.periodMax.normalize():f}" if repeat.periodMax else "")
        return _clip(f"{repeat.frequency or 1} every {period} {repeat.periodUnit}")
    return _clip(dosage.text or "")


def _text(concept: CodeableConcept) -> str:
    codings: Sequence[Any] = concept.coding or ()
    label = concept.text or next((str(c.display or c.code) for c in codings if c.display or c.code), "")
    return _clip(label)


def _clip(value: str) -> str:
    return value if len(value) <= TEXT_LIMIT else value[: TEXT_LIMIT - 1] + "…"
