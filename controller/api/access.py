"""Who may call a route: one declarative rule per route, checked before the route runs.

``Access(Privilege.REMOVE, scope="patients:read")`` opens a route to a cabinet user holding *any* of the listed
privileges (none listed: any logged-in user) and to an integrator whose token carries the scope (no scope: not to
integrators). A cabinet token is valid only while the engine session it was issued for is still the active one.
Refusals: no token 401 ``auth.token_missing``; unknown, forged or expired token 401; a token of an ended session
401 ``auth.session_ended``; missing privilege 403 ``policy.privilege_missing``; missing scope 403
``auth.scope_missing``. All but the first are recorded in the ledger as ``input.refused``.

Tokens travel as ``Authorization: Bearer`` (no cookies, so no CSRF). A browser cannot set headers on a WebSocket,
so it offers the subprotocols ``adc.bearer, <token>`` (``Sec-WebSocket-Protocol``); never the query string, which
servers and proxies write to their logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, cast

from starlette.requests import HTTPConnection

from controller.api.problems import ApiError
from controller.api.runtime import ApiRuntime
from controller.domain.users import Privilege
from controller.engine.commands.session import GetSession, KeepAlive


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["cabinet", "client", "console"]  # console: signed in to the central's console
    id: str  # user id or client id
    privileges: frozenset[Privilege]
    scopes: frozenset[str]
    token: str
    session_id: int | None = None


BEARER_SUBPROTOCOL = "adc.bearer"  # the WebSocket's token follows it in the offered subprotocols


def runtime_of(connection: HTTPConnection) -> ApiRuntime:
    return cast(ApiRuntime, connection.app.state.runtime)


def bearer_token(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if connection.scope["type"] == "websocket":
        offered = [p.strip() for p in connection.headers.get("sec-websocket-protocol", "").split(",")]
        if BEARER_SUBPROTOCOL in offered[:-1]:
            return offered[offered.index(BEARER_SUBPROTOCOL) + 1] or None
    return None


class Access:
    """A route's access rule, as a FastAPI dependency that returns the caller."""

    def __init__(self, *any_of: Privilege, scope: str | None = None, activity: bool = True) -> None:
        self.any_of = frozenset(any_of)
        self.scope = scope
        self.activity = activity  # a call by the person at the screen keeps their session from timing out

    def __repr__(self) -> str:
        privileges = ",".join(sorted(p.value for p in self.any_of)) or "any user"
        return f"Access({privileges}; scope={self.scope})"

    async def __call__(self, connection: HTTPConnection) -> Principal:
        runtime = runtime_of(connection)
        engine = runtime.require_engine()
        token = bearer_token(connection)
        if token is None:
            raise ApiError(
                "auth.token_missing",
                "log in at the cabinet (POST /api/v1/cabinet/session) or get a client token (POST /oauth/token)",
                headers={"WWW-Authenticate": 'Bearer realm="adc"'},
            )
        if token.count(".") == 2:  # a JWT: an integrator
            return await self._client(runtime, connection, token)
        record = runtime.tokens.find(token)
        if record is None or record.cabinet_id != runtime.cabinet_id:
            await self._refuse(runtime, connection, "auth.token_invalid", "this token is not known to this cabinet")
        assert record is not None
        if record.expires_at <= time.time():
            runtime.tokens.revoke(token)
            await self._refuse(runtime, connection, "auth.token_expired", "the session token has expired; log in again")
        session = engine.query(GetSession()).unwrap()
        user = session.user
        if user is None or session.session_id != record.session_id or user.id != record.user_id:
            runtime.tokens.revoke(token)
            await self._refuse(
                runtime,
                connection,
                "auth.session_ended",
                "the cabinet session of this token has ended (logout, inactivity or another login); log in again",
                actor_id=record.user_id,
            )
        assert user is not None
        held = user.privileges
        if self.any_of and not held & self.any_of:
            needed = " or ".join(sorted(p.value for p in self.any_of))
            await self._refuse(
                runtime,
                connection,
                "policy.privilege_missing",
                f"user {user.id} does not hold the {needed} privilege this route needs",
                actor_id=user.id,
                privilege=needed,
            )
        if self.activity:
            await engine.execute(KeepAlive(record.session_id))
        return Principal("cabinet", user.id, held, frozenset(), token, record.session_id)

    async def _client(self, runtime: ApiRuntime, connection: HTTPConnection, token: str) -> Principal:
        try:
            claims = runtime.client_tokens.verify(token)
        except ApiError as problem:
            await runtime.record_refusal(problem.code, route=_route(connection), method=_method(connection))
            raise
        if self.scope is None or self.scope not in claims.scopes:
            await self._refuse(
                runtime,
                connection,
                "auth.scope_missing",
                f"client {claims.client_id} lacks the scope this route needs"
                + (f" ({self.scope})" if self.scope else " (it is for users at the cabinet only)"),
                actor_id=f"client:{claims.client_id}",
                scope=self.scope,
            )
        return Principal("client", claims.client_id, frozenset(), claims.scopes, token)

    async def _refuse(
        self,
        runtime: ApiRuntime,
        connection: HTTPConnection,
        code: str,
        detail: str,
        *,
        actor_id: str | None = None,
        **context: str | None,
    ) -> None:
        route = _route(connection)
        await runtime.record_refusal(code, route=route, method=_method(connection), actor_id=actor_id)
        headers = {"WWW-Authenticate": 'Bearer realm="adc", error="invalid_token"'} if code.startswith("auth.t") else {}
        raise ApiError(code, detail, headers=headers, route=route, **context)


def _route(connection: HTTPConnection) -> str:
    # The template, never the path itself: a path can carry a patient's id.
    return str(getattr(connection.scope.get("route"), "path", "unmatched"))


def _method(connection: HTTPConnection) -> str:
    return str(connection.scope.get("method", "WEBSOCKET"))
