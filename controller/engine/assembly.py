"""Wiring one cabinet's engine from its concrete parts: the shared parts first, then every handler.

Responsible for the order parts depend on each other and for nothing else; which store, clock, rules and devices
the parts are is the composition root's choice (``controller.bootstrap``). Handlers are built here and only here,
so each registers exactly once.
"""

from __future__ import annotations

from controller.domain.clock import Clock
from controller.domain.credentials import CredentialHasher
from controller.engine.actuation import Actuator
from controller.engine.cabinet import CabinetEngine
from controller.engine.context import Devices, EngineContext
from controller.engine.credentials import CredentialCheck
from controller.engine.handlers.admin import AdminHandler
from controller.engine.handlers.central_config import CentralConfigurationHandler
from controller.engine.handlers.compartments import CompartmentHandler
from controller.engine.handlers.counts import CountHandler
from controller.engine.handlers.devices import DeviceHandler
from controller.engine.handlers.discrepancies import DiscrepancyHandler
from controller.engine.handlers.fill import FillHandler, SecondCounter
from controller.engine.handlers.override_reviews import OverrideReviewHandler
from controller.engine.handlers.pull import PullHandler
from controller.engine.handlers.quarantine import QuarantineHandler
from controller.engine.handlers.restock import RestockHandler
from controller.engine.handlers.returns import ReturnHandler
from controller.engine.handlers.session import SessionHandler
from controller.engine.handlers.waste import WasteHandler
from controller.engine.handlers.witness import WitnessHandler
from controller.engine.package_reader import PackageReader
from controller.engine.recording import Recorder
from controller.engine.registry import Registry
from controller.engine.rules import RulesHolder
from controller.engine.sensing import SnapshotFollower
from controller.engine.topology import CabinetTopology
from controller.engine.witnessing import WitnessDesk
from controller.fsm.compartment import Compartments
from controller.fsm.session import Lockout, Sessions
from controller.store.cabinet_store import CabinetStore


def assemble(
    *,
    store: CabinetStore,
    clock: Clock,
    rules: RulesHolder,
    hasher: CredentialHasher,
    devices: Devices,
    hold_s: float = 30.0,
    io_timeout_s: float = 2.0,
    second_counter: SecondCounter | None = None,
) -> CabinetEngine:
    with store.read() as reader:
        topology = CabinetTopology.read(reader)
        lockouts = {user: Lockout(s.failures, s.locked_at, s.until) for user, s in reader.lockouts().items()}
        last_session = reader.last_session_id()
    session = Sessions().new(store.cabinet_id, settings=rules.machines, lockouts=lockouts)
    session.session_id = last_session  # ids keep increasing across restarts: no grant can outlive its session
    compartments = Compartments(rules.machines)
    for compartment_id in topology.compartment_ids:
        compartments.add(compartment_id, pocket_id=topology.pocket_compartments.get(compartment_id))
    recorder = Recorder(store, clock, rules)
    actuator = Actuator(devices.board, compartments, topology, lambda: session, recorder, clock,
                        io_timeout_s=io_timeout_s, hold_s=hold_s)  # fmt: skip
    credentials = CredentialCheck(store, hasher)
    ctx = EngineContext(
        store=store,
        clock=clock,
        rules=rules,
        devices=devices,
        topology=topology,
        session=session,
        compartments=compartments,
        recorder=recorder,
        actuator=actuator,
        credentials=credentials,
        witness=WitnessDesk(lambda: session, clock, credentials, recorder),
        packages=PackageReader(devices.scanner, devices.camera),
        registry=Registry(),
    )
    follower = SnapshotFollower(ctx)
    engine = CabinetEngine(ctx, follower)
    sessions = SessionHandler(ctx)
    WitnessHandler(ctx)
    PullHandler(ctx)
    WasteHandler(ctx)
    ReturnHandler(ctx)
    DiscrepancyHandler(ctx)
    OverrideReviewHandler(ctx)
    RestockHandler(ctx)
    CountHandler(ctx, engine.refresh)
    QuarantineHandler(ctx)
    FillHandler(ctx, second_counter)
    CompartmentHandler(ctx, engine.refresh)
    AdminHandler(ctx)
    CentralConfigurationHandler(ctx)
    DeviceHandler(ctx)
    engine.sessions = sessions
    return engine
