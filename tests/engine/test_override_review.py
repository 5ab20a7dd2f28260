"""An override removal goes to the pharmacist's review queue; the review is a ledger entry of its own, made once,
by someone with the review privilege who is not the one who removed."""

from __future__ import annotations

import json
from typing import Any

from controller.domain.clock import FixedClock
from controller.domain.policies import OverrideReason, OverrideReviewOutcome, Policy
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import (
    EnterCount,
    ListOverrideReviews,
    Login,
    Logout,
    ReviewOverride,
    SelectItem,
    StartPull,
)
from controller.hardware.io_board.interface import IoBoard
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.seed import seed_cabinet
from tests.engine.rig import CABINET, MORPHINE, chain_ok, entries, layout, make_engine, open_cabinet
from tests.engine.test_witness import asked, ok, take
from tests.hardware.io_board.rigs import run
from tests.store.test_inventory import FAST_HASHER


def _seed(db: Database, clock: FixedClock, extra_users: list[dict[str, Any]] | None = None) -> None:
    raw: dict[str, Any] = layout()
    raw["user"].extend(extra_users or [])
    with db.write() as session:
        seed_cabinet(session, raw, load_formulary(), ledger=Ledger(CABINET, clock, is_simulator=True),
                     hasher=FAST_HASHER, clock=clock)  # fmt: skip


def _engine(db: Database, board: IoBoard, clock: FixedClock) -> CabinetEngine:
    return make_engine(db, board, clock, policy=Policy(override_items=frozenset({MORPHINE})))


def test_override_is_reviewed_once_by_another_pharmacist(db: Database, clock: FixedClock) -> None:
    _seed(db, clock)

    async def scenario() -> None:
        async with open_cabinet("tcp") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            await ok(engine, Login("NURSE1", pin="1111"))
            pull_id = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            chosen = await engine.execute(
                SelectItem(pull_id, item_id=MORPHINE, override_reason=OverrideReason.SEVERE_PAIN)
            )
            assert chosen.ok, chosen
            await ok(engine, EnterCount(pull_id, 9))
            await take(engine, cab, pull_id, 1)
            override_seq = next(int(r.seq) for r in entries(db) if r.event_type == "dose.override")

            # A nurse may not review; the queue is visible to the pharmacist.
            refused = await engine.execute(ReviewOverride(1, OverrideReviewOutcome.APPROPRIATE))
            assert refused.code == "policy.privilege_missing"
            await ok(engine, Logout())
            await ok(engine, Login("PHARM1", pin="3333"))
            listed = asked(engine, ListOverrideReviews())
            assert [(r["override_seq"], r["user_id"], r["reason"]) for r in listed.data["reviews"]] == [
                (override_seq, "NURSE1", "severe_pain")
            ]
            review_id = listed.data["reviews"][0]["review_id"]
            done = await engine.execute(ReviewOverride(review_id, OverrideReviewOutcome.FOLLOW_UP, note="no order"))
            assert done.ok, done
            again = await engine.execute(ReviewOverride(review_id, OverrideReviewOutcome.APPROPRIATE))
            assert again.code == "workflow.already_reviewed"
            assert asked(engine, ListOverrideReviews()).data["reviews"] == ()
            reviewed = [r for r in entries(db) if r.event_type == "dose.override_reviewed"]
            assert len(reviewed) == 1
            assert list(done.data["ledger_seqs"]) == [int(reviewed[0].seq)]
            body = json.loads(reviewed[0].body)
            assert reviewed[0].actor_id == "PHARM1"
            assert body["reason_code"] == "follow_up" and body["note"] == "no order"
            assert body["details"]["override_seq"] == override_seq
            assert body["details"]["override_user"] == "NURSE1"
            assert (await engine.execute(ReviewOverride(999, OverrideReviewOutcome.APPROPRIATE))).code == (
                "engine.no_workflow"
            )
            assert chain_ok(db)

    run(scenario())


def test_nobody_reviews_their_own_override(db: Database, clock: FixedClock) -> None:
    # A charge nurse who is also a pharmacist holds both the override and the review privilege.
    _seed(db, clock, extra_users=[{"id": "DUAL1", "name": "Dual", "roles": ["nurse", "pharmacist"], "pin": "9999"}])

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            await ok(engine, Login("DUAL1", pin="9999"))
            pull_id = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            chosen = await engine.execute(SelectItem(pull_id, item_id=MORPHINE, override_reason=OverrideReason.RESCUE))
            assert chosen.ok, chosen
            await ok(engine, EnterCount(pull_id, 9))
            await take(engine, cab, pull_id, 1)
            review_id = asked(engine, ListOverrideReviews()).data["reviews"][0]["review_id"]
            own = await engine.execute(ReviewOverride(review_id, OverrideReviewOutcome.APPROPRIATE))
            assert own.code == "policy.review_own_override"
            assert not [r for r in entries(db) if r.event_type == "dose.override_reviewed"]
            assert len(asked(engine, ListOverrideReviews()).data["reviews"]) == 1  # still waiting for another

    run(scenario())


def test_the_review_queue_survives_a_restart(db: Database, clock: FixedClock) -> None:
    """The queue is the store's: a second engine on the same store lists the override and reviews it."""
    _seed(db, clock)

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            await ok(engine, Login("NURSE1", pin="1111"))
            pull_id = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            await ok(engine, SelectItem(pull_id, item_id=MORPHINE, override_reason=OverrideReason.SEVERE_PAIN))
            await ok(engine, EnterCount(pull_id, 9))
            await take(engine, cab, pull_id, 1)
            restarted = _engine(db, cab.board, clock)
            assert (await restarted.restore()).ok
            await ok(restarted, Login("PHARM1", pin="3333"))
            [review] = asked(restarted, ListOverrideReviews()).data["reviews"]
            assert review["user_id"] == "NURSE1"
            await ok(restarted, ReviewOverride(review["review_id"], OverrideReviewOutcome.APPROPRIATE))
            assert asked(restarted, ListOverrideReviews()).data["reviews"] == ()

    run(scenario())
