"""A fleet scenario's hospital, in process: every cabinet of ``fleet.cabinets`` a simulated cabinet of its own (the
scenario's cabinet section under that id: its own SQLite store, device simulators and forwarder, each forwarder
behind a link QA can cut), one central ingest worker on a fresh PostgreSQL schema, and a private NATS JetStream.

Responsible for: building and closing all of it (the schema and the NATS store go with the run); the fleet steps
(``cut_link``, ``restore_link``, ``sync``), ``advance`` moving every cabinet's virtual time together, slice by
slice, and every other step handed to the cabinet it names; and the ``central`` expectations (whose chains the
central holds whole, which it lacks entries of, its alarms, its stock view). Not responsible for what a cabinet
step does (``local_steps``) or for the central's rules (``controller.fleet``, ``controller.store.central``).

The central's clock is the first cabinet's virtual clock; the others are never more than one tick away from it,
which the loader keeps within the central's clock tolerance. Links, publishing and ingest run on real time, so a
``sync`` step waits in real time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from controller.domain.chain import ChainEntry
from controller.domain.clock import Clock
from controller.domain.directory import CENSUS, FORMULARY, kv_token
from controller.domain.transactions import EventType
from controller.engine.cabinet import CabinetEngine
from controller.errors import ConfigurationError
from controller.fleet import nats_server
from controller.fleet import protocol as p
from controller.fleet.central_service import CentralConfig, CentralService
from controller.fleet.central_worker import WorkerConfig
from controller.fleet.configuration import through_engine
from controller.fleet.forwarder import Forwarder, ForwarderConfig
from controller.integration.hl7 import MllpListener, open_listener
from controller.scenarios.expectations import Failure
from controller.scenarios.hl7_exchange import exchange
from controller.scenarios.local_steps import LocalSteps
from controller.scenarios.model import Scenario, Step
from controller.scenarios.outcome import Outcome
from controller.scenarios.simulated_cabinet import SimulatedCabinet, open_simulated_cabinet
from controller.scenarios.values import parse_duration, parse_instant
from controller.store.central import cabinet_config, directory, downlink
from controller.store.central import formulary as central_formulary
from controller.store.central import ledger as central
from controller.store.central import schema as central_schema
from controller.store.central import stock as central_stock
from controller.store.central import tables as t
from controller.store.database import Database
from controller.store.fleet_link import entries_after
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.models import FleetDownlinkVersionRow
from controller.store.scratch_schema import scratch_schema
from simulators.link_proxy import LinkProxy

# Anchors at once (never an anchor of an anchor): a cabinet is settled when the central holds its chain up to the
# anchor of its last entry, and nothing more follows until the cabinet records something else.
FORWARDER = ForwarderConfig(heartbeat_s=0.5, anchor_interval_s=0.0, poll_s=0.05, publish_timeout_s=1.0)
WORKER = WorkerConfig(ack_wait_s=5.0, fetch_timeout_s=0.2)
DOWNLINK_INTERVAL_S = 0.2  # the central's publishers reconcile this often (5 s in service)
SYNC_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class FleetTarget:
    """Where fleet scenarios put their central: a PostgreSQL server (each run gets a fresh schema there, dropped
    afterwards). NATS is always a private ``nats-server -js`` of the run."""

    central_url: str | None


@dataclass
class FleetCabinet:
    cabinet: SimulatedCabinet
    steps: LocalSteps
    link: LinkProxy
    forwarder: Forwarder


class Fleet:
    def __init__(
        self, scenario: Scenario, central_db: Database, cabinets: dict[str, FleetCabinet], feed: MllpListener
    ) -> None:
        self.scenario = scenario
        self.central_db = central_db
        self.cabinets = cabinets
        self.feed = feed  # the central's HL7 listener: the hospital's one feed
        self.first = scenario.fleet[0]

    @property
    def clock(self) -> Any:
        return self.cabinets[self.first].cabinet.clock

    def cabinet_of(self, step: Step) -> FleetCabinet:
        return self.cabinets[step.cabinet or self.first]

    # --- steps ----------------------------------------------------------------------------------------------------

    async def perform(self, step: Step) -> Outcome:
        if step.action == "cut_link":
            self.cabinets[str(step.value)].link.drop()
            return Outcome(True, data={"cabinet": step.value, "link": "cut"}, commands=("link.cut",))
        if step.action == "restore_link":
            self.cabinets[str(step.value)].link.restore()
            return Outcome(True, data={"cabinet": step.value, "link": "up"}, commands=("link.restore",))
        if step.action == "sync":
            return await self._sync(parse_duration(step.value))
        if step.action == "advance":
            return await self._advance(step.value)
        if step.action == "hl7" and step.cabinet is None:
            return await self._central_hl7(str(step.value))
        return await self.cabinet_of(step).steps.perform(step)

    async def _central_hl7(self, message: str) -> Outcome:
        """To the central's feed (a step naming a cabinet goes to that cabinet's own listener instead); the
        downlink documents are brought up to what it wrote at once, so a ``sync`` waits for the cabinets to hold
        them."""
        answer = await exchange(self.feed.address, message)
        await asyncio.to_thread(self._reconcile_downlink)
        data = {"ack": answer.code, "error": answer.error, "to": "central"}
        if answer.code == "AA":
            return Outcome(True, data=data, commands=("hl7",))
        return Outcome(False, code=answer.error or "hl7.unparseable", detail=f"ACK {answer.code}: {answer.text!r}",
                       data=data, commands=("hl7",))  # fmt: skip

    def _reconcile_downlink(self) -> None:
        now = self.clock.now()
        with self.central_db.writer.begin() as connection:
            for kind in (FORMULARY, CENSUS):
                downlink.reconcile(connection, kind, now)

    async def _advance(self, value: Any) -> Outcome:
        now = self.clock.now()
        delta = parse_instant(str(value["to"])) - now if isinstance(value, Mapping) else parse_duration(value)
        if delta < timedelta(0):
            return Outcome.cannot_run(f"{value['to']} is before the scenario's clock ({now.isoformat()})")
        remaining = delta
        while remaining > timedelta(0):  # every cabinet one slice at a time: their clocks stay within a tick
            piece = min(remaining, self.scenario.tick)
            for member in self.cabinets.values():
                await member.cabinet.advance(piece)
            remaining -= piece
        data = {"now": self.clock.now().isoformat(), "advanced_s": int(delta.total_seconds())}
        return Outcome(True, data=data, commands=("advance",))

    async def _sync(self, limit: timedelta) -> Outcome:
        """Wait until every cabinet whose link is up is settled (the central holds its whole chain, anchored), or
        ``limit`` passes (the step still succeeds: ``expect.central`` says what must hold)."""
        started = time.monotonic()
        connected = [c for c, member in self.cabinets.items() if not member.link.cut]
        while True:
            behind = [c for c in connected if not await asyncio.to_thread(self.settled, c)]
            if not behind or time.monotonic() - started >= limit.total_seconds():
                break
            await asyncio.sleep(SYNC_POLL_S)
        data = {"caught_up": [c for c in connected if c not in behind], "behind": behind,
                "waited_s": round(time.monotonic() - started, 2)}  # fmt: skip
        return Outcome(True, data=data, commands=("sync",))

    # --- what the central holds -------------------------------------------------------------------------------------

    def holds_whole_chain(self, cabinet_id: str) -> bool:
        return self._chains(cabinet_id)[0]

    def settled(self, cabinet_id: str) -> bool:
        """The central holds the whole chain and it ends with the anchor of the central's head (no entry of the
        link itself is still on its way), and the cabinet holds every downlink document the central has for it."""
        whole, last = self._chains(cabinet_id)
        anchored = last is not None and json.loads(last.body).get("event_type") == EventType.FLEET_ANCHORED
        return whole and anchored and not self.downlink_behind(cabinet_id)

    def downlink_behind(self, cabinet_id: str) -> list[str]:
        """The (kind, key) documents the central holds a newer version of than the cabinet: its users, the
        formulary, its care area's census, its own layout and policy."""
        member = self.cabinets[cabinet_id].cabinet
        area = kv_token(str(member.scenario.cabinet["care_area"]["id"])) + "."
        with self.central_db.reader.connect() as connection:
            wanted = {("user", user): v for user, v in directory.versions(connection).items()}
            wanted |= {(FORMULARY, key): v for key, v in downlink.versions(connection, FORMULARY).items()}
            wanted |= {(CENSUS, key): v for key, v in downlink.versions(connection, CENSUS).items()
                       if key.startswith(area)}  # fmt: skip
            for key, version in cabinet_config.versions(connection).items():
                owner, _, kind = key.rpartition(".")
                if owner == kv_token(cabinet_id):
                    wanted[(kind, cabinet_id)] = version
        with member.db.read() as session:
            held = {(r.kind, r.key): r.version for r in session.query(FleetDownlinkVersionRow)}
        return sorted(f"{kind} {key}" for (kind, key), version in wanted.items() if held.get((kind, key), 0) < version)

    def _chains(self, cabinet_id: str) -> tuple[bool, ChainEntry | None]:
        local = entries_after(self.cabinets[cabinet_id].cabinet.db, cabinet_id, 0, limit=10**9)
        with self.central_db.reader.connect() as connection:
            held = central.chain_of(connection, cabinet_id)
        whole = [(e.seq, e.hash) for e in local] == [(e.seq, e.hash) for e in held]
        return whole, (local[-1] if local else None)

    def alarms(self) -> list[tuple[str, str, str]]:
        """Every alarm the central raised: (code, cabinet, detail), by code."""
        with self.central_db.reader.connect() as connection:
            rows = connection.execute(sa.select(t.alarms.c.code, t.alarms.c.cabinet_id, t.alarms.c.detail)).all()
        return sorted((str(r.code), str(r.cabinet_id), str(r.detail)) for r in rows)

    def stock_of(self, cabinet_id: str) -> dict[str, int]:
        with self.central_db.reader.connect() as connection:
            pockets = central_stock.pockets_of(connection, cabinet_id, self.clock.now().date())
        return {p.pocket_id: p.on_hand for p in pockets}

    async def check(self, step: Step) -> list[Failure]:
        expected = step.expect.central
        if expected is None:
            return []
        line = step.expect.line_of("central", step.line)
        failures: list[Failure] = []
        for cabinet_id in expected.caught_up:
            if not await asyncio.to_thread(self.holds_whole_chain, cabinet_id):
                failures.append(Failure("central", line, f"the central does not hold all of {cabinet_id}'s chain"))
        for cabinet_id in expected.behind:
            if await asyncio.to_thread(self.holds_whole_chain, cabinet_id):
                failures.append(Failure("central", line, f"expected {cabinet_id} behind, but the central holds its "
                                                         "whole chain"))  # fmt: skip
        if expected.alarms is not None:
            raised = await asyncio.to_thread(self.alarms)
            if [code for code, _, _ in raised] != sorted(expected.alarms):
                shown = "; ".join(f"{code} at {cabinet}: {detail}" for code, cabinet, detail in raised) or "none"
                failures.append(Failure("central", line, f"alarms: expected {sorted(expected.alarms)}, found {shown}"))
        for cabinet_id, pockets in expected.stock.items():
            held = await asyncio.to_thread(self.stock_of, cabinet_id)
            for pocket_id, quantity in pockets.items():
                if held.get(pocket_id) != quantity:
                    found = held.get(pocket_id)
                    text = f"stock of {cabinet_id} {pocket_id}: expected {quantity}, the central holds {found}"
                    failures.append(Failure("central", line, text))
        return failures


def _member_scenario(scenario: Scenario, cabinet_id: str) -> Scenario:
    document = dict(scenario.cabinet)
    document["cabinet"] = {**dict(scenario.cabinet["cabinet"]), "id": cabinet_id, "name": cabinet_id}
    return dataclasses.replace(scenario, cabinet=document)


@asynccontextmanager
async def _central_schema(url: str) -> AsyncIterator[Database]:
    """A scratch schema on the PostgreSQL server with the central migrated into it, dropped afterwards."""
    with ExitStack() as stack:
        try:
            schema_url = stack.enter_context(scratch_schema(url, "adc_scenario"))
        except sa.exc.SQLAlchemyError as exc:
            raise ConfigurationError("config.invalid", f"the fleet scenario's central needs PostgreSQL: {exc}") from exc
        db = Database.open(schema_url)
        stack.callback(db.dispose)
        await asyncio.to_thread(central_schema.upgrade, db)
        yield db


@asynccontextmanager
async def open_fleet(scenario: Scenario, workdir: Path, target: FleetTarget) -> AsyncIterator[Fleet]:
    if not target.central_url or not target.central_url.startswith("postgresql"):
        raise ConfigurationError(
            "config.invalid", "a fleet scenario needs a PostgreSQL server for its central: pass --central-url "
            "postgresql+psycopg://... (or set ADC_CENTRAL_DATABASE_URL)",
        )  # fmt: skip
    if nats_server.binary() is None:
        raise ConfigurationError("config.invalid", "a fleet scenario needs nats-server (Debian package nats-server)")
    async with AsyncExitStack() as stack:
        nats = nats_server.NatsServer(workdir / "nats")
        await asyncio.to_thread(nats.start)
        stack.callback(nats.stop)
        central_db = await stack.enter_async_context(_central_schema(target.central_url))
        with central_db.write() as session:  # the items the cabinets are seeded with, as `adc central init` loads
            central_formulary.add_missing(session, load_formulary())
        cabinets: dict[str, FleetCabinet] = {}
        for cabinet_id in scenario.fleet:
            member = _member_scenario(scenario, cabinet_id)
            (workdir / cabinet_id).mkdir()
            cabinet = await stack.enter_async_context(open_simulated_cabinet(member, workdir / cabinet_id))
            cabinets[cabinet_id] = await _join(stack, central_db, cabinet, nats.port)
        clock: Clock = cabinets[scenario.fleet[0]].cabinet.clock.engine
        stop = asyncio.Event()
        config = CentralConfig(directory_interval_s=DOWNLINK_INTERVAL_S, worker=WORKER)
        service = CentralService(central_db, nats.url, clock, name="scenario-central", config=config)
        running = asyncio.create_task(service.run(stop))

        async def stop_central() -> None:
            stop.set()
            await asyncio.wait_for(running, 15)

        stack.push_async_callback(stop_central)
        feed = await open_listener(central_db, clock, facility="CENTRAL")
        stack.push_async_callback(feed.close)
        yield Fleet(scenario, central_db, cabinets, feed)


async def _join(stack: AsyncExitStack, central_db: Database, cabinet: SimulatedCabinet, nats_port: int) -> FleetCabinet:
    """Register the cabinet at the central with a new key and start its forwarder behind a link of its own."""
    cabinet_id = cabinet.scenario.cabinet_id
    key = p.new_signing_key()
    with central_db.writer.begin() as connection:
        central.register_cabinet(
            connection, cabinet_id, name=cabinet_id, care_area=str(cabinet.scenario.cabinet["care_area"]["id"]),
            public_key=p.public_key_text(key), now=cabinet.clock.now(),
        )  # fmt: skip
    link = LinkProxy(nats_port)
    await link.start()
    stack.push_async_callback(link.close)
    ledger = Ledger(cabinet_id, cabinet.clock.engine, is_simulator=True)

    async def engine() -> CabinetEngine:
        return cabinet.engine  # restarted by a scenario's restart step: always the one running now

    forwarder = Forwarder(cabinet.db, ledger, key, link.url, cabinet.clock.engine, config=FORWARDER,
                          configure=through_engine(engine))  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(forwarder.run(stop))

    async def halt() -> None:
        stop.set()
        await asyncio.wait_for(task, 15)

    stack.push_async_callback(halt)
    return FleetCabinet(cabinet, LocalSteps(cabinet), link, forwarder)
