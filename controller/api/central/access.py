"""Who may call the central's integration routes (FHIR): an integrator with a client token carrying the route's
scope (``POST /oauth/token`` at the central), or a person signed in to the central console holding one of the
route's privileges. Every refusal is recorded (``fleet_access_refusals``) with the route's template, never its
path, and answered as problem+json, as at a cabinet.
"""

from __future__ import annotations

import asyncio
from typing import cast

from starlette.requests import HTTPConnection

from controller.api.access import Principal, bearer_token
from controller.api.central.signin import CONSOLE_PRIVILEGES, ConsoleSignIn
from controller.api.client_tokens import ClientTokens
from controller.api.problems import ApiError
from controller.domain.clock import Clock
from controller.domain.users import Privilege
from controller.store.central.access_log import record_refusal
from controller.store.database import Database

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="adc-central"'}


class CentralAccess:
    def __init__(self, *any_of: Privilege, scope: str | None = None) -> None:
        self.any_of = frozenset(any_of) or CONSOLE_PRIVILEGES
        self.scope = scope

    async def __call__(self, connection: HTTPConnection) -> Principal:
        token = bearer_token(connection)
        if token is None:
            raise ApiError("auth.token_missing", "sign in to the central console (POST /api/v1/central/session) or "
                           "get a client token (POST /oauth/token)", headers=_CHALLENGE)  # fmt: skip
        try:
            if token.count(".") == 2:  # a JWT: an integrator
                claims = cast(ClientTokens, connection.app.state.client_tokens).verify(token)
                if self.scope is None or self.scope not in claims.scopes:
                    needed = self.scope or "people only"
                    detail = f"client {claims.client_id} lacks the scope this route needs ({needed})"
                    raise ApiError("auth.scope_missing", detail, actor=f"client:{claims.client_id}")
                return Principal("client", claims.client_id, frozenset(), claims.scopes, token)
            signin = cast(ConsoleSignIn, connection.app.state.signin)
            session = signin.check(token, needs=self.any_of)
            return Principal("console", session.user_id, session.privileges, frozenset(), token)
        except ApiError as refused:
            signin = cast(ConsoleSignIn, connection.app.state.signin)
            await refusal(connection, refused.code, actor_id=_actor(refused) or signin.user_of(token))
            raise


async def refusal(connection: HTTPConnection, code: str, *, actor_id: str | None = None) -> None:
    state = connection.app.state
    route = str(getattr(connection.scope.get("route"), "path", "unmatched"))
    remote = connection.client.host if connection.client else None
    at = cast(Clock, state.clock).now()
    method = str(connection.scope.get("method", ""))
    await asyncio.to_thread(record_refusal, cast(Database, state.db), code=code, route=route, method=method,
                            actor_id=actor_id, remote=remote, at=at)  # fmt: skip


def _actor(error: ApiError) -> str | None:
    actor = error.context.get("actor")
    return str(actor) if actor else None
