"""A pocket configured with a lid the I/O board does not have is a typed configuration refusal, not a crash, and
the drawer already released is locked again."""

from __future__ import annotations

from typing import Any

from controller.domain.clock import FixedClock
from controller.engine.commands import Login, SelectItem, StartPull
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.seed import seed_cabinet
from tests.engine.rig import CABINET, HEPARIN, layout, make_engine, open_cabinet
from tests.hardware.io_board.rigs import run
from tests.store.test_inventory import FAST_HASHER


def test_unlock_of_a_lid_the_board_lacks_is_refused(db: Database, clock: FixedClock) -> None:
    raw: dict[str, Any] = layout()
    raw["drawer"][1]["pocket"] += [
        {"id": "D2-P02", "item": None, "par": 0, "min": 0, "max": 0, "lots": []},
        {"id": "D2-P03", "item": HEPARIN, "par": 2, "min": 1, "max": 4,
         "lots": [{"lot": "HZ", "expiry": "2027-03-31", "quantity": 2}]},
    ]  # fmt: skip
    with db.write() as session:
        seed_cabinet(
            session, raw, load_formulary(), ledger=Ledger(CABINET, clock, is_simulator=True), hasher=FAST_HASHER,
            clock=clock,
        )  # fmt: skip

    async def scenario() -> None:
        async with open_cabinet("tcp") as cab:  # the board has lid locks at drawer 2, pockets 1 and 2 only
            engine = make_engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            refused = await engine.execute(SelectItem(pull_id, order_id="ORD2", pocket_id="D2-P03"))
            assert refused.code == "config.invalid", refused
            assert "D2-P03" in (refused.detail or "")
            assert not cab.drawer_released(2)  # the drawer released on the way in was locked again
            assert refused.data["state"] == "failed"  # the actuation failed: the pull ended, nothing removed
            drawer = engine.ctx.compartments["D2"]
            assert drawer.state.value == "locked" and not drawer.grants

    run(scenario())
