"""From sensor snapshots to compartment events to the workflow that holds the grant; and the restore after a start.

Responsible for: reading each compartment's door and latch from a snapshot and firing ``opened`` / ``closed`` /
``latched`` on its machine; on a version 2 I/O board, the openings its counters saw that no read did (opened and
shut between two polls, or while the controller was down: ``opened_unseen``); handing every event of a
compartment to the workflows holding a grant on it (found by the grant's workflow id) and recording everything one
snapshot caused, with the opening counts, in one transaction; then acknowledging the counts on the board and
locking what shut without latching. ``restore`` rebuilds every compartment from the sensors after a (re)start and
recovers each workflow the journal says was live, with what the board counted meanwhile as evidence.

Not responsible for: the rules (the machines), what a workflow does with an event (its handler), or polling
(a ``BoardPoller`` feeds snapshots through ``CabinetEngine.handle_snapshot``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from controller.engine.context import EngineContext
from controller.engine.topology import BoardAddress
from controller.engine.workflows import CompartmentEvent, CompartmentEventKind, Evidence, Reaction
from controller.errors import ControllerError
from controller.fsm.base import Decision
from controller.fsm.compartment import Compartment, CompartmentState, SensorReading
from controller.hardware.io_board.interface import BoardSnapshot
from controller.store.ledger import SealedEntry

C = CompartmentState
E = CompartmentEventKind
WRAP = 65536


@dataclass(frozen=True, slots=True)
class Reading:
    """One compartment in one snapshot. ``counter``/``seen``: the board's opening counter and what the controller
    acknowledged of it (version 2 boards; None where the board does not count or did not report this one)."""

    is_open: bool
    is_shut: bool
    latched: bool
    counter: int | None = None
    seen: int | None = None
    counts_openings: bool = False


def read_compartment(snapshot: BoardSnapshot, address: BoardAddress) -> Reading | None:
    """None when the sensors cannot tell (a drawer whose open and closed sensors agree: a fault of its own)."""
    drawer = snapshot.drawer(address.drawer)
    counts = snapshot.protocol_version >= 2
    if address.pocket is None:
        if drawer.sensor_disagreement:
            return None
        return Reading(drawer.is_open, drawer.is_closed, not drawer.lock_released, drawer.openings,
                       drawer.openings_seen, counts)  # fmt: skip
    is_open = address.pocket in drawer.lids_open
    counted = drawer.lid_openings.get(address.pocket)
    counter, seen = counted if counted is not None else (None, None)
    return Reading(is_open, not is_open, address.pocket not in drawer.lids_released, counter, seen, counts)


@dataclass
class Step:
    """One compartment's part of a snapshot."""

    counter: int | None
    decisions: list[Decision] = field(default_factory=list)
    events: list[CompartmentEventKind] = field(default_factory=list)


@dataclass
class Followed:
    """What one snapshot (or the restore) wrote, and what still needs the board afterwards."""

    sealed: list[SealedEntry] = field(default_factory=list)
    acknowledge: dict[str, int] = field(default_factory=dict)  # compartment -> counter value now recorded
    shut_unlatched: list[str] = field(default_factory=list)


class SnapshotFollower:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        with ctx.store.read() as reader:
            self._recorded: dict[str, int] = reader.recorded_openings()
        self.protocol_version: int | None = None
        # Compartments whose board showed, at the last read, an opening no sensor read saw. A snapshot reads the
        # sensors before the counters, so an opening made between the two reads shows first as a counted opening
        # of a shut compartment; such a compartment waits for the next read, and the opening is taken as unseen
        # only if that read does not show it open.
        self._unconfirmed: set[str] = set()

    @property
    def awaiting_read(self) -> bool:
        """Whether an opening the last read counted but could not place waits for the next read."""
        return bool(self._unconfirmed)

    # --- a running cabinet --------------------------------------------------------------------------------------

    async def follow(self, snapshot: BoardSnapshot) -> Followed:
        ctx = self.ctx
        now = ctx.now()
        self.protocol_version = ctx.modes.board_protocol = snapshot.protocol_version
        decisions: list[Decision] = []
        reaction = Reaction()
        counts: dict[str, int] = {}
        done = Followed()
        for compartment in ctx.compartments.by_id.values():
            if compartment.state is C.UNKNOWN:
                continue  # not restored yet: restore() reads the sensors first
            reading = read_compartment(snapshot, ctx.topology.address[compartment.id])
            if reading is None:
                continue
            holders = compartment.workflow_ids
            step = self._step(compartment, reading, now)
            if step is None:
                continue  # waits for the next read (see __init__)
            decisions += step.decisions
            if reading.is_shut and not reading.latched and compartment.state is C.CLOSED:
                done.shut_unlatched.append(compartment.id)
            if step.counter is not None:
                counts[compartment.id] = step.counter
            for kind in step.events:
                reaction.merge(self._route(holders, CompartmentEvent(kind, compartment.id), now))
        changed = {c: n for c, n in counts.items() if self._recorded.get(c) != n}
        reaction.decisions[:0] = decisions
        done.sealed = ctx.recorder.commit(*reaction.decisions, journal=reaction.journal, deposit=reaction.deposit,
                                          openings=changed or None)  # fmt: skip
        self._recorded.update(changed)
        for workflow_id in dict.fromkeys(reaction.ended):
            done.sealed += await ctx.actuator.release(workflow_id)
        done.acknowledge = {c: n for c, n in counts.items() if self._seen(snapshot, c) != n}
        return done

    def _step(self, compartment: Compartment, reading: Reading, now: datetime) -> Step | None:
        """What one read says happened to ``compartment``: its machine's decisions and the events for the workflow
        holding it. None when a counted opening of a shut compartment must wait for the next read."""
        session = self.ctx.session
        missed, counter = self._unrecorded(compartment.id, reading)
        step = Step(counter=counter)
        edge_open = reading.is_open and not compartment.is_physically_open
        if edge_open:
            step.decisions.append(compartment.opened(now=now, session=session))
            step.events.append(E.OPENED if compartment.state is C.OPEN else E.TAMPERED)
        missed -= 1 if edge_open and missed else 0
        if missed > 0 and not edge_open and compartment.id not in self._unconfirmed:
            self._unconfirmed.add(compartment.id)
            return None
        self._unconfirmed.discard(compartment.id)
        if missed > 0:
            unseen = compartment.opened_unseen(now=now, session=session, count=missed, seen_by="counter")
            step.decisions.append(unseen)
            if unseen.accepted and compartment.state is C.CLOSED:
                step.events.append(E.OPENED_AND_CLOSED)
            elif unseen.accepted and compartment.state is C.UNACCOUNTED and compartment.workflow_ids:
                step.events.append(E.TAMPERED)
        if reading.is_shut and compartment.is_physically_open:
            step.decisions.append(compartment.closed(now=now))
            if compartment.state is C.CLOSED:
                step.events.append(E.CLOSED)
        if reading.is_shut and reading.latched and compartment.state in (C.CLOSED, C.UNLOCKED):
            expired = compartment.state is C.UNLOCKED
            step.decisions.append(compartment.latched(now=now))
            if expired:
                step.events.append(E.EXPIRED)
        return step

    async def settle(self, followed: Followed) -> list[SealedEntry]:
        """What a snapshot leaves for the board: acknowledge the counted openings, lock what shut unlatched."""
        await self.acknowledge(followed.acknowledge)
        return await self.ctx.actuator.confirm_latched(followed.shut_unlatched)

    def _route(self, holders: Iterable[str], event: CompartmentEvent, now: object) -> Reaction:
        reaction = Reaction()
        for workflow_id in holders:
            owner = self.ctx.registry.owner_of(workflow_id)
            if owner is not None:
                reaction.merge(owner.on_compartment(workflow_id, event, self.ctx.now()))
        return reaction

    # --- opening counters ---------------------------------------------------------------------------------------

    def _unrecorded(self, compartment_id: str, reading: Reading) -> tuple[int, int | None]:
        """(openings nobody recorded, the counter value that covers them) of a version 2 board; (0, None) when
        the board does not count or reports nothing pending for this compartment."""
        if reading.counter is None or reading.seen is None:
            return 0, None
        seen, counter = reading.seen, reading.counter
        recorded = self._recorded.get(compartment_id)
        # The store may be ahead of the board: recorded, then stopped before the board was told.
        baseline = seen
        if recorded is not None and 0 < (recorded - seen) % WRAP <= (counter - seen) % WRAP:
            baseline = recorded
        return (counter - baseline) % WRAP, counter

    def _seen(self, snapshot: BoardSnapshot, compartment_id: str) -> int | None:
        reading = read_compartment(snapshot, self.ctx.topology.address[compartment_id])
        return reading.seen if reading is not None else None

    async def acknowledge(self, counts: dict[str, int]) -> None:
        """Tell the board the openings up to these counts are recorded (best effort: the store already knows, so
        a lost acknowledgement only means the same count is acknowledged again next time)."""
        board = self.ctx.devices.board
        for compartment_id, counter in counts.items():
            address = self.ctx.topology.address[compartment_id]
            try:
                if address.pocket is None:
                    await self.ctx.actuator.io(board.ensure_openings_seen(address.drawer, counter))
                else:
                    await self.ctx.actuator.io(board.ensure_lid_openings_seen(address.drawer, address.pocket, counter))
            except ControllerError:
                return

    # --- after a (re)start --------------------------------------------------------------------------------------

    def restore(self, snapshot: BoardSnapshot) -> Followed:
        """Rebuild the compartments from the sensors; recover every workflow the journal holds, with what the board
        counted meanwhile; an opening counted while nobody held a grant is tamper. One transaction."""
        ctx = self.ctx
        now = ctx.now()
        self.protocol_version = ctx.modes.board_protocol = snapshot.protocol_version
        decisions: list[Decision] = []
        unrecorded: dict[str, int | None] = {}
        counts: dict[str, int] = {}
        done = Followed()
        for compartment in ctx.compartments.by_id.values():
            reading = read_compartment(snapshot, ctx.topology.address[compartment.id])
            if compartment.state is not C.UNKNOWN or reading is None:
                continue
            restored = compartment.restore(now=now, sensors=SensorReading(reading.is_open, reading.latched))
            decisions.append(restored)
            pending, counter = self._unrecorded(compartment.id, reading)
            unrecorded[compartment.id] = pending if reading.counts_openings else None
            if counter is not None:
                counts[compartment.id] = counter
        evidence = Evidence(unrecorded)
        reaction = Reaction()
        claimed: set[str] = set()
        with ctx.store.read() as reader:
            live = reader.live_journal()
        for entry in live:
            owner = ctx.registry.recoverer_of(entry.kind)
            if owner is None:
                continue
            claimed.update(owner.released_at_stop(entry))
            reaction.merge(owner.recover(entry, evidence, now))
        for compartment_id, missed in unrecorded.items():
            compartment = ctx.compartments[compartment_id]
            if missed and compartment_id not in claimed and not compartment.is_physically_open:
                decisions.append(compartment.opened_unseen(now=now, session=ctx.session, count=missed,
                                                           seen_by="counter_while_down"))  # fmt: skip
        changed = {c: n for c, n in counts.items() if self._recorded.get(c) != n}
        done.sealed = ctx.recorder.commit(*decisions, *reaction.decisions, journal=reaction.journal,
                                          deposit=reaction.deposit, openings=changed or None)  # fmt: skip
        self._recorded.update(changed)
        done.acknowledge = {c: n for c, n in counts.items() if self._seen(snapshot, c) != n}
        return done


def unknown(compartments: Iterable[Compartment]) -> bool:
    return any(c.state is C.UNKNOWN for c in compartments)
