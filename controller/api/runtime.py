"""What the running API holds: the store, the devices, the engine and its running loop, tokens, metrics, events.

Responsible for: opening the store (it must be initialised and current), bringing the hardware up in the
background (connect by URL through ``controller.bootstrap``, retried until the I/O board answers), building the
engine there (the rules in force are the composition root's choice), starting the running loop (which restores the
compartments from the sensors first), saying whether the cabinet is ready and why not, handing the API's own
security refusals to the engine to record (rate-limited), and closing everything in order. Not responsible for any
rule or any HTTP detail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from controller.api.client_tokens import ClientTokens, load_or_create_key
from controller.api.events import EventHub
from controller.api.metrics import ApiMetrics
from controller.api.problems import ApiError
from controller.api.session_tokens import SessionTokens
from controller.api.settings import ApiSettings
from controller.bootstrap import StoreContext, build_store, credential_hasher
from controller.bootstrap.cabinet import build_engine
from controller.bootstrap.hardware import Hardware, connect_hardware
from controller.domain.clock import Clock, SystemClock
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands.cabinet import RecordRefusal
from controller.engine.runner import CabinetRunner
from controller.settings import Settings
from controller.store import schema
from controller.store.ledger import LedgerObserver

log = logging.getLogger("controller.api")

_REFUSALS_PER_MINUTE = 30  # a flood of bad tokens must not flood the ledger: the rest are counted, then recorded


class ApiRuntime:
    def __init__(
        self,
        settings: Settings,
        api: ApiSettings,
        *,
        clock: Clock | None = None,
        ledger_observers: Sequence[LedgerObserver] = (),
    ) -> None:
        self.settings = settings
        self.ledger_observers = tuple(ledger_observers)  # e.g. the HL7 outbox: run inside every ledger append
        self.api = api
        self.clock = clock or SystemClock()
        self.cabinet_id = settings.cabinet_id
        self.store: StoreContext = build_store(settings, clock=self.clock)
        schema.require_current(self.store.db)
        self.db = self.store.db
        self.hasher = credential_hasher(settings)
        self.tokens = SessionTokens(max_age_s=api.session_token_max_s)
        self.client_tokens = ClientTokens(
            load_or_create_key(settings.data_dir),
            issuer=api.jwt_issuer,
            audience=f"adc:{settings.cabinet_id}",
            lifetime_s=api.client_token_s,
        )
        self.metrics = ApiMetrics()
        self.events = EventHub()
        self.hardware: Hardware | None = None
        self.engine: CabinetEngine | None = None
        self.runner: CabinetRunner | None = None
        self.status = "connecting to the devices"
        self._bring_up: asyncio.Task[None] | None = None
        self._refusal_window = (0.0, 0, 0)  # (minute start, recorded in it, suppressed)
        self.dummy_client_hash: str | None = None

    # --- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._bring_up = asyncio.create_task(self._bring_up_hardware(), name="api:bring-up")

    async def close(self) -> None:
        if self._bring_up is not None:
            self._bring_up.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._bring_up
        await self.events.stop()
        if self.runner is not None:
            await self.runner.stop()
        if self.hardware is not None:
            await self.hardware.close()
        self.store.close()

    async def _bring_up_hardware(self) -> None:
        while True:
            hardware = await connect_hardware(self.settings)
            if hardware.io_board is not None:
                break
            failed = [f"{r.device}: {r.error}" for r in hardware.reports if r.error]
            self.status = "; ".join(failed) or "no I/O board configured: set ADC_IO_BOARD"
            log.warning("cabinet not ready: %s", self.status)
            await hardware.close()
            await asyncio.sleep(self.api.hardware_retry_s)
        self.hardware = hardware
        self.status = "restoring the compartments from the sensors"
        engine = build_engine(self.settings, hardware, db=self.db, clock=self.clock,
                              ledger_observers=self.ledger_observers)  # fmt: skip
        runner = CabinetRunner(engine, poll_period_s=1.0 / self.settings.io_poll_hz)
        await runner.start()
        self.engine, self.runner = engine, runner
        self.events.start(self)
        self.status = "ready" if self.ready else "waiting for a good sensor snapshot to restore from"

    # --- readiness --------------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        runner = self.runner
        restored = runner.health.restored if runner is not None else None
        return self.engine is not None and restored is not None and restored.ok

    async def running_engine(self) -> CabinetEngine:
        """The engine once the cabinet is up and restored (a background service waits here while it starts)."""
        while not self.ready or self.engine is None:
            await asyncio.sleep(0.2)
        return self.engine

    def require_engine(self) -> CabinetEngine:
        if not self.ready or self.engine is None:
            raise ApiError("api.not_ready", f"the cabinet is not ready: {self.status}", headers={"Retry-After": "2"})
        if self.status != "ready":
            self.status = "ready"
        return self.engine

    # --- the API's own ledger entries -------------------------------------------------------------------------

    async def record_refusal(self, code: str, *, route: str, method: str, actor_id: str | None = None) -> None:
        """A security-relevant refusal (bad token, missing privilege or scope, bad client secret) as an
        ``input.refused`` entry, through the engine. Only codes and the route template: never the token or the
        request. A flood is counted and recorded as one entry per minute's overflow."""
        engine = self.engine
        if engine is None:
            return
        minute, recorded, suppressed = self._refusal_window
        now = time.monotonic()
        if now - minute >= 60:
            minute, recorded = now, 0
        if recorded >= _REFUSALS_PER_MINUTE:
            self._refusal_window = (minute, recorded, suppressed + 1)
            return
        await engine.execute(RecordRefusal(code, route, method, actor_id, suppressed_before=suppressed))
        self._refusal_window = (minute, recorded + 1, 0)
