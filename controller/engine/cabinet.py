"""The engine of one cabinet: runs commands, does the I/O, and records what happened.

Responsible for: turning a command into events for the state machines (session, compartments, pulls); checking
credentials with argon2 off the event loop; driving the I/O board under ``asyncio.timeout`` and reporting back
``unlock_confirmed`` / ``unlock_failed``; turning sensor snapshots into ``opened`` / ``closed`` / ``latched``; and
writing every outcome as one ledger entry, in the same transaction as the stock change (FEFO across lots), the
discrepancy, the override review row or the lockout it goes with. After a restart ``restore()`` rebuilds the
compartments from the sensors.

Not responsible for: any rule (the machines decide; a refusal comes back as a ``CommandResult`` with the code of
the rule), choosing concrete parts (``controller.bootstrap.engine``), or the sensor poll loop (a caller feeds
``handle_snapshot`` from a ``BoardPoller`` or calls ``poll()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from sqlalchemy.orm import Session as DbSession

from controller.domain.allergies import allergy_conflicts
from controller.domain.clock import Clock
from controller.domain.credentials import CredentialHasher
from controller.domain.dose_units import units_for_dose
from controller.domain.medication import Medication
from controller.domain.policies import Policy, discrepancy_deadline
from controller.domain.topology import DrawerKind
from controller.engine.addressing import BoardAddress, board_address
from controller.engine.commands import (
    AccountFor,
    CancelPull,
    Command,
    CommandResult,
    EnterCount,
    Login,
    Logout,
    ScanRemoved,
    SelectItem,
    ServiceCompartment,
    StartPull,
    Take,
    Tick,
)
from controller.engine.package_reader import PackageReader
from controller.engine.package_scan import PackageCheck, PackageReading, check_package
from controller.engine.robot_fill import CountingRobot, PharmacyWorkflows
from controller.engine.witness import ClinicalWorkflows
from controller.errors import (
    CommunicationError,
    ConfigurationError,
    ControllerError,
    DeviceFaultError,
    SafetyError,
    StorageError,
    VerificationError,
)
from controller.fsm.base import Decision, Outcome, OutcomeKind
from controller.fsm.compartment import (
    Compartment,
    Compartments,
    CompartmentState,
    SensorReading,
    UnlockFailure,
    UnlockGrant,
)
from controller.fsm.session import Credentials, Factor, Lockout, Session, Sessions
from controller.fsm.settings import FsmSettings
from controller.fsm.workflows.pull import Pull, PullItem, Pulls, PullState
from controller.hardware.camera.interface import Camera
from controller.hardware.io_board.interface import BoardSnapshot, Colour, IoBoard
from controller.hardware.label_printer.interface import LabelPrinter
from controller.hardware.scanner.interface import Scanner
from controller.store import engine_state as state
from controller.store import repositories as repo
from controller.store.database import Database
from controller.store.inventory import InventoryStore, StockChange
from controller.store.ledger import Ledger, SealedEntry

C = CompartmentState
T = TypeVar("T")
_EXPECTED = (SafetyError, VerificationError, DeviceFaultError, CommunicationError, StorageError)


class CabinetEngine:
    """One cabinet's session, compartments and pulls, over one I/O board and one store. One event loop."""

    # Unlocks and relocks commanded so far: a snapshot read before the latest one is stale (``handle_snapshot``).
    actuations = 0

    def __init__(
        self,
        *,
        db: Database,
        ledger: Ledger,
        board: IoBoard,
        clock: Clock,
        policy: Policy,
        settings: FsmSettings,
        hasher: CredentialHasher,
        hold_s: float = 30.0,
        io_timeout_s: float = 2.0,
        scanner: Scanner | None = None,
        pill_counter: CountingRobot | None = None,
        label_printer: LabelPrinter | None = None,
        camera: Camera | None = None,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.inventory = InventoryStore(ledger)
        self.board = board
        self.clock = clock
        self.policy = policy
        self.settings = settings
        self.hasher = hasher
        self.hold_s = hold_s
        self.io_timeout_s = io_timeout_s
        self.cabinet_id = ledger.cabinet_id
        self._lock = asyncio.Lock()
        self._dummy_hash: str | None = None
        with db.read() as session:
            lockouts = {
                user_id: Lockout(s.failures, s.locked_at, s.until)
                for user_id, s in state.load_lockouts(session).items()
            }
            self.profiled = state.cabinet_is_profiled(session, self.cabinet_id)
            drawers = state.cabinet_drawers(session, self.cabinet_id)
            slots = state.cabinet_slots(session, self.cabinet_id)
        self.session: Session = Sessions().new(self.cabinet_id, settings=settings, lockouts=lockouts)
        self.compartments = Compartments(settings)
        self.pulls = Pulls(policy, settings)
        self.pull: Pull | None = None
        self.address: dict[str, BoardAddress] = {}
        self.drawer_compartment: dict[int, str] = {}  # board drawer number -> compartment id
        self.lid_compartment: dict[tuple[int, int], str] = {}  # (drawer, pocket) -> compartment id
        self.unlock_chain: dict[str, tuple[str, ...]] = {}  # pocket id -> compartments to unlock, outermost first
        for drawer_id, _kind, position in drawers:
            self.compartments.add(drawer_id)
            self.address[drawer_id] = board_address(DrawerKind(_kind), position, None)
            self.drawer_compartment[position] = drawer_id
        for slot in slots:
            address = board_address(DrawerKind(slot.drawer_kind), slot.drawer_position, slot.position)
            if address.is_lid:
                assert address.pocket is not None
                self.compartments.add(slot.pocket_id, pocket_id=slot.pocket_id)
                self.address[slot.pocket_id] = address
                self.lid_compartment[address.drawer, address.pocket] = slot.pocket_id
                self.unlock_chain[slot.pocket_id] = (slot.drawer_id, slot.pocket_id)
            else:
                self.unlock_chain[slot.pocket_id] = (slot.drawer_id,)
        self.slots = {slot.pocket_id: slot for slot in slots}
        self.scanner = scanner
        self.camera = camera
        self.packages = PackageReader(scanner, camera)  # hand scanner or camera, one reading either way
        # Workflows beyond login and pull live in their own modules and register their commands here
        # (``register``); they run with an active session, after the activity timer is reset.
        self._handlers: dict[type[Any], Callable[[Any], Awaitable[CommandResult]]] = {}
        # --- pharmacy workflows (restock, counts, quarantine, robot fill) ------------------------------------------
        self.critical_override_mode = False  # set by an administrator (``SetCriticalOverride``)
        self.pharmacy = PharmacyWorkflows.register(self, scanner=scanner, counter=pill_counter, printer=label_printer)
        # --- clinical workflows (witness, waste, return, discrepancy) ------------------------------------------------
        self.clinical = ClinicalWorkflows(self)

    def register(self, command_type: type[Any], handler: Callable[[Any], Awaitable[CommandResult]]) -> None:
        """Add a command handled by another workflow module; each command type has exactly one handler."""
        if command_type in self._handlers:
            raise ValueError(f"{command_type.__name__} already has a handler")
        self._handlers[command_type] = handler

    # --- entry points -----------------------------------------------------------------------------------------

    async def execute(self, command: Command) -> CommandResult:
        """Run one command. Expected refusals come back as results; anything raised is a bug."""
        async with self._lock:
            try:
                return await self._dispatch(command)
            except _EXPECTED as error:
                return CommandResult.from_error(error)

    async def restore(self) -> CommandResult:
        """After a (re)start: read the board and rebuild every compartment from its sensors. A compartment found
        open is breached and blocks new unlocks until it is closed and accounted for."""
        async with self._lock:
            try:
                snapshot = await self._io(self.board.snapshot())
            except _EXPECTED as error:
                return CommandResult.from_error(error)
            now = self.clock.now()
            outcomes: list[Outcome] = []
            for compartment in self.compartments.by_id.values():
                if compartment.state is not C.UNKNOWN:
                    continue
                door_open, latched = self._reading(snapshot, compartment.id)
                decision = compartment.restore(now=now, sensors=SensorReading(door_open=door_open, latched=latched))
                outcomes.extend(decision.outcomes)
            self._commit(outcomes)
            return CommandResult.success(
                found_open=self.compartments.unaccounted(),
                states={c.id: c.state.value for c in self.compartments.by_id.values()},
            )

    async def poll(self) -> CommandResult:
        """Read one snapshot and act on it (tests and the benchmark; a running cabinet uses a ``BoardPoller``)."""
        try:
            snapshot = await self._io(self.board.snapshot())
        except _EXPECTED as error:
            return CommandResult.from_error(error)
        return await self.handle_snapshot(snapshot)

    async def handle_snapshot(self, snapshot: BoardSnapshot, *, actuations: int | None = None) -> CommandResult:
        """Diff the sensors against the compartments and fire opened / closed / latched; record the outcomes.
        ``actuations``: ``self.actuations`` when the read started (the running loop's poller); a read from before
        the latest unlock or relock is dropped, since its stale "latched" would undo that unlock."""
        async with self._lock:
            if actuations is not None and actuations != self.actuations:
                return CommandResult.success(recorded=0, stale=True)
            try:
                result = self._apply_snapshot(snapshot)
                await self._confirm_latched(snapshot)
                return result
            except _EXPECTED as error:
                return CommandResult.from_error(error)

    # --- dispatch ---------------------------------------------------------------------------------------------

    async def _dispatch(self, command: Command) -> CommandResult:
        if isinstance(command, Login):
            return await self._login(command)
        if isinstance(command, Tick):
            return self._tick()
        if not self.session.is_active:
            return CommandResult.refuse("session.not_active", "nobody is logged in at this cabinet")
        self.session.activity(now=self.clock.now())
        if isinstance(command, Logout):
            return self._logout()
        if isinstance(command, StartPull):
            return self._start_pull(command)
        if isinstance(command, AccountFor):
            return await self._account_for(command)
        if isinstance(command, ServiceCompartment):
            return await self._service(command)
        handler = self._handlers.get(type(command))
        if handler is not None:
            return await handler(command)
        pull = self.pull
        if pull is None or pull.is_finished:
            return CommandResult.refuse("engine.no_workflow", "no pull is in progress; start one first")
        if isinstance(command, SelectItem):
            return await self._select_item(pull, command)
        if isinstance(command, EnterCount):
            decision = pull.count_entered(now=self.clock.now(), count=command.count)
            return await self._after_step(pull, decision)
        if isinstance(command, ScanRemoved):
            return await self._scan_removed(pull, command)
        if isinstance(command, Take):
            return self._take(pull, command)
        if isinstance(command, CancelPull):
            decision = pull.cancel(now=self.clock.now())
            return self._result(decision, self._commit(decision.outcomes), pull)
        raise TypeError(f"unknown command {command!r}")

    # --- session ----------------------------------------------------------------------------------------------

    async def _login(self, command: Login) -> CommandResult:
        now = self.clock.now()
        if self.session.is_active or self.session.lockout_of(command.user_id).is_locked(now):
            # The machine refuses without looking at the secrets: no argon2 time spent on a refusal.
            decision = self.session.login(now=now, credentials=Credentials(command.user_id, None))
            return self._session_result(decision, command.user_id)
        credentials = await self.present_credentials(command.user_id, pin=command.pin, badge=command.badge)
        decision = self.session.login(now=self.clock.now(), credentials=credentials)
        return self._session_result(decision, command.user_id)

    async def present_credentials(self, user_id: str, *, pin: str | None, badge: str | None) -> Credentials:
        """Check what a person presented at the cabinet (login or witness sign-off) against the stored hashes."""
        with self.db.read() as session:
            secrets = state.user_secrets(session, user_id)
            found = repo.get_user(session, user_id)
        user = found[0] if found is not None else None
        verified: set[Factor] = set()
        failed: set[Factor] = set()
        for factor, presented in ((Factor.PIN, pin), (Factor.BADGE, badge)):
            if presented is None:
                continue
            stored = None if secrets is None else (secrets[0] if factor is Factor.PIN else secrets[1])
            ok = await self._verify(stored, presented)
            (verified if ok else failed).add(factor)
        return Credentials(user_id, user, frozenset(verified), frozenset(failed))

    def judge_package(
        self, reading: PackageReading, medication: Medication, *, pocket_id: str | None = None
    ) -> PackageCheck:
        """One package's verdict for ``medication`` today (expiry, short-dated warning, quarantine of its lot):
        the same judgement for restock, the removed-package check and the robot's stock bottle."""
        with self.db.read() as session:
            return check_package(
                session,
                reading,
                medication,
                today=self.clock.now().date(),
                short_dated_warning=self.settings.short_dated_warning,
                pocket_id=pocket_id,
            )

    def unaccounted_refusal(self, **context: Any) -> CommandResult | None:
        """The refusal every unlock gets while a compartment is open or breached and not yet accounted for."""
        pending = self.compartments.unaccounted()
        if not pending or not self.settings.block_unlocks_while_unaccounted:
            return None
        return CommandResult.refuse(
            "compartment.unaccounted",
            f"close and account for {', '.join(pending)} before anything else is opened",
            compartments=pending,
            **context,
        )

    async def _verify(self, stored: str | None, presented: str) -> bool:
        """argon2 in a worker thread: a login never stalls the loop (sensor polling, the watchdog heartbeat).
        An unknown user or a missing badge still costs one verification, so timing does not reveal which."""
        if stored is None:
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(self.hasher.hash_secret, uuid.uuid4().hex)
            await asyncio.to_thread(self.hasher.verify, self._dummy_hash, presented)
            return False
        return await asyncio.to_thread(self.hasher.verify, stored, presented)

    def _session_result(self, decision: Decision, user_id: str) -> CommandResult:
        lockout = self.session.lockouts.get(user_id)
        saved = None if lockout is None else state.LockoutState(lockout.failures, lockout.locked_at, lockout.until)
        self._commit(decision.outcomes, lockout=(user_id, saved))
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, failures=lockout.failures if lockout else 0)
        return CommandResult.success(user_id=user_id, session_id=self.session.session_id)

    def _logout(self) -> CommandResult:
        decision = self.session.logout(now=self.clock.now())
        self._commit(decision.outcomes)
        return self._result(decision, [], None)

    def _tick(self) -> CommandResult:
        now = self.clock.now()
        outcomes: list[Outcome] = list(self.session.tick(now=now).outcomes)
        for compartment in self.compartments.by_id.values():
            outcomes.extend(compartment.tick(now=now).outcomes)
        recorded = len(self._commit(outcomes)) + self.clinical.tick(now)  # waste and discrepancy escalation
        return CommandResult.success(session=self.session.state.value, recorded=recorded)

    # --- pull -------------------------------------------------------------------------------------------------

    def _start_pull(self, command: StartPull) -> CommandResult:
        with self.db.read() as session:
            known = state.patient_exists(session, command.patient_id)
            admitted = known and state.patient_is_admitted(session, command.patient_id)
        if not known:
            return CommandResult.refuse(
                "engine.unknown_patient", f"no patient {command.patient_id}", patient=command.patient_id
            )
        if not admitted:
            return CommandResult.refuse(
                "engine.patient_not_admitted",
                f"{command.patient_id} has no active admission (discharged or cancelled): no removal for them",
                patient=command.patient_id,
            )
        user = self.session.user
        assert user is not None
        pull = self.pulls.start(f"PULL-{uuid.uuid4().hex[:12]}", actor=user, session_id=self.session.session_id)
        decision = pull.select_patient(now=self.clock.now(), patient_id=command.patient_id)
        if decision.refused:
            self.pulls.detach(pull)
            del self.pulls.by_id[pull.id]
            return self._result(decision, [], None)
        self.pull = pull
        return self._result(decision, [], pull)

    async def _select_item(self, pull: Pull, command: SelectItem) -> CommandResult:
        with self.db.read() as session:
            order = None
            item_id = command.item_id
            if command.order_id is not None:
                order = state.get_order(session, command.order_id)
                if order is None:
                    return CommandResult.refuse(
                        "engine.unknown_order", f"no order {command.order_id}", order=command.order_id
                    )
                item_id = order.item_id
            if item_id is None:
                return CommandResult.refuse("engine.item_not_stocked", "choose an order or an item")
            medication = state.get_medication(session, item_id)
            allergies = state.patient_allergies(session, pull.patient_id) if pull.patient_id else ()
            pockets = [
                s
                for s in self.slots.values()
                if s.item_id == item_id and (command.pocket_id is None or s.pocket_id == command.pocket_id)
            ]
            if medication is None or not pockets:
                return CommandResult.refuse("engine.item_not_stocked", f"this cabinet holds no {item_id}", item=item_id)
            today = self.clock.now().date()
            stocked = [s for s in pockets if state.usable_lots(session, s.pocket_id, today)]
            slot = (stocked or pockets)[0]
            on_hand = state.pocket_on_hand(session, slot.pocket_id)
            if not stocked and on_hand > 0:  # everything there is expired or quarantined
                return CommandResult.refuse(
                    "quarantine.no_usable_stock",
                    f"pocket {slot.pocket_id} holds only expired or quarantined {medication.display_name}",
                    pocket=slot.pocket_id,
                )
        blocked = medication.is_controlled and self.clinical.discrepancy_blocks(pull.actor.id, slot.pocket_id)
        item = PullItem(
            medication=medication,
            pocket_id=slot.pocket_id,
            compartment_id=self.unlock_chain[slot.pocket_id][-1],
            expected_on_hand=on_hand,
            profiled_area=self.profiled,
            order=order,
            order_max_units=units_for_dose(order, medication) if order is not None else None,
            override_reason=command.override_reason,
            critical_override_mode=self.critical_override_mode,
            open_cs_discrepancy=blocked,
            allergy_conflicts=allergy_conflicts(allergies, medication),
            allergies_acknowledged=command.acknowledge_allergies,
        )
        decision = pull.select_item(now=self.clock.now(), item=item)
        return await self._after_step(pull, decision)

    async def _after_step(self, pull: Pull, decision: Decision) -> CommandResult:
        sealed = self._commit(decision.outcomes)
        if decision.accepted and pull.state is PullState.READY:
            return await self._unlock(pull, sealed)
        return self._result(decision, sealed, pull)

    async def _scan_removed(self, pull: Pull, command: ScanRemoved) -> CommandResult:
        """Read the removed package from the scanner and let the pull judge it (a refusal is recorded)."""
        if pull.item is None or pull.state is not PullState.OPEN:
            decision = pull.package_scanned(now=self.clock.now(), scan=None)
            return self._result(decision, [], pull)
        read = await self.packages.read(by_camera=command.by_camera, timeout_s=command.timeout_s)
        if isinstance(read, CommandResult):
            return read
        check = self.judge_package(read.reading, pull.item.medication, pocket_id=pull.item.pocket_id)
        decision = pull.package_scanned(now=self.clock.now(), scan=check.package(), quarantined=check.quarantined)
        result = self._result(decision, self._commit(decision.outcomes), pull)
        return replace(result, data={**result.data, "scan": {**check.view(), "read_by": read.source}})

    def _take(self, pull: Pull, command: Take) -> CommandResult:
        now = self.clock.now()
        item = pull.item
        lot_number = None
        if item is not None and isinstance(command.quantity, int) and command.quantity > 0:
            # Validate before anything moves: the non-expired lots must hold what is being taken.
            with self.db.read() as session:
                lots = state.usable_lots(session, item.pocket_id, now.date())
            plan = _plan(lots, command.quantity, pull.scanned.lot_number if pull.scanned else None)
            if plan is None:
                available = sum(lot.quantity for lot in lots)
                return CommandResult.refuse(
                    "inventory.negative_quantity",
                    f"pocket {item.pocket_id} holds {available} usable; cannot take {command.quantity}",
                    pocket=item.pocket_id,
                    on_hand=available,
                    change=-command.quantity,
                )
            lot_number = plan[0][0].lot_number
        decision = pull.take(now=now, quantity=command.quantity, lot_number=lot_number)
        return self._result(decision, self._commit_step(decision.outcomes), pull)

    async def _unlock(self, pull: Pull, sealed: list[SealedEntry]) -> CommandResult:
        assert pull.item is not None
        chain = [self.compartments[cid] for cid in self.unlock_chain[pull.item.pocket_id]]
        refusal = self.unaccounted_refusal(pull_id=pull.id)
        if refusal is not None:
            return refusal
        for compartment in chain:
            if compartment.state is not C.LOCKED:
                return CommandResult.refuse(
                    "fsm.event_not_allowed",
                    f"{compartment.id} is {compartment.state.value}; it cannot be unlocked now",
                    compartment=compartment.id,
                    pull_id=pull.id,
                )
        now = self.clock.now()
        decision = pull.unlock_requested(now=now, session=self.session)
        if decision.refused:
            return self._result(decision, sealed, pull)
        for compartment in chain:
            grant = UnlockGrant(self.session.session_id, pull.actor.id, compartment.id, "pull", pull.id)
            requested = compartment.unlock_requested(now=now, session=self.session, grant=grant)
            if requested.refused:
                failed = pull.unlock_failed(now=now)
                self._release_unlocked(chain)
                return self._result(requested, sealed + self._commit(failed.outcomes), pull)
            error = await self._actuate(compartment)
            if error is not None:
                cause = _failure_cause(error)
                outcomes = [*compartment.unlock_failed(now=self.clock.now(), cause=cause).outcomes]
                outcomes.extend(pull.unlock_failed(now=self.clock.now()).outcomes)
                await self._relock(chain)
                sealed += self._commit(outcomes)
                return CommandResult.from_error(
                    error, pull_id=pull.id, state=pull.state.value, compartment=compartment.state.value
                )
            compartment.unlock_confirmed(now=self.clock.now())
        await self._guide(pull.item.pocket_id)
        return self._result(decision, sealed, pull)

    async def _actuate(self, compartment: Compartment) -> ControllerError | None:
        address = self.address[compartment.id]
        try:
            if address.pocket is None:
                await self._io(self.board.ensure_unlocked(address.drawer, self.hold_s))
            else:
                await self._io(self.board.ensure_lid_unlocked(address.drawer, address.pocket, self.hold_s))
        except (DeviceFaultError, CommunicationError) as error:
            return error
        except ValueError as error:  # the board has no such latch: the layout and the hardware disagree
            return ConfigurationError(
                "config.invalid",
                f"{compartment.id} maps to {address}, which the I/O board does not have: {error}",
                compartment=compartment.id,
            )
        finally:
            self.actuations += 1
        return None

    async def _lock_compartment(self, compartment: Compartment) -> ControllerError | None:
        address = self.address[compartment.id]
        try:
            if address.pocket is None:
                await self._io(self.board.ensure_locked(address.drawer))
            else:
                await self._io(self.board.ensure_lid_locked(address.drawer, address.pocket))
        except (DeviceFaultError, CommunicationError) as error:
            return error
        finally:
            self.actuations += 1
        return None

    async def _relock(self, chain: Sequence[Compartment]) -> None:
        """After a failed unlock further in, lock again what was already released (the safe direction)."""
        for compartment in chain:
            # One that does not lock stays unlocked until its hold runs out; the next snapshot sees it latch.
            if compartment.state is C.UNLOCKED and await self._lock_compartment(compartment) is None:
                compartment.latched(now=self.clock.now())

    async def _confirm_latched(self, snapshot: BoardSnapshot) -> None:
        """A compartment shut after use must latch. Where the snapshot says it has not, command the lock; a board
        that cannot confirm it puts the compartment at fault (an alarm entry), and it is not unlocked again until
        serviced."""
        for compartment in self.compartments.by_id.values():
            if compartment.state is not C.CLOSED or self._reading(snapshot, compartment.id) != (False, False):
                continue
            error = await self._lock_compartment(compartment)
            if error is None:
                compartment.latched(now=self.clock.now())
            elif error.code == "device.lock_not_engaged":
                self._commit(compartment.latch_failed(now=self.clock.now()).outcomes)

    def _release_unlocked(self, chain: Sequence[Compartment]) -> None:
        for compartment in chain:
            if compartment.state is C.UNLOCKING:
                compartment.unlock_failed(now=self.clock.now(), cause=UnlockFailure.NO_RESPONSE)

    async def _guide(self, pocket_id: str) -> None:
        """Light the pocket (best effort: a guiding light that fails never blocks a removal)."""
        slot = self.slots[pocket_id]
        with contextlib.suppress(ControllerError, ValueError):
            await self._io(self.board.set_light(slot.drawer_position, slot.position, Colour.GREEN))

    async def _account_for(self, command: AccountFor) -> CommandResult:
        compartment = self.compartments.by_id.get(command.compartment_id)
        if compartment is None:
            return _unknown_compartment(command.compartment_id)
        user = self.session.user
        assert user is not None
        decision = compartment.accounted_for(now=self.clock.now(), user=user, counted=command.counted)
        outcomes = list(decision.outcomes)
        if decision.accepted and command.counted is not None:
            outcomes.extend(self._count_mismatch(compartment, user.id, command.counted))
        sealed = self._commit(outcomes)
        if decision.accepted:
            with contextlib.suppress(*_EXPECTED):
                self._apply_snapshot(await self._io(self.board.snapshot()))  # it latches if it is shut
        result = self._result(decision, sealed, None)
        return replace(result, data={**result.data, "compartment": compartment.state.value})

    def _count_mismatch(self, compartment: Compartment, user_id: str, counted: int) -> list[Outcome]:
        """The count given when accounting for a breached compartment, against the stock behind it: a difference
        is a discrepancy (blind: the expected number is only in the entry). A drawer holding several stocked
        pockets cannot be judged from one number; it is counted pocket by pocket with a count (``StartCount``)."""
        pockets = (
            [compartment.pocket_id]
            if compartment.pocket_id is not None
            else [p for p, chain in self.unlock_chain.items() if chain == (compartment.id,) and self.slots[p].item_id]
        )
        if len(pockets) != 1:
            return []
        pocket_id = pockets[0]
        with self.db.read() as session:
            expected = state.pocket_on_hand(session, pocket_id)
        if expected == counted:
            return []
        return [
            Outcome(
                OutcomeKind.DISCREPANCY_RAISED,
                self.clock.now(),
                actor_id=user_id,
                item_id=self.slots[pocket_id].item_id,
                pocket_id=pocket_id,
                quantity_expected=expected,
                quantity_actual=counted,
                reason_code="accounted_count_mismatch",
                details={"compartment_id": compartment.id},
            )
        ]

    async def _service(self, command: ServiceCompartment) -> CommandResult:
        compartment = self.compartments.by_id.get(command.compartment_id)
        if compartment is None:
            return _unknown_compartment(command.compartment_id)
        user = self.session.user
        assert user is not None
        decision = compartment.service_reset(now=self.clock.now(), user=user)
        sealed = self._commit(decision.outcomes)
        if decision.accepted:
            with contextlib.suppress(*_EXPECTED):
                snapshot = await self._io(self.board.snapshot())
                self._apply_snapshot(snapshot)  # shut and latched: locked again
                await self._confirm_latched(snapshot)  # shut but not latched: the lock is commanded and checked
        result = self._result(decision, sealed, None)
        return replace(result, data={**result.data, "compartment": compartment.state.value})

    # --- sensors ----------------------------------------------------------------------------------------------

    def _reading(self, snapshot: BoardSnapshot, compartment_id: str) -> tuple[bool, bool]:
        """(open, latched) of a compartment in ``snapshot``."""
        address = self.address[compartment_id]
        drawer = snapshot.drawer(address.drawer)
        if address.pocket is None:
            return drawer.open_sensor or not drawer.closed_sensor, not drawer.lock_released
        return address.pocket in drawer.lids_open, address.pocket not in drawer.lids_released

    def _apply_snapshot(self, snapshot: BoardSnapshot) -> CommandResult:
        now = self.clock.now()
        outcomes: list[Outcome] = []
        for compartment in self.compartments.by_id.values():
            if compartment.state is C.UNKNOWN:
                continue  # not restored yet: restore() reads the sensors first
            address = self.address[compartment.id]
            drawer = snapshot.drawer(address.drawer)
            if address.pocket is None:
                if drawer.sensor_disagreement:
                    continue  # cannot tell; the board reports it as a fault of its own
                is_open, is_shut, latched = drawer.is_open, drawer.is_closed, not drawer.lock_released
            else:
                is_open = address.pocket in drawer.lids_open
                is_shut, latched = not is_open, address.pocket not in drawer.lids_released
            outcomes.extend(self._sense(compartment, is_open, is_shut, latched, now))
        sealed = self._commit_step(outcomes)
        return CommandResult.success(recorded=len(sealed))

    def _sense(self, compartment: Compartment, is_open: bool, is_shut: bool, latched: bool, now: Any) -> list[Outcome]:
        outcomes: list[Outcome] = []
        pull = self.pull
        ours = (
            pull is not None
            and pull.item is not None
            and pull.item.compartment_id == compartment.id
            and not pull.is_finished
        )
        if is_open and not compartment.is_physically_open:
            decision = compartment.opened(now=now, session=self.session)
            outcomes.extend(decision.outcomes)
            if ours and compartment.state is C.OPEN and pull is not None and pull.state is PullState.UNLOCKING:
                outcomes.extend(pull.opened(now=now).outcomes)
        elif is_shut and compartment.is_physically_open:
            outcomes.extend(compartment.closed(now=now).outcomes)
            if ours and pull is not None and pull.state in (PullState.OPEN, PullState.TAKEN):
                outcomes.extend(pull.closed(now=now).outcomes)
        if is_shut and latched and compartment.state in (C.CLOSED, C.UNLOCKED):
            outcomes.extend(compartment.latched(now=now).outcomes)
            if ours and pull is not None and pull.state is PullState.UNLOCKING:
                # The hold ran out before anyone opened it: nothing was removed.
                outcomes.extend(pull.unlock_failed(now=now).outcomes)
        return outcomes

    # --- recording --------------------------------------------------------------------------------------------

    def _commit_step(self, outcomes: Sequence[Outcome]) -> list[SealedEntry]:
        """Record outcomes that may include a removal. If the store refuses the stock change (it would go
        negative: the pocket held less than the machine was told), nothing of it is written; the other outcomes
        are, with a discrepancy saying a removal could not be recorded, so no unit leaves without an entry."""
        try:
            return self._commit(outcomes)
        except SafetyError as error:
            removals = [o for o in outcomes if o.kind is OutcomeKind.DOSE_REMOVED]
            if not removals:
                raise
            rest = [o for o in outcomes if o.kind not in (OutcomeKind.DOSE_REMOVED, OutcomeKind.OVERRIDE)]
            for removal in removals:
                rest.append(
                    replace(
                        removal,
                        kind=OutcomeKind.DISCREPANCY_RAISED,
                        quantity_change=None,
                        quantity_expected=removal.quantity_actual,
                        quantity_actual=0,
                        reason_code="removal_not_recorded",
                        details={**removal.details, "refused": error.code, "refusal": error.detail},
                    )
                )
            self._commit(rest)
            raise

    def _commit(
        self, outcomes: Sequence[Outcome], *, lockout: tuple[str, state.LockoutState | None] | None = None
    ) -> list[SealedEntry]:
        if not outcomes and lockout is None:
            return []
        sealed: list[SealedEntry] = []
        with self.db.write() as session:
            for outcome in outcomes:
                sealed.extend(self._record(session, outcome))
            if lockout is not None:
                state.save_lockout(session, *lockout)
        return sealed

    def _record(self, session: DbSession, outcome: Outcome) -> list[SealedEntry]:
        record = outcome.to_record()
        if outcome.kind is OutcomeKind.DOSE_REMOVED and outcome.quantity_actual:
            assert outcome.pocket_id is not None
            lots = state.usable_lots(session, outcome.pocket_id, self.clock.now().date())
            scanned = outcome.details.get("scanned")
            plan = _plan(lots, outcome.quantity_actual, scanned.get("lot") if isinstance(scanned, dict) else None)
            if plan is None:
                raise SafetyError(
                    "inventory.negative_quantity",
                    f"pocket {outcome.pocket_id} holds {sum(lot.quantity for lot in lots)} usable units; "
                    f"cannot take {outcome.quantity_actual}",
                    pocket=outcome.pocket_id,
                )
            entries = []
            for index, (lot, units) in enumerate(plan, start=1):
                part = replace(
                    record,
                    lot_number=lot.lot_number,
                    quantity_actual=units,
                    details={**record.details, "lot_part": index, "lot_parts": len(plan)},
                )
                entries.append(
                    self.inventory.apply(session, StockChange(outcome.pocket_id, lot.lot_number, -units), part)
                )
            return entries
        entry = self.ledger.append(session, record)
        if outcome.kind is OutcomeKind.DISCREPANCY_RAISED and outcome.pocket_id is not None:
            medication = state.get_medication(session, outcome.item_id) if outcome.item_id else None
            state.add_discrepancy(
                session,
                cabinet_id=self.cabinet_id,
                pocket_id=outcome.pocket_id,
                item_id=outcome.item_id,
                expected=outcome.quantity_expected or 0,
                counted=outcome.quantity_actual or 0,
                raised_by=outcome.actor_id or "",
                raised_at=outcome.at,
                deadline=discrepancy_deadline(self.policy, outcome.at),
                ledger_seq=entry.seq,
                controlled=medication.is_controlled if medication else False,
            )
        elif outcome.kind is OutcomeKind.OVERRIDE:
            state.queue_override_review(
                session,
                cabinet_id=self.cabinet_id,
                ledger_seq=entry.seq,
                user_id=outcome.actor_id or "",
                patient_id=outcome.patient_id,
                item_id=outcome.item_id,
                reason_code=outcome.reason_code,
                queued_at=outcome.at,
            )
        return [entry]

    # --- helpers ----------------------------------------------------------------------------------------------

    async def _io(self, call: Awaitable[T]) -> T:
        """Every hardware await is bounded; a board that does not answer in time is a communication fault."""
        try:
            async with asyncio.timeout(self.io_timeout_s):
                return await call
        except TimeoutError as exc:
            raise CommunicationError("comm.timeout", f"I/O board gave no answer in {self.io_timeout_s} s") from exc

    def _result(self, decision: Decision, sealed: Sequence[SealedEntry], pull: Pull | None) -> CommandResult:
        data: dict[str, Any] = {"state": decision.state.value, "ledger_seqs": [e.seq for e in sealed]}
        if pull is not None:
            data["pull"] = pull.view()
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, **data)
        return CommandResult(True, data)


def _unknown_compartment(compartment_id: str) -> CommandResult:
    return CommandResult.refuse(
        "engine.unknown_compartment", f"no compartment {compartment_id}", compartment=compartment_id
    )


def _plan(
    lots: list[state.LotStock], quantity: int, scanned_lot: str | None
) -> list[tuple[state.LotStock, int]] | None:
    """Which lots a removal comes from: the scanned package's lot when it holds enough, otherwise FEFO."""
    if scanned_lot is not None:
        chosen = [lot for lot in lots if lot.lot_number == scanned_lot and lot.quantity >= quantity]
        if chosen:
            return [(chosen[0], quantity)]
    return state.fefo_split(lots, quantity)


def _failure_cause(error: ControllerError) -> UnlockFailure:
    if error.code == "device.drawer_jammed":
        return UnlockFailure.JAMMED
    if isinstance(error, DeviceFaultError):
        return UnlockFailure.LOCK_FAULT
    return UnlockFailure.NO_RESPONSE
