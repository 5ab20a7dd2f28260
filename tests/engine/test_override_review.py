"""An override removal goes to the pharmacist's review queue; the review is a ledger entry of its own, made once,
by someone with the review privilege who is not the one who removed."""

from __future__ import annotations

import json

from controller.domain.clock import FixedClock
from controller.domain.policies import OverrideReason, OverrideReviewOutcome
from controller.engine.commands import EnterCount, Login, Logout, SelectItem, StartPull
from controller.engine.commands_clinical import ListOverrideReviews, ReviewOverride
from controller.store.database import Database
from tests.engine.rig import MORPHINE, chain_ok, entries, open_cabinet
from tests.engine.test_pull import _person_takes
from tests.engine.test_pull_warnings import _engine, _seed
from tests.hardware.io_board.rigs import run


def test_override_is_reviewed_once_by_another_pharmacist(db: Database, clock: FixedClock) -> None:
    _seed(db, clock, [])

    async def scenario() -> None:
        async with open_cabinet("tcp") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            assert (await engine.execute(StartPull("MRN1"))).ok
            chosen = await engine.execute(SelectItem(item_id=MORPHINE, override_reason=OverrideReason.SEVERE_PAIN))
            assert chosen.ok, chosen
            assert (await engine.execute(EnterCount(9))).ok
            await _person_takes(engine, cab, 1)
            override_seq = next(int(r.seq) for r in entries(db) if r.event_type == "dose.override")

            # A nurse may not review; the queue is visible to the pharmacist.
            refused = await engine.execute(ReviewOverride(1, OverrideReviewOutcome.APPROPRIATE))
            assert refused.code == "policy.privilege_missing"
            assert (await engine.execute(Logout())).ok
            assert (await engine.execute(Login("PHARM1", pin="3333"))).ok
            listed = await engine.execute(ListOverrideReviews())
            assert [(r["override_seq"], r["user_id"], r["reason"]) for r in listed.data["reviews"]] == [
                (override_seq, "NURSE1", "severe_pain")
            ]
            review_id = listed.data["reviews"][0]["review_id"]
            done = await engine.execute(ReviewOverride(review_id, OverrideReviewOutcome.FOLLOW_UP, note="no order"))
            assert done.ok, done
            again = await engine.execute(ReviewOverride(review_id, OverrideReviewOutcome.APPROPRIATE))
            assert again.code == "workflow.already_reviewed"
            assert (await engine.execute(ListOverrideReviews())).data["reviews"] == []
            reviewed = [r for r in entries(db) if r.event_type == "dose.override_reviewed"]
            assert len(reviewed) == 1
            body = json.loads(reviewed[0].body)
            assert reviewed[0].actor_id == "PHARM1"
            assert body["reason_code"] == "follow_up" and body["note"] == "no order"
            assert body["details"]["override_seq"] == override_seq
            assert body["details"]["override_user"] == "NURSE1"
            assert chain_ok(db)

    run(scenario())


def test_nobody_reviews_their_own_override(db: Database, clock: FixedClock) -> None:
    # A charge nurse who is also a pharmacist holds both the override and the review privilege.
    _seed(db, clock, [], extra_users=[{"id": "DUAL1", "name": "Dual", "roles": ["nurse", "pharmacist"], "pin": "9999"}])

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = _engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("DUAL1", pin="9999"))).ok
            assert (await engine.execute(StartPull("MRN1"))).ok
            chosen = await engine.execute(SelectItem(item_id=MORPHINE, override_reason=OverrideReason.RESCUE))
            assert chosen.ok, chosen
            assert (await engine.execute(EnterCount(9))).ok
            await _person_takes(engine, cab, 1)
            review_id = (await engine.execute(ListOverrideReviews())).data["reviews"][0]["review_id"]
            own = await engine.execute(ReviewOverride(review_id, OverrideReviewOutcome.APPROPRIATE))
            assert own.code == "policy.review_own_override"
            assert not [r for r in entries(db) if r.event_type == "dose.override_reviewed"]

    run(scenario())
