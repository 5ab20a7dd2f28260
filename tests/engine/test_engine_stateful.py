"""Random sequences over the whole engine (FakeIoBoard, the scanner simulator over TCP behind its driver, SQLite):
logins with right and wrong PINs by different users, pulls with right and wrong blind counts, takes, opens and
closes by hand, wastes with and without a witness (and cancelled), returns to the bin (controlled ones witnessed)
and sealed ones back to their pocket, restocks by scan (wrong items and expired lots among them; the controlled
pocket's restock witnessed and its custody named), blind counts that unlock each pocket (sometimes never opened),
recalls reviewed by a pharmacist (released or condemned) and condemned lots unloaded by scan, jams, a drawer pried
open, and time passing.

After every step: stock equals what the ledger says, lot by lot; no controlled unit leaves a pocket without a
``dose.removed`` entry naming the actor, or a witnessed ``stock.unloaded`` (a controlled waste, return and
restock name their witness, who is not the actor, and a controlled restock its custody source); no compartment
opens without a grant to the logged-in user (an opening without one is a tamper entry), and no count is entered
for a pocket that was not opened for that count; a quarantined lot is never removed while its hold stands; only a
pharmacist reviews a hold; the chain verifies."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from controller.domain.clock import FixedClock
from controller.domain.ndc import Ndc, gtin14_from_ndc
from controller.domain.policies import Policy, WitnessedAction
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
    ConfirmReturn,
    ListDiscrepancies,
    ResolveDiscrepancy,
    ReturnDose,
    SignWitness,
    WasteDose,
)
from controller.engine.commands_pharmacy import (
    CancelRestock,
    CountBack,
    EnterPocketCount,
    FinishRestock,
    ListQuarantines,
    QuarantineDecision,
    RecallLot,
    ReviewQuarantine,
    ScanPackage,
    SignRestockWitness,
    StartCount,
    StartRestock,
    StopCount,
)
from controller.errors import CommunicationError
from controller.fsm.settings import FsmSettings
from controller.fsm.workflows.count import CountKind
from controller.fsm.workflows.restock import RestockKind
from controller.hardware.io_board.fake import FakeIoBoard
from controller.hardware.scanner.driver import ScannerDriver
from controller.store import schema
from controller.store.database import Database
from controller.store.ledger import Ledger, verify_chain
from simulators import scanner as scanner_sim
from simulators.common.control import ControlSurface
from tests.engine.rig import BOARD_LAYOUT, CABINET, HEPARIN, MORPHINE
from tests.engine.test_witness import seed_clinical
from tests.store.test_inventory import FAST_HASHER

# The store lives in memory where there is a tmpfs: this test is about the rules, and fsync on every commit
# (``synchronous=FULL``) would be two thirds of its time. Durability is the store's tests' business.
MEMORY_DIR = "/dev/shm" if Path("/dev/shm").is_dir() else None
PINS = {"NURSE1": "1111", "NURSE2": "2222", "PHARM1": "3333", "TECH1": "4444"}
CONTROLLED = {"D2-P01"}
ORDERS = {"ORD1": (2, "mg", (2, 1)), "ORD2": (1, "units", (1, None))}  # order -> (drawer, waste unit, latch)
POCKETS = {"D1-P01": (1, None, HEPARIN, "72603-456-25"), "D2-P01": (2, 1, MORPHINE, "0409-1891-01")}
WRONG_ITEM_NDC = "0409-1316-32"  # heparin 10,000 units/mL: never goes into either pocket
POLICY = Policy(
    witnessed_actions=frozenset(
        {
            WitnessedAction.CONTROLLED_WASTE,
            WitnessedAction.DISCREPANCY_RESOLUTION,
            WitnessedAction.CONTROLLED_RETURN,
            WitnessedAction.CONTROLLED_RESTOCK,
        }
    )
)


def gs1(ndc: str, lot: str, expiry: date, serial: str) -> str:
    return f"01{gtin14_from_ndc(Ndc.parse(ndc), 0)}17{expiry:%y%m%d}10{lot}\x1d21{serial}"


@dataclass
class Shared:
    """What every example starts from, built once: the migrated and seeded store as a file each example copies
    (running the migrations is most of an example's setup), and one event loop with the scanner simulator on TCP
    behind its driver (closing a serial link waits out its reader, about 0.3 s)."""

    folder: tempfile.TemporaryDirectory[str]
    template: Path
    clock_start: datetime
    loop: asyncio.AbstractEventLoop
    simulator: Any
    scanner: ScannerDriver


_SHARED: list[Shared] = []


def shared() -> Shared:
    if not _SHARED:
        folder = tempfile.TemporaryDirectory(dir=MEMORY_DIR)
        template = Path(folder.name) / "template.db"
        start = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
        db = Database.open(f"sqlite:///{template}", create=True)
        schema.upgrade(db)
        seed_clinical(db, FixedClock(start))
        db.dispose()  # the last connection checkpoints the WAL into the file
        loop = asyncio.new_event_loop()
        # 115200 baud, as USB-serial scanners are often set: the wire time of a GS1 scan is ~5 ms, not ~50 ms.
        simulator = loop.run_until_complete(
            scanner_sim.start(control=ControlSurface(), transport="tcp", baudrate=115200)
        )
        scanner = loop.run_until_complete(ScannerDriver.connect(simulator.url, baudrate=115200, timeout=2.0))
        _SHARED.append(Shared(folder, template, start, loop, simulator, scanner))
    return _SHARED[0]


@pytest.fixture(scope="module", autouse=True)
def close_shared() -> Iterator[None]:
    yield
    while _SHARED:
        done = _SHARED.pop()
        done.loop.run_until_complete(done.scanner.close())
        done.loop.run_until_complete(done.simulator.close())
        done.loop.close()
        done.folder.cleanup()


def lots_of(machine: EngineMachine, pocket: str) -> dict[str, int]:
    rows = machine.rows(f"SELECT lot_number, quantity FROM pocket_lots WHERE pocket_id = '{pocket}'")
    return {r.lot_number: int(r.quantity) for r in rows}


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        base = shared()
        self.tmp = tempfile.TemporaryDirectory(dir=MEMORY_DIR)
        path = Path(self.tmp.name) / "adc.db"
        shutil.copyfile(base.template, path)
        self.db = Database.open(f"sqlite:///{path}")
        self.clock = FixedClock(base.clock_start)
        self.board = FakeIoBoard(
            drawer_count=BOARD_LAYOUT.drawer_count,
            pockets_per_drawer=BOARD_LAYOUT.pockets_per_drawer,
            lidded=BOARD_LAYOUT.lidded,
        )
        self.loop, self.scanner_sim, self.scanner = base.loop, base.simulator, base.scanner
        self.drain_scanner()
        self.engine = CabinetEngine(
            db=self.db,
            ledger=Ledger(CABINET, self.clock, is_simulator=True),
            board=self.board,
            clock=self.clock,
            policy=POLICY,
            settings=FsmSettings(return_sealed_to_pocket=True),
            hasher=FAST_HASHER,
            io_timeout_s=2.0,
            scanner=self.scanner,
        )
        assert self.run(self.engine.restore()).ok
        self.tampers_expected = 0
        self.serials = itertools.count(1)

    def teardown(self) -> None:
        self.db.dispose()
        self.tmp.cleanup()

    def drain_scanner(self) -> None:
        """A scan a failed example left unread must not be read by the next one."""
        while True:
            try:
                self.run(self.scanner.next_scan(0.01))
            except CommunicationError:
                return

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

    @property
    def witnessing(self) -> bool:
        return self.engine.session.state.value == "witnessing"

    def as_user(self, user: str) -> bool:
        """Whoever is at the cabinet steps away (an open witness step is cancelled first) and ``user`` logs in."""
        if self.user == user and not self.witnessing:
            return True
        if self.witnessing:
            self.do(CancelWitness())
        if self.user is not None:
            self.do(Logout())
        return self.do(Login(user, pin=PINS[user])).ok

    def on_hand(self, pocket: str) -> int:
        with self.db.reader.connect() as c:
            return int(
                c.execute(
                    sa.text("SELECT COALESCE(SUM(quantity), 0) FROM pocket_lots WHERE pocket_id = :p"), {"p": pocket}
                ).scalar_one()
            )

    def open_released(self, drawer: int, lid: int | None) -> None:
        """The person opens what is released (a drawer, then its lid); the engine sees it on the next poll."""
        latch = self.board.drawers[drawer]
        if latch.released and not latch.jammed and not latch.is_open:
            self.board.open_drawer(drawer)
            self.poll()
        if lid is not None and self.board.lids[drawer, lid].released and self.board.drawers[drawer].is_open:
            self.board.lift_lid(drawer, lid)
            self.poll()

    def close_all(self, drawer: int, lid: int | None) -> None:
        if lid is not None:
            self.board.close_lid(drawer, lid)
        self.board.close_drawer(drawer)
        self.poll()
        self.poll()

    # --- rules: clinical ----------------------------------------------------------------------------------------

    @rule(user=st.sampled_from(sorted(PINS)), right=st.sampled_from([True, True, True, False]))
    def login(self, user: str, right: bool) -> None:
        result = self.do(Login(user, pin=PINS[user] if right else "9999"))
        if result.ok:
            assert right and self.user == user

    @precondition(lambda self: self.user is not None)
    @rule()
    def logout(self) -> None:
        assert self.do(Logout()).ok

    @precondition(lambda self: self.user is not None and not self.witnessing)
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
                self.do(CancelPull())
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

    def return_last_pull(self, quantity: int, to_pocket: bool, witness: str) -> None:
        if to_pocket:
            started = self.do(ReturnDose(quantity, destination="original_pocket", sealed=True))
            if started.ok and "return_id" in started.data and started.data.get("unlocked"):
                self.open_released(1, None)  # heparin's matrix drawer, unlocked for the return
                self.do(ConfirmReturn(started.data["return_id"]))
                self.close_all(1, None)
            return
        result = self.do(ReturnDose(quantity))
        if result.ok and result.data.get("state") == "awaiting_witness":  # a controlled return
            if witness == "cancel":
                self.do(CancelWitness())
            else:
                self.do(SignWitness(witness, pin=PINS[witness]))
                if self.witnessing:
                    self.do(CancelWitness())

    @precondition(lambda self: self.user is not None and not self.witnessing)
    @rule(
        quantity=st.integers(1, 2),
        to_pocket=st.sampled_from([False, False, True]),
        witness=st.sampled_from(["NURSE2", "PHARM1", "NURSE1", "cancel"]),
    )
    def return_dose(self, quantity: int, to_pocket: bool, witness: str) -> None:
        self.return_last_pull(quantity, to_pocket, witness)

    @precondition(lambda self: not self.witnessing)
    @rule(
        order=st.sampled_from(sorted(ORDERS)),
        quantity=st.integers(1, 2),
        back=st.integers(1, 2),
        to_pocket=st.booleans(),
        witness=st.sampled_from(["NURSE2", "PHARM1"]),
    )
    def pull_then_return(self, order: str, quantity: int, back: int, to_pocket: bool, witness: str) -> None:
        """A nurse takes a dose and brings it back unused (the commonest return)."""
        if not self.as_user("NURSE1"):
            return
        self.pull(order, count_off=0, quantity=quantity, jam=False, close_first=False)
        self.return_last_pull(min(back, quantity), to_pocket, witness)

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
        if not self.as_user("PHARM1"):
            return
        for compartment in self.engine.compartments.unaccounted():
            assert self.do(AccountFor(compartment)).ok

    @precondition(lambda self: self.user is not None and not self.witnessing)
    @rule(witness=st.sampled_from(["NURSE2", "PHARM1"]))
    def resolve_discrepancies(self, witness: str) -> None:
        for d in self.do(ListDiscrepancies()).data["discrepancies"]:
            if d["state"] in ("open", "escalated"):
                started = self.do(ResolveDiscrepancy(d["discrepancy_id"], "miscount_current"))
                if started.ok and started.data.get("state") == "awaiting_witness":
                    self.do(SignWitness(witness, pin=PINS[witness]))
                    if self.witnessing:
                        self.do(CancelWitness())

    @rule(seconds=st.sampled_from([1, 20, 55, 70, 3600 * 5]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.board.advance(min(seconds, 60))
        self.poll()
        assert self.do(Tick()).ok

    # --- rules: pharmacy ----------------------------------------------------------------------------------------

    def scan(self, ndc: str, lot: str, expiry: date, units: int = 1) -> CommandResult:
        self.scanner_sim.model.present(gs1(ndc, lot, expiry, f"S{next(self.serials):05d}"), "]d2")
        return self.do(ScanPackage(units=units))

    def finish_restock(self, witness: str) -> None:
        """Finish; a controlled one waits for its witness, who signs (or the restock is cancelled unrecorded)."""
        finished = self.do(FinishRestock())
        if finished.ok and finished.data.get("state") == "awaiting_witness":
            signed = self.do(SignRestockWitness(witness, pin=PINS.get(witness, "0000")))
            if witness in ("NURSE2", "PHARM1"):
                assert signed.ok or signed.code == "session.locked_out", signed
            else:  # the technician for their own restock, or a wrong PIN
                assert signed.code in ("policy.witness_is_actor", "auth.bad_credentials"), signed
            if not signed.ok:
                self.do(CancelWitness())
        current = self.engine.pharmacy.restock.current
        if current is not None and current.state.value not in ("done", "cancelled"):
            assert self.do(CancelRestock()).ok

    @precondition(lambda self: not self.witnessing)
    @rule(
        pocket=st.sampled_from(sorted(POCKETS)),
        packages=st.lists(st.sampled_from(["good", "good", "good", "wrong_item", "expired"]), min_size=1, max_size=3),
        count_off=st.sampled_from([0, 0, 0, 1]),
        witness=st.sampled_from(["NURSE2", "PHARM1", "TECH1", "wrong"]),
    )
    def restock(self, pocket: str, packages: list[str], count_off: int, witness: str) -> None:
        drawer, lid, _item, ndc = POCKETS[pocket]
        if not self.as_user("TECH1"):
            return
        source = "vault:CII-1" if pocket in CONTROLLED else None
        if not self.do(StartRestock(pocket, quantity=len(packages), source=source)).ok:
            return
        self.open_released(drawer, lid)
        self.do(CountBack(self.on_hand(pocket) + count_off))
        lot = f"R{next(self.serials)}"
        for package in packages:
            if package == "wrong_item":
                assert self.scan(WRONG_ITEM_NDC, lot, date(2027, 12, 31)).code == "inventory.item_mismatch"
            elif package == "expired":
                assert self.scan(ndc, "X" + lot, date(2025, 1, 31)).code == "workflow.lot_expired"
            else:
                assert self.scan(ndc, lot, date(2027, 12, 31)).ok
        self.finish_restock(witness)
        self.close_all(drawer, lid)

    @precondition(lambda self: not self.witnessing)
    @rule(
        kind=st.sampled_from([CountKind.SHIFT_CHANGE, CountKind.CYCLE]),
        offs=st.lists(st.sampled_from([0, 0, 1, -1]), min_size=2, max_size=2),
        open_it=st.sampled_from([True, True, True, False]),
    )
    def blind_count(self, kind: CountKind, offs: list[int], open_it: bool) -> None:
        """A blind count; each pocket is unlocked in turn; sometimes the person types a number without opening."""
        if not self.as_user("NURSE1" if kind is CountKind.SHIFT_CHANGE else "TECH1"):
            return
        pockets = None if kind is CountKind.SHIFT_CHANGE else ("D1-P01", "D2-P01")
        started = self.do(StartCount(kind, pockets))
        count_view = started.data.get("count")
        for off in offs:
            if count_view is None or count_view["next"] is None:
                break
            pocket = count_view["next"]
            drawer, lid, _item, _ndc = POCKETS[pocket]
            if open_it:
                self.open_released(drawer, lid)
            entered = self.do(EnterPocketCount(pocket, max(0, self.on_hand(pocket) + off)))
            if not entered.ok:
                assert entered.code == "workflow.pocket_not_opened", entered
                break
            count_view = entered.data.get("count")
            if lid is not None and self.board.lids[drawer, lid].is_open:
                self.board.close_lid(drawer, lid)
                self.poll()
        for drawer in (1, 2):
            self.close_all(drawer, 1 if drawer == 2 else None)
        current = self.engine.pharmacy.counts.current
        if current is not None and current.state.value == "counting":
            assert self.do(StopCount()).ok

    @precondition(lambda self: not self.witnessing)
    @rule(
        lot=st.sampled_from(["A1", "B2", "H1"]),
        decision=st.sampled_from(["release", "release", "destroy", "keep"]),
    )
    def recall_and_review(self, lot: str, decision: str) -> None:
        """A recall by NDC and lot, then (or later) the pharmacist's review."""
        if not self.as_user("PHARM1"):
            return
        ndc = POCKETS["D1-P01" if lot == "H1" else "D2-P01"][3]
        recalled = self.do(RecallLot(ndc, lot))
        assert recalled.ok, recalled
        hold = recalled.data["quarantine_id"]
        if decision == "release":
            assert self.do(ReviewQuarantine(hold, QuarantineDecision.RELEASE, "recall_withdrawn", "notice")).ok
        elif decision == "destroy":
            assert self.do(ReviewQuarantine(hold, QuarantineDecision.DESTROY, "recalled")).ok

    @precondition(lambda self: not self.witnessing)
    @rule(witness=st.sampled_from(["NURSE2", "PHARM1", "TECH1"]))
    def unload_condemned(self, witness: str) -> None:
        """A technician takes condemned lots out by scan, as the unload list says."""
        if not self.as_user("TECH1"):
            return
        for _ in range(3):  # the list is read again after each unload: two holds may name the same lot
            holds = self.do(ListQuarantines()).data["quarantines"]
            places = [place for hold in holds if hold["state"] == "to_unload" for place in hold["unload"]]
            if not places:
                return
            pocket, lot, units = places[0]["pocket_id"], places[0]["lot"], places[0]["quantity"]
            drawer, lid, _item, ndc = POCKETS[pocket]
            if not self.do(StartRestock(pocket, kind=RestockKind.UNLOAD, quantity=units)).ok:
                return
            self.open_released(drawer, lid)
            self.do(CountBack(self.on_hand(pocket)))
            scanned = self.scan(ndc, lot, date(2027, 1, 31), units=units)
            assert scanned.ok, scanned
            self.finish_restock(witness)
            self.close_all(drawer, lid)
            if self.engine.pharmacy.restock.current is not None and lots_of(self, pocket).get(lot, 0) == units:
                return  # not unloaded (its witness did not sign): the rest waits for another round

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
    def controlled_units_move_only_with_named_people(self) -> None:
        for r in self.rows(
            "SELECT event_type, actor_id, witness_id, item_id, pocket_id, quantity_change, body FROM ledger_entries"
        ):
            details = json.loads(r.body)["details"]
            witnessed = r.witness_id is not None and r.witness_id != r.actor_id
            if r.pocket_id in CONTROLLED and r.quantity_change is not None and r.quantity_change < 0:
                assert r.event_type in ("dose.removed", "stock.unloaded") and r.actor_id is not None
                assert r.event_type == "dose.removed" or witnessed  # a controlled unload is witnessed
            if r.event_type == "dose.wasted" and details.get("controlled"):
                assert witnessed
            if r.event_type == "dose.returned" and r.item_id == MORPHINE:
                assert witnessed
            if r.event_type == "stock.restocked" and r.pocket_id in CONTROLLED:
                assert witnessed and details["custody"]["source"] == "vault:CII-1"
                assert details["custody"]["witness"] == r.witness_id

    @invariant()
    def nothing_opens_without_a_grant_and_no_count_without_an_opening(self) -> None:
        opened: dict[str, list[int]] = {}
        entries = self.rows("SELECT seq, event_type, actor_id, pocket_id, body FROM ledger_entries ORDER BY seq")
        for r in entries:
            details = json.loads(r.body)["details"]
            if r.event_type == "drawer.opened":
                assert r.actor_id is not None and details.get("workflow_id")
                opened.setdefault(details["workflow_id"], []).append(r.seq)
            if r.event_type == "count.entered" and details.get("count_id") and r.pocket_id is not None:
                # a pocket is counted only after something was opened for this very count
                assert any(seq < r.seq for seq in opened.get(details["count_id"], [])), r.seq
                if details.get("opened_seq") is not None:
                    assert details["opened_seq"] in opened[details["count_id"]]
        tampers = [r for r in entries if r.event_type == "drawer.tamper"]
        assert len(tampers) >= self.tampers_expected

    @invariant()
    def quarantined_lots_are_never_removed_and_only_pharmacists_review(self) -> None:
        holds = self.rows("SELECT item_id, lot_number, pocket_id, ledger_seq, status, review_seq FROM quarantined_lots")
        removals = self.rows(
            "SELECT seq, item_id, pocket_id, lot_number FROM ledger_entries WHERE event_type = 'dose.removed'"
        )
        for hold in holds:
            ends = hold.review_seq if hold.status == "released" else None
            for r in removals:
                if r.item_id != hold.item_id or r.lot_number != hold.lot_number or r.seq < hold.ledger_seq:
                    continue
                if hold.pocket_id is not None and r.pocket_id != hold.pocket_id:
                    continue
                assert ends is not None and r.seq > ends, (r.seq, hold)
        reviewers = self.rows("SELECT actor_id FROM ledger_entries WHERE event_type = 'stock.quarantine_reviewed'")
        assert {r.actor_id for r in reviewers} <= {"PHARM1"}

    @invariant()
    def chain_verifies(self) -> None:
        with self.db.reader.connect() as c:
            assert verify_chain(c).ok


TestEngine = EngineMachine.TestCase
TestEngine.settings = settings(
    max_examples=75,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
