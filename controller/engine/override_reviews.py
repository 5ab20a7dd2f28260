"""The pharmacist's review queue of override removals.

Responsible for: ``ListOverrideReviews`` (the open rows the engine queued with each ``dose.override`` entry) and
``ReviewOverride``: the reviewer must hold the review privilege and must not be the one who removed
(``policies.check_override_reviewer``); the ``dose.override_reviewed`` entry, pointing at the override's ledger
sequence, and the row's new status are written in one transaction, so a review is never recorded twice or lost.

Not responsible for: queueing (the engine writes the row with the override entry) or judging the override.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.domain.policies import check_override_reviewer
from controller.engine.commands import CommandResult
from controller.engine.commands_clinical import ListOverrideReviews, ReviewOverride
from controller.engine.witness import record
from controller.errors import SafetyError
from controller.fsm.base import Outcome, OutcomeKind
from controller.store import engine_state as state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session as DbSession

    from controller.engine.cabinet import CabinetEngine
    from controller.store.ledger import SealedEntry


class OverrideReviewDesk:
    def __init__(self, engine: CabinetEngine) -> None:
        self.engine = engine
        engine.register(ListOverrideReviews, self.listing)
        engine.register(ReviewOverride, self.review)

    async def listing(self, command: ListOverrideReviews) -> CommandResult:
        with self.engine.db.read() as session:
            reviews = state.override_reviews(session, self.engine.cabinet_id)
        return CommandResult.success(reviews=[_view(r) for r in reviews])

    async def review(self, command: ReviewOverride) -> CommandResult:
        engine = self.engine
        reviewer = engine.session.user
        assert reviewer is not None
        with engine.db.read() as session:
            found = state.override_reviews(session, engine.cabinet_id, status=None, review_id=command.review_id)
        review = found[0] if found else None
        if review is None:
            return CommandResult.refuse(
                "engine.no_workflow", f"no override review {command.review_id}", review=command.review_id
            )
        if review.status != state.OPEN:
            return CommandResult.refuse(
                "workflow.already_reviewed",
                f"override review {review.id} was closed by {review.reviewer_id} ({review.status})",
                review=review.id,
            )
        try:
            check_override_reviewer(reviewer, review.user_id)
        except SafetyError as error:
            return CommandResult.from_error(error, review=review.id)
        now = engine.clock.now()
        outcome = Outcome(
            OutcomeKind.OVERRIDE_REVIEWED,
            now,
            actor_id=reviewer.id,
            patient_id=review.patient_id,
            item_id=review.item_id,
            reason_code=command.outcome.value,
            note=command.note,
            details={"override_seq": review.ledger_seq, "override_user": review.user_id, "review_id": review.id},
        )

        def close(session: DbSession, sealed: list[SealedEntry]) -> None:
            state.close_override_review(
                session, review.id, reviewer_id=reviewer.id, reviewed_at=now, outcome=command.outcome.value
            )

        sealed = record(engine, [outcome], close)
        return CommandResult.success(
            review=review.id, outcome=command.outcome.value, ledger_seqs=[e.seq for e in sealed]
        )


def _view(review: state.OverrideReview) -> dict[str, Any]:
    return {
        "review_id": review.id,
        "override_seq": review.ledger_seq,
        "user_id": review.user_id,
        "patient_id": review.patient_id,
        "item_id": review.item_id,
        "reason": review.reason_code,
        "queued_at": review.queued_at.isoformat(),
    }
