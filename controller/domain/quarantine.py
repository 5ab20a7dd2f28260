"""The rules of a pharmacist's review of a quarantined lot: release it back into service, or condemn it.

Responsible for (pure): only a pharmacist (``REVIEW``) decides; a hold is reviewed once; the reason must fit the
hold (``REVIEW_REASONS``). A refrigerator-excursion hold is released when the maker's stability data covers the
excursion, and not while the refrigerator is still out of range. A recall is released only when the recall itself
is withdrawn (the note names the notice): a pharmacist cannot overrule a manufacturer's or FDA recall.

Not responsible for: placing holds, recording the review, or unloading condemned stock (``controller.engine``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from controller.domain.users import Privilege, User
from controller.errors import SafetyError


class QuarantineDecision(StrEnum):
    RELEASE = "release"  # back into service: the lot is usable (pullable) again
    DESTROY = "destroy"  # stays blocked until it is unloaded and destroyed (or returned as the recall says)


class QuarantineReviewReason(StrEnum):
    """Why a pharmacist decided as they did (reason codes, not free text; the note says more)."""

    WITHIN_STABILITY_DATA = "within_stability_data"  # the maker's stability data covers the excursion
    OUTSIDE_STABILITY_DATA = "outside_stability_data"  # beyond it, or no data for that temperature and time
    RECALL_WITHDRAWN = "recall_withdrawn"  # the maker or FDA withdrew the recall (the note names the notice)
    RECALLED = "recalled"  # the recall stands


class HoldKind(StrEnum):
    """Why a lot is held; ``quarantined_lots.reason`` holds the value (a recall may carry its own reason text)."""

    RECALL = "recall"
    EXCURSION = "temperature_excursion"


def hold_kind(reason: str) -> HoldKind:
    return HoldKind.EXCURSION if reason == HoldKind.EXCURSION.value else HoldKind.RECALL


D, R = QuarantineDecision, QuarantineReviewReason
REVIEW_REASONS: Mapping[tuple[HoldKind, QuarantineDecision], frozenset[QuarantineReviewReason]] = {
    (HoldKind.EXCURSION, D.RELEASE): frozenset({R.WITHIN_STABILITY_DATA}),
    (HoldKind.EXCURSION, D.DESTROY): frozenset({R.OUTSIDE_STABILITY_DATA}),
    (HoldKind.RECALL, D.RELEASE): frozenset({R.RECALL_WITHDRAWN}),
    (HoldKind.RECALL, D.DESTROY): frozenset({R.RECALLED}),
}


@dataclass(frozen=True, slots=True)
class Hold:
    """What the review rules need to know of one quarantined lot."""

    kind: HoldKind
    reviewed: bool
    excursion_ongoing: bool = False  # the refrigerator is still out of range (matters for a fridge hold only)


def check_review(
    reviewer: User, hold: Hold, decision: object, *, reason: str | None, note: str | None, now: datetime
) -> QuarantineDecision:
    """The decision, if this review may be recorded; otherwise a ``SafetyError`` naming the rule."""
    if not (reviewer.has(Privilege.REVIEW) and reviewer.is_usable_at(now)):
        raise SafetyError(
            "policy.privilege_missing",
            f"user {reviewer.id} may not review a quarantine: only a pharmacist releases or condemns a held lot",
            user=reviewer.id,
            privilege=Privilege.REVIEW.value,
        )
    if hold.reviewed:
        raise SafetyError("workflow.already_reviewed", "this quarantined lot has already been reviewed")
    try:
        chosen = QuarantineDecision(str(decision))
    except ValueError:
        raise SafetyError("workflow.reason_required", f"decide release or destroy, not {decision!r}") from None
    if hold.kind is HoldKind.RECALL and chosen is D.RELEASE and reason != R.RECALL_WITHDRAWN:
        raise SafetyError(
            "quarantine.recall_not_withdrawn",
            "a recalled lot goes back into service only when the recall is withdrawn (reason recall_withdrawn, the "
            "notice named in the note); until then destroy it or return it as the recall instructs",
        )
    allowed = sorted(r.value for r in REVIEW_REASONS[hold.kind, chosen])
    if reason not in allowed:
        raise SafetyError(
            "workflow.reason_required",
            f"to {chosen.value} a {hold.kind.value} hold give reason {' or '.join(allowed)}",
            allowed=allowed,
        )
    if reason == R.RECALL_WITHDRAWN and not (note and note.strip()):
        raise SafetyError("workflow.reason_required", "name the recall's withdrawal notice in the note")
    if chosen is D.RELEASE and hold.excursion_ongoing:
        raise SafetyError(
            "quarantine.excursion_ongoing", "the refrigerator is still out of range: release its stock once it is back"
        )
    return chosen
