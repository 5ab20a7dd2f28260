"""Who the patient is and where: PID, PV1, AL1 and MRG read into plain records.

- Patient id: the PID-3 identifier typed ``MR`` (medical record number), else the first one; the assigning
  authority is not part of the id (one hospital's MRNs).
- Location: PV1-3 point of care (first subcomponent) is the care area; room and bed follow. An empty point of
  care means the feed does not say where the patient is.
- Visit: PV1-19 visit number, the encounter's id.
- Allergies: AL1-3 allergen text (else its code), one entry per AL1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from controller.integration.hl7.errors import Hl7Error
from controller.integration.hl7.fields import birth_date, bounded, identifier, person_name
from controller.integration.hl7.message import Hl7Message, Segment

ID_LIMIT = 64  # patients.id, encounters.id, care_areas.id
ROOM_LIMIT = 40


@dataclass(frozen=True, slots=True)
class PatientRecord:
    id: str
    family_name: str
    given_name: str
    birth_date: date | None
    birth_date_cleared: bool  # PID-7 was HL7 null: forget the stored date


@dataclass(frozen=True, slots=True)
class Place:
    point_of_care: str
    room: str
    bed: str
    facility: str


@dataclass(frozen=True, slots=True)
class VisitRecord:
    visit_number: str
    place: Place | None  # None: PV1-3 names no point of care
    prior_place: Place | None  # PV1-6
    discharged: bool  # PV1-45 discharge date/time is set


def read_patient(pid: Segment) -> PatientRecord:
    mrn = identifier(pid, 3)
    if not mrn:
        raise Hl7Error("hl7.field_missing", "PID-3 holds no patient identifier", location=pid.location(3))
    family, given = person_name(pid, 5)
    return PatientRecord(
        id=bounded(pid, 3, mrn, limit=ID_LIMIT, what="patient identifier"),
        family_name=family[:200],
        given_name=given[:200],
        birth_date=birth_date(pid, 7),
        birth_date_cleared=pid.is_null(7),
    )


def read_prior_patient_id(mrg: Segment) -> str:
    prior = identifier(mrg, 1)
    if not prior:
        raise Hl7Error("hl7.field_missing", "MRG-1 holds no prior patient identifier", location=mrg.location(1))
    return bounded(mrg, 1, prior, limit=ID_LIMIT, what="prior patient identifier")


def _place(pv1: Segment, field: int) -> Place | None:
    point_of_care = pv1.value(field, 1, 1)
    if not point_of_care:
        return None
    return Place(
        point_of_care=bounded(pv1, field, point_of_care, limit=ID_LIMIT, what="point of care", component=1),
        room=bounded(pv1, field, pv1.value(field, 2, 1), limit=ROOM_LIMIT, what="room", component=2),
        bed=bounded(pv1, field, pv1.value(field, 3, 1), limit=ROOM_LIMIT, what="bed", component=3),
        facility=pv1.value(field, 4, 1),
    )


def read_visit(pv1: Segment) -> VisitRecord:
    return VisitRecord(
        visit_number=bounded(pv1, 19, pv1.value(19, 1), limit=ID_LIMIT, what="visit number", component=1),
        place=_place(pv1, 3),
        prior_place=_place(pv1, 6),
        discharged=bool(pv1.value(45)),
    )


def read_allergies(message: Hl7Message) -> tuple[str, ...] | None:
    """The allergens of the AL1 segments; None when there are none (the message says nothing about allergies)."""
    segments = message.all("AL1")
    if not segments:
        return None
    names = (al1.value(3, 2) or al1.value(3, 1) for al1 in segments)
    return tuple(dict.fromkeys(name for name in names if name))
