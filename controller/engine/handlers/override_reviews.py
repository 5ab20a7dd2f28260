"""The pharmacist's review queue of override removals.

Responsible for: ``ListOverrideReviews`` (the open rows the recorder queued with each ``dose.override`` entry) and
``ReviewOverride``: the reviewer must hold the review privilege and must not be the one who removed
(``policies.check_override_reviewer``); the ``dose.override_reviewed`` entry, pointing at the override's ledger
sequence, and the row's new status are written in one transaction, so a review is never recorded twice or lost.

Not responsible for: queueing (the recorder writes the row with the override entry) or judging the override.
"""

from __future__ import annotations

from typing import Any

from controller.domain.policies import check_override_reviewer
from controller.engine.commands.clinical import (
    ListOverrideReviews,
    OverrideReviewed,
    OverrideReviewList,
    ReviewOverride,
)
from controller.engine.context import EngineContext
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Handler
from controller.errors import SafetyError
from controller.fsm.base import Outcome, OutcomeKind
from controller.store.cabinet_store import CabinetWriter, OverrideReview
from controller.store.engine_state import OPEN
from controller.store.ledger import SealedEntry


class OverrideReviewHandler(Handler):
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        ctx.registry.add(self)
        ctx.registry.query(ListOverrideReviews, self.listing)
        ctx.registry.command(ReviewOverride, self.review)

    def listing(self, query: ListOverrideReviews) -> CommandResult[OverrideReviewList]:
        with self.ctx.store.read() as reader:
            reviews = reader.override_reviews()
        return CommandResult.done(OverrideReviewList(tuple(_view(r) for r in reviews)))

    async def review(self, command: ReviewOverride) -> CommandResult[OverrideReviewed]:
        ctx = self.ctx
        reviewer = ctx.user()
        with ctx.store.read() as reader:
            found = reader.override_reviews(status=None, review_id=command.review_id)
        review = found[0] if found else None
        if review is None:
            return CommandResult.refuse("engine.no_workflow", f"no override review {command.review_id}",
                                        review=command.review_id)  # fmt: skip
        if review.status != OPEN:
            return CommandResult.refuse("workflow.already_reviewed", f"override review {review.id} was closed by "
                                        f"{review.reviewer_id} ({review.status})", review=review.id)  # fmt: skip
        try:
            check_override_reviewer(reviewer, review.user_id)
        except SafetyError as error:
            return CommandResult.from_error(error, review=review.id)
        outcome = Outcome(
            OutcomeKind.OVERRIDE_REVIEWED,
            ctx.now(),
            actor_id=reviewer.id,
            patient_id=review.patient_id,
            item_id=review.item_id,
            reason_code=command.outcome.value,
            note=command.note,
            details={"override_seq": review.ledger_seq, "override_user": review.user_id, "review_id": review.id},
        )

        def close(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            tx.close_override_review(review.id, reviewer_id=reviewer.id, outcome=command.outcome.value)

        sealed = ctx.recorder.commit(outcome, then=close)
        return CommandResult.done(OverrideReviewed(review.id, command.outcome.value, seqs(sealed)))


def _view(review: OverrideReview) -> dict[str, Any]:
    return {
        "review_id": review.id,
        "override_seq": review.ledger_seq,
        "user_id": review.user_id,
        "patient_id": review.patient_id,
        "item_id": review.item_id,
        "reason": review.reason_code,
        "queued_at": review.queued_at.isoformat(),
    }
