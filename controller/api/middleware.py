"""The request guard: one ASGI middleware around the whole app.

Responsible for: refusing a body over the size limit (413) before it is read, and a body that is not JSON on an
API route (415; the token endpoint takes OAuth2's form encoding); answering any exception that escapes a route as
a 500 problem with a correlation id (never a bare traceback); the access log line and the request metrics, both
by route template, so no id from a path (an MRN) reaches a log or a label. Request bodies are never logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.api.metrics import ApiMetrics
from controller.api.problems import bug_response, problem_response

access_log = logging.getLogger("controller.api.access")

_FORM_ROUTES = ("/oauth/token",)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: ApiMetrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        state = {"code": 500, "sent": False, "refused": False}

        async def send_tracked(message: Message) -> None:
            if state["refused"]:
                return  # the body was refused mid-stream: whatever the app answers after that is dropped
            if message["type"] == "http.response.start":
                state["code"], state["sent"] = message["status"], True
            await send(message)

        seen = 0

        async def limited() -> Message:
            """Count the body as it streams in; past the limit, answer 413 and tell the app the client left."""
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes and not state["sent"]:
                    await self._too_large()(scope, receive, send_tracked)
                    state["refused"] = True
                    return {"type": "http.disconnect"}
            return message

        refusal = self._refuse_early(scope, method)
        try:
            if refusal is not None:
                await refusal(scope, receive, send_tracked)
            else:
                await self.app(scope, limited, send_tracked)
        except Exception as exc:  # a bug: answer it as a problem, never let a traceback reach the client
            answer = bug_response(method, _route(scope), exc)  # logged even when the answer had already started
            if not state["sent"]:
                await answer(scope, receive, send_tracked)
        finally:
            route = _route(scope)
            seconds = time.perf_counter() - started
            self.metrics.observe_request(method, route, int(state["code"]), seconds)
            access_log.info("%s %s %s %.1f ms", method, route, state["code"], seconds * 1000)

    def _refuse_early(self, scope: Scope, method: str) -> Any:
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large()
        has_body = (length is not None and length != "0") or "transfer-encoding" in headers
        if method not in _BODY_METHODS or not has_body:
            return None
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        path: str = scope["path"]
        if path in _FORM_ROUTES:
            if media == "application/x-www-form-urlencoded":
                return None
            return problem_response(
                "api.unsupported_media_type", "send the token request as application/x-www-form-urlencoded"
            )
        if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
            return None
        return problem_response(
            "api.unsupported_media_type", f"send the body as application/json, not {media or 'none'}"
        )

    def _too_large(self) -> Any:
        return problem_response(
            "api.body_too_large",
            f"the body exceeds {self.max_body_bytes} bytes",
            context={"limit": self.max_body_bytes},
        )


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")
