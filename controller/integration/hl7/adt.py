"""ADT (admit, discharge, transfer) events applied to the census.

| event | effect here |
| --- | --- |
| A01 admit, A04 register | patient created or updated; encounter (PV1-19) placed at PV1-3 and active |
| A08 update | patient updated; encounter moved to PV1-3 if given, its active state kept |
| A02 transfer | encounter moved to PV1-3 (required), active |
| A03 discharge | encounter inactive (orders are left to the pharmacy's DC messages) |
| A11 cancel admit/visit | encounter inactive |
| A12 cancel transfer | encounter back at PV1-3 (the standard puts the pre-transfer location there) |
| A13 cancel discharge | encounter active again, at PV1-3 if given |
| A40 merge | for each PID/MRG pair: MRG-1's encounters and orders move to the PID-3 patient |

Every event but A40 needs PID and PV1 (their ADT structures require both); AL1 segments, when present, replace
the patient's allergy list. The trigger comes from MSH-9.2 (``structures`` maps it), never from MSH-9.3.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from controller.integration.hl7.census import (
    Context,
    merge_patients,
    place_encounter,
    set_encounter_active,
    upsert_patient,
)
from controller.integration.hl7.errors import Hl7Error
from controller.integration.hl7.message import Hl7Message
from controller.integration.hl7.patient_segments import (
    PatientRecord,
    VisitRecord,
    read_allergies,
    read_patient,
    read_prior_patient_id,
    read_visit,
)


def _patient_and_visit(session: Session, message: Hl7Message, ctx: Context) -> tuple[PatientRecord, VisitRecord]:
    pid = message.require("PID", "it names the patient")
    pv1 = message.require("PV1", "it names the visit and its location")
    if pv1.index < pid.index:
        raise Hl7Error("hl7.segment_missing", "PV1 comes before PID", location=pv1.location())
    patient = read_patient(pid)
    visit = read_visit(pv1)
    upsert_patient(session, patient, read_allergies(message), ctx)
    return patient, visit


def admit(session: Session, message: Hl7Message, ctx: Context) -> None:
    patient, visit = _patient_and_visit(session, message, ctx)
    place_encounter(session, patient.id, visit, ctx, active=True)


def update_patient(session: Session, message: Hl7Message, ctx: Context) -> None:
    patient, visit = _patient_and_visit(session, message, ctx)
    place_encounter(session, patient.id, visit, ctx, active=None)


def transfer(session: Session, message: Hl7Message, ctx: Context) -> None:
    patient, visit = _patient_and_visit(session, message, ctx)
    if visit.place is None:
        pv1 = message.require("PV1", "transfer")
        raise Hl7Error(
            "hl7.field_missing",
            "PV1-3.1 (the point of care the patient moves to) is empty",
            location=pv1.location(3, 1),
        )
    place_encounter(session, patient.id, visit, ctx, active=True)


def discharge(session: Session, message: Hl7Message, ctx: Context) -> None:
    patient, visit = _patient_and_visit(session, message, ctx)
    set_encounter_active(session, patient.id, visit, ctx, active=False)


def cancel_transfer(session: Session, message: Hl7Message, ctx: Context) -> None:
    transfer(session, message, ctx)


def merge(session: Session, message: Hl7Message, ctx: Context) -> None:
    pids = message.all("PID")
    if not pids:
        raise Hl7Error("hl7.segment_missing", "ADT^A40 needs PID (the surviving patient)", location=None)
    for pid in pids:
        following = [s for s in message.segments if s.index > pid.index and s.name in ("MRG", "PID")]
        mrg = following[0] if following and following[0].name == "MRG" else None
        if mrg is None:
            raise Hl7Error(
                "hl7.segment_missing",
                f"PID[{pid.occurrence}] is not followed by the MRG naming the patient merged into it",
                location=pid.location(),
            )
        merge_patients(session, read_patient(pid), read_prior_patient_id(mrg), ctx)
