"""Administration: users, roles, formulary, layout, the override list and the rules in force. Every one can be read
(by an administrator, or an integrator with admin:read); users, lockouts, the override list and the rules are
changed by an administrator at the cabinet, each change an engine command and one ``configuration.changed`` (or
``session.lockout_cleared``) ledger entry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from controller.api.access import Access, Principal, runtime_of
from controller.api.medication_view import medication_view
from controller.api.problems import result_response, to_json
from controller.api.routing import PROBLEMS, Body, Data, DataList, Lax, ask, engine_of, example, execute, run
from controller.domain.users import ROLE_PRIVILEGES, Privilege, Role
from controller.engine.commands.cabinet import (
    ChangeRules,
    CreateUser,
    GetCabinetStatus,
    GetRules,
    ListUsers,
    SetOverrideList,
    SetUserActive,
)
from controller.engine.commands.session import ClearLockout
from controller.store import repositories as repo
from controller.store.inventory import list_pockets

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=PROBLEMS)

Reader = Depends(Access(Privilege.ADMINISTER, scope="admin:read"))
Admin = Annotated[Principal, Depends(Access(Privilege.ADMINISTER))]
UserId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
UserPath = Annotated[str, Path(min_length=1, max_length=64)]
ItemId = Annotated[str, Field(min_length=1, max_length=64)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


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


class LockoutClear(Body):
    model_config = example({"reason": "identity confirmed by phone with the charge nurse"})
    reason: Reason


class OverrideList(Body):
    model_config = example({"items": ["NALOXONE-0.4MG-ML-INJ"]})
    items: list[ItemId] = Field(max_length=500)
    reason: Reason = "override list replaced"


class RulesChange(Body):
    """section -> key -> new value, as the policy file names them (``GET /policies`` shows the document)."""

    model_config = example({"changes": {"session": {"inactivity_logout_s": 90}}, "reason": "unit request, P&T 2026-11"})
    changes: dict[Annotated[str, Field(max_length=40)], dict[Annotated[str, Field(max_length=60)], Any]] = Field(
        max_length=20
    )
    reason: Reason


@router.get("/users", response_model=DataList, summary="Users", dependencies=[Reader])
async def users(request: Request) -> JSONResponse:
    return JSONResponse({"data": list(engine_of(request).query(ListUsers()).unwrap().users)})


@router.post("/users", response_model=Data, summary="Create a user", status_code=201)
async def create_user(body: NewUser, request: Request, _: Admin) -> JSONResponse:
    command = CreateUser(body.user_id, body.display_name, frozenset(body.roles), body.pin, body.temporary)
    result = await execute(request, command)
    if not result.ok:
        return result_response(result)
    return JSONResponse({"data": to_json(dict(result.data))}, status_code=201)


@router.patch("/users/{user_id}", response_model=Data, summary="Deactivate or reactivate a user")
async def change_user(user_id: UserPath, body: UserChange, request: Request, _: Admin) -> JSONResponse:
    return await run(request, SetUserActive(user_id, body.active))


@router.post(
    "/users/{user_id}/lockout/clear",
    response_model=Data,
    summary="Clear a user's lockout",
    description="An administrator, with a reason (one ``session.lockout_cleared`` entry): the user may log in again "
    "at once instead of waiting out the lockout.",
)
async def clear_lockout(user_id: UserPath, body: LockoutClear, request: Request, _: Admin) -> JSONResponse:
    return await run(request, ClearLockout(user_id, body.reason))


@router.get("/roles", response_model=Data, summary="Roles and their privileges", dependencies=[Reader])
async def roles(request: Request) -> JSONResponse:
    engine_of(request)
    data = {role.value: sorted(p.value for p in privileges) for role, privileges in ROLE_PRIVILEGES.items()}
    return JSONResponse({"data": data})


@router.get("/formulary", response_model=DataList, summary="The formulary", dependencies=[Reader])
async def formulary(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    runtime.require_engine()
    with runtime.db.read() as session:
        items = repo.list_medications(session)
    return JSONResponse({"data": [medication_view(m) for m in items]})


@router.get("/layout", response_model=DataList, summary="Drawers and pockets", dependencies=[Reader])
async def layout(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    chains = runtime.require_engine().query(GetCabinetStatus()).unwrap().unlock_chains
    with runtime.db.read() as session:
        pockets = list_pockets(session, runtime.cabinet_id)
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
            "unlock_chain": list(chains.get(p.pocket_id, ())),
        }
        for p in pockets
    ]
    return JSONResponse({"data": data})


@router.get("/override-list", response_model=Data, summary="Items removable by override", dependencies=[Reader])
async def override_list(request: Request) -> JSONResponse:
    rules = engine_of(request).query(GetRules()).unwrap()
    return JSONResponse({"data": {"items": sorted(rules.document["removal"]["override_items"])}})


@router.put("/override-list", response_model=Data, summary="Replace the override list")
async def replace_override_list(body: OverrideList, request: Request, _: Admin) -> JSONResponse:
    result = await execute(request, SetOverrideList(frozenset(body.items), body.reason))
    if not result.ok:
        return result_response(result)
    seqs = result.data.get("ledger_seqs", ())
    return JSONResponse({"data": {"items": sorted(body.items), "ledger_seq": seqs[0] if seqs else None}})


@router.get(
    "/policies",
    response_model=Data,
    summary="The rules in force",
    description="The document (sections and keys, as the policy file names them), its hash, and where it came from "
    "(the policy file, or an administrator's change).",
    dependencies=[Reader],
)
async def policies(request: Request) -> JSONResponse:
    return ask(request, GetRules())


@router.patch(
    "/policies",
    response_model=Data,
    summary="Change rules in force",
    description="Validated as the policy file is (an unknown key or a bad value is refused, naming it); the reason "
    "and every old and new value go on one configuration.changed entry.",
)
async def change_policies(body: RulesChange, request: Request, _: Admin) -> JSONResponse:
    return await run(request, ChangeRules(body.changes, body.reason))
