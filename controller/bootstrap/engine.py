"""Building a cabinet's engine from settings and connected hardware: the concrete store, clock, hasher and board
are chosen here and nowhere else."""

from __future__ import annotations

from collections.abc import Sequence

from controller.bootstrap import credential_hasher, open_database
from controller.bootstrap.hardware import Hardware
from controller.domain.clock import Clock, SystemClock
from controller.domain.policies import Policy
from controller.engine.cabinet import CabinetEngine
from controller.engine.runner import CabinetRunner
from controller.errors import ConfigurationError
from controller.fsm.settings import FsmSettings
from controller.settings import Settings
from controller.store.database import Database
from controller.store.ledger import Ledger, LedgerObserver


def build_engine(
    settings: Settings,
    hardware: Hardware,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    policy: Policy | None = None,
    fsm_settings: FsmSettings | None = None,
    ledger_observers: Sequence[LedgerObserver] = (),
) -> CabinetEngine:
    """The engine for ``settings.cabinet_id`` on ``hardware.io_board``. Ledger entries are stamped simulated when
    any connected device says it is a simulator. ``ledger_observers`` run inside each append (the HL7 outbox is
    one; whoever composes the integrations passes them, as this layer may not import them)."""
    if hardware.io_board is None:
        raise ConfigurationError("config.invalid", "the engine needs an I/O board: set ADC_IO_BOARD")
    clock = clock or SystemClock()
    return CabinetEngine(
        db=db or open_database(settings),
        ledger=Ledger(settings.cabinet_id, clock, is_simulator=hardware.is_simulator, observers=ledger_observers),
        board=hardware.io_board,
        clock=clock,
        policy=policy or Policy(),
        settings=fsm_settings or FsmSettings(),
        hasher=credential_hasher(settings),
        scanner=hardware.scanner,
        pill_counter=hardware.pill_counter,
        label_printer=hardware.label_printer,
        camera=hardware.camera,
    )


def build_runner(settings: Settings, engine: CabinetEngine, *, tick_period_s: float = 1.0) -> CabinetRunner:
    """The running loop of ``engine``: sensors polled at ``settings.io_poll_hz``, time rules every ``tick_period_s``.
    ``async with build_runner(settings, engine):`` runs the cabinet."""
    return CabinetRunner(engine, poll_period_s=1 / settings.io_poll_hz, tick_period_s=tick_period_s)
