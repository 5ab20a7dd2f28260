"""What may not be used: recalled lots, refrigerator excursions, and the downtime / critical-override mode.

Responsible for: a recall by NDC + lot (the lot of that item is blocked in every pocket, now and on later
restocks, with one ``stock.quarantined`` entry and the unload list of where it sits); the refrigerator watch
(``check_environment`` reads the I/O board's environment sensors; a temperature outside 2-8 °C for longer than
``excursion_limit``, default 30 min, quarantines every lot in the refrigerator pockets pending pharmacist review:
one ``environment.temperature_excursion`` entry and one ``stock.quarantined`` entry per lot); and
critical-override mode (an administrator turns it on or off, one ``configuration.changed`` entry; while on, the
items the formulary flags ``critical_override`` (rescue drugs) may be pulled without an order, each into the
review queue, and anything else still needs its order or an ordinary override: ``policies.authorise_removal``).

Expired lots need no row: ``engine_state.usable_lots`` skips them, as it skips quarantined ones, so FEFO never
picks either and a pocket holding nothing else refuses the pull (``quarantine.no_usable_stock``).

Downtime: the cabinet has no link to a hospital server yet; everything here runs from the local store, which is
what it would keep doing while such a link is down.

Each hold's id (``quarantine_id``) comes back with the recall and the excursion; a pharmacist releases or
condemns it with ``ReviewQuarantine`` (``quarantine_review.py``, registered here).

Not responsible for: the review rules (``quarantine_review.py``), or the sensor poll loop (a caller runs
``check_environment`` periodically, as it calls ``poll``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from controller.domain.ndc import Ndc
from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import Privilege
from controller.engine.commands import CommandResult
from controller.engine.commands_pharmacy import RecallLot, SetCriticalOverride
from controller.engine.quarantine_review import HoldKind, QuarantineReview, where_lot_sits
from controller.errors import ControllerError, InvalidIdentifierError
from controller.store import repositories as repo
from controller.store.engine_state import QUARANTINE_ACTIVE
from controller.store.models import PocketLotRow, QuarantinedLotRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session as DbSession

    from controller.engine.cabinet import CabinetEngine
    from controller.hardware.io_board.interface import EnvironmentReading

FRIDGE_LOW_C = 2.0
FRIDGE_HIGH_C = 8.0
EXCURSION_LIMIT = timedelta(minutes=30)


@dataclass
class FridgeWatch:
    since: datetime | None = None  # first reading outside the range in the current excursion
    worst_c: float | None = None
    quarantined: bool = False  # this excursion already quarantined the contents


class QuarantineWorkflow:
    def __init__(self, engine: CabinetEngine, *, excursion_limit: timedelta = EXCURSION_LIMIT) -> None:
        self.engine = engine
        self.excursion_limit = excursion_limit
        self.fridge = FridgeWatch()

    def register(self) -> None:
        self.engine.register(RecallLot, self.recall)
        self.engine.register(SetCriticalOverride, self.set_critical_override)
        QuarantineReview(self.engine, excursion_ongoing=lambda: self.fridge.since is not None).register()

    def _append(self, session: DbSession, record: LedgerRecord) -> int:
        return self.engine.ledger.append(session, record).seq

    def _details(self, kind: str, **more: Any) -> dict[str, Any]:
        return {"kind": kind, "occurred_at": self.engine.clock.now().isoformat(), **more}

    # --- recall ----------------------------------------------------------------------------------------------------

    async def recall(self, command: RecallLot) -> CommandResult:
        e = self.engine
        user = e.session.user
        assert user is not None
        if not (user.has(Privilege.REVIEW) or user.has(Privilege.ADMINISTER)):
            return CommandResult.refuse(
                "policy.privilege_missing",
                f"user {user.id} may not quarantine a lot",
                user=user.id,
                privilege=Privilege.REVIEW.value,
            )
        try:
            ndc = command.ndc.strip()
            digits = ndc if ndc.isascii() and ndc.isdigit() and len(ndc) == 10 else Ndc.parse(ndc).digits
        except InvalidIdentifierError as error:
            return CommandResult.from_error(error)
        with e.db.write() as session:
            medication = repo.medication_by_ndc_digits(session, digits)
            if medication is None:
                return CommandResult.refuse("engine.item_not_stocked", f"no formulary item carries NDC {ndc}", ndc=ndc)
            unload = where_lot_sits(session, e, medication.id, command.lot_number, None)
            seq = self._append(
                session,
                LedgerRecord(
                    event_type=EventType.LOT_QUARANTINED,
                    actor_id=user.id,
                    item_id=medication.id,
                    lot_number=command.lot_number,
                    reason_code=command.reason,
                    details=self._details("stock.recalled", ndc=digits, unload=unload),
                ),
            )
            row = QuarantinedLotRow(
                cabinet_id=e.cabinet_id,
                item_id=medication.id,
                lot_number=command.lot_number,
                pocket_id=None,
                ndc=digits,
                reason=command.reason,
                quarantined_by=user.id,
                quarantined_at=e.clock.now(),
                ledger_seq=seq,
                status=QUARANTINE_ACTIVE,
            )
            session.add(row)
            session.flush()
            quarantine_id = row.id
        return CommandResult.success(
            quarantine_id=quarantine_id, item_id=medication.id, lot=command.lot_number, unload=unload, ledger_seqs=[seq]
        )

    # --- refrigerator ----------------------------------------------------------------------------------------------

    async def check_environment(self, reading: EnvironmentReading | None = None) -> CommandResult:
        """Act on the refrigerator temperature (run periodically): ``reading`` is the environment block of the
        latest snapshot (the running loop), or None to read the environment sensors once."""
        e = self.engine
        async with e._lock:
            try:
                if reading is None:
                    reading = await e._io(e.board.read_environment())
            except ControllerError as error:
                return CommandResult.from_error(error)
            now = e.clock.now()
            temperature = reading.temperature_c
            if FRIDGE_LOW_C <= temperature <= FRIDGE_HIGH_C:
                self.fridge = FridgeWatch()
                return CommandResult.success(temperature_c=temperature, excursion=False)
            watch = self.fridge
            if watch.since is None:
                watch.since = now
            far = abs(temperature - (FRIDGE_LOW_C + FRIDGE_HIGH_C) / 2)
            if watch.worst_c is None or far > abs(watch.worst_c - (FRIDGE_LOW_C + FRIDGE_HIGH_C) / 2):
                watch.worst_c = temperature
            lasted = now - watch.since
            if lasted < self.excursion_limit or watch.quarantined:
                return CommandResult.success(
                    temperature_c=temperature, excursion=True, minutes=lasted.total_seconds() / 60, quarantined=[]
                )
            held = self._quarantine_fridge(now, temperature, lasted)
            watch.quarantined = True
            return CommandResult.success(
                temperature_c=temperature, excursion=True, minutes=lasted.total_seconds() / 60, quarantined=held
            )

    def _quarantine_fridge(self, now: datetime, temperature: float, lasted: timedelta) -> list[dict[str, Any]]:
        e = self.engine
        fridge = [s for s in e.slots.values() if s.drawer_kind == "refrigerator" and s.item_id is not None]
        held: list[dict[str, Any]] = []
        with e.db.write() as session:
            self._append(
                session,
                LedgerRecord(
                    event_type=EventType.TEMPERATURE_EXCURSION,
                    reason_code="fridge_out_of_range",
                    details=self._details(
                        "environment.temperature_excursion",
                        temperature_c=f"{temperature:.1f}",
                        worst_c=f"{self.fridge.worst_c:.1f}" if self.fridge.worst_c is not None else None,
                        since=self.fridge.since.isoformat() if self.fridge.since else None,
                        minutes=int(lasted.total_seconds() // 60),
                        range_c=[f"{FRIDGE_LOW_C:.1f}", f"{FRIDGE_HIGH_C:.1f}"],
                    ),
                ),
            )
            for slot in fridge:
                assert slot.item_id is not None
                lots = session.execute(
                    select(PocketLotRow).where(PocketLotRow.pocket_id == slot.pocket_id, PocketLotRow.quantity > 0)
                ).scalars()
                for lot in lots:
                    seq = self._append(
                        session,
                        LedgerRecord(
                            event_type=EventType.LOT_QUARANTINED,
                            item_id=slot.item_id,
                            pocket_id=slot.pocket_id,
                            lot_number=lot.lot_number,
                            quantity_actual=lot.quantity,
                            reason_code="temperature_excursion",
                            details=self._details("stock.quarantined", pending="pharmacist_review"),
                        ),
                    )
                    row = QuarantinedLotRow(
                        cabinet_id=e.cabinet_id,
                        item_id=slot.item_id,
                        lot_number=lot.lot_number,
                        pocket_id=slot.pocket_id,
                        ndc=None,
                        reason=HoldKind.EXCURSION.value,
                        quarantined_by=None,
                        quarantined_at=now,
                        ledger_seq=seq,
                        status=QUARANTINE_ACTIVE,
                    )
                    session.add(row)
                    session.flush()
                    held.append(
                        {"pocket_id": slot.pocket_id, "lot": lot.lot_number, "quantity": lot.quantity,
                         "quarantine_id": row.id}
                    )  # fmt: skip
        return held

    # --- critical override -----------------------------------------------------------------------------------------

    async def set_critical_override(self, command: SetCriticalOverride) -> CommandResult:
        e = self.engine
        user = e.session.user
        assert user is not None
        if not user.has(Privilege.ADMINISTER):
            return CommandResult.refuse(
                "policy.privilege_missing",
                f"user {user.id} may not change the cabinet's mode",
                user=user.id,
                privilege=Privilege.ADMINISTER.value,
            )
        with e.db.write() as session:
            seq = self._append(
                session,
                LedgerRecord(
                    event_type=EventType.CONFIGURATION_CHANGED,
                    actor_id=user.id,
                    reason_code="critical_override_on" if command.enabled else "critical_override_off",
                    note=command.reason or None,
                    details=self._details("cabinet.critical_override", enabled=command.enabled),
                ),
            )
        e.critical_override_mode = command.enabled
        return CommandResult.success(critical_override_mode=command.enabled, ledger_seqs=[seq])
