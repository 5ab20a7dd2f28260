"""Applying what the central sends down, at the cabinet: the user directory, formulary items and its care area's
census (patients, their encounter here, their orders), each document applied only if its version is newer than
the one held (``fleet_downlink_versions``), so a user disabled centrally cannot log in here seconds later.

Responsible for: ``apply_user`` and ``apply_document`` (``applied``, ``same``, ``stale`` or ``refused``; a stale
or unreadable document is refused with a ``fleet.directory_refused`` entry naming kind, key and versions, never
applied). A census tombstone (the
patient left this area) ends the encounter here; the patient and their orders stay (the record of what was
dispensed must still resolve). Orders are never deleted: a discontinued one arrives with its status.
Not responsible for the transport (``controller.fleet.forwarder``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controller.domain.directory import CENSUS, FORMULARY, DirectoryUser, DownlinkDocument
from controller.domain.transactions import EventType, LedgerRecord
from controller.store.database import Database
from controller.store.ledger import Ledger
from controller.store.models import (
    CabinetRow,
    CareAreaRow,
    EncounterRow,
    FleetDownlinkVersionRow,
    MedicationNdcRow,
    MedicationRow,
    OrderRow,
    PatientRow,
    UserRoleRow,
    UserRow,
)

USER = "user"


def care_area_of(db: Database, cabinet_id: str) -> str | None:
    with db.read() as session:
        row = session.get(CabinetRow, cabinet_id)
        return None if row is None else row.care_area_id


def apply_user(db: Database, ledger: Ledger, user: DirectoryUser, now: datetime) -> str:
    """Apply one central user record (hashes only)."""

    def write(session: Session) -> None:
        row = session.get(UserRow, user.user_id)
        if row is None:
            row = UserRow(id=user.user_id, created_at=now)
            session.add(row)
        row.display_name, row.pin_hash, row.badge_hash = user.display_name, user.pin_hash, user.badge_hash
        row.active, row.expires_at = user.active, user.expires_at
        row.roles = [UserRoleRow(role=role) for role in sorted(set(user.roles))]

    return _apply(db, ledger, USER, user.user_id, user.version, now=now, write=write)


def apply_document(db: Database, ledger: Ledger, downlinked: DownlinkDocument, now: datetime) -> str:
    """Apply one formulary item or census document."""
    kind, content = downlinked.kind, downlinked.content
    if kind not in (CENSUS, FORMULARY):
        refuse(db, ledger, "fleet.unreadable_message", f"no such downlink kind {kind[:40]!r}", {"kind": kind[:40]})
        return "refused"
    writer = _apply_census if kind == CENSUS else _apply_item
    return _apply(db, ledger, kind, downlinked.key, downlinked.version, now=now,
                  write=lambda session: writer(session, content))  # fmt: skip


def _apply(
    db: Database, ledger: Ledger, kind: str, key: str, version: int, *, now: datetime, write: Callable[[Session], None]
) -> str:
    """``applied``, ``same`` (this version is held), ``stale`` (older than the one held) or ``refused`` (the
    document does not fit); the last two are recorded in the ledger, and nothing of them is applied."""
    try:
        with db.write() as session:
            held = session.get(FleetDownlinkVersionRow, (kind, key))
            if held is not None and version == held.version:
                return "same"
            if held is not None and version < held.version:
                note = f"{kind} {key}: version {version} is older than the {held.version} held"
                details = {"kind": kind, "key": key, "version": version, "held": held.version}
                ledger.append(session, refusal("fleet.stale_downlink", note, details))
                return "stale"
            write(session)
            session.flush()
            if held is None:
                session.add(FleetDownlinkVersionRow(kind=kind, key=key, version=version, applied_at=now))
            else:
                held.version, held.applied_at = version, now
            return "applied"
    except (KeyError, TypeError, ValueError, ArithmeticError, IntegrityError) as exc:
        refuse(db, ledger, "fleet.unreadable_message", f"{kind} {key}: {type(exc).__name__}: {exc}"[:500],
               {"kind": kind, "key": key, "version": version})  # fmt: skip
        return "refused"


def refuse(db: Database, ledger: Ledger, code: str, note: str, details: Mapping[str, object]) -> None:
    """A document the cabinet could not read or will not apply: refused, and the refusal recorded."""
    with db.write() as session:
        ledger.append(session, refusal(code, note[:500], dict(details)))


def refusal(code: str, note: str, details: dict[str, object]) -> LedgerRecord:
    return LedgerRecord(
        EventType.FLEET_DIRECTORY_REFUSED, actor_id="system", reason_code=code, note=note, details=details
    )


def _apply_census(session: Session, document: Mapping[str, Any]) -> None:
    if document.get("removed"):  # the patient left this area: their encounter here ends
        visits = session.query(EncounterRow).filter_by(
            patient_id=str(document["patient_id"]), care_area_id=str(document["care_area"]), active=True
        )
        for visit in visits:
            visit.active = False
        return
    patient, encounter = document["patient"], document["encounter"]
    row = session.get(PatientRow, str(patient["id"])) or PatientRow(id=str(patient["id"]))
    row.family_name, row.given_name = str(patient["family_name"]), str(patient["given_name"])
    birth = patient.get("birth_date")
    row.birth_date = date.fromisoformat(birth) if birth else None
    row.allergies = str(patient.get("allergies") or "")
    session.add(row)
    area = str(encounter["care_area"])
    if session.get(CareAreaRow, area) is None:
        session.add(CareAreaRow(id=area, name=str(encounter.get("care_area_name") or area), profiled=True))
    session.flush()
    visit = session.get(EncounterRow, str(encounter["id"])) or EncounterRow(id=str(encounter["id"]))
    visit.patient_id, visit.care_area_id = row.id, area
    visit.room, visit.bed, visit.active = str(encounter.get("room", "")), str(encounter.get("bed", "")), True
    session.add(visit)
    for order in document["orders"]:
        found = session.get(OrderRow, str(order["id"])) or OrderRow(id=str(order["id"]))
        found.patient_id, found.item_id = row.id, str(order["item_id"])
        found.dose_amount, found.dose_unit = Decimal(str(order["dose_amount"])), str(order["dose_unit"])
        found.route, found.frequency = str(order.get("route", "")), str(order.get("frequency", ""))
        found.status = str(order["status"])
        found.pharmacist_verified, found.prn = bool(order["pharmacist_verified"]), bool(order["prn"])
        session.add(found)


def _apply_item(session: Session, document: Mapping[str, Any]) -> None:
    item_id = str(document["id"])
    row = session.get(MedicationRow, item_id) or MedicationRow(id=item_id)
    for field in ("ndc", "generic_name", "brand_name", "display_name", "strength", "dosage_form", "route",
                  "package", "unit", "dea_schedule"):  # fmt: skip
        setattr(row, field, str(document[field]))
    for flag in ("high_alert", "lasa", "hazardous", "refrigerated", "neuromuscular_blocker", "critical_override"):
        setattr(row, flag, bool(document[flag]))
    session.add(row)
    session.flush()
    wanted = {str(n["ndc"]): n for n in document["ndcs"]}
    for held in list(row.ndcs):
        if held.ndc not in wanted:
            row.ndcs.remove(held)
    have = {n.ndc for n in row.ndcs}
    for ndc, entry in wanted.items():
        if ndc not in have:
            row.ndcs.append(MedicationNdcRow(ndc=ndc, digits=str(entry["digits"]), is_primary=bool(entry["primary"])))
