"""Names and places the reports print beside the ledger's ids: formulary items (name, NDC, schedule, strength),
users, patients, cabinets with their care area, and every pocket with its drawer and levels. Read once per report
from the store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.medication import DeaSchedule
from controller.store.models import (
    CabinetRow,
    CareAreaRow,
    DrawerRow,
    MedicationRow,
    PatientRow,
    PocketRow,
    UserRow,
)


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    name: str
    generic_name: str
    ndc: str
    strength: str
    dosage_form: str
    package: str
    unit: str
    schedule: str  # "" or a DEA schedule: II, IIN, III, IIIN, IV, V

    @property
    def controlled(self) -> bool:
        return DeaSchedule.parse(self.schedule).is_controlled

    @property
    def schedule_ii(self) -> bool:
        return DeaSchedule.parse(self.schedule).is_schedule_ii


@dataclass(frozen=True, slots=True)
class CabinetPlace:
    id: str
    name: str
    care_area_id: str
    care_area: str


@dataclass(frozen=True, slots=True)
class PocketPlace:
    id: str
    cabinet_id: str
    drawer_id: str
    drawer_label: str
    drawer_kind: str
    drawer_position: int
    position: int
    item_id: str | None
    par: int
    min: int
    max: int


@dataclass(frozen=True, slots=True)
class Directory:
    items: dict[str, Item]
    users: dict[str, str]
    patients: dict[str, str]
    cabinets: dict[str, CabinetPlace]
    pockets: dict[str, PocketPlace]

    def item(self, item_id: str | None) -> Item | None:
        return self.items.get(item_id) if item_id is not None else None

    def item_name(self, item_id: str | None) -> str:
        item = self.item(item_id)
        return item.name if item is not None else (item_id or "")

    def user_name(self, user_id: str | None) -> str:
        return self.users.get(user_id, user_id) if user_id is not None else ""

    def patient_name(self, patient_id: str | None) -> str:
        return self.patients.get(patient_id, patient_id) if patient_id is not None else ""

    def pockets_of(self, cabinet_id: str | None) -> list[PocketPlace]:
        """Pockets of one cabinet (or all), in cabinet, drawer and pocket order."""
        chosen = [p for p in self.pockets.values() if cabinet_id is None or p.cabinet_id == cabinet_id]
        return sorted(chosen, key=lambda p: (p.cabinet_id, p.drawer_position, p.position))


def load_directory(session: Session) -> Directory:
    items = {
        m.id: Item(
            id=m.id,
            name=m.display_name,
            generic_name=m.generic_name,
            ndc=m.ndc,
            strength=m.strength,
            dosage_form=m.dosage_form,
            package=m.package,
            unit=m.unit,
            schedule=m.dea_schedule,
        )
        for m in session.execute(select(MedicationRow)).scalars()
    }
    users = {u.id: u.display_name for u in session.execute(select(UserRow)).scalars()}
    patients = {p.id: f"{p.family_name}, {p.given_name}" for p in session.execute(select(PatientRow)).scalars()}
    cabinets = {
        c.id: CabinetPlace(c.id, c.name, a.id, a.name)
        for c, a in session.execute(
            select(CabinetRow, CareAreaRow).join(CareAreaRow, CabinetRow.care_area_id == CareAreaRow.id)
        ).all()
    }
    pockets = {
        p.id: PocketPlace(
            id=p.id,
            cabinet_id=d.cabinet_id,
            drawer_id=d.id,
            drawer_label=d.label,
            drawer_kind=d.kind,
            drawer_position=d.position,
            position=p.position,
            item_id=p.item_id,
            par=p.par_level,
            min=p.min_level,
            max=p.max_level,
        )
        for p, d in session.execute(select(PocketRow, DrawerRow).join(DrawerRow, PocketRow.drawer_id == DrawerRow.id))
    }
    return Directory(items, users, patients, cabinets, pockets)
