"""Pharmacist review of a quarantined lot: release it back into service, or condemn it; one entry naming the
pharmacist either way.

Responsible for: the rules of the review (``review_refusal``, pure): only a pharmacist (``REVIEW``) decides; a
hold is reviewed once; the reason must fit the hold (``REVIEW_REASONS``). A refrigerator-excursion hold is
released when the maker's stability data covers the excursion, and not while the refrigerator is still out of
range. A recall is released only when the recall itself is withdrawn (the note names the notice): a pharmacist
cannot overrule a manufacturer's or FDA recall, so any other "release" of a recalled lot is refused. Then the
recording: a release sets the row's status to released, so ``engine_state.usable_lots`` (FEFO, the pull) and the
package checks use the lot again; a destroy keeps the row active, so the lot stays blocked, and returns the
unload list (every pocket holding it), which ``ListQuarantines`` keeps showing until the lot is unloaded
(``StartRestock(kind=UNLOAD)`` takes quarantined stock out).

Not responsible for: placing holds (``quarantine.py``), unloading (``restock.py``), or destroying stock (a DEA
Form 41 matter outside the cabinet).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import Privilege, User
from controller.engine.commands import CommandResult
from controller.engine.commands_pharmacy import (
    ListQuarantines,
    QuarantineDecision,
    QuarantineReviewReason,
    ReviewQuarantine,
)
from controller.store.engine_state import QUARANTINE_ACTIVE, QUARANTINE_RELEASED
from controller.store.models import PocketLotRow, QuarantinedLotRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session as DbSession

    from controller.engine.cabinet import CabinetEngine


class HoldKind(StrEnum):
    """Why a lot is held; ``quarantined_lots.reason`` holds the value (a recall may carry its own reason text)."""

    RECALL = "recall"
    EXCURSION = "temperature_excursion"


def hold_kind(reason: str) -> HoldKind:
    return HoldKind.EXCURSION if reason == HoldKind.EXCURSION.value else HoldKind.RECALL


D, R = QuarantineDecision, QuarantineReviewReason
REVIEW_REASONS: Mapping[tuple[HoldKind, QuarantineDecision], frozenset[QuarantineReviewReason]] = {
    (HoldKind.EXCURSION, D.RELEASE): frozenset({R.WITHIN_STABILITY_DATA}),
    (HoldKind.EXCURSION, D.DESTROY): frozenset({R.OUTSIDE_STABILITY_DATA}),
    (HoldKind.RECALL, D.RELEASE): frozenset({R.RECALL_WITHDRAWN}),
    (HoldKind.RECALL, D.DESTROY): frozenset({R.RECALLED}),
}


@dataclass(frozen=True, slots=True)
class Hold:
    """What the review rules need to know of one quarantined lot."""

    kind: HoldKind
    reviewed: bool
    excursion_ongoing: bool = False  # the refrigerator is still out of range (matters for a fridge hold only)


def review_refusal(reviewer: User, hold: Hold, command: ReviewQuarantine, now: datetime) -> CommandResult | None:
    """Why this review may not be recorded, or None when it may."""
    decision, reason, note = command.decision, command.reason, command.note
    if not (reviewer.has(Privilege.REVIEW) and reviewer.is_usable_at(now)):
        return CommandResult.refuse(
            "policy.privilege_missing",
            f"user {reviewer.id} may not review a quarantine: only a pharmacist releases or condemns a held lot",
            user=reviewer.id,
            privilege=Privilege.REVIEW.value,
        )
    if hold.reviewed:
        return CommandResult.refuse("workflow.already_reviewed", "this quarantined lot has already been reviewed")
    try:
        chosen = QuarantineDecision(decision)
    except ValueError:
        return CommandResult.refuse("workflow.reason_required", f"decide release or destroy, not {decision!r}")
    if hold.kind is HoldKind.RECALL and chosen is D.RELEASE and reason != R.RECALL_WITHDRAWN:
        return CommandResult.refuse(
            "quarantine.recall_not_withdrawn",
            "a recalled lot goes back into service only when the recall is withdrawn (reason recall_withdrawn, the "
            "notice named in the note); until then destroy it or return it as the recall instructs",
        )
    allowed = sorted(r.value for r in REVIEW_REASONS[hold.kind, chosen])
    if reason not in allowed:
        return CommandResult.refuse(
            "workflow.reason_required",
            f"to {chosen.value} a {hold.kind.value} hold give reason {' or '.join(allowed)}",
            allowed=allowed,
        )
    if reason == R.RECALL_WITHDRAWN and not (note and note.strip()):
        return CommandResult.refuse("workflow.reason_required", "name the recall's withdrawal notice in the note")
    if chosen is D.RELEASE and hold.excursion_ongoing:
        return CommandResult.refuse(
            "quarantine.excursion_ongoing", "the refrigerator is still out of range: release its stock once it is back"
        )
    return None


def where_lot_sits(
    session: DbSession, engine: CabinetEngine, item_id: str, lot_number: str, pocket_id: str | None
) -> list[dict[str, Any]]:
    """The unload list of a hold: the pockets of this cabinet holding units of the lot (``pocket_id`` None: every
    pocket of the item, as a recall blocks the lot everywhere)."""
    if pocket_id is not None:
        pockets = [pocket_id]
    else:
        pockets = [s.pocket_id for s in engine.slots.values() if s.item_id == item_id]
    rows = session.execute(
        select(PocketLotRow)
        .where(PocketLotRow.pocket_id.in_(pockets), PocketLotRow.lot_number == lot_number, PocketLotRow.quantity > 0)
        .order_by(PocketLotRow.pocket_id)
    ).scalars()
    return [{"pocket_id": r.pocket_id, "lot": r.lot_number, "quantity": r.quantity} for r in rows]


class QuarantineReview:
    """``ReviewQuarantine`` and ``ListQuarantines`` of one engine."""

    def __init__(self, engine: CabinetEngine, *, excursion_ongoing: Callable[[], bool]) -> None:
        self.engine = engine
        self.excursion_ongoing = excursion_ongoing

    def register(self) -> None:
        self.engine.register(ReviewQuarantine, self.review)
        self.engine.register(ListQuarantines, self.list_holds)

    async def review(self, command: ReviewQuarantine) -> CommandResult:
        e = self.engine
        user = e.session.user
        assert user is not None
        now = e.clock.now()
        with e.db.write() as session:
            row = session.get(QuarantinedLotRow, command.quarantine_id)
            if row is None or row.cabinet_id != e.cabinet_id:
                return CommandResult.refuse(
                    "engine.unknown_quarantine",
                    f"no quarantined lot {command.quarantine_id} at this cabinet",
                    quarantine=command.quarantine_id,
                )
            kind = hold_kind(row.reason)
            hold = Hold(kind, row.review_decision is not None, kind is HoldKind.EXCURSION and self.excursion_ongoing())
            refusal = review_refusal(user, hold, command, now)
            if refusal is not None:
                return refusal
            decision = QuarantineDecision(command.decision)
            release = decision is D.RELEASE
            unload = [] if release else where_lot_sits(session, e, row.item_id, row.lot_number, row.pocket_id)
            seq = e.ledger.append(
                session,
                LedgerRecord(
                    event_type=EventType.QUARANTINE_REVIEWED,
                    actor_id=user.id,
                    item_id=row.item_id,
                    pocket_id=row.pocket_id,
                    lot_number=row.lot_number,
                    reason_code=command.reason,
                    note=command.note,
                    details={
                        "kind": "stock.quarantine_released" if release else "stock.quarantine_condemned",
                        "occurred_at": now.isoformat(),
                        "quarantine_id": row.id,
                        "decision": decision.value,
                        "hold": kind.value,
                        "quarantined_seq": row.ledger_seq,
                        "unload": unload,
                    },
                ),
            ).seq
            row.review_decision, row.reviewed_by, row.reviewed_at, row.review_seq = decision.value, user.id, now, seq
            if release:
                row.status = QUARANTINE_RELEASED
            item_id, lot_number = row.item_id, row.lot_number
        return CommandResult.success(
            quarantine_id=command.quarantine_id,
            decision=decision.value,
            item_id=item_id,
            lot=lot_number,
            unload=unload,
            ledger_seqs=[seq],
        )

    async def list_holds(self, command: ListQuarantines) -> CommandResult:
        e = self.engine
        with e.db.read() as session:
            rows = session.execute(
                select(QuarantinedLotRow)
                .where(QuarantinedLotRow.cabinet_id == e.cabinet_id, QuarantinedLotRow.status == QUARANTINE_ACTIVE)
                .order_by(QuarantinedLotRow.id)
            ).scalars()
            holds = [
                {
                    "quarantine_id": r.id,
                    "item_id": r.item_id,
                    "lot": r.lot_number,
                    "pocket_id": r.pocket_id,
                    "hold": hold_kind(r.reason).value,
                    "state": "awaiting_review" if r.review_decision is None else "to_unload",
                    "quarantined_seq": r.ledger_seq,
                    "unload": where_lot_sits(session, e, r.item_id, r.lot_number, r.pocket_id),
                }
                for r in rows
            ]
        return CommandResult.success(quarantines=holds)
