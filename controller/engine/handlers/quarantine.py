"""What may not be used: recalled lots, refrigerator excursions, and the pharmacist's review of each hold.

Responsible for: a recall by NDC + lot (the lot of that item is blocked in every pocket, now and on later
restocks, with one ``stock.quarantined`` entry and the unload list of where it sits); the refrigerator watch
(``CheckRefrigerator`` on each fresh reading: outside the rules' range longer than their excursion limit, every
lot in the refrigerator pockets is held pending pharmacist review: one ``environment.temperature_excursion``
entry and one ``stock.quarantined`` entry per lot); ``ReviewQuarantine`` (the rules are
``controller.domain.quarantine``; a release makes the lot usable again, a destroy keeps it blocked and returns
the unload list) and ``ListQuarantines``.

Expired lots need no row: FEFO skips them, as it skips quarantined ones, so a pocket holding nothing else refuses
the pull (``quarantine.no_usable_stock``).

Not responsible for: unloading condemned stock (a restock of kind unload), or reading the board on a schedule
(the running loop passes each fresh environment reading).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controller.domain.ndc import Ndc
from controller.domain.quarantine import Hold, HoldKind, QuarantineDecision, check_review, hold_kind
from controller.domain.topology import DrawerKind
from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import Privilege
from controller.engine.commands.pharmacy import (
    CheckRefrigerator,
    FridgeCheck,
    ListQuarantines,
    QuarantineList,
    QuarantineReviewed,
    RecallLot,
    RecallPlaced,
    ReviewQuarantine,
)
from controller.engine.context import EngineContext
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Handler
from controller.errors import InvalidIdentifierError, SafetyError
from controller.store.cabinet_store import CabinetReader, CabinetWriter
from controller.store.ledger import SealedEntry


@dataclass
class FridgeWatch:
    since: datetime | None = None  # first reading outside the range in the current excursion
    worst_c: float | None = None
    quarantined: bool = False  # this excursion already quarantined the contents


class QuarantineHandler(Handler):
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.fridge = FridgeWatch()
        r = ctx.registry
        r.add(self)
        r.command(RecallLot, self.recall)
        r.command(ReviewQuarantine, self.review)
        r.command(CheckRefrigerator, self.check_refrigerator, needs_session=False)
        r.query(ListQuarantines, self.listing)

    def _details(self, kind: str, **more: Any) -> dict[str, Any]:
        return {"kind": kind, "occurred_at": self.ctx.now().isoformat(), **more}

    def _where(self, reader: CabinetReader, item_id: str, lot: str, pocket_id: str | None) -> list[dict[str, Any]]:
        """The unload list of a hold: the pockets holding units of the lot (``pocket_id`` None: every pocket of
        the item, as a recall blocks the lot everywhere)."""
        pockets = [pocket_id] if pocket_id is not None else [
            s.pocket_id for s in self.ctx.topology.slots.values() if s.item_id == item_id]  # fmt: skip
        return [place.view() for place in reader.lot_places(pockets, lot)]

    # --- recall -------------------------------------------------------------------------------------------------

    async def recall(self, command: RecallLot) -> CommandResult[RecallPlaced]:
        ctx = self.ctx
        user = ctx.user()
        if not (user.has(Privilege.REVIEW) or user.has(Privilege.ADMINISTER)):
            return CommandResult.refuse("policy.privilege_missing", f"user {user.id} may not quarantine a lot",
                                        user=user.id, privilege=Privilege.REVIEW.value)  # fmt: skip
        try:
            ndc = command.ndc.strip()
            digits = ndc if ndc.isascii() and ndc.isdigit() and len(ndc) == 10 else Ndc.parse(ndc).digits
        except InvalidIdentifierError as error:
            return CommandResult.from_error(error)
        with ctx.store.read() as reader:
            medication = reader.medication_by_ndc(digits)
            if medication is None:
                return CommandResult.refuse("engine.item_not_stocked", f"no formulary item carries NDC {ndc}", ndc=ndc)
            unload = self._where(reader, medication.id, command.lot_number, None)
        record = LedgerRecord(event_type=EventType.LOT_QUARANTINED, actor_id=user.id, item_id=medication.id,
                              lot_number=command.lot_number, reason_code=command.reason,
                              details=self._details("stock.recalled", ndc=digits, unload=unload))  # fmt: skip
        held: list[int] = []

        def hold(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            held.append(
                tx.add_hold(
                    item_id=medication.id,
                    lot_number=command.lot_number,
                    pocket_id=None,
                    ndc=digits,
                    reason=command.reason,
                    quarantined_by=user.id,
                    ledger_seq=sealed[0].seq,
                )
            )

        sealed = ctx.recorder.commit(record, then=hold)
        return CommandResult.done(RecallPlaced(held[0], medication.id, command.lot_number, tuple(unload), seqs(sealed)))

    # --- review -------------------------------------------------------------------------------------------------

    async def review(self, command: ReviewQuarantine) -> CommandResult[QuarantineReviewed]:
        ctx = self.ctx
        user = ctx.user()
        with ctx.store.read() as reader:
            row = reader.quarantine_hold(command.quarantine_id)
            if row is None:
                return CommandResult.refuse("engine.unknown_quarantine", f"no quarantined lot {command.quarantine_id} "
                                            "at this cabinet", quarantine=command.quarantine_id)  # fmt: skip
            kind = hold_kind(row.reason)
            hold = Hold(kind, row.review_decision is not None,
                        kind is HoldKind.EXCURSION and self.fridge.since is not None)  # fmt: skip
            try:
                decision = check_review(
                    user, hold, command.decision, reason=command.reason, note=command.note, now=ctx.now()
                )
            except SafetyError as error:
                return CommandResult.from_error(error)
            release = decision is QuarantineDecision.RELEASE
            unload = [] if release else self._where(reader, row.item_id, row.lot_number, row.pocket_id)
        record = LedgerRecord(
            event_type=EventType.QUARANTINE_REVIEWED,
            actor_id=user.id,
            item_id=row.item_id,
            pocket_id=row.pocket_id,
            lot_number=row.lot_number,
            reason_code=command.reason,
            note=command.note,
            details=self._details(
                "stock.quarantine_released" if release else "stock.quarantine_condemned",
                quarantine_id=row.id,
                decision=decision.value,
                hold=kind.value,
                quarantined_seq=row.ledger_seq,
                unload=unload,
            ),
        )

        def mark(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            tx.review_hold(row.id, decision=decision.value, by=user.id, seq=sealed[0].seq, release=release)

        sealed = ctx.recorder.commit(record, then=mark)
        return CommandResult.done(QuarantineReviewed(command.quarantine_id, decision.value, row.item_id, row.lot_number,
                                                     tuple(unload), seqs(sealed)))  # fmt: skip

    def listing(self, query: ListQuarantines) -> CommandResult[QuarantineList]:
        with self.ctx.store.read() as reader:
            holds = tuple(
                {
                    "quarantine_id": r.id,
                    "item_id": r.item_id,
                    "lot": r.lot_number,
                    "pocket_id": r.pocket_id,
                    "hold": hold_kind(r.reason).value,
                    "state": "awaiting_review" if r.review_decision is None else "to_unload",
                    "quarantined_seq": r.ledger_seq,
                    "unload": self._where(reader, r.item_id, r.lot_number, r.pocket_id),
                }
                for r in reader.active_holds()
            )
        return CommandResult.done(QuarantineList(holds))

    # --- refrigerator ---------------------------------------------------------------------------------------------

    async def check_refrigerator(self, command: CheckRefrigerator) -> CommandResult[FridgeCheck]:
        ctx = self.ctx
        temperature = command.temperature_c
        if temperature is None:
            temperature = (await ctx.actuator.io(ctx.devices.board.read_environment())).temperature_c
        policy = ctx.rules.policy
        low, high = policy.fridge_low_c, policy.fridge_high_c
        if low <= temperature <= high:
            self.fridge = FridgeWatch()
            return CommandResult.done(FridgeCheck(temperature, excursion=False))
        now = ctx.now()
        watch = self.fridge
        if watch.since is None:
            watch.since = now
        middle = (low + high) / 2
        if watch.worst_c is None or abs(temperature - middle) > abs(watch.worst_c - middle):
            watch.worst_c = temperature
        lasted = now - watch.since
        minutes = lasted.total_seconds() / 60
        if lasted < policy.fridge_excursion_limit or watch.quarantined:
            return CommandResult.done(FridgeCheck(temperature, excursion=True, minutes=minutes))
        held = self._quarantine_fridge(now, temperature, lasted)
        watch.quarantined = True
        return CommandResult.done(FridgeCheck(temperature, excursion=True, minutes=minutes, quarantined=tuple(held)))

    def _quarantine_fridge(self, now: datetime, temperature: float, lasted: timedelta) -> list[dict[str, Any]]:
        ctx = self.ctx
        policy = ctx.rules.policy
        fridge = [p for p in ctx.topology.pockets_of_kind(DrawerKind.REFRIGERATOR) if ctx.topology.slots[p].item_id]
        excursion = LedgerRecord(
            event_type=EventType.TEMPERATURE_EXCURSION,
            reason_code="fridge_out_of_range",
            details=self._details(
                "environment.temperature_excursion",
                temperature_c=f"{temperature:.1f}",
                worst_c=f"{self.fridge.worst_c:.1f}" if self.fridge.worst_c is not None else None,
                since=self.fridge.since.isoformat() if self.fridge.since else None,
                minutes=int(lasted.total_seconds() // 60),
                range_c=[f"{policy.fridge_low_c:.1f}", f"{policy.fridge_high_c:.1f}"],
            ),
        )
        with ctx.store.read() as reader:
            lots = [(pocket, place) for pocket in fridge for place in reader.stocked_lots(pocket)]
        records = [
            LedgerRecord(
                event_type=EventType.LOT_QUARANTINED,
                item_id=ctx.topology.slots[pocket].item_id,
                pocket_id=pocket,
                lot_number=place.lot,
                quantity_actual=place.quantity,
                reason_code="temperature_excursion",
                details=self._details("stock.quarantined", pending="pharmacist_review"),
            )
            for pocket, place in lots
        ]
        held: list[dict[str, Any]] = []

        def hold(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            for (pocket, place), entry in zip(lots, sealed[1:], strict=True):
                item_id = ctx.topology.slots[pocket].item_id
                assert item_id is not None
                hold_id = tx.add_hold(
                    item_id=item_id,
                    lot_number=place.lot,
                    pocket_id=pocket,
                    ndc=None,
                    reason=HoldKind.EXCURSION.value,
                    quarantined_by=None,
                    ledger_seq=entry.seq,
                )
                held.append(
                    {"pocket_id": pocket, "lot": place.lot, "quantity": place.quantity, "quarantine_id": hold_id}
                )

        ctx.recorder.commit(excursion, *records, then=hold)
        return held
