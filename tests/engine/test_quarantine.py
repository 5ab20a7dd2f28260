"""Quarantine end to end over the I/O board on Modbus TCP: a recall blocks the lot everywhere and pulls skip it; a
refrigerator excursion read from the board's sensors quarantines the fridge's contents; a pharmacist's review
releases a hold (pullable again) or condemns it (still blocked, on the unload list until it is unloaded by scan);
critical-override mode releases only the critical-override list, every removal to review."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from controller.domain.clock import FixedClock
from controller.domain.policies import Policy
from controller.domain.quarantine import QuarantineDecision
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import (
    CancelPull,
    CheckRefrigerator,
    CountBack,
    EnterCount,
    FinishRestock,
    ListQuarantines,
    Login,
    Logout,
    RecallLot,
    ReviewQuarantine,
    ScanPackage,
    SelectItem,
    SetCriticalOverride,
    StartPull,
    StartRestock,
    Take,
)
from controller.engine.commands.pull import PullStep
from controller.engine.results import CommandResult
from controller.fsm.workflows.restock import RestockKind
from controller.store import engine_state
from controller.store.database import Database
from tests.engine.pharmacy_rig import NALOXONE, gs1, open_pharmacy, seed
from tests.engine.rig import CABINET, HEPARIN, Cabinet, entries, last_seq, ledger_stock_agrees, lots
from tests.hardware.io_board.rigs import run

RELEASE, DESTROY = QuarantineDecision.RELEASE, QuarantineDecision.DESTROY


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


async def switch(engine: CabinetEngine, user: str, pin: str) -> None:
    if engine.ctx.session.is_active:
        assert (await engine.execute(Logout())).ok
    assert (await engine.execute(Login(user, pin=pin))).ok


async def pull_morphine(engine: CabinetEngine, cab: Cabinet, count: int) -> CommandResult[PullStep]:
    """NURSE1 (logged in) takes one morphine cartridge against ORD1 through drawer 2 and its lid (a refused
    choice is cancelled, so the next pull starts clean)."""
    pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
    chosen = await engine.execute(SelectItem(pull_id, order_id="ORD1"))
    if not chosen.ok:
        assert (await engine.execute(CancelPull(pull_id))).ok
        return chosen
    assert (await engine.execute(EnterCount(pull_id, count))).ok
    cab.world.open_drawer(2)
    await engine.poll()
    cab.world.lift_lid(2, 1)
    await engine.poll()
    taken = await engine.execute(Take(pull_id, 1))
    cab.world.close_lid(2, 1)
    await engine.poll()
    cab.world.close_drawer(2)
    await engine.poll()
    return taken


def usable(db: Database, pocket: str, clock: FixedClock) -> list[str]:
    with db.read() as session:
        return [lot.lot_number for lot in engine_state.usable_lots(session, pocket, clock.now().date())]


def test_recall_blocks_the_lot_and_pulls_skip_it(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            await switch(e, "PHARM1", "3333")
            recalled = await e.execute(RecallLot("0409-1891-01", "A1"))  # morphine lot A1
            assert recalled.ok, recalled
            assert recalled.data["unload"] == ({"pocket_id": "D2-P01", "lot": "A1", "quantity": 2},)
            await switch(e, "NURSE1", "1111")
            assert (await pull_morphine(e, cab, 9)).ok
            assert lots(seeded, "D2-P01") == {"OLD": 1, "A1": 2, "B2": 5}  # FEFO skipped the recalled lot
            # recall B2 too: only expired and recalled units are left, the pull is refused before any unlock
            await switch(e, "PHARM1", "3333")
            assert (await e.execute(RecallLot("0409189101", "B2"))).ok
            await switch(e, "NURSE1", "1111")
            blocked = await pull_morphine(e, cab, 8)
            assert blocked.code == "quarantine.no_usable_stock", blocked
            assert not cab.drawer_released(2)
            assert ledger_stock_agrees(seeded)

    run(scenario())


def test_pharmacist_review_of_recalls_release_only_when_withdrawn(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            await switch(e, "PHARM1", "3333")
            a1 = (await e.execute(RecallLot("0409-1891-01", "A1"))).data["quarantine_id"]
            b2 = (await e.execute(RecallLot("0409-1891-01", "B2"))).data["quarantine_id"]
            for user, pin in (("NURSE1", "1111"), ("TECH1", "4444")):  # only a pharmacist reviews
                await switch(e, user, pin)
                refused = await e.execute(ReviewQuarantine(b2, RELEASE, "recall_withdrawn", "FDA notice 2026-11"))
                assert refused.code == "policy.privilege_missing" and refused.context["privilege"] == "review"
            await switch(e, "NURSE1", "1111")
            assert (await pull_morphine(e, cab, 9)).code == "quarantine.no_usable_stock"
            await switch(e, "PHARM1", "3333")
            start = last_seq(seeded)
            overruled = await e.execute(ReviewQuarantine(b2, RELEASE, "within_stability_data"))
            assert overruled.code == "quarantine.recall_not_withdrawn", overruled
            no_notice = await e.execute(ReviewQuarantine(b2, RELEASE, "recall_withdrawn"))
            assert no_notice.code == "workflow.reason_required", no_notice
            assert entries(seeded, start) == []  # refused reviews change nothing
            released = await e.execute(ReviewQuarantine(b2, RELEASE, "recall_withdrawn", "FDA withdrawal 2026-11"))
            assert released.ok and released.data["unload"] == (), released
            assert (await e.execute(ReviewQuarantine(b2, DESTROY, "recalled"))).code == "workflow.already_reviewed"
            condemned = await e.execute(ReviewQuarantine(a1, DESTROY, "recalled"))
            assert condemned.ok, condemned
            assert condemned.data["unload"] == ({"pocket_id": "D2-P01", "lot": "A1", "quantity": 2},)
            assert (await e.execute(ReviewQuarantine(999, RELEASE, "x"))).code == "engine.unknown_quarantine"
            reviewed = [json.loads(r.body) for r in entries(seeded, start)]
            assert [(b["event_type"], b["actor_id"], b["lot_number"], b["reason_code"]) for b in reviewed] == [
                ("stock.quarantine_reviewed", "PHARM1", "B2", "recall_withdrawn"),
                ("stock.quarantine_reviewed", "PHARM1", "A1", "recalled"),
            ]
            assert [b["details"]["decision"] for b in reviewed] == ["release", "destroy"]
            assert reviewed[0]["note"] == "FDA withdrawal 2026-11"
            assert usable(seeded, "D2-P01", clock) == ["B2"]  # A1 stays blocked, OLD is expired
            holds = e.query(ListQuarantines()).data["quarantines"]
            assert [(h["quarantine_id"], h["state"], h["unload"]) for h in holds] == [
                (a1, "to_unload", [{"pocket_id": "D2-P01", "lot": "A1", "quantity": 2}])
            ]
            # the released lot is pullable again
            await switch(e, "NURSE1", "1111")
            assert (await pull_morphine(e, cab, 9)).ok
            assert lots(seeded, "D2-P01") == {"OLD": 1, "A1": 2, "B2": 5}
            # the condemned lot goes out by scan (an unload takes quarantined stock), and leaves the unload list
            await switch(e, "TECH1", "4444")
            unload = await e.execute(StartRestock("D2-P01", kind=RestockKind.UNLOAD, quantity=2))
            assert unload.ok, unload
            rid = unload.unwrap().restock_id
            assert (await e.execute(CountBack(rid, 8))).ok
            ph.scanner.present(gs1("0409-1891-01", "A1", "270131", "U1"), "]d2")
            assert (await e.execute(ScanPackage(rid, units=2))).ok
            assert (await e.execute(FinishRestock(rid))).ok
            assert lots(seeded, "D2-P01") == {"OLD": 1, "B2": 5}
            holds = e.query(ListQuarantines()).data["quarantines"]
            assert [(h["quarantine_id"], h["unload"]) for h in holds] == [(a1, [])]
            assert ledger_stock_agrees(seeded)

    run(scenario())


def test_fridge_excursion_quarantines_then_a_pharmacist_releases(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            start = last_seq(seeded)
            assert (await e.execute(CheckRefrigerator())).data["excursion"] is False  # read from the board
            cab.world.set_fridge_temperature(11.5)
            first = await e.execute(CheckRefrigerator())
            assert first.data["excursion"] is True and first.data["quarantined"] == ()
            clock.advance(timedelta(minutes=20))
            assert (await e.execute(CheckRefrigerator())).data["quarantined"] == ()
            clock.advance(timedelta(minutes=11))
            held = (await e.execute(CheckRefrigerator())).data["quarantined"]
            assert [{k: v for k, v in h.items() if k != "quarantine_id"} for h in held] == [
                {"pocket_id": "D3-P01", "lot": "INS1", "quantity": 3}
            ]
            rows = [(r.event_type, r.lot_number) for r in entries(seeded, start)]
            assert rows == [("environment.temperature_excursion", None), ("stock.quarantined", "INS1")]
            assert usable(seeded, "D3-P01", clock) == []
            clock.advance(timedelta(minutes=5))
            assert (await e.execute(CheckRefrigerator())).data["quarantined"] == ()  # once per excursion
            hold = held[0]["quarantine_id"]
            await switch(e, "PHARM1", "3333")
            warm = await e.execute(ReviewQuarantine(hold, RELEASE, "within_stability_data"))
            assert warm.code == "quarantine.excursion_ongoing", warm  # not while the fridge is still warm
            cab.world.set_fridge_temperature(5.0)
            assert (await e.execute(CheckRefrigerator())).data["excursion"] is False
            wrong = await e.execute(ReviewQuarantine(hold, RELEASE, "recall_withdrawn", "n/a"))
            assert wrong.code == "workflow.reason_required" and wrong.context["allowed"] == ["within_stability_data"]
            released = await e.execute(ReviewQuarantine(hold, RELEASE, "within_stability_data", "28 days at 25 °C"))
            assert released.ok, released
            assert usable(seeded, "D3-P01", clock) == ["INS1"]  # back in service
            row = entries(seeded, start)[-1]
            assert (row.event_type, row.actor_id, row.pocket_id, row.lot_number) == (
                "stock.quarantine_reviewed", "PHARM1", "D3-P01", "INS1",
            )  # fmt: skip
            assert e.query(ListQuarantines()).data["quarantines"] == ()

    run(scenario())


def test_the_excursion_limit_comes_from_the_rules(seeded: Database, clock: FixedClock) -> None:
    """Rules with a 10-minute excursion limit: still inside it at 9 minutes, quarantined at 10 (the default 30
    minutes would not have)."""

    async def scenario() -> None:
        policy = Policy(fridge_excursion_limit=timedelta(minutes=10))
        async with open_pharmacy(seeded, clock, policy=policy) as ph:
            e, cab = ph.engine, ph.cab
            start = last_seq(seeded)
            cab.world.set_fridge_temperature(11.5)
            assert (await e.execute(CheckRefrigerator())).data["excursion"] is True
            clock.advance(timedelta(minutes=9))
            inside = await e.execute(CheckRefrigerator())
            assert inside.data["quarantined"] == () and inside.data["minutes"] == pytest.approx(9.0)
            clock.advance(timedelta(minutes=1))
            held = (await e.execute(CheckRefrigerator())).data["quarantined"]
            assert [(h["pocket_id"], h["lot"]) for h in held] == [("D3-P01", "INS1")]
            rows = [(r.event_type, r.lot_number) for r in entries(seeded, start)]
            assert rows == [("environment.temperature_excursion", None), ("stock.quarantined", "INS1")]
            assert json.loads(entries(seeded, start)[0].body)["details"]["minutes"] == 10
            assert usable(seeded, "D3-P01", clock) == []

    run(scenario())


def test_the_refrigerator_range_comes_from_the_rules(seeded: Database, clock: FixedClock) -> None:
    """11.5 °C is inside a range whose top is 12 °C: no excursion however long it lasts; 12.5 °C is one."""

    async def scenario() -> None:
        async with open_pharmacy(seeded, clock, policy=Policy(fridge_high_c=12.0)) as ph:
            e, cab = ph.engine, ph.cab
            start = last_seq(seeded)
            cab.world.set_fridge_temperature(11.5)
            assert (await e.execute(CheckRefrigerator())).data["excursion"] is False
            clock.advance(timedelta(hours=2))
            assert (await e.execute(CheckRefrigerator())).data["excursion"] is False
            cab.world.set_fridge_temperature(12.5)
            assert (await e.execute(CheckRefrigerator())).data["excursion"] is True
            clock.advance(timedelta(minutes=30))
            assert [h["lot"] for h in (await e.execute(CheckRefrigerator())).data["quarantined"]] == ["INS1"]
            excursion = json.loads(entries(seeded, start)[0].body)
            assert excursion["details"]["range_c"] == ["2.0", "12.0"]

    run(scenario())


def test_critical_override_mode_releases_only_its_list(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            await switch(e, "NURSE1", "1111")
            assert (await e.execute(SetCriticalOverride(True))).code == "policy.privilege_missing"
            refused_pull = (await e.execute(StartPull("MRN1"))).unwrap().pull_id
            assert (await e.execute(SelectItem(refused_pull, item_id=NALOXONE))).code == "policy.override_not_listed"
            assert (await e.execute(CancelPull(refused_pull))).ok
            await switch(e, "ADMIN1", "5555")
            assert (await e.execute(SetCriticalOverride(True, "downtime drill"))).ok
            await switch(e, "NURSE1", "1111")
            pull_id = (await e.execute(StartPull("MRN1"))).unwrap().pull_id
            heparin = await e.execute(SelectItem(pull_id, item_id=HEPARIN))  # a high-alert drug, not a rescue drug
            assert heparin.code == "policy.critical_override_not_listed", heparin
            assert heparin.context["item"] == HEPARIN
            assert not cab.drawer_released(1)
            chosen = await e.execute(SelectItem(pull_id, item_id=NALOXONE))  # on the formulary's critical-override list
            assert chosen.ok, chosen
            assert cab.drawer_released(1)
            cab.world.open_drawer(1)
            await e.poll()
            assert (await e.execute(Take(pull_id, 1))).ok
            cab.world.close_drawer(1)
            await e.poll()
            assert lots(seeded, "D1-P02") == {"NX1": 3}
            with seeded.read() as session:
                reviews = engine_state.override_reviews(session, CABINET)
            assert [(r.user_id, r.item_id, r.reason_code) for r in reviews] == [
                ("NURSE1", NALOXONE, "critical_override")
            ]
            assert ledger_stock_agrees(seeded)

    run(scenario())
