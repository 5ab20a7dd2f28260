"""One cabinet's store as the engine sees it: named reads and writes, never a session or a table.

Responsible for: ``CabinetStore.read()`` (a ``CabinetReader``: topology, people, patients and orders, stock and
lots, discrepancies, pending wastes, override reviews, quarantines, the journal, removals, recorded
configuration) and ``CabinetStore.write()`` (a ``CabinetWriter``: the same reads inside one write transaction,
plus appending ledger entries, changing stock through ``InventoryStore.apply``, and the working state that must
survive a restart). Everything a writer does commits or rolls back together, so a ledger entry and the state it
goes with are never apart.

Not responsible for: rules or decisions (the engine and its machines), or the order of writes within a transaction
(the engine's recorder).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.cabinet_config import PocketAssignment
from controller.domain.medication import Medication
from controller.domain.patients import Order
from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import User
from controller.store import engine_state as state
from controller.store import journal, layout, quarantine_state, removals
from controller.store import repositories as repo
from controller.store.database import Database
from controller.store.inventory import InventoryStore, PocketView, StockChange, list_pockets
from controller.store.ledger import Ledger, SealedEntry
from controller.store.models import LedgerEntryRow, LedgerHeadRow, UserRow

JournalEntry = journal.JournalEntry
Removal = removals.Removal
QuarantineHold = quarantine_state.QuarantineHold
LotPlace = quarantine_state.LotPlace
PocketSlot = state.PocketSlot
LotStock = state.LotStock
LockoutState = state.LockoutState
DiscrepancyRecord = state.Discrepancy
PendingWaste = state.PendingWaste
OverrideReview = state.OverrideReview


class CabinetReader:
    """Reads of one cabinet inside one session (a read transaction, or the write transaction of a writer)."""

    def __init__(self, session: Session, cabinet_id: str) -> None:
        self._session = session
        self.cabinet_id = cabinet_id

    # --- topology, formulary, people ---------------------------------------------------------------------------

    def drawers(self) -> list[tuple[str, str, int]]:
        return state.cabinet_drawers(self._session, self.cabinet_id)

    def slots(self) -> list[PocketSlot]:
        return state.cabinet_slots(self._session, self.cabinet_id)

    def is_profiled(self) -> bool:
        return state.cabinet_is_profiled(self._session, self.cabinet_id)

    def pockets(self) -> list[PocketView]:
        return list_pockets(self._session, self.cabinet_id)

    def medication(self, item_id: str) -> Medication | None:
        return state.get_medication(self._session, item_id)

    def formulary(self) -> list[Medication]:
        return repo.list_medications(self._session)

    def medication_by_ndc(self, ndc10_digits: str) -> Medication | None:
        return repo.medication_by_ndc_digits(self._session, ndc10_digits)

    def missing_items(self, item_ids: Sequence[str]) -> list[str]:
        return sorted(i for i in item_ids if state.get_medication(self._session, i) is None)

    def user(self, user_id: str) -> User | None:
        found = repo.get_user(self._session, user_id)
        return found[0] if found is not None else None

    def users(self) -> list[User]:
        return repo.list_users(self._session)

    def user_secrets(self, user_id: str) -> tuple[str, str | None] | None:
        return state.user_secrets(self._session, user_id)

    def lockouts(self) -> dict[str, LockoutState]:
        return state.load_lockouts(self._session)

    # --- patients and orders -----------------------------------------------------------------------------------

    def patient_exists(self, patient_id: str) -> bool:
        return state.patient_exists(self._session, patient_id)

    def patient_is_admitted(self, patient_id: str) -> bool:
        return state.patient_is_admitted(self._session, patient_id)

    def patient_allergies(self, patient_id: str) -> tuple[str, ...]:
        return state.patient_allergies(self._session, patient_id)

    def order(self, order_id: str) -> Order | None:
        return state.get_order(self._session, order_id)

    # --- stock ---------------------------------------------------------------------------------------------------

    def usable_lots(self, pocket_id: str, today: date) -> list[LotStock]:
        return state.usable_lots(self._session, pocket_id, today)

    def on_hand(self, pocket_id: str) -> int:
        return state.pocket_on_hand(self._session, pocket_id)

    def lot_on_hand(self, pocket_id: str, lot_number: str) -> int:
        return sum(p.quantity for p in quarantine_state.stocked_lots(self._session, pocket_id) if p.lot == lot_number)

    def stocked_lots(self, pocket_id: str) -> list[LotPlace]:
        return quarantine_state.stocked_lots(self._session, pocket_id)

    def lot_places(self, pockets: Sequence[str], lot_number: str) -> list[LotPlace]:
        return quarantine_state.lot_places(self._session, pockets, lot_number)

    def is_quarantined(self, item_id: str, lot_number: str, pocket_id: str | None = None) -> bool:
        return quarantine_state.is_quarantined(self._session, item_id, lot_number, pocket_id)

    def quarantine_hold(self, hold_id: int) -> QuarantineHold | None:
        return quarantine_state.get_hold(self._session, self.cabinet_id, hold_id)

    def active_holds(self) -> list[QuarantineHold]:
        return quarantine_state.active_holds(self._session, self.cabinet_id)

    # --- working state -------------------------------------------------------------------------------------------

    def live_discrepancies(self) -> list[DiscrepancyRecord]:
        return state.live_discrepancies(self._session, self.cabinet_id)

    def discrepancy(self, discrepancy_id: int) -> DiscrepancyRecord | None:
        return state.get_discrepancy(self._session, self.cabinet_id, discrepancy_id)

    def resolutions(self, ids: Sequence[int]) -> dict[int, tuple[str | None, str | None]]:
        """(witness, reason) of resolved discrepancies, from their ``discrepancy.resolved`` entries."""
        if not ids:
            return {}
        wanted = {str(i) for i in ids}
        found: dict[int, tuple[str | None, str | None]] = {}
        bodies = self._session.execute(
            select(LedgerEntryRow.body).where(
                LedgerEntryRow.cabinet_id == self.cabinet_id,
                LedgerEntryRow.event_type == EventType.DISCREPANCY_RESOLVED.value,
            )
        ).scalars()
        for body in bodies:
            doc = json.loads(body)
            key = str(doc["details"].get("discrepancy_id"))
            if key in wanted:
                found[int(key)] = (doc["witness_id"], doc["reason_code"])
        return found

    def counted_since(self, pocket_id: str, seq: int) -> int | None:
        """The ledger seq of the first blind count of ``pocket_id`` (a count, or a restock's count-back) entered after
        entry ``seq``, if any."""
        rows = self._session.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.body)
            .where(
                LedgerEntryRow.cabinet_id == self.cabinet_id,
                LedgerEntryRow.event_type == EventType.COUNT_ENTERED.value,
                LedgerEntryRow.pocket_id == pocket_id,
                LedgerEntryRow.seq > seq,
            )
            .order_by(LedgerEntryRow.seq)
        ).all()
        for found_seq, body in rows:
            details = json.loads(body)["details"]
            if details.get("count_id") or details.get("restock_id"):  # a count or count-back, not a pull's
                return int(found_seq)
        return None

    def owed_wastes(self) -> list[PendingWaste]:
        return state.owed_wastes(self._session, self.cabinet_id)

    def override_reviews(
        self, *, status: str | None = state.OPEN, review_id: int | None = None
    ) -> list[OverrideReview]:
        return state.override_reviews(self._session, self.cabinet_id, status=status, review_id=review_id)

    def removal(self, pull_id: str) -> Removal | None:
        return removals.find_removal(self._session, self.cabinet_id, pull_id)

    def live_journal(self) -> list[JournalEntry]:
        return journal.live_journal(self._session, self.cabinet_id)

    def recorded_openings(self) -> dict[str, int]:
        return journal.recorded_openings(self._session, self.cabinet_id)

    def last_session_id(self) -> int:
        """The session id of the newest login (session ids keep increasing across restarts)."""
        body = self._session.execute(
            select(LedgerEntryRow.body)
            .where(LedgerEntryRow.cabinet_id == self.cabinet_id, LedgerEntryRow.event_type == EventType.LOGIN.value)
            .order_by(LedgerEntryRow.seq.desc())
            .limit(1)
        ).scalar()
        return int(json.loads(body)["details"].get("session_id", 0)) if body else 0

    def opening_seq(self, compartment_id: str, workflow_id: str, *, within: int = 200) -> int | None:
        """The seq of the newest ``drawer.opened`` entry of ``compartment_id`` made under ``workflow_id``'s grant,
        looking back at most ``within`` openings of this cabinet (None if there is none)."""
        rows = self._session.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.body)
            .where(LedgerEntryRow.cabinet_id == self.cabinet_id)
            .where(LedgerEntryRow.event_type == EventType.DRAWER_OPENED.value)
            .order_by(LedgerEntryRow.seq.desc())
            .limit(within)
        ).all()
        for seq, body in rows:
            details = json.loads(body).get("details") or {}
            if details.get("compartment_id") == compartment_id and workflow_id in (details.get("workflow_ids") or ()):
                return int(seq)
        return None

    def head_seq(self) -> int:
        head = self._session.get(LedgerHeadRow, self.cabinet_id)
        return int(head.last_seq) if head is not None else 0

    def last_configuration(self, kind: str, **matching: object) -> Mapping[str, object] | None:
        """The details of the newest ``configuration.changed`` entry of ``details.kind`` whose details also hold
        ``matching`` (None if there is none)."""
        bodies = self._session.execute(
            select(LedgerEntryRow.body)
            .where(LedgerEntryRow.cabinet_id == self.cabinet_id)
            .where(LedgerEntryRow.event_type == EventType.CONFIGURATION_CHANGED.value)
            .order_by(LedgerEntryRow.seq.desc())
        ).scalars()
        for body in bodies:
            details = json.loads(body).get("details", {})
            if details.get("kind") == kind and all(details.get(k) == v for k, v in matching.items()):
                return dict(details)
        return None

    def downlink_version(self, kind: str, key: str) -> int | None:
        """The version of the central's document ``kind``/``key`` this cabinet holds (None: none yet)."""
        return layout.held_version(self._session, kind, key)


class CabinetWriter(CabinetReader):
    """One write transaction of one cabinet: ledger entries, stock and working state commit together."""

    def __init__(self, session: Session, ledger: Ledger, inventory: InventoryStore, now: datetime) -> None:
        super().__init__(session, ledger.cabinet_id)
        self._ledger = ledger
        self._inventory = inventory
        self._now = now

    def append(self, record: LedgerRecord) -> SealedEntry:
        return self._ledger.append(self._session, record)

    def change_stock(self, change: StockChange, record: LedgerRecord) -> SealedEntry:
        return self._inventory.apply(self._session, change, record)

    def save_lockout(self, user_id: str, lockout: LockoutState | None) -> None:
        state.save_lockout(self._session, user_id, lockout)

    def add_discrepancy(
        self,
        *,
        pocket_id: str,
        item_id: str | None,
        expected: int,
        counted: int | None,
        raised_by: str,
        raised_at: datetime,
        deadline: datetime,
        ledger_seq: int,
        controlled: bool,
        kind: str = state.COUNT_MISMATCH,
        workflow_id: str | None = None,
    ) -> int:
        return state.add_discrepancy(
            self._session, cabinet_id=self.cabinet_id, pocket_id=pocket_id, item_id=item_id, expected=expected,
            counted=counted, raised_by=raised_by, raised_at=raised_at, deadline=deadline, ledger_seq=ledger_seq,
            controlled=controlled, kind=kind, workflow_id=workflow_id,
        )  # fmt: skip

    def set_discrepancy_status(self, discrepancy_id: int, status: str, *, by: str | None = None) -> None:
        state.set_discrepancy_status(self._session, discrepancy_id, status=status, by=by, at=self._now if by else None)

    def add_pending_waste(self, waste: PendingWaste) -> int:
        """A new row for ``waste`` (its ``id`` is ignored); the row id."""
        return state.add_pending_waste(
            self._session, cabinet_id=self.cabinet_id, user_id=waste.user_id, patient_id=waste.patient_id,
            order_id=waste.order_id, item_id=waste.item_id, pocket_id=waste.pocket_id, lot_number=waste.lot_number,
            amount=waste.amount, unit=waste.unit, removed_seq=waste.removed_seq, due_at=waste.due_at,
            status=waste.status,
        )  # fmt: skip

    def set_pending_waste_status(self, row_id: int, status: str) -> None:
        state.close_pending_waste(self._session, row_id, status)

    def queue_override_review(
        self, *, ledger_seq: int, user_id: str, patient_id: str | None, item_id: str | None, reason_code: str | None,
        queued_at: datetime,
    ) -> int:  # fmt: skip
        return state.queue_override_review(
            self._session, cabinet_id=self.cabinet_id, ledger_seq=ledger_seq, user_id=user_id, patient_id=patient_id,
            item_id=item_id, reason_code=reason_code, queued_at=queued_at,
        )  # fmt: skip

    def close_override_review(self, review_id: int, *, reviewer_id: str, outcome: str) -> None:
        state.close_override_review(self._session, review_id, reviewer_id=reviewer_id, reviewed_at=self._now,
                                    outcome=outcome)  # fmt: skip

    def add_hold(
        self, *, item_id: str, lot_number: str, pocket_id: str | None, ndc: str | None, reason: str,
        quarantined_by: str | None, ledger_seq: int,
    ) -> int:  # fmt: skip
        return quarantine_state.add_hold(
            self._session, cabinet_id=self.cabinet_id, item_id=item_id, lot_number=lot_number, pocket_id=pocket_id,
            ndc=ndc, reason=reason, quarantined_by=quarantined_by, quarantined_at=self._now, ledger_seq=ledger_seq,
        )  # fmt: skip

    def review_hold(self, hold_id: int, *, decision: str, by: str, seq: int, release: bool) -> None:
        quarantine_state.review_hold(self._session, hold_id, decision=decision, by=by, at=self._now, seq=seq,
                                     release=release)  # fmt: skip

    def write_journal(self, entry: JournalEntry) -> None:
        journal.write_journal(self._session, self.cabinet_id, entry, now=self._now)

    def end_journal(self, workflow_id: str, state_name: str) -> None:
        journal.end_journal(self._session, self.cabinet_id, workflow_id, state=state_name, now=self._now)

    def set_recorded_openings(self, counts: Mapping[str, int]) -> None:
        journal.set_recorded_openings(self._session, self.cabinet_id, counts, now=self._now)

    def create_user(self, user: User, *, pin_hash: str) -> bool:
        """False when the id is taken."""
        if self._session.get(UserRow, user.id) is not None:
            return False
        repo.save_user(self._session, user, pin_hash=pin_hash, created_at=self._now)
        return True

    def set_user_active(self, user_id: str, active: bool) -> bool | None:
        """None: no such user; False: it already was; True: changed."""
        row = self._session.get(UserRow, user_id)
        if row is None:
            return None
        if row.active == active:
            return False
        row.active = active
        self._session.flush()
        return True

    def assign_pocket(self, assignment: PocketAssignment) -> None:
        layout.assign(self._session, assignment)

    def hold_downlink_version(self, kind: str, key: str, version: int) -> None:
        layout.hold_version(self._session, kind, key, version, self._now)


class CabinetStore:
    """The store of one cabinet: ``read()`` and ``write()`` contexts over ``Database`` with this cabinet's ledger."""

    def __init__(self, db: Database, ledger: Ledger) -> None:
        self.db = db
        self.ledger = ledger
        self.cabinet_id = ledger.cabinet_id
        self._inventory = InventoryStore(ledger)

    @property
    def is_simulator(self) -> bool:
        return self.ledger.is_simulator

    @contextmanager
    def read(self) -> Iterator[CabinetReader]:
        with self.db.read() as session:
            yield CabinetReader(session, self.cabinet_id)

    @contextmanager
    def write(self) -> Iterator[CabinetWriter]:
        with self.db.write() as session:
            yield CabinetWriter(session, self.ledger, self._inventory, self.ledger.clock.now())
