"""``create_central_app``: the central server's FastAPI application, the pharmacy's fleet console.

It serves the console's pages (``static/fleet/``, with the shared ``static/common/``) and its API
(``controller.api.central.routes``); the cabinets' touchscreen and per-cabinet console stay on each cabinet.
The FHIR API (``/fhir``, ``controller.api.central.fhir``) and its token route (``/oauth/token``) are here too. The
fleet ingest runs beside it in the same process (``adc central serve``), not through it.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from controller.api.central import oauth, routes
from controller.api.central.fhir import central_fhir_router
from controller.api.central.signin import ConsoleSignIn, SignInRules
from controller.api.client_tokens import ClientTokens
from controller.api.metrics import ApiMetrics
from controller.api.middleware import RequestGuard
from controller.api.problems import install_handlers
from controller.api.routes_oauth import ClientGrant
from controller.domain.clock import Clock
from controller.domain.credentials import CredentialHasher
from controller.store.database import Database

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MAX_BODY_BYTES = 64 * 1024  # sign-in, a token request, a FHIR MedicationRequest
CLIENT_TOKEN_LIFETIME_S = 900


def create_central_app(
    db: Database, clock: Clock, hasher: CredentialHasher, *, rules: SignInRules | None = None,
    client_key: bytes | None = None,
) -> FastAPI:  # fmt: skip
    """``client_key``: the HS256 key of integrators' tokens (every central process of the hospital shares it);
    None: a key of this process only (tokens die with it)."""
    app = FastAPI(title="open-adc central API", version="1", docs_url="/docs", redoc_url=None)
    app.state.db = db
    app.state.clock = clock
    app.state.signin = ConsoleSignIn(db, clock, hasher, rules)
    tokens = ClientTokens(client_key or secrets.token_bytes(32), issuer="open-adc central", audience="central",
                          lifetime_s=CLIENT_TOKEN_LIFETIME_S)  # fmt: skip
    app.state.client_tokens = tokens
    app.state.client_grant = ClientGrant(db, hasher, tokens)
    install_handlers(app)
    app.include_router(routes.router)
    app.include_router(oauth.router)
    app.include_router(central_fhir_router())

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/fleet/")

    @app.get("/pharmacy/app.css", include_in_schema=False)
    async def console_layout() -> FileResponse:  # the fleet pages share the pharmacy console's layout
        return FileResponse(STATIC_DIR / "pharmacy" / "app.css", media_type="text/css")

    app.mount("/common", StaticFiles(directory=STATIC_DIR / "common"), name="common")
    app.mount("/fleet", StaticFiles(directory=STATIC_DIR / "fleet", html=True), name="fleet")
    app.add_middleware(RequestGuard, max_body_bytes=MAX_BODY_BYTES, metrics=ApiMetrics())
    return app
