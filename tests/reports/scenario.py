"""Three days at a station, driven through the engine (I/O board and scanner simulators over TCP, their real
drivers): the ledger the report tests check their numbers against.

Day 1: NURSE1 removes morphine for two patients (a witnessed partial waste, a pull split over two lots, a return to
the bin), an override removal, heparin and midazolam. Day 2: NURSE2 miscounts morphine (a discrepancy left open),
removes heparin; TECH1 restocks morphine from the vault; PHARM1 recalls the heparin lot in stock; the refrigerator
warms past the limit (insulin held) and is released after review; PHARM1 reviews the override. Day 3: NURSE1
miscounts morphine, resolves it with NURSE2 as witness, PHARM1 reviews it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from controller.domain.clock import FixedClock
from controller.domain.policies import OverrideReason, OverrideReviewOutcome, Policy
from controller.domain.quarantine import QuarantineDecision
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import (
    CheckRefrigerator,
    CountBack,
    EnterCount,
    FinishRestock,
    ListDiscrepancies,
    ListOverrideReviews,
    Login,
    Logout,
    RecallLot,
    ResolveDiscrepancy,
    ReturnDose,
    ReviewDiscrepancy,
    ReviewOverride,
    ReviewQuarantine,
    ScanPackage,
    SelectItem,
    SignWitness,
    StartPull,
    StartRestock,
    Take,
    Tick,
    WasteDose,
)
from controller.engine.results import CommandResult
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.seed import seed_cabinet
from tests.engine import pharmacy_rig
from tests.engine.pharmacy_rig import INSULIN, Pharmacy, gs1, open_pharmacy
from tests.engine.rig import CABINET, HEPARIN, MORPHINE, Cabinet
from tests.hardware.io_board.rigs import run
from tests.store.test_inventory import FAST_HASHER

MIDAZOLAM = "MIDAZOLAM-1MG-ML-2ML"  # schedule IV
CARE_AREA = "ICU"
BIN = "D4-P01"


def layout() -> dict[str, Any]:
    """The pharmacy rig's cabinet (heparin and naloxone in the matrix drawer, morphine in a lidded pocket, insulin in
    the refrigerator) plus midazolam in the second lidded pocket, a return bin, a second nurse and a second patient."""
    data = pharmacy_rig.layout()
    data["user"].append({"id": "NURSE2", "name": "Nurse Two", "roles": ["nurse"], "pin": "2222"})
    data["drawer"][1]["pocket"].append(
        {"id": "D2-P02", "item": MIDAZOLAM, "par": 6, "min": 2, "max": 8,
         "lots": [{"lot": "MZ0", "expiry": "2026-12-10", "quantity": 2},
                  {"lot": "MZ1", "expiry": "2027-02-28", "quantity": 5}]},
    )  # fmt: skip
    data["drawer"].append({"id": "D4", "kind": "return_bin", "label": "returns", "pocket": [{"id": BIN}]})
    data["patient"].append({"mrn": "MRN2", "encounter": "ENC2", "family_name": "Roe", "given_name": "Sam"})
    data["order"] += [
        {"id": "ORD3", "mrn": "MRN1", "item": MIDAZOLAM, "dose": "2", "dose_unit": "mg", "verified": True},
        {"id": "ORD4", "mrn": "MRN2", "item": MORPHINE, "dose": "8", "dose_unit": "mg", "verified": True},
    ]
    return data


def seed(db: Database, clock: FixedClock) -> None:
    with db.write() as session:
        seed_cabinet(
            session,
            layout(),
            load_formulary(),
            ledger=Ledger(CABINET, clock, is_simulator=True),
            hasher=FAST_HASHER,
            clock=clock,
        )


@dataclass
class Facts:
    """What the scenario did, as the scenario knows it (not read back from any report)."""

    seeded_at: datetime
    started_at: datetime
    ended_at: datetime
    recalled_at: datetime | None = None
    held_at: datetime | None = None
    released_at: datetime | None = None
    open_discrepancy: str = ""
    resolved_discrepancy: str = ""


async def ok(engine: CabinetEngine, command: Any) -> CommandResult[Any]:
    result = await engine.execute(command)
    assert result.ok, (command, result)
    return result


async def switch(engine: CabinetEngine, user: str, pin: str) -> None:
    if engine.ctx.session.is_active:
        await ok(engine, Logout())
    await ok(engine, Login(user, pin=pin))


async def pull(
    engine: CabinetEngine, cab: Cabinet, patient: str, order_id: str | None = None, *, count: int | None,
    quantity: int, **select: Any,
) -> str:  # fmt: skip
    """Start a pull, choose, blind-count (when asked), open the drawer (and lid), take, close; the pull id."""
    pull_id = (await ok(engine, StartPull(patient))).unwrap().pull_id
    chosen = await ok(engine, SelectItem(pull_id, order_id=order_id, **select))
    pocket = str(chosen.data["pull"]["pocket_id"])
    if count is not None:
        await ok(engine, EnterCount(pull_id, count))
    drawer, lid = {"D1": (1, None), "D2": (2, int(pocket[-1]))}[pocket[:2]]
    cab.world.open_drawer(drawer)
    await engine.poll()
    if lid is not None:
        cab.world.lift_lid(drawer, lid)
        await engine.poll()
    await ok(engine, Take(pull_id, quantity))
    if lid is not None:
        cab.world.close_lid(drawer, lid)
        await engine.poll()
    cab.world.close_drawer(drawer)
    await engine.poll()
    return pull_id


async def _witness_if_asked(engine: CabinetEngine, result: CommandResult[Any], witness: str, pin: str) -> None:
    if result.data.get("state") == "awaiting_witness":
        await ok(engine, SignWitness(witness, pin=pin))


async def day_one(e: CabinetEngine, cab: Cabinet, clock: FixedClock) -> None:
    await switch(e, "NURSE1", "1111")
    first = await pull(e, cab, "MRN1", "ORD1", count=9, quantity=1)  # lot A1
    waste = await ok(e, WasteDose(Decimal(2), "mg", "partial_dose", pull_id=first))
    await _witness_if_asked(e, waste, "NURSE2", "2222")
    clock.advance(timedelta(minutes=10))
    second = await pull(e, cab, "MRN2", "ORD4", count=8, quantity=2)  # lots A1 and B2
    returned = await ok(e, ReturnDose(second, 1))
    await _witness_if_asked(e, returned, "NURSE2", "2222")
    clock.advance(timedelta(minutes=10))
    await pull(e, cab, "MRN1", count=6, quantity=1, item_id=MORPHINE, override_reason=OverrideReason.SEVERE_PAIN)
    await pull(e, cab, "MRN1", "ORD2", count=None, quantity=1)  # heparin, not controlled
    await pull(e, cab, "MRN1", "ORD3", count=7, quantity=1)  # midazolam lot MZ0
    await ok(e, Logout())


async def restock_morphine(e: CabinetEngine, ph: Pharmacy) -> None:
    """TECH1 brings two cartridges of lot M9 from the vault, through the scanner."""
    cab = ph.cab
    await switch(e, "TECH1", "4444")
    restock_id = (await ok(e, StartRestock("D2-P01", quantity=2, source="vault:CII-1"))).unwrap().restock_id
    cab.world.open_drawer(2)
    await e.poll()
    cab.world.lift_lid(2, 1)
    await e.poll()
    await ok(e, CountBack(restock_id, 4))
    ph.scanner.present(gs1("0409-1891-01", "M9", "271130", "C1"), "]d2")
    await ok(e, ScanPackage(restock_id, units=2))
    await ok(e, FinishRestock(restock_id))
    cab.world.close_lid(2, 1)
    await e.poll()
    cab.world.close_drawer(2)
    await e.poll()


async def day_two(e: CabinetEngine, ph: Pharmacy, clock: FixedClock, facts: Facts) -> None:
    cab = ph.cab
    await switch(e, "NURSE2", "2222")
    await pull(e, cab, "MRN1", "ORD1", count=3, quantity=1)  # 5 there: left open
    await pull(e, cab, "MRN1", "ORD2", count=None, quantity=1)
    await restock_morphine(e, ph)
    clock.advance(timedelta(hours=1))
    await switch(e, "PHARM1", "3333")
    facts.recalled_at = clock.now()
    await ok(e, RecallLot("72603-456-25", "H1"))  # every heparin unit in the cabinet
    cab.world.set_fridge_temperature(11.5)
    assert (await ok(e, CheckRefrigerator())).data["excursion"] is True
    clock.advance(timedelta(minutes=31))
    facts.held_at = clock.now()
    held = (await ok(e, CheckRefrigerator())).data["quarantined"]
    assert [h["lot"] for h in held] == ["INS1"]
    clock.advance(timedelta(minutes=14))
    cab.world.set_fridge_temperature(5.0)
    assert (await ok(e, CheckRefrigerator())).data["excursion"] is False
    facts.released_at = clock.now()
    release = QuarantineDecision.RELEASE
    await ok(e, ReviewQuarantine(held[0]["quarantine_id"], release, "within_stability_data", "28 days at 25 °C"))
    [review] = e.query(ListOverrideReviews()).unwrap().reviews
    await ok(e, ReviewOverride(review["review_id"], OverrideReviewOutcome.FOLLOW_UP, note="no order"))
    await ok(e, Logout())


async def day_three(e: CabinetEngine, cab: Cabinet, clock: FixedClock, facts: Facts) -> None:
    await ok(e, Tick())  # NURSE2's discrepancy is past the end of its shift: escalated
    await switch(e, "NURSE1", "1111")
    await pull(e, cab, "MRN1", "ORD1", count=5, quantity=1)  # 6 there: a discrepancy
    listed = e.query(ListDiscrepancies()).unwrap().discrepancies
    mine = next(d for d in listed if d["raised_by"] == "NURSE1")
    facts.open_discrepancy = next(d for d in listed if d["raised_by"] == "NURSE2")["discrepancy_id"]
    facts.resolved_discrepancy = mine["discrepancy_id"]
    resolving = await ok(e, ResolveDiscrepancy(mine["discrepancy_id"], "miscount_current", "recounted"))
    await _witness_if_asked(e, resolving, "NURSE2", "2222")
    clock.advance(timedelta(minutes=30))
    await switch(e, "PHARM1", "3333")
    await ok(e, ReviewDiscrepancy(mine["discrepancy_id"], "agreed"))
    await ok(e, Logout())


def run_scenario(db: Database, clock: FixedClock) -> Facts:
    seeded_at = clock.now()
    clock.advance(timedelta(minutes=1))  # the activity starts after the initial load
    facts = Facts(seeded_at=seeded_at, started_at=clock.now(), ended_at=clock.now())

    async def scenario() -> None:
        async with open_pharmacy(db, clock, policy=Policy(override_items=frozenset({MORPHINE}))) as ph:
            await day_one(ph.engine, ph.cab, clock)
            clock.advance(timedelta(days=1))
            await day_two(ph.engine, ph, clock, facts)
            clock.advance(timedelta(days=1))
            await day_three(ph.engine, ph.cab, clock, facts)
            facts.ended_at = clock.now()

    run(scenario(), timeout=60)
    return facts


__all__ = [
    "BIN",
    "CABINET",
    "CARE_AREA",
    "HEPARIN",
    "INSULIN",
    "MIDAZOLAM",
    "MORPHINE",
    "Facts",
    "run_scenario",
    "seed",
]
