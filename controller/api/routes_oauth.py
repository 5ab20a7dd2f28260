"""``POST /oauth/token``: OAuth2 client credentials (RFC 6749 4.4) for integrators. The client authenticates with
HTTP Basic or with ``client_id``/``client_secret`` in the form; the answer is a short-lived JWT carrying the scopes
asked for (all of the client's when none are asked). A wrong secret is refused and recorded in the ledger."""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from controller.api.access import runtime_of
from controller.api.api_clients import stored_client
from controller.api.problems import ApiError
from controller.api.routing import PROBLEMS

router = APIRouter(tags=["oauth"])


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


Field64 = Annotated[str | None, Form(max_length=128)]


@router.post(
    "/oauth/token",
    response_model=TokenAnswer,
    summary="Client credentials grant",
    responses={status: PROBLEMS[status] for status in (400, 401, 403, 413, 415, 422, 500, 503)},
)
async def token(
    request: Request,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Field64 = None,
    client_secret: Field64 = None,
    scope: Annotated[str | None, Form(max_length=1000)] = None,
) -> JSONResponse:
    runtime = runtime_of(request)
    if grant_type != "client_credentials":
        raise ApiError("auth.grant_unsupported", f"grant_type {grant_type[:40]!r} is not supported")
    basic = _basic(request.headers.get("authorization", ""))
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        raise ApiError("auth.client_invalid", "send the client id and secret (HTTP Basic or form fields)")
    stored = stored_client(runtime.db, client_id)
    if runtime.dummy_client_hash is None:
        runtime.dummy_client_hash = await asyncio.to_thread(runtime.hasher.hash_secret, uuid.uuid4().hex)
    secret_hash = stored[0] if stored is not None else runtime.dummy_client_hash  # same cost either way
    verified = await asyncio.to_thread(runtime.hasher.verify, secret_hash, client_secret)
    if stored is None or not verified:
        await runtime.record_refusal("auth.client_invalid", route="/oauth/token", method="POST", actor_id=None)
        raise ApiError("auth.client_invalid", "unknown client or wrong secret", headers={"WWW-Authenticate": "Basic"})
    granted = stored[1]
    asked = frozenset(scope.split()) if scope else granted
    if not asked <= granted:
        raise ApiError("auth.scope_missing", f"client {client_id} may not have {', '.join(sorted(asked - granted))}")
    access_token = runtime.client_tokens.issue(client_id, asked)
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": runtime.client_tokens.lifetime_s,
            "scope": " ".join(sorted(asked)),
        },
        headers={"Cache-Control": "no-store"},
    )


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None
