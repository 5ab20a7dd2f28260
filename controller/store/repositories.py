"""Reading and writing the reference data (formulary, topology, users, patients, orders) as domain objects."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.medication import DeaSchedule, Medication
from controller.domain.ndc import Ndc
from controller.domain.patients import CareArea, Encounter, Order, Patient
from controller.domain.topology import Cabinet, Drawer, Pocket
from controller.domain.users import Privilege, Role, User
from controller.store.models import (
    CabinetRow,
    CareAreaRow,
    DrawerRow,
    EncounterRow,
    MedicationNdcRow,
    MedicationRow,
    OrderRow,
    PatientRow,
    PocketRow,
    UserRoleRow,
    UserRow,
)

# --- formulary ---------------------------------------------------------------------------------------------------


def save_medication(session: Session, medication: Medication) -> None:
    row = MedicationRow(
        id=medication.id,
        ndc=str(medication.ndc),
        generic_name=medication.generic_name,
        brand_name=medication.brand_name,
        display_name=medication.display_name,
        strength=medication.strength,
        dosage_form=medication.dosage_form,
        route=medication.route,
        package=medication.package,
        unit=medication.unit,
        dea_schedule=medication.dea_schedule.value,
        high_alert=medication.high_alert,
        lasa=medication.lasa,
        hazardous=medication.hazardous,
        refrigerated=medication.refrigerated,
        neuromuscular_blocker=medication.neuromuscular_blocker,
        critical_override=medication.critical_override,
    )
    row.ndcs = [
        MedicationNdcRow(ndc=str(ndc), digits=ndc.digits, is_primary=ndc == medication.ndc)
        for ndc in medication.all_ndcs
    ]
    session.add(row)
    session.flush()


def medication_from_row(row: MedicationRow) -> Medication:
    return Medication(
        id=row.id,
        ndc=Ndc.parse(row.ndc),
        alternate_ndcs=tuple(Ndc.parse(n.ndc) for n in sorted(row.ndcs, key=lambda n: n.ndc) if not n.is_primary),
        generic_name=row.generic_name,
        brand_name=row.brand_name,
        display_name=row.display_name,
        strength=row.strength,
        dosage_form=row.dosage_form,
        route=row.route,
        package=row.package,
        unit=row.unit,
        dea_schedule=DeaSchedule(row.dea_schedule),
        high_alert=row.high_alert,
        lasa=row.lasa,
        hazardous=row.hazardous,
        refrigerated=row.refrigerated,
        neuromuscular_blocker=row.neuromuscular_blocker,
        critical_override=row.critical_override,
    )


def list_medications(session: Session) -> list[Medication]:
    rows = session.execute(select(MedicationRow).order_by(MedicationRow.id)).scalars()
    return [medication_from_row(row) for row in rows]


def medication_by_ndc_digits(session: Session, digits: str) -> Medication | None:
    """The item a scanned package belongs to, by the bare NDC digits the barcode carries (alternates included)."""
    row = session.execute(
        select(MedicationRow).join(MedicationNdcRow).where(MedicationNdcRow.digits == digits)
    ).scalar_one_or_none()
    return medication_from_row(row) if row is not None else None


# --- topology ----------------------------------------------------------------------------------------------------


def save_care_area(session: Session, area: CareArea) -> None:
    session.add(CareAreaRow(id=area.id, name=area.name, profiled=area.profiled))
    session.flush()


def save_cabinet(session: Session, cabinet: Cabinet) -> None:
    session.add(CabinetRow(id=cabinet.id, name=cabinet.name, care_area_id=cabinet.care_area_id))
    session.flush()


def cabinet_exists(session: Session, cabinet_id: str) -> bool:
    return session.get(CabinetRow, cabinet_id) is not None


def save_drawer(session: Session, cabinet_id: str, drawer: Drawer) -> None:
    session.add(
        DrawerRow(
            id=drawer.id,
            cabinet_id=cabinet_id,
            kind=drawer.kind.value,
            position=drawer.position,
            label=drawer.label,
        )
    )
    session.flush()


def save_pocket(session: Session, pocket: Pocket) -> None:
    session.add(
        PocketRow(
            id=pocket.id,
            drawer_id=pocket.drawer_id,
            position=pocket.position,
            item_id=pocket.item_id,
            par_level=pocket.levels.par,
            min_level=pocket.levels.min,
            max_level=pocket.levels.max,
        )
    )
    session.flush()


# --- users -------------------------------------------------------------------------------------------------------


def save_user(
    session: Session, user: User, *, pin_hash: str, created_at: datetime, badge_hash: str | None = None
) -> None:
    row = UserRow(
        id=user.id,
        display_name=user.display_name,
        pin_hash=pin_hash,
        badge_hash=badge_hash,
        active=user.active,
        expires_at=user.expires_at,
        created_at=created_at,
    )
    row.roles = [UserRoleRow(role=role.value) for role in sorted(user.roles)]
    session.add(row)
    session.flush()


def user_from_row(row: UserRow) -> User:
    expires_at = row.expires_at
    if expires_at is not None and expires_at.tzinfo is None:
        # SQLite hands back naive datetimes; everything is stored in UTC.
        expires_at = expires_at.replace(tzinfo=UTC)
    return User(
        id=row.id,
        display_name=row.display_name,
        roles=frozenset(Role(r.role) for r in row.roles),
        active=row.active,
        expires_at=expires_at,
    )


def get_user(session: Session, user_id: str) -> tuple[User, UserRow] | None:
    row = session.get(UserRow, user_id)
    return (user_from_row(row), row) if row is not None else None


def list_users(session: Session) -> list[User]:
    return [user_from_row(r) for r in session.execute(select(UserRow).order_by(UserRow.id)).scalars()]


def holders_of(session: Session, privilege: Privilege) -> list[User]:
    return [user for user in list_users(session) if user.has(privilege)]


# --- patients and orders -----------------------------------------------------------------------------------------


def save_patient(session: Session, patient: Patient) -> None:
    session.add(
        PatientRow(
            id=patient.id,
            family_name=patient.family_name,
            given_name=patient.given_name,
            birth_date=patient.birth_date,
            allergies="\n".join(patient.allergies),
        )
    )
    session.flush()


def save_encounter(session: Session, encounter: Encounter) -> None:
    session.add(
        EncounterRow(
            id=encounter.id,
            patient_id=encounter.patient_id,
            care_area_id=encounter.care_area_id,
            room=encounter.room,
            bed=encounter.bed,
            active=encounter.active,
        )
    )
    session.flush()


def save_order(session: Session, order: Order) -> None:
    session.add(
        OrderRow(
            id=order.id,
            patient_id=order.patient_id,
            item_id=order.item_id,
            dose_amount=order.dose_amount,
            dose_unit=order.dose_unit,
            route=order.route,
            frequency=order.frequency,
            status=order.status.value,
            pharmacist_verified=order.pharmacist_verified,
            prn=order.prn,
        )
    )
    session.flush()
