"""The central server's layout and policy for a cabinet, applied by the engine while it runs: a newer version is
put in force and recorded, an older or the same one is not, and a layout that would move stock or a pocket in use
is refused whole, naming the pocket, with the refusal recorded."""

from __future__ import annotations

import json
from typing import Any

from controller.bootstrap.cabinet import compose_cabinet
from controller.domain.cabinet_config import LAYOUT, POLICY
from controller.domain.clock import FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import ApplyCentralConfiguration, GetRules, Login, SelectItem, StartPull
from controller.engine.context import Devices
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import InventoryStore, StockChange, list_pockets
from controller.store.ledger import Ledger
from controller.store.seed import seed_cabinet
from tests.engine.rig import CABINET, HEPARIN, MORPHINE, chain_ok, entries, layout, make_engine, open_cabinet
from tests.hardware.io_board.rigs import run
from tests.store.test_inventory import FAST_HASHER


def seeded(db: Database, clock: FixedClock) -> None:
    raw: dict[str, Any] = layout()
    raw["drawer"][0]["pocket"].append({"id": "D1-P02", "item": None, "par": 0, "min": 0, "max": 0, "lots": []})
    with db.write() as session:
        seed_cabinet(session, raw, load_formulary(), ledger=Ledger(CABINET, clock, is_simulator=True),
                     hasher=FAST_HASHER, clock=clock)  # fmt: skip


def pockets(db: Database) -> dict[str, tuple[str | None, int, int, int]]:
    with db.read() as session:
        return {p.pocket_id: (p.item_id, p.par, p.min, p.max) for p in list_pockets(session, CABINET)}


def recorded(db: Database, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(row.body) for row in entries(db) if row.event_type == event_type]


def unload(db: Database, clock: FixedClock, pocket_id: str) -> None:
    """A technician empties the pocket (each lot out, with its entry)."""
    ledger = Ledger(CABINET, clock, is_simulator=True)
    with db.write() as session:
        for view in list_pockets(session, CABINET):
            for lot in view.lots if view.pocket_id == pocket_id else ():
                record = LedgerRecord(EventType.STOCK_UNLOADED, actor_id="PHARM1", reason_code="unload")
                InventoryStore(ledger).apply(session, StockChange(pocket_id, lot.lot_number, -lot.quantity), record)


def layout_doc(*pockets: tuple[str, str | None, int, int, int]) -> dict[str, Any]:
    return {"pockets": [{"pocket": p, "item": i, "par": par, "min": low, "max": high}
                        for p, i, par, low, high in pockets]}  # fmt: skip


async def apply(engine: CabinetEngine, kind: str, version: int, content: dict[str, Any]) -> Any:
    return await engine.execute(ApplyCentralConfiguration(kind, version, content))


def test_a_layout_assigns_an_empty_pocket_and_the_next_pull_can_use_it(db: Database, clock: FixedClock) -> None:
    seeded(db, clock)

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = make_engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            not_there = await engine.execute(SelectItem(pull_id, order_id="ORD2", pocket_id="D1-P02"))
            assert not_there.code == "engine.item_not_stocked", not_there
            changed = await apply(engine, LAYOUT, 1, layout_doc(("D1-P02", HEPARIN, 4, 1, 8)))
            assert changed.ok, changed
            assert pockets(db)["D1-P02"] == (HEPARIN, 4, 1, 8)
            [entry] = [e for e in recorded(db, "configuration.changed") if e["details"]["kind"] == "layout"]
            assert entry["actor_id"] == "system" and entry["details"]["version"] == 1
            was, now = {"item": None, "par": 0, "min": 0, "max": 0}, {"item": HEPARIN, "par": 4, "min": 1, "max": 8}
            assert entry["details"]["changes"] == [{"pocket": "D1-P02", "from": was, "to": now}]
            # The running engine knows the new pocket at once: the heparin order unlocks its drawer.
            chosen = await engine.execute(SelectItem(pull_id, order_id="ORD2", pocket_id="D1-P02"))
            assert chosen.ok and chosen.unwrap().unlocked == ("D1",), chosen
            same = await apply(engine, LAYOUT, 1, layout_doc(("D1-P02", HEPARIN, 4, 1, 8)))
            assert same.ok and len(recorded(db, "configuration.changed")) == 2  # the rules at start, the layout
            assert chain_ok(db)

    run(scenario())


def test_a_layout_that_would_move_stock_or_is_older_is_refused_whole_and_recorded(
    db: Database, clock: FixedClock
) -> None:
    seeded(db, clock)
    before = pockets(db)

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = make_engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            # D1-P02 is fine, but D2-P01 holds 9 morphine: the whole document is refused, D1-P02 included.
            both = layout_doc(("D1-P02", HEPARIN, 4, 1, 8), ("D2-P01", HEPARIN, 2, 1, 4))
            busy = await apply(engine, LAYOUT, 2, both)
            assert (
                busy.code == "fleet.layout_pocket_busy"
                and "D2-P01" in (busy.detail or "")
                and "unload" in (busy.detail or "")
            ), busy
            unknown = await apply(engine, LAYOUT, 3, layout_doc(("D9-P09", HEPARIN, 1, 0, 2)))
            assert unknown.code == "fleet.layout_refused" and "D9-P09" in (unknown.detail or "")
            not_stocked = await apply(engine, LAYOUT, 4, layout_doc(("D1-P02", "NO-SUCH-ITEM", 1, 0, 2)))
            assert not_stocked.code == "fleet.layout_refused" and "NO-SUCH-ITEM" in (not_stocked.detail or "")
            bad_levels = await apply(engine, LAYOUT, 5, layout_doc(("D1-P02", HEPARIN, 9, 1, 4)))
            assert bad_levels.code == "fleet.layout_refused" and "min <= par <= max" in (bad_levels.detail or "")
            assert pockets(db) == before
            # Levels of a stocked pocket may change (its item stays), and the version is then held ...
            levels = await apply(engine, LAYOUT, 6, layout_doc(("D2-P01", MORPHINE, 12, 4, 16)))
            assert levels.ok and pockets(db)["D2-P01"] == (MORPHINE, 12, 4, 16)
            # ... so a replayed older version is refused, and says why.
            stale = await apply(engine, LAYOUT, 5, layout_doc(("D2-P01", MORPHINE, 10, 3, 15)))
            assert stale.code == "fleet.stale_downlink" and pockets(db)["D2-P01"] == (MORPHINE, 12, 4, 16)
            # Offered again (the forwarder does, while it waits): still refused, and not recorded twice; once the
            # pocket is unloaded, the same document is taken.
            assert (await apply(engine, LAYOUT, 7, both)).code == "fleet.layout_pocket_busy"
            again = await engine.execute(ApplyCentralConfiguration(LAYOUT, 7, both, retry=True))
            assert again.code == "fleet.layout_pocket_busy"
            unload(db, clock, "D2-P01")
            taken = await engine.execute(ApplyCentralConfiguration(LAYOUT, 7, both, retry=True))
            assert taken.ok and pockets(db)["D2-P01"] == (HEPARIN, 2, 1, 4), taken
            refusals = [(e["reason_code"], e["details"]["version"]) for e in recorded(db, "fleet.directory_refused")]
            assert refusals == [("fleet.layout_pocket_busy", 2), ("fleet.layout_refused", 3),
                                ("fleet.layout_refused", 4), ("fleet.layout_refused", 5),
                                ("fleet.stale_downlink", 5), ("fleet.layout_pocket_busy", 7)]  # fmt: skip
            assert chain_ok(db)

    run(scenario())


def test_a_central_policy_is_put_in_force_at_once_and_an_invalid_one_changes_nothing(
    db: Database, clock: FixedClock
) -> None:
    seeded(db, clock)
    policy = '[witness]\nactions = ["controlled_waste", "discrepancy_resolution", "controlled_return"]\n'

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = make_engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            hash_before = engine.query(GetRules()).unwrap().hash
            typo = await apply(engine, POLICY, 1, {"text": "[witnes]\nactions = []\n", "reason": "P&T 2026-12"})
            assert typo.code == "fleet.policy_refused" and "witnes" in (typo.detail or ""), typo
            unexplained = await apply(engine, POLICY, 1, {"text": policy, "reason": " "})
            assert unexplained.code == "fleet.policy_refused"
            assert engine.query(GetRules()).unwrap().hash == hash_before
            changed = await apply(engine, POLICY, 1, {"text": policy, "reason": "P&T 2026-12: returns witnessed"})
            assert changed.ok, changed
            rules = engine.query(GetRules()).unwrap()
            assert "controlled_return" in rules.document["witness"]["actions"] and rules.source == "central v1"
            [entry] = [e for e in recorded(db, "configuration.changed") if e["reason_code"] == "rules_from_central"]
            assert entry["note"] == "P&T 2026-12: returns witnessed" and entry["details"]["version"] == 1
            assert {"section": "witness", "key": "actions"}.items() <= entry["details"]["changes"][0].items()
        # A restart keeps the central's rules in force (the newest recorded rules win when no file is offered).
        async with open_cabinet("fake") as cab:
            again = compose_cabinet(db=db, cabinet_id=CABINET, clock=clock, hasher=FAST_HASHER,
                                    devices=Devices(board=cab.board), is_simulator=True)  # fmt: skip
            rules = again.query(GetRules()).unwrap()
            assert "controlled_return" in rules.document["witness"]["actions"] and rules.source == "central v1"

    run(scenario())
