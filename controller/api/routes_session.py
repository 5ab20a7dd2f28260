"""The person at the cabinet: log in (PIN and/or badge) for a session token, see the session, log out; the witness
step (a second person signs for an action of the logged-in user)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from controller.api.access import Access, Principal, runtime_of
from controller.api.problems import result_response
from controller.api.routing import PROBLEMS, Body, Data, Lax, ask, example, execute, run
from controller.engine.commands.clinical import BeginWitness, CancelWitness, ListPendingWork, SignWitness, WitnessFor
from controller.engine.commands.session import GetSession, Login, Logout

router = APIRouter(prefix="/api/v1/cabinet", tags=["session"], responses=PROBLEMS)

UserId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Pin = Annotated[str, Field(min_length=4, max_length=12, pattern=r"^[0-9]+$")]
Badge = Annotated[str, Field(min_length=1, max_length=128)]


class Credentials(Body):
    user_id: UserId
    pin: Pin | None = None
    badge: Badge | None = None

    @model_validator(mode="after")
    def one_factor_at_least(self) -> Credentials:
        if self.pin is None and self.badge is None:
            raise ValueError("give a pin, a badge, or both")
        return self


class LoginBody(Credentials):
    model_config = example({"user_id": "NURSE1", "pin": "1111"})


class WitnessBegin(Body):
    model_config = example({"kind": "waste", "target_id": "W12"})

    kind: Lax[WitnessFor]
    target_id: Annotated[str, Field(min_length=1, max_length=64)]


class WitnessSignature(Credentials):
    model_config = example({"user_id": "NURSE2", "pin": "2222"})


@router.post(
    "/session",
    response_model=Data,
    summary="Log in at the cabinet",
    description="Checks the PIN and/or badge (argon2, lockout after repeated failures) and starts the cabinet's one "
    "session. The token is valid while that session lasts: logout or the inactivity logoff ends it.",
)
async def login(body: LoginBody, request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    result = await execute(request, Login(body.user_id, pin=body.pin, badge=body.badge))
    if not result.ok:
        return result_response(result)
    token, record = runtime.tokens.issue(
        user_id=body.user_id, cabinet_id=runtime.cabinet_id, session_id=int(result.data["session_id"])
    )
    return JSONResponse({"data": {"token": token, "token_type": "bearer", **_session_view(runtime, record.expires_at)}})


@router.get(
    "/session",
    response_model=Data,
    summary="The current session",
    dependencies=[Depends(Access(activity=False))],
)
async def session_status(request: Request) -> JSONResponse:
    return JSONResponse({"data": _session_view(runtime_of(request), None)})


@router.delete("/session", response_model=Data, summary="Log out")
async def logout(request: Request, caller: Annotated[Principal, Depends(Access())]) -> JSONResponse:
    runtime = runtime_of(request)
    result = await execute(request, Logout())
    runtime.tokens.revoke(caller.token)
    return result_response(result)


@router.post("/session/witness", response_model=Data, summary="Start the witness step of an action")
async def begin_witness(
    body: WitnessBegin, request: Request, _: Annotated[Principal, Depends(Access())]
) -> JSONResponse:
    return await run(request, BeginWitness(body.kind, body.target_id))


@router.get("/session/pending", response_model=Data, summary="What the user still owes: wastes, witness steps")
async def pending_work(request: Request, caller: Annotated[Principal, Depends(Access())]) -> JSONResponse:
    return ask(request, ListPendingWork(caller.id))


@router.post(
    "/session/witness/signature",
    response_model=Data,
    summary="The witness signs",
    description="The second person authenticates at the cabinet. A witness who is the user, lacks the witness "
    "privilege or gives a wrong PIN is refused (and the failure counts toward the witness's own lockout).",
)
async def sign_witness(
    body: WitnessSignature, request: Request, _: Annotated[Principal, Depends(Access())]
) -> JSONResponse:
    return await run(request, SignWitness(body.user_id, pin=body.pin, badge=body.badge))


@router.delete("/session/witness", response_model=Data, summary="Cancel the witness step (the action is kept)")
async def cancel_witness(request: Request, _: Annotated[Principal, Depends(Access())]) -> JSONResponse:
    return await run(request, CancelWitness())


def _session_view(runtime: Any, expires_at: float | None) -> dict[str, Any]:
    session = runtime.require_engine().query(GetSession()).unwrap()
    view: dict[str, Any] = {"cabinet_id": runtime.cabinet_id, **session.to_data()}
    if expires_at is not None:
        view["expires_at"] = expires_at
    return view
