"""Waste at the cabinet: the unused part of a removed dose, recorded right after the pull or later from the
user's pending-waste list.

Responsible for: finding what a pull removed (its ``DOSE_REMOVED`` entries: item, lots, patient, order, units)
and the dose amount that makes in the item's strength unit (a 4 mg/mL 1 mL cartridge removed is 4 mg);
``WasteDose`` (amount, unit, reason code; a witness for controlled items through ``witness.py``), ``DeferWaste``
and ``ListPendingWastes``; persisting every waste owed but not recorded in ``pending_wastes`` (status ``open``,
``escalated`` past its due time, ``wasted`` once recorded) in the transaction of its ledger entry, and loading
them back after a restart; and escalation on ``Tick`` past the end of the shift (``WASTE_OVERDUE``). Waste never
moves pocket stock: the dose already left the pocket with its removal.

Not responsible for: the rules (``controller.fsm.workflows.waste``), the witness's authentication, or returns.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from controller.domain.medication import Medication
from controller.engine.commands import CommandResult
from controller.engine.commands_clinical import DeferWaste, ListPendingWastes, WasteDose, WitnessFor
from controller.engine.witness import WitnessDesk, record
from controller.fsm.base import Decision, WitnessSignature
from controller.fsm.workflows.waste import RemovedDose, Waste, Wastes, WasteState
from controller.store import engine_state as state
from controller.store.json_fields import DetailField
from controller.store.ledger import SealedEntry
from controller.store.models import LedgerEntryRow, PendingWasteRow

if TYPE_CHECKING:
    from controller.engine.cabinet import CabinetEngine

OPEN, ESCALATED, WASTED = "open", "escalated", "wasted"


# --- what a pull removed ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Removal:
    """What one pull removed, from its ``DOSE_REMOVED`` entries (one per lot), less what was returned since."""

    pull_id: str
    actor_id: str
    item_id: str
    pocket_id: str
    patient_id: str | None
    order_id: str | None
    parts: tuple[tuple[str, int, date | None], ...]  # (lot, units, expiry), FEFO order
    first_seq: int
    at: datetime
    returned: int
    wasted: bool  # a waste is recorded or owed on it

    @property
    def units(self) -> int:
        return sum(units for _, units, _ in self.parts)

    @property
    def remaining(self) -> int:
        return self.units - self.returned


def find_removal(engine: CabinetEngine, pull_id: str) -> Removal | None:
    kinds = ("dose.removed", "dose.returned", "dose.wasted", "dose.waste_pending")
    with engine.db.read() as session:
        rows = session.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.event_type, LedgerEntryRow.body).where(
                LedgerEntryRow.cabinet_id == engine.cabinet_id,
                LedgerEntryRow.event_type.in_(kinds),
                DetailField("pull_id") == pull_id,
            )
            # No ORDER BY in SQL: with one, SQLite (without ANALYZE statistics) prefers the (cabinet, seq) index
            # and reads the whole ledger; a pull has a handful of entries, sorted here.
        ).all()
    rows = sorted(rows, key=lambda row: int(row.seq))
    removed: list[dict[str, Any]] = []
    seqs: list[int] = []
    returned = 0
    wasted = False
    for seq, event_type, body in rows:
        doc = json.loads(body)
        if event_type == "dose.removed":
            if doc["quantity_change"]:
                removed.append(doc)
                seqs.append(int(seq))
        elif event_type == "dose.returned":
            returned += int(doc["quantity_change"] or 0)
        else:
            wasted = True
    if not removed:
        return None
    first = removed[0]
    parts = tuple(
        (
            str(d["lot_number"]),
            -int(d["quantity_change"]),
            date.fromisoformat(d["details"]["lot_expiry"]) if d["details"].get("lot_expiry") else None,
        )
        for d in removed
    )
    return Removal(
        pull_id=pull_id,
        actor_id=str(first["actor_id"]),
        item_id=str(first["item_id"]),
        pocket_id=str(first["pocket_id"]),
        patient_id=first["patient_id"],
        order_id=first["order_id"],
        parts=parts,
        first_seq=seqs[0],
        at=datetime.fromisoformat(first["details"]["occurred_at"]),
        returned=returned,
        wasted=wasted or any(w.dose.pull_id == pull_id for w in _wastes_of(engine)),
    )


def _wastes_of(engine: CabinetEngine) -> list[Waste]:
    clinical = getattr(engine, "clinical", None)
    return list(clinical.waste.wastes.by_id.values()) if clinical is not None else []


def last_pull_id(engine: CabinetEngine, pull_id: str | None) -> str | CommandResult:
    """The pull a command names, or the session's last finished pull."""
    if pull_id is not None:
        return pull_id
    pull = engine.pull
    if pull is None or not pull.is_finished or not pull.taken:
        return CommandResult.refuse("engine.no_removal", "this session has no finished pull that removed a dose")
    return pull.id


def usable_removal(engine: CabinetEngine, pull_id: str | None) -> Removal | CommandResult:
    """The removal of a pull that the logged-in user may waste or return from."""
    chosen = last_pull_id(engine, pull_id)
    if isinstance(chosen, CommandResult):
        return chosen
    removal = find_removal(engine, chosen)
    user = engine.session.user
    assert user is not None
    if removal is None:
        return CommandResult.refuse("engine.no_removal", f"pull {chosen} removed nothing", pull=chosen)
    if removal.actor_id != user.id:
        return CommandResult.refuse(
            "workflow.not_owner", f"pull {chosen} was {removal.actor_id}'s, not {user.id}'s", pull=chosen
        )
    if removal.remaining <= 0 or removal.wasted:
        return CommandResult.refuse(
            "engine.nothing_left",
            f"what pull {chosen} removed is already returned or has a waste recorded or owed",
            pull=chosen,
        )
    return removal


_STRENGTH = re.compile(r"^\s*([\d,]*\.?\d+)\s*([^\s/]+)(?:\s*/\s*([\d.]*)\s*(\w+))?")
_VOLUME = re.compile(r"([\d.]+)\s*mL", re.IGNORECASE)


def dose_amount(medication: Medication, units: int) -> tuple[Decimal, str]:
    """The amount ``units`` packages hold in the strength's unit: 2 x "4 mg/mL" 1 mL cartridges are 8 mg; a
    strength that cannot be read counts packages in the item's dispensing unit."""
    match = _STRENGTH.match(medication.strength or "")
    if match is None:
        return Decimal(units), medication.unit
    try:
        per = Decimal(match.group(1).replace(",", ""))
        if match.group(4) is not None and match.group(4).casefold() == "ml":
            per_volume = Decimal(match.group(3) or 1)
            volume = _VOLUME.search(medication.package or "")
            per = per / per_volume * (Decimal(volume.group(1)) if volume else Decimal(1))
    except InvalidOperation:
        return Decimal(units), medication.unit
    return Decimal(format((per * units).normalize(), "f")), match.group(2)


# --- the waste workflow ---------------------------------------------------------------------------------------


class WasteDesk:
    """Every waste owed at this cabinet: in memory while being entered or witnessed, in ``pending_wastes`` from
    the moment it is deferred, its witness step ends without a signature, or it escalates."""

    def __init__(self, engine: CabinetEngine, witness: WitnessDesk) -> None:
        self.engine = engine
        self.witness = witness
        self.wastes = Wastes(engine.policy)
        self.row_of: dict[str, int] = {}  # waste id -> pending_wastes row id
        self.removed_seq: dict[str, int] = {}
        self._restore()
        witness.add_target(WitnessFor.WASTE, self)
        engine.register(WasteDose, self.waste)
        engine.register(DeferWaste, self.defer)
        engine.register(ListPendingWastes, self.pending)

    def _restore(self) -> None:
        """After a (re)start: every waste still owed comes back from ``pending_wastes``."""
        with self.engine.db.read() as session:
            rows = session.execute(
                select(PendingWasteRow)
                .where(
                    PendingWasteRow.cabinet_id == self.engine.cabinet_id,
                    PendingWasteRow.status.in_((OPEN, ESCALATED)),
                )
                .order_by(PendingWasteRow.id)
            ).scalars()
            loaded = [(row, state.get_medication(session, row.item_id)) for row in rows]
        for row, medication in loaded:
            if medication is None:
                continue
            due = row.due_at if row.due_at.tzinfo is not None else row.due_at.replace(tzinfo=UTC)
            dose = RemovedDose(
                medication=medication,
                amount=Decimal(row.amount),
                unit=row.unit,
                pocket_id=row.pocket_id,
                pull_id=None,
                patient_id=row.patient_id,
                order_id=row.order_id,
                lot_number=row.lot_number,
            )
            waste = Waste(f"W{row.id}", actor_id=row.user_id, dose=dose, created_at=due, policy=self.engine.policy)
            waste.due = due
            initial = WasteState.ESCALATED if row.status == ESCALATED else WasteState.PENDING
            if initial is WasteState.ESCALATED:
                waste.escalated_at = due
            self.wastes.attach(waste, initial=initial)
            self.wastes.by_id[waste.id] = waste
            self.row_of[waste.id] = row.id
            self.removed_seq[waste.id] = row.removed_seq

    # --- commands -----------------------------------------------------------------------------------------------

    def _new_waste(self, pull_id: str | None) -> Waste | CommandResult:
        removal = usable_removal(self.engine, pull_id)
        if isinstance(removal, CommandResult):
            return removal
        with self.engine.db.read() as session:
            medication = state.get_medication(session, removal.item_id)
        assert medication is not None
        amount, unit = dose_amount(medication, removal.remaining)
        dose = RemovedDose(
            medication=medication,
            amount=amount,
            unit=unit,
            pocket_id=removal.pocket_id,
            pull_id=removal.pull_id,
            patient_id=removal.patient_id,
            order_id=removal.order_id,
            lot_number=removal.parts[0][0],
        )
        waste = self.wastes.start(f"W-{uuid.uuid4().hex[:10]}", actor_id=removal.actor_id, dose=dose, now=removal.at)
        self.removed_seq[waste.id] = removal.first_seq
        return waste

    def _drop(self, waste: Waste) -> None:
        self.wastes.detach(waste)
        del self.wastes.by_id[waste.id]
        self.removed_seq.pop(waste.id, None)

    async def waste(self, command: WasteDose) -> CommandResult:
        self.witness.reconcile()
        user = self.engine.session.user
        assert user is not None
        fresh = command.waste_id is None
        if command.waste_id is not None:
            found = self.wastes.by_id.get(command.waste_id)
            if found is None or not found.is_pending:
                return CommandResult.refuse(
                    "engine.unknown_waste", f"no pending waste {command.waste_id}", waste=command.waste_id
                )
            waste = found
        else:
            made = self._new_waste(command.pull_id)
            if isinstance(made, CommandResult):
                return made
            waste = made
        decision = waste.enter(
            now=self.engine.clock.now(),
            user_id=user.id,
            amount=command.amount,
            unit=command.unit,
            reason=command.reason,
            note=command.note,
        )
        if decision.refused:
            if fresh:
                self._drop(waste)
            return self._result(decision, [], waste)
        sealed = self._record(waste, decision)
        result = self._result(decision, sealed, waste)
        if waste.state is WasteState.AWAITING_WITNESS:
            begun = self.witness.begin(WitnessFor.WASTE, waste.id)
            return CommandResult.success(**result.data, witness_step=begun.data.get("witness_step"))
        return result

    async def defer(self, command: DeferWaste) -> CommandResult:
        self.witness.reconcile()
        user = self.engine.session.user
        assert user is not None
        made = self._new_waste(command.pull_id)
        if isinstance(made, CommandResult):
            return made
        decision = made.defer(now=self.engine.clock.now(), user_id=user.id)
        if decision.refused:
            self._drop(made)
            return self._result(decision, [], made)
        return self._result(decision, self._record(made, decision), made)

    async def pending(self, command: ListPendingWastes) -> CommandResult:
        self.witness.reconcile()
        user = self.engine.session.user
        assert user is not None
        return CommandResult.success(wastes=[w.view() for w in self.wastes.pending_for(user.id)])

    # --- the witness step -----------------------------------------------------------------------------------------

    def witness_action(self, target_id: str | None) -> tuple[str, str] | CommandResult:
        waste = self.wastes.by_id.get(target_id or "")
        user = self.engine.session.user
        if waste is None or waste.state is not WasteState.AWAITING_WITNESS or user is None:
            return CommandResult.refuse("engine.no_workflow", f"waste {target_id} is not waiting for a witness")
        if waste.actor_id != user.id:
            return CommandResult.refuse(
                "workflow.not_owner", f"waste {waste.id} is {waste.actor_id}'s to record", waste=waste.id
            )
        return waste.id, waste.witness_action

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult:
        waste = self.wastes.by_id[target_id]
        decision = waste.witness_signed(now=self.engine.clock.now(), signature=signature)
        return self._result(decision, self._record(waste, decision), waste)

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> list[SealedEntry]:
        waste = self.wastes.by_id.get(target_id)
        if waste is None or waste.state is not WasteState.AWAITING_WITNESS:
            return []
        return self._record(waste, waste.witness_cancelled(now=self.engine.clock.now()))

    # --- time -----------------------------------------------------------------------------------------------------

    def tick(self, now: datetime) -> int:
        """Escalate what is overdue; a waste left waiting for a witness with no step open goes to the pending
        list (its step was abandoned)."""
        written = self.witness.reconcile()
        step = self.witness.step
        for waste in list(self.wastes.by_id.values()):
            if waste.state is WasteState.AWAITING_WITNESS and (step is None or step.target_id != waste.id):
                written += len(self._record(waste, waste.witness_cancelled(now=now)))
            elif waste.is_pending:
                written += len(self._record(waste, waste.tick(now=now)))
        return written

    # --- recording ----------------------------------------------------------------------------------------------

    def _record(self, waste: Waste, decision: Decision) -> list[SealedEntry]:
        if not decision.outcomes:
            return []
        status = {
            WasteState.RECORDED: WASTED,
            WasteState.ESCALATED: ESCALATED,
            WasteState.PENDING: OPEN,
        }.get(waste.state)  # type: ignore[call-overload]

        made: list[int] = []

        def apply(session: DbSession, sealed: list[SealedEntry]) -> None:
            if status is None:
                return
            row_id = self.row_of.get(waste.id)
            if row_id is None:
                if status == WASTED:
                    return  # recorded straight away: it was never on the pending list
                dose = waste.dose
                row_id = state.add_pending_waste(
                    session,
                    cabinet_id=self.engine.cabinet_id,
                    user_id=waste.actor_id,
                    patient_id=dose.patient_id,
                    order_id=dose.order_id,
                    item_id=dose.medication.id,
                    pocket_id=dose.pocket_id,
                    lot_number=dose.lot_number,
                    amount=str(dose.amount),
                    unit=dose.unit,
                    removed_seq=self.removed_seq.get(waste.id, 0),
                    due_at=waste.due,
                )
                made.append(row_id)
            state.close_pending_waste(session, row_id, status)

        sealed = record(self.engine, decision.outcomes, apply)
        if made:  # only once the transaction committed
            self.row_of[waste.id] = made[0]
        return sealed

    def _result(self, decision: Decision, sealed: list[SealedEntry], waste: Waste) -> CommandResult:
        data: dict[str, Any] = {
            "state": decision.state.value,
            "ledger_seqs": [e.seq for e in sealed],
            "waste": waste.view(),
        }
        if waste.id in self.row_of:
            data["pending_waste_row"] = self.row_of[waste.id]
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, **data)
        return CommandResult(True, data)
