"""The OpenAPI document as clients should read it: errors under ``application/problem+json`` (what the API sends),
and the two ways to authenticate (a cabinet session token, an integrator's client-credentials JWT)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from controller.api.problems import PROBLEM_MEDIA_TYPE

DESCRIPTION = """The controller of one automated dispensing cabinet.

**Cabinet users** log in with `POST /api/v1/cabinet/session` (user id and PIN and/or badge) and send the token as
`Authorization: Bearer ...`. It is valid while that cabinet session lasts: logout, the inactivity logoff or the next
login ends it. Each route needs one of the privileges it names.

**Integrators** get a short-lived JWT from `POST /oauth/token` (OAuth2 client credentials; clients are created
with `adc api client add NAME --scopes ...`). Each route names the scope that opens it.

Every refusal is `application/problem+json` with a stable `code` from the error catalogue. Tokens travel in a
header only (no cookies), so requests cannot be forged cross-site; CORS is closed unless origins are configured.
"""


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=DESCRIPTION, routes=app.routes, tags=app.openapi_tags
        )
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict):
                    continue
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[:1] in "45" and "application/json" in content:
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        components = document.setdefault("components", {})
        components["securitySchemes"] = {
            "cabinetSession": {"type": "http", "scheme": "bearer", "description": "token from the cabinet login"},
            "clientCredentials": {
                "type": "oauth2",
                "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": _scopes()}},
            },
        }
        document["security"] = [{"cabinetSession": []}, {"clientCredentials": []}]
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]


def _scopes() -> dict[str, str]:
    from controller.api.api_clients import SCOPES

    return dict(SCOPES)
