"""What the screen shows before the drawer opens: high-alert and look-alike flags, and the patient's allergies.
Without a pharmacist-verified order the user must confirm an allergy warning before anything unlocks."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from controller.domain.clock import FixedClock
from controller.domain.policies import OverrideReason, Policy
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import EnterCount, GetPull, ListPulls, Login, SelectItem, StartPull, Take
from controller.hardware.io_board.interface import IoBoard
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.models import EncounterRow
from controller.store.seed import seed_cabinet
from tests.engine.rig import CABINET, MORPHINE, entries, layout, make_engine, open_cabinet
from tests.engine.test_pull import _person_takes
from tests.hardware.io_board.rigs import run
from tests.store.test_inventory import FAST_HASHER


def _seed(
    db: Database, clock: FixedClock, allergies: list[str], extra_users: list[dict[str, Any]] | None = None
) -> None:
    raw: dict[str, Any] = layout()
    raw["patient"][0]["allergies"] = allergies
    raw["user"].extend(extra_users or [])
    with db.write() as session:
        seed_cabinet(
            session, raw, load_formulary(), ledger=Ledger(CABINET, clock, is_simulator=True), hasher=FAST_HASHER,
            clock=clock,
        )  # fmt: skip


def _engine(db: Database, board: IoBoard, clock: FixedClock) -> CabinetEngine:
    return make_engine(db, board, clock, policy=Policy(override_items=frozenset({MORPHINE})))


async def _pull(engine: CabinetEngine) -> str:
    started = await engine.execute(StartPull("MRN1"))
    assert started.ok, started
    return started.unwrap().pull_id


def _codes(result_data: dict[str, Any]) -> list[str]:
    return [w["code"] for w in result_data["pull"]["warnings"]]


def test_verified_order_shows_the_allergy_and_records_it(db: Database, clock: FixedClock) -> None:
    _seed(db, clock, ["codeine"])

    async def scenario() -> None:
        async with open_cabinet("tcp") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = await _pull(engine)
            chosen = await engine.execute(SelectItem(pull_id, order_id="ORD1"))
            assert chosen.ok, chosen  # the pharmacist verified the order: a warning, not a stop
            codes = _codes(dict(chosen.data))
            assert "high_alert" in codes and "allergy" in codes
            allergy = next(w for w in chosen.data["pull"]["warnings"] if w["code"] == "allergy")
            assert allergy["allergen"] == "codeine" and allergy["matched"] == "morphine"
            assert allergy["basis"] == "class"
            assert (await engine.execute(EnterCount(pull_id, 9))).ok
            await _person_takes(engine, cab, pull_id, 1)
            removed = [json.loads(r.body) for r in entries(db) if r.event_type == "dose.removed"]
            assert removed[-1]["details"]["allergy_warnings"] == ["codeine"]
            assert removed[-1]["details"]["allergies_acknowledged"] is False

    run(scenario())


@pytest.mark.parametrize("acknowledge", [False, True])
def test_override_needs_the_allergy_confirmed(db: Database, clock: FixedClock, acknowledge: bool) -> None:
    _seed(db, clock, ["Codeine"])

    async def scenario() -> None:
        async with open_cabinet("tcp") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = await _pull(engine)
            override = SelectItem(
                pull_id, item_id=MORPHINE, override_reason=OverrideReason.SEVERE_PAIN, acknowledge_allergies=acknowledge
            )
            chosen = await engine.execute(override)
            if not acknowledge:
                assert not chosen.ok
                assert chosen.code == "policy.allergy_not_acknowledged"
                assert "Codeine" in (chosen.detail or "") and "morphine" in (chosen.detail or "").lower()
                assert chosen.context["allergens"] == ["Codeine"]
                assert not cab.drawer_released(2)  # nothing unlocked
                assert engine.query(GetPull(pull_id)).unwrap().state == "patient_selected"
            else:
                assert chosen.ok, chosen
                assert chosen.data["state"] == "blind_count"
                assert "allergy" in _codes(dict(chosen.data))

    run(scenario())


def test_no_allergy_no_allergy_warning(db: Database, clock: FixedClock) -> None:
    _seed(db, clock, ["latex"])

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = await _pull(engine)
            chosen = await engine.execute(
                SelectItem(pull_id, item_id=MORPHINE, override_reason=OverrideReason.SEVERE_PAIN)
            )
            assert chosen.ok, chosen
            assert "allergy" not in _codes(dict(chosen.data))

    run(scenario())


def test_profiled_pull_is_capped_by_the_order(db: Database, clock: FixedClock) -> None:
    """ORD1 is morphine 12 mg; the pocket holds 4 mg/mL 1 mL cartridges: three units, and a fourth is refused."""
    _seed(db, clock, [])

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = await _pull(engine)
            chosen = await engine.execute(SelectItem(pull_id, order_id="ORD1"))
            assert chosen.ok and chosen.data["pull"]["max_quantity"] == 3, chosen
            assert (await engine.execute(EnterCount(pull_id, 9))).ok
            cab.world.open_drawer(2)
            await engine.poll()
            cab.world.lift_lid(2, 1)
            await engine.poll()
            too_many = await engine.execute(Take(pull_id, 4))
            assert too_many.code == "workflow.quantity_exceeds_order", too_many
            assert too_many.context["maximum"] == 3
            assert (await engine.execute(Take(pull_id, 3))).ok

    run(scenario())


def test_discharged_patient_gets_nothing(db: Database, clock: FixedClock) -> None:
    """After a discharge (the encounter inactive, as ADT^A03 leaves it) no pull starts for the patient, whatever
    orders are still on file; an admission makes them pullable again."""
    _seed(db, clock, [])
    with db.write() as session:
        session.execute(sa.update(EncounterRow).where(EncounterRow.patient_id == "MRN1").values(active=False))

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            refused = await engine.execute(StartPull("MRN1"))
            assert refused.code == "engine.patient_not_admitted", refused
            assert engine.query(ListPulls()).unwrap().pulls == ()  # nothing of the refused start is kept
            with db.write() as session:
                session.execute(sa.update(EncounterRow).where(EncounterRow.patient_id == "MRN1").values(active=True))
            assert (await engine.execute(StartPull("MRN1"))).ok

    run(scenario())
