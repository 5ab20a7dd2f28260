"""Stateful property test: whatever sequence of removals, restocks, returns, refusals and failed transactions
happens, the stock on hand equals what the ledger says and the chain verifies."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from controller.domain.clock import FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.errors import SafetyError
from controller.store import schema
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import InventoryStore, StockChange, list_pockets
from controller.store.ledger import Ledger, verify_chain
from controller.store.seed import seed_cabinet
from tests.store.test_inventory import CABINET, FAST_HASHER, small_layout

FORMULARY = load_formulary()
STOCKED_POCKETS = {"D1-P01": "MORPHINE-4MG-ML-CARP", "D1-P02": "HEPARIN-5000U-ML-1ML"}
LOTS = ("A1", "B2", "C3")


class SimulatedFailureError(Exception):
    """Something after the stock change failed (hardware, a crash) before commit."""


class StockMatchesLedger(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="adc-stateful-"))
        self.db = Database.open(f"sqlite:///{self.folder / 'adc.db'}", create=True)
        schema.upgrade(self.db)
        self.clock = FixedClock(datetime(2026, 11, 25, 7, tzinfo=UTC))
        self.ledger = Ledger(CABINET, self.clock, is_simulator=True)
        self.inventory = InventoryStore(self.ledger)
        with self.db.write() as session:
            seed_cabinet(session, small_layout(), FORMULARY, ledger=self.ledger, hasher=FAST_HASHER, clock=self.clock)
        self.expected: dict[tuple[str, str], int] = {("D1-P01", "A1"): 4, ("D1-P01", "B2"): 6}

    def teardown(self) -> None:
        self.db.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _apply(self, pocket: str, lot: str, change: int, event: EventType, *, fail_after: bool = False) -> None:
        self.clock.advance(timedelta(minutes=1))
        with self.db.write() as session:
            self.inventory.apply(
                session,
                StockChange(pocket, lot, change, expiry=date(2027, 6, 30)),
                LedgerRecord(event, actor_id="NURSE1", item_id=STOCKED_POCKETS[pocket]),
            )
            if fail_after:
                raise SimulatedFailureError

    @rule(pocket=st.sampled_from(sorted(STOCKED_POCKETS)), lot=st.sampled_from(LOTS), units=st.integers(1, 8))
    def remove(self, pocket: str, lot: str, units: int) -> None:
        on_hand = self.expected.get((pocket, lot), 0)
        try:
            self._apply(pocket, lot, -units, EventType.DOSE_REMOVED)
        except SafetyError as exc:
            assert exc.code == "inventory.negative_quantity"
            assert units > on_hand
            return
        assert units <= on_hand
        self.expected[(pocket, lot)] = on_hand - units

    @rule(pocket=st.sampled_from(sorted(STOCKED_POCKETS)), lot=st.sampled_from(LOTS), units=st.integers(1, 12))
    def restock(self, pocket: str, lot: str, units: int) -> None:
        self._apply(pocket, lot, units, EventType.STOCK_RESTOCKED)
        self.expected[(pocket, lot)] = self.expected.get((pocket, lot), 0) + units

    @rule(pocket=st.sampled_from(sorted(STOCKED_POCKETS)), lot=st.sampled_from(LOTS), units=st.integers(-3, 3))
    def change_that_fails_midway(self, pocket: str, lot: str, units: int) -> None:
        if units == 0:
            return
        # Either refused up front or rolled back: the stock must not move.
        with contextlib.suppress(SimulatedFailureError, SafetyError):
            self._apply(pocket, lot, units, EventType.COUNT_ADJUSTED, fail_after=True)

    @rule(units=st.integers(1, 3))
    def return_to_bin(self, units: int) -> None:
        self.clock.advance(timedelta(minutes=1))
        with self.db.write() as session:
            self.inventory.apply(
                session,
                StockChange("D2-P01", "RET", units, expiry=date(2027, 1, 31)),
                LedgerRecord(EventType.DOSE_RETURNED, actor_id="NURSE1", item_id="MORPHINE-4MG-ML-CARP"),
            )
        self.expected[("D2-P01", "RET")] = self.expected.get(("D2-P01", "RET"), 0) + units

    @invariant()
    def stock_equals_the_ledger_and_the_model(self) -> None:
        with self.db.reader.connect() as connection:
            by_ledger = {
                (r.pocket_id, r.lot_number): int(r.total)
                for r in connection.execute(
                    sa.text(
                        "SELECT pocket_id, lot_number, SUM(quantity_change) AS total FROM ledger_entries "
                        "WHERE quantity_change IS NOT NULL GROUP BY pocket_id, lot_number"
                    )
                )
            }
            report = verify_chain(connection)
        with self.db.read() as session:
            on_hand = {
                (p.pocket_id, lot.lot_number): lot.quantity for p in list_pockets(session, CABINET) for lot in p.lots
            }
        nonzero = {key: value for key, value in self.expected.items() if value}
        assert on_hand == nonzero
        assert {key: value for key, value in by_ledger.items() if value} == nonzero
        assert report.ok, report.problems


TestStockMatchesLedger = StockMatchesLedger.TestCase
TestStockMatchesLedger.settings = settings(
    max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
