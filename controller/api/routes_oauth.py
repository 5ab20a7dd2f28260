"""``POST /oauth/token``: OAuth2 client credentials (RFC 6749 4.4) for integrators. The client authenticates with
HTTP Basic or with ``client_id``/``client_secret`` in the form; the answer is a short-lived JWT carrying the scopes
asked for (all of the client's when none are asked). A wrong secret is refused and recorded in the ledger."""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from controller.api.access import runtime_of
from controller.api.api_clients import stored_client
from controller.api.client_tokens import ClientTokens
from controller.api.problems import ApiError
from controller.api.routing import PROBLEMS
from controller.domain.credentials import CredentialHasher
from controller.store.database import Database

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
    grant = ClientGrant(runtime.db, runtime.hasher, runtime.client_tokens)
    grant.dummy_hash = runtime.dummy_client_hash

    async def refused(code: str) -> None:
        await runtime.record_refusal(code, route="/oauth/token", method="POST", actor_id=None)

    try:
        return await grant.answer(request, grant_type, client_id, client_secret, scope, on_refusal=refused)
    finally:
        runtime.dummy_client_hash = grant.dummy_hash


class ClientGrant:
    """The client credentials grant over a store's clients (a cabinet's, or the central's)."""

    def __init__(self, db: Database, hasher: CredentialHasher, tokens: ClientTokens) -> None:
        self.db = db
        self.hasher = hasher
        self.tokens = tokens
        self.dummy_hash: str | None = None  # checked against for an unknown client: the same cost either way

    async def answer(
        self, request: Request, grant_type: str, client_id: str | None, client_secret: str | None,
        scope: str | None, *, on_refusal: Callable[[str], Awaitable[None]],
    ) -> JSONResponse:  # fmt: skip
        if grant_type != "client_credentials":
            raise ApiError("auth.grant_unsupported", f"grant_type {grant_type[:40]!r} is not supported")
        basic = _basic(request.headers.get("authorization", ""))
        if basic is not None:
            client_id, client_secret = basic
        if not client_id or not client_secret:
            raise ApiError("auth.client_invalid", "send the client id and secret (HTTP Basic or form fields)")
        stored = await asyncio.to_thread(stored_client, self.db, client_id)
        if self.dummy_hash is None:
            self.dummy_hash = await asyncio.to_thread(self.hasher.hash_secret, uuid.uuid4().hex)
        secret_hash = stored[0] if stored is not None else self.dummy_hash
        verified = await asyncio.to_thread(self.hasher.verify, secret_hash, client_secret)
        if stored is None or not verified:
            await on_refusal("auth.client_invalid")
            raise ApiError("auth.client_invalid", "unknown client or wrong secret",
                           headers={"WWW-Authenticate": "Basic"})  # fmt: skip
        granted = stored[1]
        asked = frozenset(scope.split()) if scope else granted
        if not asked <= granted:
            raise ApiError("auth.scope_missing",
                           f"client {client_id} may not have {', '.join(sorted(asked - granted))}")  # fmt: skip
        return JSONResponse(
            {
                "access_token": self.tokens.issue(client_id, asked),
                "token_type": "Bearer",
                "expires_in": self.tokens.lifetime_s,
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
