"""Returns end to end: into the one-way return bin (a stock movement, no unlock), a controlled return witnessed
when the policy lists it, and a sealed non-controlled item back into its pocket when policy allows (the pocket's
drawer is unlocked for the return and opened by the user)."""

from __future__ import annotations

import pytest

from controller.domain.clock import FixedClock
from controller.domain.policies import Policy, WitnessedAction
from controller.engine.commands import EnterCount, SelectItem, StartPull, Take
from controller.engine.commands_clinical import ConfirmReturn, ReturnDose, SignWitness
from controller.store.database import Database
from tests.engine.rig import HEPARIN, MORPHINE, chain_ok, entries, ledger_stock_agrees, lots, open_cabinet, stock
from tests.engine.test_witness import BIN, KINDS, body, clinical_engine, ok, pull_morphine, ready, seeded
from tests.hardware.io_board.rigs import run

__all__ = ["seeded"]
WITNESSED_RETURNS = Policy(
    witnessed_actions=frozenset({WitnessedAction.CONTROLLED_WASTE, WitnessedAction.CONTROLLED_RETURN})
)


@pytest.mark.parametrize("kind", KINDS)
def test_controlled_return_to_the_bin_is_witnessed(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = clinical_engine(seeded, cab.board, clock, policy=WITNESSED_RETURNS)
            await ready(engine)
            await pull_morphine(engine, cab, quantity=3)  # lots A1 x2, B2 x1
            refused = await engine.execute(ReturnDose(1, destination="original_pocket", sealed=True))
            assert refused.code == "workflow.return_to_pocket_refused"
            waiting = await ok(engine, ReturnDose(2))
            assert waiting.data["state"] == "awaiting_witness"
            done = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert done.data["state"] == "done" and not cab.drawer_released(3)  # a one-way chute: no unlock
            assert stock(seeded)[BIN] == 2 and lots(seeded, BIN) == {"A1": 2}
            returned = [body(r) for r in entries(seeded) if r.event_type == "dose.returned"]
            assert [(r["actor_id"], r["witness_id"], r["pocket_id"], r["item_id"], r["quantity_change"]) for r in
                    returned] == [("NURSE1", "NURSE2", BIN, MORPHINE, 2)]  # fmt: skip
            last = await ok(engine, ReturnDose(1))
            assert last.data["state"] == "awaiting_witness"
            await ok(engine, SignWitness("PHARM1", pin="3333"))
            assert lots(seeded, BIN) == {"A1": 2, "B2": 1}
            assert (await engine.execute(ReturnDose(1))).code == "engine.nothing_left"
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


def test_sealed_non_controlled_item_back_to_its_pocket(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock, return_sealed_to_pocket=True)
            await ready(engine)
            await ok(engine, StartPull("MRN1"))
            unlocked = await ok(engine, SelectItem(order_id="ORD2"))
            if unlocked.data["state"] == "blind_count":
                await ok(engine, EnterCount(5))
            cab.world.open_drawer(1)
            await engine.poll()
            await ok(engine, Take(1))
            cab.world.close_drawer(1)
            await engine.poll()
            assert stock(seeded)["D1-P01"] == 4
            assert (await engine.execute(ReturnDose(1, destination="original_pocket"))).code == (
                "workflow.return_to_pocket_refused"  # not sealed
            )
            started = await ok(engine, ReturnDose(1, destination="original_pocket", sealed=True))
            assert started.data["unlocked"] == "D1-P01" and cab.drawer_released(1)
            cab.world.open_drawer(1)
            await engine.poll()
            await ok(engine, ConfirmReturn(started.data["return_id"]))
            cab.world.close_drawer(1)
            await engine.poll()
            assert stock(seeded)["D1-P01"] == 5
            kinds = [r.event_type for r in entries(seeded)]
            assert "drawer.tamper" not in kinds and kinds.count("drawer.opened") == 2
            [returned] = [body(r) for r in entries(seeded) if r.event_type == "dose.returned"]
            assert (returned["pocket_id"], returned["item_id"], returned["reason_code"]) == (
                "D1-P01", HEPARIN, "original_pocket",
            )  # fmt: skip
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())
