"""What flows down from the central beside the users: the hospital's formulary, and each care area's census
(a patient with an active encounter there, with their orders), as versioned documents.

Responsible for: ``reconcile``, which builds the current document of every formulary item, or of every patient of a
registered cabinet's care area, from the central's tables (where its HL7 listener writes ADT and orders), and
gives a document the next version when its content changed; a patient who left an area gets a ``removed``
document (a tombstone) with the next version, so the area's cabinets mark the encounter ended. An item gone from
the central's formulary is not removed from the cabinets (their stock and records still name it). Versions only grow
(``fleet_directory``, kind ``census`` or ``formulary``), so a cabinet can tell a newer document from an older one.
Not responsible for publishing (``controller.fleet.downlink``) or applying (``controller.store.fleet_downlink``).

The census key is ``<care area>.<patient>``, each part escaped as a KV token, so a cabinet watches
``<its care area>.>`` and receives its own patients only.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from controller.domain.directory import CENSUS, FORMULARY, census_key, kv_token
from controller.store.central import tables as t
from controller.store.models import (
    CareAreaRow,
    EncounterRow,
    MedicationNdcRow,
    MedicationRow,
    OrderRow,
    PatientRow,
)


def reconcile(connection: Connection, kind: str, now: datetime) -> int:
    """Bring one kind's versioned documents up to the central's tables (in the caller's transaction); how many
    changed. Only a changed document's row is written, its version raised by the database itself, so two central
    processes reconciling at once never give two contents one version."""
    wanted = _formulary(connection) if kind == FORMULARY else _census(connection)
    held = connection.execute(
        select(t.directory.c.key, t.directory.c.payload).where(t.directory.c.kind == kind)
    ).all()  # fmt: skip
    for row in held:
        if kind == CENSUS and row.key not in wanted and not row.payload.get("removed"):
            # Gone from the area (a discharge, a transfer): a tombstone naming whom and where.
            wanted[row.key] = {"removed": True, "patient_id": row.payload["patient"]["id"],
                               "care_area": row.payload["encounter"]["care_area"]}  # fmt: skip
    payloads = {str(row.key): row.payload for row in held}
    changed = [{"kind": kind, "key": key, "version": 1, "payload": document, "updated_at": now}
               for key, document in wanted.items() if payloads.get(key) != document]  # fmt: skip
    if changed:
        put_documents(connection, changed)
    return len(changed)


def put_documents(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert each row (kind, key, payload, updated_at; version 1) or, where its content differs from the one held,
    give it the next version; the database raises the version, so two writers never give two contents one."""
    statement = pg_insert(t.directory)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["kind", "key"],
            set_={"version": t.directory.c.version + 1, "payload": statement.excluded.payload,
                  "updated_at": statement.excluded.updated_at},
            where=t.directory.c.payload.is_distinct_from(statement.excluded.payload),
        ),
        rows,
    )  # fmt: skip


def versions(connection: Connection, kind: str) -> dict[str, int]:
    found = connection.execute(select(t.directory.c.key, t.directory.c.version).where(t.directory.c.kind == kind))
    return {str(r.key): int(r.version) for r in found}


def documents(connection: Connection, kind: str, keys: Collection[str]) -> list[tuple[str, int, dict[str, Any]]]:
    found = connection.execute(
        select(t.directory.c.key, t.directory.c.version, t.directory.c.payload).where(
            t.directory.c.kind == kind, t.directory.c.key.in_(sorted(keys))
        )
    )
    return [(str(r.key), int(r.version), dict(r.payload)) for r in found]


def _formulary(connection: Connection) -> dict[str, dict[str, Any]]:
    ndcs: dict[str, list[dict[str, Any]]] = {}
    for r in connection.execute(select(MedicationNdcRow).order_by(MedicationNdcRow.ndc)).mappings():
        ndcs.setdefault(r["medication_id"], []).append(
            {"ndc": r["ndc"], "digits": r["digits"], "primary": bool(r["is_primary"])}
        )
    result = {}
    for r in connection.execute(select(MedicationRow)).mappings():
        document = {column: r[column] for column in _MEDICATION_FIELDS}
        document["ndcs"] = ndcs.get(r["id"], [])
        result[kv_token(r["id"])] = document
    return result


_MEDICATION_FIELDS = (
    "id", "ndc", "generic_name", "brand_name", "display_name", "strength", "dosage_form", "route", "package", "unit",
    "dea_schedule", "high_alert", "lasa", "hazardous", "refrigerated", "neuromuscular_blocker", "critical_override",
)  # fmt: skip


def _census(connection: Connection) -> dict[str, dict[str, Any]]:
    areas = {str(a) for a in connection.execute(select(t.cabinets.c.care_area).where(t.cabinets.c.active)).scalars()}
    if not areas:
        return {}
    area_names = {str(r.id): str(r.name) for r in connection.execute(select(CareAreaRow.id, CareAreaRow.name))}
    encounters = connection.execute(
        select(EncounterRow).where(EncounterRow.active, EncounterRow.care_area_id.in_(sorted(areas)))
    ).mappings().all()  # fmt: skip
    patient_ids = sorted({e["patient_id"] for e in encounters})
    patients = {
        r["id"]: r for r in connection.execute(select(PatientRow).where(PatientRow.id.in_(patient_ids))).mappings()
    }
    orders: dict[str, list[dict[str, Any]]] = {}
    for r in connection.execute(
        select(OrderRow).where(OrderRow.patient_id.in_(patient_ids)).order_by(OrderRow.id)
    ).mappings():
        orders.setdefault(r["patient_id"], []).append({
            "id": r["id"], "item_id": r["item_id"], "dose_amount": str(r["dose_amount"]), "dose_unit": r["dose_unit"],
            "route": r["route"], "frequency": r["frequency"], "status": r["status"],
            "pharmacist_verified": bool(r["pharmacist_verified"]), "prn": bool(r["prn"]),
        })  # fmt: skip
    result = {}
    for e in encounters:
        patient = patients[e["patient_id"]]
        area = e["care_area_id"]
        result[census_key(area, e["patient_id"])] = {
            "patient": {
                "id": patient["id"], "family_name": patient["family_name"], "given_name": patient["given_name"],
                "birth_date": patient["birth_date"].isoformat() if patient["birth_date"] else None,
                "allergies": patient["allergies"],
            },
            "encounter": {"id": e["id"], "care_area": area, "care_area_name": area_names.get(area, area),
                          "room": e["room"], "bed": e["bed"]},
            "orders": orders.get(e["patient_id"], []),
        }  # fmt: skip
    return result
