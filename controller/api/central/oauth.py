"""``POST /oauth/token`` at the central server: the client credentials grant over the central's integrator
clients (``adc central client add``), as a cabinet's; a wrong secret is refused and recorded."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from controller.api.central.access import refusal
from controller.api.routes_oauth import ClientGrant, TokenAnswer
from controller.api.routing import PROBLEMS

router = APIRouter(tags=["oauth"])
Field128 = Annotated[str | None, Form(max_length=128)]


@router.post("/oauth/token", response_model=TokenAnswer, summary="Client credentials grant",
             responses={status: PROBLEMS[status] for status in (400, 401, 403, 413, 415, 422, 500)})  # fmt: skip
async def token(
    request: Request,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Field128 = None,
    client_secret: Field128 = None,
    scope: Annotated[str | None, Form(max_length=1000)] = None,
) -> JSONResponse:
    grant = cast(ClientGrant, request.app.state.client_grant)

    async def refused(code: str) -> None:
        await refusal(request, code, actor_id=f"client:{client_id}" if client_id else None)

    return await grant.answer(request, grant_type, client_id, client_secret, scope, on_refusal=refused)
