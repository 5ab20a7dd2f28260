"""Random sequences over the whole engine (FakeIoBoard, SQLite): logins with right and wrong PINs by different
users, pulls with right and wrong blind counts, takes, opens and closes by hand, wastes with and without a witness
(and cancelled), returns, jams, a drawer pried open, and time passing.

After every step: stock equals what the ledger says, lot by lot; no controlled unit leaves a pocket without a
``dose.removed`` entry naming the actor (and a controlled waste names its witness); no compartment opens without
a grant to the logged-in user (an opening without one is a tamper entry); the chain verifies."""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from controller.domain.clock import FixedClock
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import (
    AccountFor,
    CancelPull,
    CommandResult,
    EnterCount,
    Login,
    Logout,
    SelectItem,
    StartPull,
    Take,
    Tick,
)
from controller.engine.commands_clinical import (
    CancelWitness,
    ListDiscrepancies,
    ResolveDiscrepancy,
    ReturnDose,
    SignWitness,
    WasteDose,
)
from controller.hardware.io_board.fake import FakeIoBoard
from controller.store import schema
from controller.store.database import Database
from controller.store.ledger import verify_chain
from tests.engine.rig import BOARD_LAYOUT, MORPHINE
from tests.engine.test_witness import clinical_engine, seed_clinical

PINS = {"NURSE1": "1111", "NURSE2": "2222", "PHARM1": "3333"}
CONTROLLED = {"D2-P01"}
ORDERS = {"ORD1": (2, "mg", (2, 1)), "ORD2": (1, "units", (1, None))}  # order -> (drawer, waste unit, latch)


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.db = Database.open(f"sqlite:///{Path(self.tmp.name) / 'adc.db'}", create=True)
        schema.upgrade(self.db)
        self.clock = FixedClock(datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
        seed_clinical(self.db, self.clock)
        self.board = FakeIoBoard(
            drawer_count=BOARD_LAYOUT.drawer_count,
            pockets_per_drawer=BOARD_LAYOUT.pockets_per_drawer,
            lidded=BOARD_LAYOUT.lidded,
        )
        self.engine: CabinetEngine = clinical_engine(self.db, self.board, self.clock)
        self.loop = asyncio.new_event_loop()
        assert self.run(self.engine.restore()).ok
        self.tampers_expected = 0

    def teardown(self) -> None:
        self.loop.close()
        self.db.dispose()
        self.tmp.cleanup()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def do(self, command: Any) -> CommandResult:
        result = self.run(self.engine.execute(command))
        assert isinstance(result, CommandResult)
        return result

    def poll(self) -> None:
        self.run(self.engine.poll())

    @property
    def user(self) -> str | None:
        return self.engine.session.active_user_id

    def on_hand(self, pocket: str) -> int:
        with self.db.reader.connect() as c:
            return int(
                c.execute(
                    sa.text("SELECT COALESCE(SUM(quantity), 0) FROM pocket_lots WHERE pocket_id = :p"), {"p": pocket}
                ).scalar_one()
            )

    # --- rules --------------------------------------------------------------------------------------------------

    @rule(user=st.sampled_from(sorted(PINS)), right=st.sampled_from([True, True, True, False]))
    def login(self, user: str, right: bool) -> None:
        result = self.do(Login(user, pin=PINS[user] if right else "9999"))
        if result.ok:
            assert right and self.user == user

    @precondition(lambda self: self.user is not None)
    @rule()
    def logout(self) -> None:
        assert self.do(Logout()).ok

    @precondition(lambda self: self.user is not None and self.engine.session.state.value != "witnessing")
    @rule(
        order=st.sampled_from(sorted(ORDERS)),
        count_off=st.sampled_from([0, 0, 1, -1]),
        quantity=st.integers(0, 2),
        jam=st.sampled_from([False, False, False, True]),
        close_first=st.booleans(),
    )
    def pull(self, order: str, count_off: int, quantity: int, jam: bool, close_first: bool) -> None:
        drawer, _unit, (latch_drawer, lid) = ORDERS[order]
        if not self.do(StartPull("MRN1")).ok:
            return
        if jam:
            self.board.jam_drawer(drawer)
        chosen = self.do(SelectItem(order_id=order))
        if chosen.ok and chosen.data.get("state") == "blind_count":
            chosen = self.do(EnterCount(max(0, self.on_hand("D2-P01") + count_off)))
        self.board.drawers[drawer].jam_condition = False
        pull = self.engine.pull
        if pull is None or pull.state.value != "unlocking":
            if pull is not None and not pull.is_finished:
                self.do_cancel()
            return
        self.board.open_drawer(latch_drawer)
        self.poll()
        if lid is not None:
            self.board.lift_lid(latch_drawer, lid)
            self.poll()
        if not close_first:
            self.do(Take(quantity))
        if lid is not None:
            self.board.close_lid(latch_drawer, lid)
            self.poll()
        self.board.close_drawer(latch_drawer)
        self.poll()
        if close_first or pull.state.value != "done":
            self.do(Take(quantity))  # closed before saying what was taken: accounted for now
            if pull.state.value != "done":
                self.do(Take(0))

    def do_cancel(self) -> None:
        self.do(CancelPull())

    @precondition(lambda self: self.user is not None)
    @rule(
        amount=st.sampled_from([1, 2, 4]),
        witness=st.sampled_from(["NURSE2", "PHARM1", "NURSE1", "wrong", "cancel", "defer"]),
    )
    def waste(self, amount: int, witness: str) -> None:
        pull = self.engine.pull
        if pull is None or pull.item is None:
            return
        unit = "mg" if pull.item.medication.id == MORPHINE else "units"
        result = self.do(WasteDose(Decimal(amount), unit, "partial_dose"))
        if not result.ok or result.data.get("state") != "awaiting_witness":
            return
        if witness in {"cancel", "defer"}:
            assert self.do(CancelWitness()).ok
        elif witness == "wrong":
            assert not self.do(SignWitness("NURSE2", pin="0000")).ok
        else:
            signed = self.do(SignWitness(witness, pin=PINS[witness]))
            assert signed.ok == (witness != self.user), signed

    @precondition(lambda self: self.user is not None)
    @rule(quantity=st.integers(1, 2))
    def return_dose(self, quantity: int) -> None:
        self.do(ReturnDose(quantity))

    @rule(chance=st.sampled_from([1, 2, 3, 0]))
    def pry_open_matrix_drawer(self, chance: int) -> None:
        """Someone forces drawer 1 open while it is locked: the sensors say open, the latch never released."""
        compartment = self.engine.compartments["D1"]
        if chance or compartment.state.value != "locked" or self.board.drawers[1].released:
            return
        self.board.stick_sensor(1, "open", True)
        self.board.stick_sensor(1, "closed", False)
        self.poll()
        self.tampers_expected += 1
        self.board.drawers[1].stuck.clear()
        self.poll()

    @precondition(lambda self: bool(self.engine.compartments.unaccounted()))
    @rule()
    def pharmacist_accounts_for(self) -> None:
        """A pharmacist comes, logs in (after the current user logs out) and accounts for the breach."""
        if self.user is not None and self.user != "PHARM1":
            self.do(Logout())
        if self.user is None and not self.do(Login("PHARM1", pin=PINS["PHARM1"])).ok:
            return
        for compartment in self.engine.compartments.unaccounted():
            assert self.do(AccountFor(compartment)).ok

    @precondition(lambda self: self.user is not None and self.engine.session.state.value != "witnessing")
    @rule(witness=st.sampled_from(["NURSE2", "PHARM1"]))
    def resolve_discrepancies(self, witness: str) -> None:
        for d in self.do(ListDiscrepancies()).data["discrepancies"]:
            if d["state"] in ("open", "escalated"):
                started = self.do(ResolveDiscrepancy(d["discrepancy_id"], "miscount_current"))
                if started.ok and started.data.get("state") == "awaiting_witness":
                    self.do(SignWitness(witness, pin=PINS[witness]))
                    if self.engine.session.state.value == "witnessing":
                        self.do(CancelWitness())

    @rule(seconds=st.sampled_from([1, 20, 55, 70, 3600 * 5]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.board.advance(min(seconds, 60))
        self.poll()
        assert self.do(Tick()).ok

    # --- invariants ---------------------------------------------------------------------------------------------

    def rows(self, sql: str) -> list[Any]:
        with self.db.reader.connect() as c:
            return list(c.execute(sa.text(sql)).all())

    @invariant()
    def stock_equals_the_ledger(self) -> None:
        ledger = {
            (r.pocket_id, r.lot_number): int(r.total)
            for r in self.rows(
                "SELECT pocket_id, lot_number, SUM(quantity_change) AS total FROM ledger_entries "
                "WHERE quantity_change IS NOT NULL GROUP BY pocket_id, lot_number"
            )
        }
        stock = {(r.pocket_id, r.lot_number): int(r.quantity) for r in self.rows("SELECT * FROM pocket_lots")}
        for key in ledger.keys() | stock.keys():
            assert ledger.get(key, 0) == stock.get(key, 0), key

    @invariant()
    def controlled_units_leave_only_with_an_entry(self) -> None:
        for r in self.rows(
            "SELECT event_type, actor_id, witness_id, pocket_id, quantity_change, body FROM ledger_entries"
        ):
            if r.pocket_id in CONTROLLED and r.quantity_change is not None and r.quantity_change < 0:
                assert r.event_type == "dose.removed" and r.actor_id is not None
            if r.event_type == "dose.wasted" and json.loads(r.body)["details"].get("controlled"):
                assert r.witness_id is not None and r.witness_id != r.actor_id

    @invariant()
    def nothing_opens_without_a_grant(self) -> None:
        opened = self.rows("SELECT actor_id, body FROM ledger_entries WHERE event_type = 'drawer.opened'")
        for r in opened:
            details = json.loads(r.body)["details"]
            assert r.actor_id is not None and details.get("workflow_id")
        tampers = self.rows("SELECT seq FROM ledger_entries WHERE event_type = 'drawer.tamper'")
        assert len(tampers) >= self.tampers_expected

    @invariant()
    def chain_verifies(self) -> None:
        with self.db.reader.connect() as c:
            assert verify_chain(c).ok


TestEngine = EngineMachine.TestCase
TestEngine.settings = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
