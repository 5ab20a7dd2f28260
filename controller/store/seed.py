"""Loading a cabinet from a layout file: care area, drawers and pockets, users, patients, orders and opening
stock. The demo cabinet (``controller/data/demo_cabinet.toml``) is one such file.

Opening stock goes through ``InventoryStore`` like every other stock change, so the ledger accounts for every
unit from the first one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from controller.domain.clock import Clock
from controller.domain.credentials import CredentialHasher
from controller.domain.medication import Medication
from controller.domain.patients import CareArea, Encounter, Order, OrderStatus, Patient
from controller.domain.topology import Cabinet, Drawer, DrawerKind, Pocket, StockLevels
from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import Role, User, temporary_expiry
from controller.errors import ConfigurationError, ControllerError
from controller.store import repositories as repo
from controller.store.formulary_file import FormularyEntry
from controller.store.inventory import InventoryStore, StockChange
from controller.store.ledger import Ledger


@dataclass(frozen=True, slots=True)
class SeedSummary:
    cabinet_id: str
    medications: int
    pockets: int
    users: int
    patients: int
    orders: int
    units_loaded: int


def demo_layout() -> dict[str, Any]:
    return tomllib.loads(resources.files("controller").joinpath("data/demo_cabinet.toml").read_text("utf-8"))


def load_layout(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError("config.invalid", f"cannot read layout {path}: {exc}") from exc


def seed_cabinet(
    session: Session,
    layout: dict[str, Any],
    formulary: list[FormularyEntry],
    *,
    ledger: Ledger,
    hasher: CredentialHasher,
    clock: Clock,
) -> SeedSummary:
    """Create everything ``layout`` describes in the caller's transaction."""
    try:
        return _seed(session, layout, formulary, ledger=ledger, hasher=hasher, clock=clock)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError("config.invalid", f"cabinet layout is incomplete or wrong: {exc!r}") from exc


def _seed(
    session: Session,
    layout: dict[str, Any],
    formulary: list[FormularyEntry],
    *,
    ledger: Ledger,
    hasher: CredentialHasher,
    clock: Clock,
) -> SeedSummary:
    area_raw = layout["care_area"]
    cabinet_raw = layout["cabinet"]
    if cabinet_raw["id"] != ledger.cabinet_id:
        raise ConfigurationError(
            "config.invalid", f"layout is for cabinet {cabinet_raw['id']}, the ledger for {ledger.cabinet_id}"
        )
    if repo.cabinet_exists(session, cabinet_raw["id"]):
        raise ConfigurationError("config.invalid", f"cabinet {cabinet_raw['id']} already exists in this database")
    now = clock.now()
    area = CareArea(id=area_raw["id"], name=area_raw["name"], profiled=bool(area_raw["profiled"]))
    repo.save_care_area(session, area)
    repo.save_cabinet(session, Cabinet(id=cabinet_raw["id"], name=cabinet_raw["name"], care_area_id=area.id))
    medications: dict[str, Medication] = {}
    for entry in formulary:
        repo.save_medication(session, entry.medication)
        medications[entry.medication.id] = entry.medication
    session.flush()
    ledger.append(
        session,
        LedgerRecord(
            EventType.CABINET_INITIALISED,
            details={
                "cabinet_name": cabinet_raw["name"],
                "care_area": area.id,
                "formulary_items": len(medications),
            },
        ),
    )
    users = _seed_users(session, layout.get("user", []), hasher, ledger, now)
    pockets, stock = _seed_drawers(session, cabinet_raw["id"], layout.get("drawer", []), medications, ledger)
    patients, orders = _seed_patients(session, area.id, layout.get("patient", []), layout.get("order", []))
    inventory = InventoryStore(ledger)
    loaded = 0
    for pocket_id, item_id, lot in stock:
        quantity = int(lot["quantity"])
        inventory.apply(
            session,
            StockChange(pocket_id, str(lot["lot"]), quantity, expiry=date.fromisoformat(str(lot["expiry"]))),
            LedgerRecord(
                EventType.STOCK_LOADED,
                actor_id=layout.get("loaded_by"),
                item_id=item_id,
                reason_code="initial_load",
            ),
        )
        loaded += quantity
    return SeedSummary(
        cabinet_id=cabinet_raw["id"],
        medications=len(medications),
        pockets=pockets,
        users=users,
        patients=patients,
        orders=orders,
        units_loaded=loaded,
    )


def _seed_users(
    session: Session, raw_users: list[dict[str, Any]], hasher: CredentialHasher, ledger: Ledger, now: Any
) -> int:
    for raw in raw_users:
        user = User(
            id=raw["id"],
            display_name=raw["name"],
            roles=frozenset(Role(r) for r in raw["roles"]),
            expires_at=temporary_expiry(now) if raw.get("temporary", False) else None,
        )
        repo.save_user(session, user, pin_hash=hasher.hash_pin(str(raw["pin"])), created_at=now)
        session.flush()
        ledger.append(
            session,
            LedgerRecord(
                EventType.USER_CREATED,
                details={
                    "user_id": user.id,
                    "roles": sorted(r.value for r in user.roles),
                    "temporary": user.is_temporary,
                },
            ),
        )
    return len(raw_users)


def _seed_drawers(
    session: Session,
    cabinet_id: str,
    raw_drawers: list[dict[str, Any]],
    medications: dict[str, Medication],
    ledger: Ledger,
) -> tuple[int, list[tuple[str, str | None, dict[str, Any]]]]:
    pockets = 0
    stock: list[tuple[str, str | None, dict[str, Any]]] = []
    for d_index, raw_drawer in enumerate(raw_drawers, start=1):
        kind = DrawerKind(raw_drawer["kind"])
        drawer = Drawer(id=raw_drawer["id"], kind=kind, position=d_index, label=raw_drawer["label"])
        repo.save_drawer(session, cabinet_id, drawer)
        for p_index, raw_pocket in enumerate(raw_drawer.get("pocket", []), start=1):
            item_id = raw_pocket.get("item")
            if item_id is not None and item_id not in medications:
                raise ConfigurationError(
                    "config.invalid", f"pocket {raw_pocket['id']}: item {item_id} is not in the formulary"
                )
            if item_id is not None and not kind.holds_assigned_items:
                raise ConfigurationError("config.invalid", f"pocket {raw_pocket['id']}: a return bin holds no item")
            _check_placement(raw_pocket["id"], kind, medications.get(item_id) if item_id else None)
            try:
                levels = StockLevels(
                    par=int(raw_pocket.get("par", 0)),
                    min=int(raw_pocket.get("min", 0)),
                    max=int(raw_pocket.get("max", 0)),
                )
            except ControllerError as exc:
                raise ConfigurationError("config.invalid", f"pocket {raw_pocket['id']}: {exc.detail}") from exc
            repo.save_pocket(
                session,
                Pocket(id=raw_pocket["id"], drawer_id=drawer.id, position=p_index, levels=levels, item_id=item_id),
            )
            session.flush()
            if item_id is not None:
                ledger.append(
                    session,
                    LedgerRecord(
                        EventType.ITEM_ASSIGNED,
                        item_id=item_id,
                        pocket_id=raw_pocket["id"],
                        details={"par": levels.par, "min": levels.min, "max": levels.max},
                    ),
                )
            stock.extend((raw_pocket["id"], item_id, lot) for lot in raw_pocket.get("lots", []))
            pockets += 1
    return pockets, stock


def _check_placement(pocket_id: str, kind: DrawerKind, medication: Medication | None) -> None:
    """Storage rules a layout must respect: refrigerated items in the refrigerator, neuromuscular blockers in
    lidded pockets (ISMP; DOMAIN.md rule 7), schedule II items never in an open matrix bin."""
    if medication is None:
        return
    if medication.refrigerated and kind is not DrawerKind.REFRIGERATOR:
        raise ConfigurationError("config.invalid", f"pocket {pocket_id}: {medication.id} must be refrigerated")
    if medication.neuromuscular_blocker and not (kind.lidded_pockets or kind is DrawerKind.REFRIGERATOR):
        raise ConfigurationError(
            "config.invalid",
            f"pocket {pocket_id}: neuromuscular blocker {medication.id} needs a lidded pocket",
        )
    if medication.dea_schedule.is_schedule_ii and kind is DrawerKind.MATRIX:
        raise ConfigurationError(
            "config.invalid",
            f"pocket {pocket_id}: schedule II item {medication.id} cannot sit in an open matrix bin",
        )


def _seed_patients(
    session: Session, area_id: str, raw_patients: list[dict[str, Any]], raw_orders: list[dict[str, Any]]
) -> tuple[int, int]:
    for raw in raw_patients:
        repo.save_patient(
            session,
            Patient(
                id=raw["mrn"],
                family_name=raw["family_name"],
                given_name=raw["given_name"],
                birth_date=date.fromisoformat(raw["birth_date"]) if raw.get("birth_date") else None,
                allergies=tuple(raw.get("allergies", [])),
            ),
        )
        repo.save_encounter(
            session,
            Encounter(
                id=raw["encounter"],
                patient_id=raw["mrn"],
                care_area_id=area_id,
                room=str(raw.get("room", "")),
                bed=str(raw.get("bed", "")),
            ),
        )
    session.flush()
    for raw in raw_orders:
        repo.save_order(
            session,
            Order(
                id=raw["id"],
                patient_id=raw["mrn"],
                item_id=raw["item"],
                dose_amount=Decimal(str(raw["dose"])),
                dose_unit=raw["dose_unit"],
                route=raw.get("route", ""),
                frequency=raw.get("frequency", ""),
                status=OrderStatus(raw.get("status", "active")),
                pharmacist_verified=bool(raw.get("verified", True)),
                prn=bool(raw.get("prn", False)),
            ),
        )
    return len(raw_patients), len(raw_orders)
