"""The one sink of everything the machines decide: outcomes become ledger entries, stock changes and working
state, in one transaction.

Responsible for: turning each ``Decision``'s outcomes (and the few records built outside a machine: a recall, a
configuration change, a board fault) into ledger entries; moving stock with the entry that explains it (a removal
first-expiring-first across lots, or from the scanned lot; a return lot by lot into its pocket; a restock, load or
unload by its lot); the rows that go with particular outcomes (a discrepancy row with every ``discrepancy.raised``,
an override review with every override); the workflow journal (written or ended in the transaction of the step it
describes); lockouts, and the recorded opening counts. If the store refuses a removal (the pocket held less than
the machine was told), the rest is still written with a discrepancy saying the removal could not be recorded, so
no unit leaves without an entry, and the refusal is raised to the caller.

Not responsible for: deciding anything, or what a workflow journals (its handler says).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from controller.domain.clock import Clock
from controller.domain.policies import discrepancy_deadline
from controller.domain.transactions import LedgerRecord
from controller.engine.rules import RulesHolder
from controller.errors import SafetyError
from controller.fsm.base import Decision, Outcome, OutcomeKind
from controller.store.cabinet_store import CabinetStore, CabinetWriter, JournalEntry, LockoutState, LotStock
from controller.store.engine_state import COUNT_MISMATCH, UNDOCUMENTED_ACCESS, fefo_split
from controller.store.inventory import StockChange
from controller.store.ledger import SealedEntry

STOCK_KINDS = frozenset({OutcomeKind.STOCK_RESTOCKED, OutcomeKind.STOCK_LOADED, OutcomeKind.STOCK_UNLOADED})
RAISES_DISCREPANCY = frozenset({OutcomeKind.DISCREPANCY_RAISED, OutcomeKind.UNDOCUMENTED_ACCESS})


@dataclass(frozen=True, slots=True)
class Deposit:
    """Where the units of a ``DOSE_RETURNED`` outcome go, lot by lot: (lot number, units, expiry)."""

    parts: tuple[tuple[str, int, date | None], ...]


@dataclass(frozen=True, slots=True)
class JournalEnd:
    """The workflow ``workflow_id`` ended in ``state``: its journal row is no longer live."""

    workflow_id: str
    state: str


JournalWrite = JournalEntry | JournalEnd
Item = Decision | Outcome | LedgerRecord
AfterWrite = Callable[[CabinetWriter, list[SealedEntry]], None]


def outcomes_of(items: Iterable[Item]) -> list[Outcome | LedgerRecord]:
    flat: list[Outcome | LedgerRecord] = []
    for item in items:
        if isinstance(item, Decision):
            flat.extend(item.outcomes)
        else:
            flat.append(item)
    return flat


class Recorder:
    def __init__(self, store: CabinetStore, clock: Clock, rules: RulesHolder) -> None:
        self.store = store
        self.clock = clock
        self.rules = rules

    def commit(
        self,
        *items: Item,
        deposit: Deposit | None = None,
        journal: Sequence[JournalWrite] = (),
        lockout: tuple[str, LockoutState | None] | None = None,
        openings: Mapping[str, int] | None = None,
        then: AfterWrite | None = None,
    ) -> list[SealedEntry]:
        """Write ``items`` in order, then the journal, lockout, opening counts and ``then`` (a handler's own
        working-state change), all in one transaction. Nothing to write: nothing happens."""
        flat = outcomes_of(items)
        if not (flat or journal or lockout or openings or then):
            return []
        try:
            return self._write(flat, deposit=deposit, journal=journal, lockout=lockout, openings=openings, then=then)
        except SafetyError as error:
            if error.code != "inventory.negative_quantity" or not any(_is_removal(o) for o in flat):
                raise
            self._write(
                _removals_unrecorded(flat, error),
                deposit=deposit,
                journal=journal,
                lockout=lockout,
                openings=openings,
                then=then,
            )
            raise

    def _write(
        self,
        flat: Sequence[Outcome | LedgerRecord],
        *,
        deposit: Deposit | None,
        journal: Sequence[JournalWrite],
        lockout: tuple[str, LockoutState | None] | None,
        openings: Mapping[str, int] | None,
        then: AfterWrite | None,
    ) -> list[SealedEntry]:
        sealed: list[SealedEntry] = []
        with self.store.write() as tx:
            for item in flat:
                sealed.extend(self._record(tx, item, deposit))
            for write in journal:
                if isinstance(write, JournalEnd):
                    tx.end_journal(write.workflow_id, write.state)
                else:
                    tx.write_journal(write)
            if lockout is not None:
                tx.save_lockout(*lockout)
            if openings:
                tx.set_recorded_openings(openings)
            if then is not None:
                then(tx, sealed)
        return sealed

    def _record(self, tx: CabinetWriter, item: Outcome | LedgerRecord, deposit: Deposit | None) -> list[SealedEntry]:
        if isinstance(item, LedgerRecord):
            return [tx.append(item)]
        outcome = item
        record = outcome.to_record()
        if _is_removal(outcome):
            return self._removal(tx, outcome, record)
        if outcome.kind is OutcomeKind.DOSE_RETURNED:
            assert deposit is not None, "a return says where its units go"
            return self._deposit(tx, outcome, record, deposit)
        if outcome.kind in STOCK_KINDS and outcome.quantity_change:
            assert outcome.pocket_id is not None and outcome.lot_number is not None
            expiry = outcome.details.get("expiry")
            change = StockChange(
                outcome.pocket_id,
                outcome.lot_number,
                outcome.quantity_change,
                date.fromisoformat(expiry) if isinstance(expiry, str) else None,
            )
            return [tx.change_stock(change, record)]
        entry = tx.append(record)
        if outcome.kind in RAISES_DISCREPANCY and outcome.pocket_id is not None:
            medication = tx.medication(outcome.item_id) if outcome.item_id else None
            undocumented = outcome.kind is OutcomeKind.UNDOCUMENTED_ACCESS
            workflow_id = outcome.details.get("workflow_id") or outcome.details.get("pull_id")
            tx.add_discrepancy(
                pocket_id=outcome.pocket_id,
                item_id=outcome.item_id,
                expected=outcome.quantity_expected or 0,
                counted=None if undocumented else (outcome.quantity_actual or 0),
                raised_by=outcome.actor_id or "",
                raised_at=outcome.at,
                deadline=discrepancy_deadline(self.rules.policy, outcome.at),
                ledger_seq=entry.seq,
                controlled=medication.is_controlled if medication else False,
                kind=UNDOCUMENTED_ACCESS if undocumented else COUNT_MISMATCH,
                workflow_id=str(workflow_id) if workflow_id else None,
            )
        elif outcome.kind is OutcomeKind.OVERRIDE:
            tx.queue_override_review(
                ledger_seq=entry.seq,
                user_id=outcome.actor_id or "",
                patient_id=outcome.patient_id,
                item_id=outcome.item_id,
                reason_code=outcome.reason_code,
                queued_at=outcome.at,
            )
        return [entry]

    def _removal(self, tx: CabinetWriter, outcome: Outcome, record: LedgerRecord) -> list[SealedEntry]:
        assert outcome.pocket_id is not None and outcome.quantity_actual
        lots = tx.usable_lots(outcome.pocket_id, self.clock.now().date())
        scanned = outcome.details.get("scanned")
        plan = plan_removal(lots, outcome.quantity_actual, scanned.get("lot") if isinstance(scanned, dict) else None)
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
            entries.append(tx.change_stock(StockChange(outcome.pocket_id, lot.lot_number, -units), part))
        return entries

    @staticmethod
    def _deposit(tx: CabinetWriter, outcome: Outcome, record: LedgerRecord, deposit: Deposit) -> list[SealedEntry]:
        assert outcome.pocket_id is not None
        entries = []
        for index, (lot_number, units, expiry) in enumerate(deposit.parts, start=1):
            part = replace(
                record,
                lot_number=lot_number,
                quantity_actual=units,
                quantity_change=units,
                details={**record.details, "lot_part": index, "lot_parts": len(deposit.parts)},
            )
            entries.append(tx.change_stock(StockChange(outcome.pocket_id, lot_number, units, expiry), part))
        return entries


def plan_removal(lots: list[LotStock], quantity: int, scanned_lot: str | None) -> list[tuple[LotStock, int]] | None:
    """Which lots a removal comes from: the scanned package's lot when it holds enough, otherwise FEFO."""
    if scanned_lot is not None:
        chosen = [lot for lot in lots if lot.lot_number == scanned_lot and lot.quantity >= quantity]
        if chosen:
            return [(chosen[0], quantity)]
    return fefo_split(lots, quantity)


def _is_removal(item: Outcome | LedgerRecord) -> bool:
    return isinstance(item, Outcome) and item.kind is OutcomeKind.DOSE_REMOVED and bool(item.quantity_actual)


def _removals_unrecorded(flat: Sequence[Outcome | LedgerRecord], error: SafetyError) -> list[Outcome | LedgerRecord]:
    """The same items with each removal (and its override) replaced by a discrepancy saying it was not recorded."""
    rest: list[Outcome | LedgerRecord] = []
    for item in flat:
        if isinstance(item, Outcome) and item.kind is OutcomeKind.OVERRIDE:
            continue
        if isinstance(item, Outcome) and _is_removal(item):
            rest.append(
                replace(
                    item,
                    kind=OutcomeKind.DISCREPANCY_RAISED,
                    quantity_change=None,
                    quantity_expected=item.quantity_actual,
                    quantity_actual=0,
                    reason_code="removal_not_recorded",
                    details={**item.details, "refused": error.code, "refusal": error.detail},
                )
            )
        else:
            rest.append(item)
    return rest
