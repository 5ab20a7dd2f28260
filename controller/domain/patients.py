"""Patients, their encounters (where they are) and their medication orders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class CareArea:
    """A unit the cabinet serves. In a profiled area a nurse may remove only pharmacist-verified active orders;
    non-profiled areas (ED, OR, PACU, L&D) allow removal without one."""

    id: str
    name: str
    profiled: bool


@dataclass(frozen=True, slots=True)
class Patient:
    id: str  # medical record number
    family_name: str
    given_name: str
    birth_date: date | None = None
    allergies: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Encounter:
    id: str
    patient_id: str
    care_area_id: str
    room: str = ""
    bed: str = ""
    active: bool = True


class OrderStatus(StrEnum):
    ACTIVE = "active"
    HELD = "held"
    DISCONTINUED = "discontinued"


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    patient_id: str
    item_id: str
    dose_amount: Decimal
    dose_unit: str
    route: str
    frequency: str
    status: OrderStatus
    pharmacist_verified: bool
    prn: bool = False

    @property
    def is_removable(self) -> bool:
        """What a profiled cabinet may release against: active and verified by a pharmacist."""
        return self.status is OrderStatus.ACTIVE and self.pharmacist_verified
