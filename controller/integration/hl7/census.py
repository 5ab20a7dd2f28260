"""The census kept from ADT: patients, their encounters (which care area, room and bed) and merges.

Works in the caller's session (the message's transaction) and seeks a state rather than replaying steps: an admit
of an encounter already active updates it, a discharge of an encounter not held here changes nothing. A care area
named by PV1-3 that this store does not know is created, profiled (the stricter rule), so a patient on another
unit is kept for when they transfer. Not responsible for reading segments or for order status (``orders``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from controller.integration.hl7.errors import Hl7Error, Location
from controller.integration.hl7.patient_segments import ID_LIMIT, PatientRecord, Place, VisitRecord
from controller.store.models import CareAreaRow, EncounterRow, Hl7PatientMergeRow, OrderRow, PatientRow

_SURVIVOR = select(Hl7PatientMergeRow.survivor_id).where(Hl7PatientMergeRow.prior_patient_id == bindparam("patient_id"))


@dataclass(frozen=True, slots=True)
class Context:
    """What every change made for one message shares."""

    now: datetime
    control_id: str
    notes: list[str]


def upsert_patient(
    session: Session, record: PatientRecord, allergies: tuple[str, ...] | None, ctx: Context | None = None
) -> PatientRow:
    """Create the patient, or bring the stored one up to date with what the message says (absent values keep
    what is stored; allergies are replaced only when the message carries AL1 segments)."""
    row = session.get(PatientRow, record.id)
    if ctx is not None:
        ctx.notes.append(f"patient {record.id} {'updated' if row is not None else 'created'}")
    if row is None:
        return add_patient(session, record, allergies)
    if record.family_name:
        row.family_name = record.family_name
    if record.given_name:
        row.given_name = record.given_name
    if record.birth_date is not None or record.birth_date_cleared:
        row.birth_date = record.birth_date
    if allergies is not None:
        row.allergies = "\n".join(allergies)
    return row


def add_patient(session: Session, record: PatientRecord, allergies: tuple[str, ...] | None) -> PatientRow:
    row = PatientRow(
        id=record.id,
        family_name=record.family_name,
        given_name=record.given_name,
        birth_date=record.birth_date,
        allergies="\n".join(allergies or ()),
    )
    session.add(row)
    session.flush()
    return row


def encounter_id(patient_id: str, visit: VisitRecord) -> str:
    """PV1-19, or one standing encounter per patient when the feed sends no visit number."""
    if visit.visit_number:
        return visit.visit_number
    fallback = f"{patient_id}#visit"
    if len(fallback) > ID_LIMIT:
        raise Hl7Error(
            "hl7.field_missing",
            f"PV1-19 visit number is empty and patient id {patient_id!r} is too long to name a standing encounter",
            location=Location("PV1", field=19),
        )
    return fallback


def _care_area(session: Session, place: Place) -> str:
    if session.get(CareAreaRow, place.point_of_care) is None:
        name = f"{place.point_of_care} ({place.facility})" if place.facility else place.point_of_care
        session.add(CareAreaRow(id=place.point_of_care, name=name[:200], profiled=True))
        session.flush()
    return place.point_of_care


def _owned_encounter(session: Session, patient_id: str, visit: VisitRecord) -> tuple[str, EncounterRow | None]:
    ident = encounter_id(patient_id, visit)
    row = session.get(EncounterRow, ident)
    if row is not None and row.patient_id != patient_id:
        raise Hl7Error(
            "hl7.identity_conflict",
            f"visit number {ident!r} belongs to patient {row.patient_id} here, not {patient_id}",
            location=Location("PV1", field=19),
        )
    return ident, row


def place_encounter(
    session: Session, patient_id: str, visit: VisitRecord, ctx: Context, *, active: bool | None
) -> EncounterRow | None:
    """Put the encounter where ``visit.place`` says (creating it if needed); ``active`` sets its state, None
    keeps it (a new encounter is active unless PV1-45 says the patient left)."""
    ident, row = _owned_encounter(session, patient_id, visit)
    place = visit.place
    if place is None:
        if row is not None and active is not None:
            row.active = active
        elif row is None:
            ctx.notes.append(f"patient {patient_id}: PV1-3 names no point of care, no encounter kept")
        return row
    area = _care_area(session, place)
    if row is None:
        ctx.notes.append(f"encounter {ident} at {area} {place.room}/{place.bed}".rstrip("/ "))
        row = EncounterRow(
            id=ident,
            patient_id=patient_id,
            care_area_id=area,
            room=place.room,
            bed=place.bed,
            active=active if active is not None else not visit.discharged,
        )
        session.add(row)
    else:
        if row.care_area_id != area:
            ctx.notes.append(f"encounter {ident}: care area {row.care_area_id} -> {area}")
        row.care_area_id, row.room, row.bed = area, place.room, place.bed
        if active is not None:
            row.active = active
    session.flush()
    return row


def set_encounter_active(session: Session, patient_id: str, visit: VisitRecord, ctx: Context, active: bool) -> None:
    ident, row = _owned_encounter(session, patient_id, visit)
    if row is None:
        ctx.notes.append(f"encounter {ident} is not held here; nothing to change")
        return
    ctx.notes.append(f"encounter {ident} {'active' if active else 'inactive'}")
    row.active = active
    session.flush()


def merge_patients(session: Session, survivor: PatientRecord, prior_id: str, ctx: Context) -> None:
    """ADT^A40: the prior identifier's encounters and orders move to the survivor, allergies are united, the prior
    patient row goes, and a merge row keeps the link (ledger entries keep the identifier they were written with)."""
    if prior_id == survivor.id:
        raise Hl7Error(
            "hl7.bad_value",
            f"MRG-1 names the surviving patient {prior_id} itself; nothing to merge",
            location=Location("MRG", field=1),
        )
    kept = upsert_patient(session, survivor, None)
    prior = session.get(PatientRow, prior_id)
    if prior is not None:
        moved_orders = _count(session, OrderRow.patient_id, prior_id)
        moved_visits = _count(session, EncounterRow.patient_id, prior_id)
        session.execute(update(OrderRow).where(OrderRow.patient_id == prior_id).values(patient_id=survivor.id))
        session.execute(update(EncounterRow).where(EncounterRow.patient_id == prior_id).values(patient_id=survivor.id))
        allergies = dict.fromkeys([*kept.allergies.splitlines(), *prior.allergies.splitlines()])
        kept.allergies = "\n".join(a for a in allergies if a.strip())
        session.delete(prior)
        ctx.notes.append(
            f"patient {prior_id} merged into {survivor.id}: {moved_orders} order(s), {moved_visits} encounter(s)"
        )
    else:
        ctx.notes.append(f"patient {prior_id} is not held here; {survivor.id} recorded as its survivor")
    # Earlier merges into the prior identifier now point at the survivor too.
    session.execute(
        update(Hl7PatientMergeRow).where(Hl7PatientMergeRow.survivor_id == prior_id).values(survivor_id=survivor.id)
    )
    link = session.get(Hl7PatientMergeRow, prior_id)
    if link is None:
        session.add(
            Hl7PatientMergeRow(
                prior_patient_id=prior_id, survivor_id=survivor.id, merged_at=ctx.now, control_id=ctx.control_id
            )
        )
    else:
        link.survivor_id, link.merged_at, link.control_id = survivor.id, ctx.now, ctx.control_id
    session.flush()


def _count(session: Session, column: InstrumentedAttribute[str], value: str) -> int:
    return int(session.execute(select(func.count()).where(column == value)).scalar_one())


def survivor_of(session: Session, patient_id: str) -> str:
    """The patient an identifier now stands for (itself unless it was merged away)."""
    found = session.connection().execute(_SURVIVOR, {"patient_id": patient_id}).scalar_one_or_none()
    return found or patient_id
