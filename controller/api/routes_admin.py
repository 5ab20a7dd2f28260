"""Administration: users, roles, formulary, layout, override list and policies. Every one can be read (by an
administrator, or an integrator with admin:read); users and the override list can be changed by an administrator
at the cabinet, each change a ``configuration.changed`` ledger entry."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from controller.api import admin_changes
from controller.api.access import Access, Principal, runtime_of
from controller.api.medication_view import medication_view
from controller.api.problems import to_json
from controller.api.routing import PROBLEMS, Body, Data, DataList, Lax, engine_of, example
from controller.domain.users import ROLE_PRIVILEGES, Privilege, Role
from controller.store import repositories as repo
from controller.store.inventory import list_pockets

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=PROBLEMS)

Reader = Depends(Access(Privilege.ADMINISTER, scope="admin:read"))
Admin = Annotated[Principal, Depends(Access(Privilege.ADMINISTER))]
UserId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
ItemId = Annotated[str, Field(min_length=1, max_length=64)]


class NewUser(Body):
    model_config = example({"user_id": "NURSE9", "display_name": "Kim Lee, RN", "roles": ["nurse"], "pin": "9876"})
    user_id: UserId
    display_name: Annotated[str, Field(min_length=1, max_length=200)]
    roles: list[Lax[Role]] = Field(min_length=1, max_length=6)
    pin: Annotated[str, Field(min_length=4, max_length=12, pattern=r"^[0-9]+$")]
    temporary: bool = False


class UserChange(Body):
    model_config = example({"active": False})
    active: bool


class OverrideList(Body):
    model_config = example({"items": ["NALOXONE-0.4MG-ML-INJ"]})
    items: list[ItemId] = Field(max_length=500)


@router.get("/users", response_model=DataList, summary="Users", dependencies=[Reader])
async def users(request: Request) -> JSONResponse:
    engine = engine_of(request)
    with engine.db.read() as session:
        found = repo.list_users(session)
    now = engine.clock.now()
    data = [
        {
            "user_id": u.id,
            "display_name": u.display_name,
            "roles": sorted(r.value for r in u.roles),
            "active": u.active,
            "expires_at": to_json(u.expires_at),
            "usable": u.is_usable_at(now),
            "locked_out": engine.session.lockout_of(u.id).is_locked(now),
        }
        for u in found
    ]
    return JSONResponse({"data": data})


@router.post("/users", response_model=Data, summary="Create a user", status_code=201)
async def create_user(body: NewUser, request: Request, caller: Admin) -> JSONResponse:
    created = admin_changes.create_user(
        runtime_of(request),
        caller.id,
        user_id=body.user_id,
        display_name=body.display_name,
        roles=frozenset(body.roles),
        pin=body.pin,
        temporary=body.temporary,
    )
    return JSONResponse({"data": to_json(created)}, status_code=201)


@router.patch("/users/{user_id}", response_model=Data, summary="Deactivate or reactivate a user")
async def change_user(
    user_id: Annotated[str, Path(min_length=1, max_length=64)], body: UserChange, request: Request, caller: Admin
) -> JSONResponse:
    changed = admin_changes.set_user_active(runtime_of(request), caller.id, user_id, active=body.active)
    return JSONResponse({"data": to_json(changed)})


@router.get("/roles", response_model=Data, summary="Roles and their privileges", dependencies=[Reader])
async def roles(request: Request) -> JSONResponse:
    engine_of(request)
    data = {role.value: sorted(p.value for p in privileges) for role, privileges in ROLE_PRIVILEGES.items()}
    return JSONResponse({"data": data})


@router.get("/formulary", response_model=DataList, summary="The formulary", dependencies=[Reader])
async def formulary(request: Request) -> JSONResponse:
    engine = engine_of(request)
    with engine.db.read() as session:
        items = repo.list_medications(session)
    return JSONResponse({"data": [medication_view(m) for m in items]})


@router.get("/layout", response_model=DataList, summary="Drawers and pockets", dependencies=[Reader])
async def layout(request: Request) -> JSONResponse:
    engine = engine_of(request)
    with engine.db.read() as session:
        pockets = list_pockets(session, engine.cabinet_id)
    data = [
        {
            "pocket_id": p.pocket_id,
            "drawer_id": p.drawer_id,
            "drawer_kind": p.drawer_kind,
            "drawer_label": p.drawer_label,
            "position": p.position,
            "item_id": p.item_id,
            "par": p.par,
            "min": p.min,
            "max": p.max,
            "unlock_chain": list(engine.unlock_chain.get(p.pocket_id, ())),
        }
        for p in pockets
    ]
    return JSONResponse({"data": data})


@router.get("/override-list", response_model=Data, summary="Items removable by override", dependencies=[Reader])
async def override_list(request: Request) -> JSONResponse:
    return JSONResponse({"data": {"items": sorted(engine_of(request).policy.override_items)}})


@router.put("/override-list", response_model=Data, summary="Replace the override list")
async def replace_override_list(body: OverrideList, request: Request, caller: Admin) -> JSONResponse:
    changed = admin_changes.set_override_list(runtime_of(request), caller.id, frozenset(body.items))
    return JSONResponse({"data": changed})


@router.get("/policies", response_model=Data, summary="The rules in force", dependencies=[Reader])
async def policies(request: Request) -> JSONResponse:
    engine = engine_of(request)
    data: dict[str, Any] = {
        "policy": _plain(dataclasses.asdict(engine.policy)),
        "state_machines": _plain(dataclasses.asdict(engine.settings)),
    }
    return JSONResponse({"data": data})


def _plain(values: dict[str, Any]) -> Any:
    return to_json({k: v.total_seconds() if hasattr(v, "total_seconds") else v for k, v in values.items()})
