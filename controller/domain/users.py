"""Users, roles and privileges. Who may do what is decided here; credentials are in ``credentials``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

TEMPORARY_USER_LIFETIME = timedelta(hours=24)  # agency staff: DOMAIN.md rule 12


class Privilege(StrEnum):
    REMOVE = "remove"  # pull a dose for a patient
    OVERRIDE = "override"  # remove before pharmacist verification, from the override list
    WITNESS = "witness"  # witness waste, discrepancy resolution, count-backs
    ACCESS_SCHEDULE_II = "access_schedule_ii"
    RESTOCK = "restock"  # load, unload, restock, cycle-count
    RESOLVE_DISCREPANCY = "resolve_discrepancy"
    REVIEW = "review"  # pharmacist review of overrides and discrepancies
    ADMINISTER = "administer"  # users, formulary, layout, policies


class Role(StrEnum):
    NURSE = "nurse"
    PHARMACIST = "pharmacist"
    TECHNICIAN = "technician"
    ANESTHESIA_PROVIDER = "anesthesia_provider"
    ADMIN = "admin"
    QA = "qa"


P = Privilege
ROLE_PRIVILEGES: MappingProxyType[Role, frozenset[Privilege]] = MappingProxyType(
    {
        Role.NURSE: frozenset({P.REMOVE, P.OVERRIDE, P.WITNESS, P.ACCESS_SCHEDULE_II, P.RESOLVE_DISCREPANCY}),
        Role.ANESTHESIA_PROVIDER: frozenset(
            {P.REMOVE, P.OVERRIDE, P.WITNESS, P.ACCESS_SCHEDULE_II, P.RESOLVE_DISCREPANCY}
        ),
        Role.PHARMACIST: frozenset(
            {P.REMOVE, P.WITNESS, P.ACCESS_SCHEDULE_II, P.RESTOCK, P.RESOLVE_DISCREPANCY, P.REVIEW}
        ),
        Role.TECHNICIAN: frozenset({P.RESTOCK, P.ACCESS_SCHEDULE_II, P.WITNESS}),
        Role.ADMIN: frozenset({P.ADMINISTER}),
        # QA runs scenarios on simulated cabinets; it holds no clinical privilege.
        Role.QA: frozenset(),
    }
)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    display_name: str
    roles: frozenset[Role]
    extra_privileges: frozenset[Privilege] = field(default=frozenset())
    revoked_privileges: frozenset[Privilege] = field(default=frozenset())
    active: bool = True
    expires_at: datetime | None = None  # set for temporary users

    @property
    def is_temporary(self) -> bool:
        return self.expires_at is not None

    @property
    def privileges(self) -> frozenset[Privilege]:
        granted: set[Privilege] = set(self.extra_privileges)
        for role in self.roles:
            granted |= ROLE_PRIVILEGES[role]
        return frozenset(granted - self.revoked_privileges)

    def has(self, privilege: Privilege) -> bool:
        return privilege in self.privileges

    def is_usable_at(self, now: datetime) -> bool:
        """Deactivated users and expired temporary users cannot log in or witness."""
        return self.active and (self.expires_at is None or now < self.expires_at)


def temporary_expiry(created_at: datetime, lifetime: timedelta = TEMPORARY_USER_LIFETIME) -> datetime:
    return created_at + lifetime
