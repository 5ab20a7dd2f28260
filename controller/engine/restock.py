"""Restock, load and unload of one pocket by a technician, end to end: pick list from par levels, the pocket unlocked
through the engine's unlock chain, a blind count-back, each package scanned over the wire and checked
(``package_scan``), and one stock entry per lot through ``InventoryStore.apply`` in the same transaction.

Responsible for: the pick list (pockets at or below min, refilled to par, never above max; expired and
quarantined units do not count towards par but do take up room); starting a ``Restock`` machine on a line and
unlocking its pocket (the compartments then follow the sensors through the engine's snapshots, as for a pull);
reading the scanner; refusing a quarantined lot before the machine sees it; and recording every outcome (the
machine refuses wrong items, expired lots and duplicate serials, warns short-dated ones and records the custody
source of controlled stock). The witness of a controlled restock when the policy lists ``CONTROLLED_RESTOCK``:
the machine waits in ``awaiting_witness`` with nothing stocked yet; ``SignRestockWitness`` (or ``BeginWitness``
of kind ``restock`` then ``SignWitness``) goes through the cabinet's one witness desk, so the witness's PIN or
badge is checked by ``CabinetEngine.present_credentials`` and judged by ``Session.witness_sign``
(``policies.check_witness``: not the actor, holds the witness privilege, usable), a wrong PIN counts toward the
witness's own lockout, and the signature goes on every lot's entry next to the custody source. Also the two
helpers the other pharmacy modules share: ``unlock_pocket`` and ``commit`` (stock outcomes through the inventory
store, everything else through the engine's recorder).

Not responsible for: who may witness (the session and the policies), or the camera path (issue 5).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from controller.engine.commands import CommandResult
from controller.engine.commands_clinical import SignWitness, WitnessFor
from controller.engine.commands_pharmacy import (
    CancelRestock,
    CountBack,
    FinishRestock,
    ScanPackage,
    ShowPickList,
    SignRestockWitness,
    StartRestock,
)
from controller.errors import CommunicationError, DeviceFaultError
from controller.fsm.base import Outcome, OutcomeKind, WitnessSignature
from controller.fsm.compartment import Compartment, CompartmentState, UnlockFailure, UnlockGrant
from controller.fsm.workflows.restock import (
    RESTOCK_WITNESS,
    PackageScan,
    PickLine,
    Restock,
    RestockKind,
    Restocks,
    RestockState,
    ScanVerdict,
)
from controller.hardware.scanner.interface import Scanner
from controller.store import engine_state as state
from controller.store.inventory import StockChange, list_pockets
from controller.store.ledger import SealedEntry

if TYPE_CHECKING:
    from controller.engine.cabinet import CabinetEngine
    from controller.engine.witness import WitnessDesk

STOCK_KINDS = frozenset({OutcomeKind.STOCK_RESTOCKED, OutcomeKind.STOCK_LOADED, OutcomeKind.STOCK_UNLOADED})


# --- shared helpers ------------------------------------------------------------------------------------------------


def commit(engine: CabinetEngine, outcomes: Sequence[Outcome]) -> list[SealedEntry]:
    """One transaction: stock outcomes change the lot and append their entry together (``InventoryStore.apply``);
    every other outcome goes through the engine's recorder (discrepancy rows and all)."""
    if not outcomes:
        return []
    sealed: list[SealedEntry] = []
    with engine.db.write() as session:
        for outcome in outcomes:
            if outcome.kind in STOCK_KINDS and outcome.quantity_change:
                assert outcome.pocket_id is not None and outcome.lot_number is not None
                expiry = outcome.details.get("expiry")
                change = StockChange(
                    outcome.pocket_id,
                    outcome.lot_number,
                    outcome.quantity_change,
                    date.fromisoformat(expiry) if isinstance(expiry, str) else None,
                )
                sealed.append(engine.inventory.apply(session, change, outcome.to_record()))
            else:
                sealed.extend(engine._record(session, outcome))
    return sealed


def released_for(compartment: Compartment, session_id: int, workflow_id: str) -> bool:
    """Already unlocked (or open) for this very workflow in this session: the drawer of the previous pocket of the
    same count, or of the previous attempt of the same restock."""
    grant = compartment.grant
    return (
        compartment.state in (CompartmentState.UNLOCKED, CompartmentState.OPEN)
        and grant is not None
        and grant.workflow_id == workflow_id
        and grant.session_id == session_id
    )


async def unlock_pocket(engine: CabinetEngine, pocket_id: str, purpose: str, workflow_id: str) -> CommandResult:
    """Unlock the compartments guarding ``pocket_id``, outermost first, for the logged-in user (the engine's unlock
    chain and actuation; a failure further in locks again what was released). The person then opens and closes
    them; ``CabinetEngine.handle_snapshot`` follows that as it does for a pull. A compartment still released for
    another workflow is locked first and released again under this one's grant, so every opening names the
    workflow it was for."""
    chain = [engine.compartments[cid] for cid in engine.unlock_chain[pocket_id]]
    refusal = engine.unaccounted_refusal()
    if refusal is not None:
        return refusal
    user = engine.session.user
    assert user is not None
    session_id = engine.session.session_id
    await engine._relock([c for c in chain if not released_for(c, session_id, workflow_id)])
    now = engine.clock.now()
    for compartment in chain:
        if released_for(compartment, session_id, workflow_id):
            continue
        if compartment.state is not CompartmentState.LOCKED:
            return CommandResult.refuse(
                "fsm.event_not_allowed",
                f"{compartment.id} is {compartment.state.value}; it cannot be unlocked now",
                compartment=compartment.id,
            )
    for compartment in chain:
        if released_for(compartment, session_id, workflow_id):
            continue
        grant = UnlockGrant(session_id, user.id, compartment.id, purpose, workflow_id)
        requested = compartment.unlock_requested(now=now, session=engine.session, grant=grant)
        if requested.refused:
            engine._release_unlocked(chain)
            assert requested.refusal is not None
            return CommandResult.refused(requested.refusal)
        error = await engine._actuate(compartment)
        if error is not None:
            cause = UnlockFailure.JAMMED if error.code == "device.drawer_jammed" else UnlockFailure.LOCK_FAULT
            if not isinstance(error, DeviceFaultError):
                cause = UnlockFailure.NO_RESPONSE
            outcomes = list(compartment.unlock_failed(now=engine.clock.now(), cause=cause).outcomes)
            await engine._relock(chain)
            engine._commit(outcomes)
            return CommandResult.from_error(error, compartment=compartment.state.value)
        compartment.unlock_confirmed(now=engine.clock.now())
    await engine._guide(pocket_id)
    return CommandResult.success(unlocked=[c.id for c in chain])


def pick_list(engine: CabinetEngine) -> list[dict[str, Any]]:
    """Pockets at or below their minimum (usable units only), with the quantity that refills them to par without
    going above max (counting every unit physically there)."""
    today = engine.clock.now().date()
    lines: list[dict[str, Any]] = []
    with engine.db.read() as session:
        for pocket in list_pockets(session, engine.cabinet_id):
            if pocket.item_id is None or pocket.drawer_kind == "return_bin":
                continue
            usable = sum(lot.quantity for lot in state.usable_lots(session, pocket.pocket_id, today))
            if usable > pocket.min:
                continue
            quantity = min(pocket.par - usable, pocket.max - pocket.quantity)
            if quantity <= 0:
                continue
            lines.append(
                {
                    "pocket_id": pocket.pocket_id,
                    "item_id": pocket.item_id,
                    "item_name": pocket.item_name,
                    "quantity": quantity,
                    "controlled": bool(pocket.dea_schedule),
                }
            )
    return lines


async def read_scan(scanner: Scanner, timeout_s: float) -> Any:
    """The next scan, bounded (the driver raises ``comm.timeout``; this is the belt to its braces)."""
    try:
        async with asyncio.timeout(timeout_s + 1.0):
            return await scanner.next_scan(timeout_s)
    except TimeoutError as exc:
        raise CommunicationError("comm.timeout", f"no scan within {timeout_s} s") from exc


def device_missing(what: str) -> CommandResult:
    return CommandResult.refuse("engine.device_missing", f"this cabinet has no {what} connected", device=what)


# --- the workflow --------------------------------------------------------------------------------------------------


class RestockWorkflow:
    """Restock / load / unload commands of one engine; one pocket at a time."""

    def __init__(self, engine: CabinetEngine, scanner: Scanner | None) -> None:
        self.engine = engine
        self.scanner = scanner
        self.restocks = Restocks(engine.policy, engine.settings)
        self.current: Restock | None = None

    def register(self) -> None:
        e = self.engine
        e.register(ShowPickList, self.show_pick_list)
        e.register(StartRestock, self.start)
        e.register(CountBack, self.count_back)
        e.register(ScanPackage, self.scan)
        e.register(FinishRestock, self.finish)
        e.register(CancelRestock, self.cancel)
        e.register(SignRestockWitness, self.sign_witness)

    def _result(self, restock: Restock, ok: bool, sealed: Sequence[SealedEntry], refusal: Any = None,
                **extra: Any) -> CommandResult:  # fmt: skip
        data = {"restock": restock.view(), "state": restock.state.value, "ledger_seqs": [s.seq for s in sealed]}
        data.update(extra)
        if ok:
            return CommandResult(True, data)
        return CommandResult.refused(refusal, **data)

    async def show_pick_list(self, command: ShowPickList) -> CommandResult:
        return CommandResult.success(lines=pick_list(self.engine))

    async def start(self, command: StartRestock) -> CommandResult:
        e = self.engine
        if self.current is not None and self.current.state not in (RestockState.DONE, RestockState.CANCELLED):
            return CommandResult.refuse(
                "fsm.event_not_allowed", f"restock {self.current.id} is still in progress", restock=self.current.id
            )
        slot = e.slots.get(command.pocket_id)
        if slot is None or slot.item_id is None:
            return CommandResult.refuse(
                "inventory.unknown_pocket", f"no stocked pocket {command.pocket_id}", pocket=command.pocket_id
            )
        with e.db.read() as session:
            medication = state.get_medication(session, slot.item_id)
            on_hand = state.pocket_on_hand(session, slot.pocket_id)
        assert medication is not None
        quantity = command.quantity
        if quantity is None:
            suggested = [line for line in pick_list(e) if line["pocket_id"] == slot.pocket_id]
            quantity = suggested[0]["quantity"] if suggested else 0
        line = PickLine(
            kind=command.kind,
            medication=medication,
            pocket_id=slot.pocket_id,
            compartment_id=e.unlock_chain[slot.pocket_id][-1],
            expected_on_hand=on_hand,
            quantity=quantity,
            source=command.source,
        )
        user = e.session.user
        assert user is not None
        restock = self.restocks.start(f"RST-{uuid.uuid4().hex[:12]}", actor=user, line=line)
        decision = restock.begin(now=e.clock.now())
        sealed = commit(e, decision.outcomes)
        if decision.refused:
            return self._result(restock, False, sealed, decision.refusal)
        unlocked = await unlock_pocket(e, slot.pocket_id, command.kind.value, restock.id)
        if not unlocked.ok:
            restock.cancel(now=e.clock.now())
            return unlocked
        self.current = restock
        return self._result(restock, True, sealed, unlocked=unlocked.data["unlocked"])

    def _active(self) -> Restock | CommandResult:
        if self.current is None or self.current.state in (RestockState.DONE, RestockState.CANCELLED):
            return CommandResult.refuse("engine.no_workflow", "no restock is in progress; start one first")
        return self.current

    async def count_back(self, command: CountBack) -> CommandResult:
        restock = self._active()
        if isinstance(restock, CommandResult):
            return restock
        decision = restock.count_entered(now=self.engine.clock.now(), count=command.count)
        sealed = commit(self.engine, decision.outcomes)
        return self._result(restock, decision.accepted, sealed, decision.refusal)

    async def scan(self, command: ScanPackage) -> CommandResult:
        restock = self._active()
        if isinstance(restock, CommandResult):
            return restock
        if restock.state is not RestockState.SCANNING:
            decision = restock.scanned(now=self.engine.clock.now(), scan=None)  # type: ignore[arg-type]
            return self._result(restock, False, [], decision.refusal)
        e = self.engine
        read = await e.packages.read(by_camera=command.by_camera, timeout_s=command.timeout_s)
        if isinstance(read, CommandResult):
            return read
        now = e.clock.now()
        check = e.judge_package(read.reading, restock.line.medication, pocket_id=restock.line.pocket_id)
        if check.quarantined and restock.line.kind is not RestockKind.UNLOAD:
            refused = Outcome(
                OutcomeKind.SCAN_REFUSED,
                now,
                actor_id=restock.actor.id,
                item_id=restock.line.medication.id,
                pocket_id=restock.line.pocket_id,
                lot_number=check.reading.lot_number,
                reason_code="lot_quarantined",
                details={"restock_id": restock.id, "ndc": check.reading.ndc10},
            )
            sealed = commit(e, [refused])
            result = CommandResult.refuse(
                "quarantine.lot_quarantined",
                f"lot {check.reading.lot_number} of {restock.line.medication.display_name} is quarantined",
                lot=check.reading.lot_number,
                item=restock.line.medication.id,
            )
            return CommandResult(False, {"scan": check.view(), "ledger_seqs": [s.seq for s in sealed]},
                                 result.code, result.detail, result.context)  # fmt: skip
        beyond = self._unload_beyond_lot(restock, check.package(command.units))
        if beyond is not None:
            return beyond
        decision = restock.scanned(now=now, scan=check.package(command.units))
        sealed = commit(e, decision.outcomes)
        return self._result(
            restock, decision.accepted, sealed, decision.refusal, scan={**check.view(), "read_by": read.source}
        )

    def _unload_beyond_lot(self, restock: Restock, package: PackageScan) -> CommandResult | None:
        """Validate before anything moves: an unload takes from a lot no more than the pocket holds of it (or the
        finish would be refused by the store after the machine had already finished, losing every scan)."""
        lot = package.lot_number
        if restock.line.kind is not RestockKind.UNLOAD or package.verdict is not ScanVerdict.MATCH or lot is None:
            return None
        e = self.engine
        with e.db.read() as session:
            pocket = next(p for p in list_pockets(session, e.cabinet_id) if p.pocket_id == restock.line.pocket_id)
        on_hand = sum(held.quantity for held in pocket.lots if held.lot_number == lot)
        taking = package.quantity + sum(p.quantity for p in restock.packages if p.lot_number == lot)
        if taking <= on_hand:
            return None
        refused = Outcome(
            OutcomeKind.SCAN_REFUSED,
            e.clock.now(),
            actor_id=restock.actor.id,
            item_id=restock.line.medication.id,
            pocket_id=restock.line.pocket_id,
            lot_number=lot,
            reason_code="beyond_lot",
            details={"restock_id": restock.id, "on_hand": on_hand, "unloading": taking},
        )
        commit(e, [refused])
        return CommandResult.refuse(
            "inventory.negative_quantity",
            f"pocket {restock.line.pocket_id} holds {on_hand} of lot {lot}; cannot unload {taking}",
            pocket=restock.line.pocket_id,
            lot=lot,
            on_hand=on_hand,
            change=-taking,
        )

    async def finish(self, command: FinishRestock) -> CommandResult:
        restock = self._active()
        if isinstance(restock, CommandResult):
            return restock
        decision = restock.finish(now=self.engine.clock.now())
        sealed = commit(self.engine, decision.outcomes)
        if decision.accepted and restock.state is RestockState.AWAITING_WITNESS:
            self._witness_desk()
            return self._result(restock, True, sealed, next="a second person signs: SignRestockWitness")
        return self._result(restock, decision.accepted, sealed, decision.refusal)

    # --- the witness of a controlled restock --------------------------------------------------------------------

    def _witness_desk(self) -> WitnessDesk:
        """The cabinet's one witness desk. It is built after the pharmacy workflows (``CabinetEngine.__init__``),
        so the restock joins it as a target the first time a restock waits for a witness."""
        desk = self.engine.clinical.witness
        if WitnessFor.RESTOCK not in desk.targets:
            desk.add_target(WitnessFor.RESTOCK, self)
        return desk

    async def sign_witness(self, command: SignRestockWitness) -> CommandResult:
        """Open the witness step for the waiting restock (unless it is open) and sign it, in one command."""
        restock = self._active()
        if isinstance(restock, CommandResult):
            return restock
        desk = self._witness_desk()
        desk.reconcile()
        step = desk.step
        if step is None or step.kind is not WitnessFor.RESTOCK or step.target_id != restock.id:
            begun = desk.begin(WitnessFor.RESTOCK, restock.id)
            if not begun.ok:
                return begun
        return await desk.sign(SignWitness(command.user_id, pin=command.pin, badge=command.badge))

    def witness_action(self, target_id: str | None) -> tuple[str, str] | CommandResult:
        restock = self.current
        if restock is None or restock.state is not RestockState.AWAITING_WITNESS or target_id not in (None, restock.id):
            return CommandResult.refuse("engine.no_workflow", "no restock is waiting for a witness")
        return restock.id, RESTOCK_WITNESS

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult:
        restock = self.current
        if restock is None or restock.id != target_id:
            return CommandResult.refuse("engine.no_workflow", "the restock that waited for this witness has ended")
        decision = restock.witness_signed(now=self.engine.clock.now(), signature=signature)
        sealed = commit(self.engine, decision.outcomes)
        return self._result(restock, decision.accepted, sealed, decision.refusal)

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> list[SealedEntry]:
        return []  # the restock keeps waiting (nothing is stocked until signed); it may be signed again or cancelled

    async def cancel(self, command: CancelRestock) -> CommandResult:
        restock = self._active()
        if isinstance(restock, CommandResult):
            return restock
        decision = restock.cancel(now=self.engine.clock.now())
        sealed = commit(self.engine, decision.outcomes)
        return self._result(restock, decision.accepted, sealed, decision.refusal)
