"""The cabinet a scenario runs on in process: a fresh store seeded with the scenario's cabinet, the four device
simulators on their real transports (I/O board on Modbus TCP or RTU, scanner, pill counter and label printer on
TCP) behind the real drivers, the engine, and its running loop driven step by step on virtual time.

This is the one module outside the tests that puts the controller and the simulators in one process: a scenario is
a test QA writes. Everything between them goes over sockets: sensor reads and unlocks over Modbus, scans over the
scanner's serial protocol, counts over the counter's framed protocol, labels as ZPL, and every physical act (a
person opening a drawer, pouring tablets, presenting a barcode) over the simulators' control socket as JSON lines,
exactly as ``adc sim`` exposes it.

Responsible for: building and closing all of it; moving virtual time (``advance``: both clocks together, in slices
no longer than the scenario's tick, each followed by a sensor read and the time rules, as the running loop would
see them); the faults the simulators model (jam, stuck sensor, lock that fails, miscount, power loss, link down,
paper out) and their repair; restarting the controller on the same store; HL7 messages over MLLP to a listener on
the same store; and what expectations read (ledger, stock, discrepancies, compartments, session). Not responsible
for what a step means (``local_steps``) or for judging results (``expectations``).

Two deliberate differences from a cabinet on real time: argon2 runs at a light cost (PINs are still verified by
argon2id, only faster), and the board's watchdog is not armed, since virtual time jumps by hours between two
heartbeats; the watchdog has its own end-to-end test on real time (``tests/engine/test_runner.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from controller.bootstrap.cabinet import compose_cabinet
from controller.domain.credentials import CredentialHasher, HashCost
from controller.domain.rules_document import CabinetRules
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands.cabinet import GetCabinetStatus
from controller.engine.commands.session import GetSession
from controller.engine.context import Devices
from controller.engine.runner import CabinetRunner, StampedSnapshot
from controller.errors import CommunicationError, ControllerError
from controller.hardware.io_board.driver import IoBoardDriver
from controller.hardware.label_printer.driver import LabelPrinterDriver
from controller.hardware.pill_counter.driver import PillCounterDriver
from controller.hardware.poller import PollFailure, PollSuccess
from controller.hardware.scanner.driver import ScannerDriver
from controller.integration.hl7 import MllpListener, open_listener
from controller.integration.hl7.outbound import OutboxRecorder
from controller.scenarios.cabinet_doc import CabinetIndex, board_layout
from controller.scenarios.hl7_exchange import Hl7Answer, exchange
from controller.scenarios.model import Scenario
from controller.scenarios.virtual_clock import MotorClock, VirtualClock
from controller.store import schema
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import list_pockets
from controller.store.ledger import Ledger
from controller.store.models import DiscrepancyRow, Hl7OutboxRow, LedgerEntryRow
from controller.store.seed import seed_cabinet
from simulators import io_board, label_printer, pill_counter, scanner
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan

SCENARIO_HASH_COST = HashCost(time_cost=1, memory_kib=8, parallelism=1)
IO_TIMEOUT_S = 0.25  # a board that does not answer (link down) costs this much real time per request
DEVICES = ("io_board", "scanner", "pill_counter", "label_printer")
LIVE_DISCREPANCY = ("open", "escalated", "resolved")  # not yet reviewed


class PhysicalActRefused(Exception):  # noqa: N818 - a fact of the simulated world, not a controller error
    """The simulator could not do what the step asked (a locked drawer does not open)."""


class SteppedLoop(CabinetRunner):
    """The cabinet's running loop without tasks of its own: the scenario calls ``settle`` after every step and
    ``tick`` after every slice of virtual time, so each snapshot, board fault bit and time rule is handled by the
    running loop's own code, in an order that does not depend on real time."""

    def __init__(self, engine: CabinetEngine) -> None:
        super().__init__(engine, poll_period_s=0.1, tick_period_s=1.0)
        self._reads = 0
        self._failed_in_a_row = 0

    async def begin(self) -> None:
        self.health.restored = await self.engine.restore()

    async def settle(self) -> None:
        """One sensor read, handled as the poller's would be."""
        self._reads += 1
        actuations = self.engine.actuations
        io_timeout_s = self.engine.ctx.actuator.io_timeout_s
        try:
            async with asyncio.timeout(io_timeout_s * 4):
                snapshot = await self.engine.ctx.devices.board.snapshot()
        except (ControllerError, TimeoutError) as exc:
            error = exc if isinstance(exc, ControllerError) else _read_timeout(io_timeout_s * 4)
            self._failed_in_a_row += 1
            await self._handle(PollFailure(error, self._reads, 0.0, self._failed_in_a_row, 0.0))
            return
        recovered, self._failed_in_a_row = self._failed_in_a_row > 0, 0
        await self._handle(PollSuccess(StampedSnapshot(actuations, snapshot), self._reads, 0.0, recovered))

    async def _start_heartbeat(self) -> None:
        """Not armed on virtual time (see the module docstring)."""


def _read_timeout(seconds: float) -> ControllerError:
    return CommunicationError("comm.timeout", f"io_board: snapshot took more than {seconds} s")


class ControlLink:
    """One connection to the simulators' physical-world socket (JSON lines)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, port: int) -> ControlLink:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def act(self, device: str, action: str, **args: Any) -> Any:
        request = {"device": device, "action": action, "args": args}
        self._writer.write(json.dumps(request).encode() + b"\n")
        await self._writer.drain()
        answer = json.loads(await self._reader.readline())
        if not answer.get("ok"):
            raise PhysicalActRefused(str(answer.get("error", "refused")))
        return answer.get("result")

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


@dataclass
class SimulatedCabinet:
    scenario: Scenario
    index: CabinetIndex
    clock: VirtualClock
    db: Database
    hasher: CredentialHasher
    drivers: dict[str, Any]
    faults: dict[str, FaultPlan]
    control: ControlLink
    engine: CabinetEngine = field(init=False)
    loop: SteppedLoop = field(init=False)
    restarts: int = 0
    _hl7: MllpListener | None = None

    # --- the controller ---------------------------------------------------------------------------------------

    async def start_controller(self) -> None:
        """Build the engine on the store and the connected devices, and restore the compartments from the sensors
        (what a controller does when it starts, or starts again after losing power)."""
        s = self.scenario
        counter = self.drivers["pill_counter"]
        self.engine = compose_cabinet(
            db=self.db,
            cabinet_id=s.cabinet_id,
            clock=self.clock.engine,
            hasher=self.hasher,
            devices=Devices(
                board=self.drivers["io_board"],
                scanner=self.drivers["scanner"],
                counter=counter,
                robot=counter,
                printer=self.drivers["label_printer"],
            ),
            is_simulator=True,
            rules=CabinetRules(s.policy, s.settings),
            rules_source="scenario",
            # as ``adc serve`` wires it: each dose entry queues its outbound HL7 messages in its own transaction
            ledger_observers=[OutboxRecorder()],
            io_timeout_s=IO_TIMEOUT_S * 4,
        )
        self.loop = SteppedLoop(self.engine)
        await self.loop.begin()
        await self.settle()

    async def restart_controller(self) -> None:
        self.restarts += 1
        await self.start_controller()

    async def settle(self) -> None:
        """Let the cabinet see the world once (as its poller does ten times a second)."""
        await self.loop.settle()

    # --- time -------------------------------------------------------------------------------------------------

    async def advance(self, delta: timedelta) -> None:
        """Move virtual time in slices no longer than the tick; after each, a sensor read and the time rules."""
        remaining = delta
        while remaining > timedelta(0):
            step = min(remaining, self.scenario.tick)
            self.clock.advance(step)
            remaining -= step
            await self.settle()
            await self.loop.tick()

    async def advance_to(self, moment: datetime) -> timedelta:
        delta = moment - self.clock.now()
        if delta < timedelta(0):
            raise ValueError(f"{moment.isoformat()} is before the scenario's clock ({self.clock.now().isoformat()})")
        await self.advance(delta)
        return delta

    # --- the physical world and faults ------------------------------------------------------------------------

    async def act(self, device: str, action: str, **args: Any) -> Any:
        return await self.control.act(device, action, **args)

    def add_fault(self, device: str, kind: FaultKind, **params: Any) -> None:
        """A fault plan entry that fires at the device's next request (times=0: until repaired)."""
        times = 0 if kind is FaultKind.DROP_RESPONSE else 1
        self.faults[device].add(Fault(kind, times=times, params=params))

    def clear_fault(self, device: str, kind: FaultKind) -> None:
        self.faults[device].clear(kind)

    # --- HL7 --------------------------------------------------------------------------------------------------

    async def send_hl7(self, message: str) -> Hl7Answer:
        """One message over MLLP to the cabinet's listener (the same code as ``adc hl7 listen``)."""
        if self._hl7 is None:
            self._hl7 = await open_listener(self.db, self.clock.engine, facility=self.scenario.cabinet_id)
        return await exchange(self._hl7.address, message)

    # --- what expectations read -------------------------------------------------------------------------------

    async def head(self) -> int:
        with self.db.read() as session:
            found = session.execute(
                sa.select(sa.func.max(LedgerEntryRow.seq)).where(LedgerEntryRow.cabinet_id == self.scenario.cabinet_id)
            ).scalar()
        return int(found or 0)

    async def entries(self, after: int, upto: int | None = None) -> list[dict[str, Any]]:
        query = (
            sa.select(LedgerEntryRow.body)
            .where(LedgerEntryRow.cabinet_id == self.scenario.cabinet_id, LedgerEntryRow.seq > after)
            .order_by(LedgerEntryRow.seq)
        )
        if upto is not None:
            query = query.where(LedgerEntryRow.seq <= upto)
        with self.db.read() as session:
            return [json.loads(body) for body in session.execute(query).scalars()]

    async def stock(self) -> dict[str, tuple[int, dict[str, int]]]:
        with self.db.read() as session:
            pockets = list_pockets(session, self.scenario.cabinet_id)
        return {p.pocket_id: (p.quantity, {lot.lot_number: lot.quantity for lot in p.lots}) for p in pockets}

    async def discrepancies(self) -> list[dict[str, Any]]:
        with self.db.read() as session:
            rows = session.execute(
                sa.select(DiscrepancyRow)
                .where(
                    DiscrepancyRow.cabinet_id == self.scenario.cabinet_id, DiscrepancyRow.status.in_(LIVE_DISCREPANCY)
                )
                .order_by(DiscrepancyRow.id)
            ).scalars()
            return [
                {
                    "pocket": r.pocket_id,
                    "item": r.item_id,
                    "state": r.status,
                    "raised_by": r.raised_by,
                    "expected": r.expected,
                    "counted": r.counted,
                }
                for r in rows
            ]

    async def compartments(self) -> dict[str, str]:
        return dict(self.engine.query(GetCabinetStatus()).unwrap().compartments)

    async def logged_in(self) -> str | None:
        user = self.engine.query(GetSession()).unwrap().user
        return user.id if user is not None else None

    async def outbox(self, after: int, upto: int) -> list[dict[str, Any]]:
        """Outbound messages queued for the ledger entries ``(after, upto]``."""
        with self.db.read() as session:
            rows = session.execute(
                sa.select(Hl7OutboxRow)
                .where(
                    Hl7OutboxRow.cabinet_id == self.scenario.cabinet_id,
                    Hl7OutboxRow.ledger_seq > after,
                    Hl7OutboxRow.ledger_seq <= upto,
                )
                .order_by(Hl7OutboxRow.id)
            ).scalars()
            return [
                {"type": r.message_type, "patient": r.patient_key, "status": r.status, "payload": r.payload}
                for r in rows
            ]

    async def close(self) -> None:
        if self._hl7 is not None:
            await self._hl7.close()


@asynccontextmanager
async def open_simulated_cabinet(scenario: Scenario, workdir: Path) -> AsyncIterator[SimulatedCabinet]:
    """The scenario's cabinet, seeded on a fresh SQLite store in ``workdir``, with every device simulated."""
    clock = VirtualClock(scenario.start)
    hasher = CredentialHasher(SCENARIO_HASH_COST)
    formulary = load_formulary()
    index = CabinetIndex.of(scenario.cabinet, formulary)
    db = Database.open(f"sqlite:///{workdir / 'scenario.db'}", create=True)
    async with AsyncExitStack() as stack:
        stack.callback(db.dispose)
        schema.upgrade(db)
        with db.write() as session:
            seed_cabinet(
                session,
                dict(scenario.cabinet),
                formulary,
                ledger=Ledger(scenario.cabinet_id, clock.engine, is_simulator=True),
                hasher=hasher,
                clock=clock.engine,
            )
        surface = ControlSurface()
        port = await surface.serve()
        stack.push_async_callback(surface.close)
        faults = {device: FaultPlan() for device in DEVICES}
        sims: dict[str, Any] = {
            "io_board": await io_board.start(
                control=surface,
                clock=clock.devices,
                faults=faults["io_board"],
                layout=board_layout(scenario.cabinet),
                transport=scenario.io_transport,
            ),
            "scanner": await scanner.start(
                control=surface, clock=clock.devices, faults=faults["scanner"], transport="tcp"
            ),
            "pill_counter": await pill_counter.start(
                control=surface, clock=MotorClock(clock.devices), faults=faults["pill_counter"], transport="tcp"
            ),
            "label_printer": await label_printer.start(
                control=surface, clock=clock.devices, faults=faults["label_printer"]
            ),
        }
        for sim in sims.values():
            stack.push_async_callback(sim.close)
        drivers: dict[str, Any] = {
            "io_board": await IoBoardDriver.connect(sims["io_board"].url, timeout=IO_TIMEOUT_S),
            "scanner": await ScannerDriver.connect(sims["scanner"].url, timeout=2.0),
            "pill_counter": await PillCounterDriver.connect(sims["pill_counter"].url),
            "label_printer": await LabelPrinterDriver.connect(sims["label_printer"].url),
        }
        stack.push_async_callback(_close_all, list(drivers.values()))
        control = await ControlLink.connect(port)
        stack.push_async_callback(control.close)
        cabinet = SimulatedCabinet(scenario, index, clock, db, hasher, drivers, faults, control)
        stack.push_async_callback(cabinet.close)
        await cabinet.start_controller()
        yield cabinet


async def _close_all(drivers: list[Any]) -> None:
    """Side by side: the serial-style drivers each take a moment to let their reader go."""
    await asyncio.gather(*(_quietly_close(driver) for driver in drivers))


async def _quietly_close(driver: Any) -> None:
    with contextlib.suppress(ControllerError, OSError):
        await driver.close()


def board_numbers(index: CabinetIndex, compartment: str) -> Mapping[str, int]:
    """``D2`` -> {drawer: 2}; ``D2-P01`` -> {drawer: 2, pocket: 1}: the simulator's arguments for a compartment."""
    if compartment in index.drawers:
        return {"drawer": index.drawers[compartment][0]}
    place = index.pockets[compartment]
    address = place.address
    return (
        {"drawer": address.drawer} if address.pocket is None else {"drawer": address.drawer, "pocket": address.pocket}
    )
