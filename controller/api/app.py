"""``create_app(settings)``: the FastAPI application of one cabinet.

The lifespan builds everything through ``controller.bootstrap`` (``ApiRuntime``): the store at once, the devices
and the engine's running loop in the background; until they are up, ``/ready`` and every cabinet route answer 503
(``api.not_ready``) while ``/health`` answers 200. The UIs are static pages under ``static/`` (served at ``/``).

Integrations this layer may not import (``controller.integration``: HL7) are handed in by whoever composes the
process (``adc serve``): ledger observers for the engine's ledger, and services run for as long as the API runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from controller.api import (
    routes_admin,
    routes_clinical,
    routes_devices,
    routes_events,
    routes_fhir,
    routes_inventory,
    routes_ledger,
    routes_oauth,
    routes_patients,
    routes_pharmacy,
    routes_pull,
    routes_reports,
    routes_review,
    routes_search,
    routes_session,
    routes_system,
)
from controller.api.metrics import ApiMetrics
from controller.api.middleware import RequestGuard
from controller.api.openapi import install_openapi
from controller.api.problems import install_handlers
from controller.api.runtime import ApiRuntime
from controller.api.settings import ApiSettings
from controller.domain.clock import Clock
from controller.settings import Settings
from controller.store.ledger import LedgerObserver

# A background service (an HL7 listener or sender, the fleet forwarder): given the runtime (its store, clock and,
# once up, engine), what runs it while the API runs.
Service = Callable[[ApiRuntime], AbstractAsyncContextManager[object]]
STATIC_DIR = Path(__file__).parent / "static"
ROUTERS = (
    routes_system,
    routes_oauth,
    routes_session,
    routes_patients,
    routes_search,
    routes_pull,
    routes_clinical,
    routes_pharmacy,
    routes_review,
    routes_inventory,
    routes_devices,
    routes_ledger,
    routes_reports,
    routes_admin,
    routes_events,
    routes_fhir,
)


def create_app(
    settings: Settings,
    api: ApiSettings | None = None,
    *,
    clock: Clock | None = None,
    ledger_observers: Sequence[LedgerObserver] = (),
    services: Sequence[Service] = (),
) -> FastAPI:
    api = api or ApiSettings()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ApiRuntime(settings, api, clock=clock, ledger_observers=ledger_observers)
        runtime.metrics = metrics  # the middleware was built with the app; the runtime reports into the same one
        app.state.runtime = runtime
        runtime.start()
        try:
            async with AsyncExitStack() as running:  # closed in reverse order, before the runtime
                for service in services:
                    await running.enter_async_context(service(runtime))
                yield
        finally:
            await runtime.close()

    app = FastAPI(title="open-adc cabinet API", version="1", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    install_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    # Last: the pages, so they never shadow a route. The UIs add /cabinet/ and /pharmacy/ beside index.html.
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    install_openapi(app)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-ADC-Passive"],
        )
    app.add_middleware(RequestGuard, max_body_bytes=api.max_body_bytes, metrics=metrics)
    return app
