"""The composition root of a cabinet's engine: the one place that turns settings (or a test's or scenario's own
parts) into a store, a clock, the rules in force, devices and a wired engine.

Responsible for: choosing concrete parts; deciding which rules are in force at start and recording them (the policy
file, ``ADC_POLICY_FILE`` or the shipped default, is loaded and recorded when it differs from the last rules it
put in force; otherwise the newest recorded rules stay in force, so an administrator's change survives a restart;
an override list recorded before rules were documents is carried over); stamping the ledger simulated when a
connected device says it is a simulator. Every caller (``adc serve``, the scenarios, the benchmarks, the tests)
builds its cabinet here.

Not responsible for: any rule or workflow (``controller.engine``), or connecting devices
(``controller.bootstrap.hardware``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from controller.bootstrap import credential_hasher, open_database
from controller.bootstrap.hardware import Hardware
from controller.bootstrap.rules import load_rules_file
from controller.domain.clock import Clock, SystemClock
from controller.domain.credentials import CredentialHasher
from controller.domain.policies import Policy
from controller.domain.rules_document import CabinetRules, apply_changes
from controller.engine.assembly import assemble
from controller.engine.cabinet import CabinetEngine
from controller.engine.configuration import RULES_KIND, rules_record
from controller.engine.context import Devices
from controller.engine.handlers.fill import SecondCounter
from controller.engine.rules import RulesHolder
from controller.engine.runner import CabinetRunner
from controller.errors import ConfigurationError
from controller.fsm.settings import FsmSettings
from controller.hardware.io_board.interface import IoBoard
from controller.settings import Settings
from controller.store.cabinet_store import CabinetStore
from controller.store.database import Database
from controller.store.ledger import Ledger, LedgerObserver

LEGACY_OVERRIDE_LIST_KIND = "override_list"  # how the override list was recorded before the rules were a document
DEFAULT_RULES = CabinetRules(Policy(), FsmSettings())


def compose_cabinet(
    *,
    db: Database,
    cabinet_id: str,
    clock: Clock,
    hasher: CredentialHasher,
    devices: Devices,
    is_simulator: bool,
    rules: CabinetRules | None = None,
    rules_source: str = "built in",
    ledger_observers: Sequence[LedgerObserver] = (),
    hold_s: float = 30.0,
    io_timeout_s: float = 2.0,
    second_counter: SecondCounter | None = None,
) -> CabinetEngine:
    """A cabinet's engine from its parts. ``rules`` given: they are put in force (and recorded if they differ from
    what is); None: the newest recorded rules, or the defaults on a new store."""
    store = CabinetStore(db, Ledger(cabinet_id, clock, is_simulator=is_simulator, observers=ledger_observers))
    in_force, source = rules_in_force(store, rules, rules_source, clock)
    holder = RulesHolder(in_force.policy, in_force.machines, hash=in_force.hash, source=source)
    return assemble(store=store, clock=clock, rules=holder, hasher=hasher, devices=devices, hold_s=hold_s,
                    io_timeout_s=io_timeout_s, second_counter=second_counter)  # fmt: skip


def rules_in_force(
    store: CabinetStore, offered: CabinetRules | None, source: str, clock: Clock
) -> tuple[CabinetRules, str]:
    """The rules to start with, recording them when they change what is in force."""
    with store.read() as reader:
        latest = reader.last_configuration(RULES_KIND)
        from_source = reader.last_configuration(RULES_KIND, source=source)
        legacy = reader.last_configuration(LEGACY_OVERRIDE_LIST_KIND)
    if offered is None:
        if latest is not None:
            return _document_rules(latest), str(latest.get("source", "recorded"))
        offered = DEFAULT_RULES
    elif latest is not None and from_source is not None and from_source.get("hash") == offered.hash:
        # The same document as this source put in force last time: whatever was changed since stays.
        return _document_rules(latest), str(latest.get("source", source))
    if latest is None and legacy is not None:
        listed = legacy.get("items", [])
        items = [str(i) for i in listed] if isinstance(listed, list) else []
        offered = apply_changes(offered, {"removal": {"override_items": items}})
    if latest is None or latest.get("hash") != offered.hash:
        record = rules_record(offered, actor_id=None, source=source, reason="", changes=[],
                              occurred_at=clock.now().isoformat())  # fmt: skip
        with store.write() as tx:
            tx.append(record)
    return offered, source


def _document_rules(details: Mapping[str, object]) -> CabinetRules:
    """The rules a recorded ``rules`` entry put in force (validated again, as any document is)."""
    text = details.get("document")
    document = json.loads(text) if isinstance(text, str) else None
    if not isinstance(document, Mapping):
        raise ConfigurationError("config.invalid", "the recorded rules entry holds no document")
    return apply_changes(DEFAULT_RULES, document, source="the recorded rules")


def build_engine(
    settings: Settings,
    hardware: Hardware,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    rules: CabinetRules | None = None,
    ledger_observers: Sequence[LedgerObserver] = (),
) -> CabinetEngine:
    """The engine for ``settings.cabinet_id`` on ``hardware``: the rules of ``ADC_POLICY_FILE`` (or the shipped
    default) unless ``rules`` are given. ``ledger_observers`` run inside each append (the HL7 outbox is one;
    whoever composes the integrations passes them, as this layer may not import them)."""
    if hardware.io_board is None:
        raise ConfigurationError("config.invalid", "the engine needs an I/O board: set ADC_IO_BOARD")
    source = f"file:{settings.policy_file}" if settings.policy_file else "file:default"
    offered = rules if rules is not None else load_rules_file(settings.policy_file)
    return compose_cabinet(
        db=db or open_database(settings),
        cabinet_id=settings.cabinet_id,
        clock=clock or SystemClock(),
        hasher=credential_hasher(settings),
        devices=devices_of(hardware, hardware.io_board),
        is_simulator=hardware.is_simulator,
        rules=offered,
        rules_source=source if rules is None else "built in",
        ledger_observers=ledger_observers,
    )


def devices_of(hardware: Hardware, board: IoBoard) -> Devices:
    return Devices(board=board, scanner=hardware.scanner, counter=hardware.pill_counter, robot=hardware.pill_counter,
                   printer=hardware.label_printer, camera=hardware.camera)  # fmt: skip


def build_runner(settings: Settings, engine: CabinetEngine, *, tick_period_s: float = 1.0) -> CabinetRunner:
    """The running loop of ``engine``: sensors polled at ``settings.io_poll_hz``, time rules every ``tick_period_s``.
    ``async with build_runner(settings, engine):`` runs the cabinet."""
    return CabinetRunner(engine, poll_period_s=1 / settings.io_poll_hz, tick_period_s=tick_period_s)
