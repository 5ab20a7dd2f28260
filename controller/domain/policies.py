"""The safety rules as code. Each function answers one question for the engine and says why when it refuses.

Defaults follow DOMAIN.md; every number is a field of ``Policy`` so a hospital can configure it. Rules that are
law or safety absolutes (USP <800> hazardous tablets never go through an automatic counter; a witness is never the
actor) are not configurable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from controller.domain.medication import DeaSchedule, Medication
from controller.domain.patients import Order
from controller.domain.users import Privilege, Role, User
from controller.errors import SafetyError


class BlindCount(StrEnum):
    """Which pocket accesses need a blind count (the user types what they see; the expected number is hidden)."""

    EVERY_CONTROLLED_ACCESS = "every_controlled_access"
    SCHEDULE_II_ONLY = "schedule_ii_only"
    EVERY_ACCESS = "every_access"


class WitnessedAction(StrEnum):
    CONTROLLED_WASTE = "controlled_waste"
    DISCREPANCY_RESOLUTION = "discrepancy_resolution"
    CONTROLLED_RETURN = "controlled_return"
    CONTROLLED_RESTOCK = "controlled_restock"
    ANY_WASTE = "any_waste"


class OverrideReason(StrEnum):
    """Reason codes, not free text, so override use can be analysed."""

    RESCUE = "rescue"  # code, rapid response
    SEVERE_PAIN = "severe_pain"
    EMERGENT_PROCEDURE = "emergent_procedure"
    STAT_ORDER_PENDING_VERIFICATION = "stat_order_pending_verification"
    PHARMACY_CLOSED = "pharmacy_closed"


LICENSED_WITNESS_ROLES = frozenset({Role.NURSE, Role.PHARMACIST, Role.ANESTHESIA_PROVIDER})

DEFAULT_SHIFT_STARTS = (time(7, 0), time(19, 0))


@dataclass(frozen=True, slots=True)
class Policy:
    blind_count: BlindCount = BlindCount.EVERY_CONTROLLED_ACCESS
    witnessed_actions: frozenset[WitnessedAction] = field(
        default=frozenset({WitnessedAction.CONTROLLED_WASTE, WitnessedAction.DISCREPANCY_RESOLUTION})
    )
    override_items: frozenset[str] = field(default=frozenset())  # formulary ids on the override list
    override_reasons: frozenset[OverrideReason] = field(default=frozenset(OverrideReason))
    search_min_chars: int = 5  # ISMP 2019, 4.4
    shift_starts: tuple[time, ...] = DEFAULT_SHIFT_STARTS  # local wall-clock times a shift begins
    timezone: str = "UTC"
    temporary_user_lifetime: timedelta = timedelta(hours=24)
    # USP <659> (DOMAIN.md rule 9): the refrigerator holds 2-8 °C; a reading outside the range for longer than the
    # excursion limit puts the refrigerator's stock on hold for pharmacist review.
    fridge_low_c: float = 2.0
    fridge_high_c: float = 8.0
    fridge_excursion_limit: timedelta = timedelta(minutes=30)

    def __post_init__(self) -> None:
        if self.search_min_chars < 1:
            raise ValueError("search_min_chars must be at least 1")
        if not self.shift_starts:
            raise ValueError("at least one shift start is needed")
        ZoneInfo(self.timezone)  # fail at configuration time, not at the first discrepancy
        if not self.fridge_low_c < self.fridge_high_c:
            raise ValueError(f"fridge_low_c ({self.fridge_low_c}) must be below fridge_high_c ({self.fridge_high_c})")
        if self.fridge_excursion_limit <= timedelta(0):
            raise ValueError("fridge_excursion_limit must be positive")


# --- blind count -------------------------------------------------------------------------------------------------


def blind_count_required(policy: Policy, medication: Medication | None) -> bool:
    """Does opening this pocket need a blind count first? ``None`` is an empty or unassigned pocket."""
    if policy.blind_count is BlindCount.EVERY_ACCESS:
        return True
    if medication is None:
        return False
    if policy.blind_count is BlindCount.SCHEDULE_II_ONLY:
        return medication.dea_schedule.is_schedule_ii
    return medication.is_controlled


# --- witness -----------------------------------------------------------------------------------------------------


def witness_required(policy: Policy, action: WitnessedAction, medication: Medication | None) -> bool:
    """Controlled actions need a witness when the policy lists them; ``ANY_WASTE`` extends waste to every item."""
    if action in (WitnessedAction.CONTROLLED_WASTE, WitnessedAction.ANY_WASTE):
        if WitnessedAction.ANY_WASTE in policy.witnessed_actions:
            return True
        return (
            medication is not None
            and medication.is_controlled
            and WitnessedAction.CONTROLLED_WASTE in policy.witnessed_actions
        )
    if action in (WitnessedAction.CONTROLLED_RETURN, WitnessedAction.CONTROLLED_RESTOCK):
        return medication is not None and medication.is_controlled and action in policy.witnessed_actions
    return action in policy.witnessed_actions


def check_witness(
    actor: User, witness: User | None, now: datetime, *, required: bool, action: WitnessedAction | None = None
) -> None:
    """Refuse a witness who is missing (when required), the actor, unusable, or without the witness privilege.

    Waste is witnessed by a second *licensed* person (nurse, pharmacist, anesthesia provider): a technician may
    witness a restock count, not a waste.
    """
    if witness is None:
        if required:
            raise SafetyError("policy.witness_required", "this action needs a second person to witness it")
        return
    if witness.id == actor.id:
        raise SafetyError("policy.witness_is_actor", f"user {actor.id} cannot witness their own action", user=actor.id)
    if not witness.is_usable_at(now):
        raise SafetyError(
            "auth.user_expired" if witness.active else "auth.user_inactive",
            f"witness {witness.id} cannot sign: account expired or deactivated",
            witness=witness.id,
        )
    if not witness.has(Privilege.WITNESS):
        raise SafetyError(
            "policy.witness_lacks_privilege",
            f"witness {witness.id} does not hold the witness privilege",
            witness=witness.id,
        )
    if action in (WitnessedAction.CONTROLLED_WASTE, WitnessedAction.ANY_WASTE) and not (
        witness.roles & LICENSED_WITNESS_ROLES
    ):
        raise SafetyError(
            "policy.witness_lacks_privilege",
            f"witness {witness.id} is not a licensed clinician; waste needs a nurse, pharmacist or anesthesia "
            "provider as witness",
            witness=witness.id,
        )


# --- privileges --------------------------------------------------------------------------------------------------


def check_privilege(user: User, privilege: Privilege) -> None:
    if not user.has(privilege):
        raise SafetyError(
            "policy.privilege_missing",
            f"user {user.id} does not hold the {privilege.value} privilege",
            user=user.id,
            privilege=privilege.value,
        )


class OverrideReviewOutcome(StrEnum):
    """What the pharmacist concluded about one override removal."""

    APPROPRIATE = "appropriate"  # clinically justified; nothing more to do
    ORDER_FOLLOWED = "order_followed"  # a matching order was entered and verified afterwards
    FOLLOW_UP = "follow_up"  # not justified by what is on file: refer to the nurse manager / diversion team


def check_override_reviewer(reviewer: User, override_user_id: str) -> None:
    """A pharmacist reviews overrides; nobody reviews their own removal."""
    check_privilege(reviewer, Privilege.REVIEW)
    if reviewer.id == override_user_id:
        raise SafetyError(
            "policy.review_own_override",
            f"{reviewer.id} made this override removal and cannot review it",
            user=reviewer.id,
        )


def check_item_access(user: User, medication: Medication) -> None:
    """Schedule II items need the schedule II privilege on top of the removal privilege."""
    if medication.dea_schedule.is_schedule_ii:
        check_privilege(user, Privilege.ACCESS_SCHEDULE_II)


# --- removal authorisation (profile and override) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemovalAuthorisation:
    is_override: bool  # overrides go to retrospective pharmacist review
    reason: OverrideReason | None
    max_quantity: int | None  # None: not capped by an order


def authorise_removal(
    policy: Policy,
    *,
    profiled_area: bool,
    critical_override_mode: bool,
    user: User,
    medication: Medication,
    order: Order | None,
    override_reason: OverrideReason | None,
    order_max_units: int | None = None,
) -> RemovalAuthorisation:
    """Decide whether ``user`` may remove ``medication``, and on what terms.

    Against a verified active order: allowed, capped by the order. In a non-profiled area: allowed without an
    order. In critical-override mode: items flagged ``critical_override`` without an order (flagged for review).
    Otherwise only by override: the item must be on the override list, the user must hold the override privilege
    and give a listed reason.
    """
    check_privilege(user, Privilege.REMOVE)
    check_item_access(user, medication)
    if order is not None:
        if order.item_id != medication.id:
            raise SafetyError(
                "policy.order_not_verified",
                f"order {order.id} is for {order.item_id}, not {medication.id}",
                order=order.id,
            )
        if order.is_removable:
            return RemovalAuthorisation(is_override=False, reason=None, max_quantity=order_max_units)
        if profiled_area and override_reason is None and not critical_override_mode:
            raise SafetyError(
                "policy.order_not_verified",
                f"order {order.id} is {order.status.value} and "
                f"{'verified' if order.pharmacist_verified else 'not yet verified by a pharmacist'}",
                order=order.id,
            )
    if not profiled_area:
        return RemovalAuthorisation(is_override=False, reason=None, max_quantity=None)
    if critical_override_mode:
        if medication.critical_override:
            return RemovalAuthorisation(is_override=True, reason=override_reason, max_quantity=None)
        if override_reason is None:
            # The mode releases a short list (the formulary's rescue drugs); anything else still needs an order,
            # or an ordinary override with a listed reason: the mode never makes the cabinet stricter.
            raise SafetyError(
                "policy.critical_override_not_listed",
                f"{medication.display_name} is not on the critical-override list; it needs a pharmacist-verified "
                "order or an override from the override list with a reason",
                item=medication.id,
            )
    return _authorise_override(policy, user, medication, override_reason)


def _authorise_override(
    policy: Policy, user: User, medication: Medication, reason: OverrideReason | None
) -> RemovalAuthorisation:
    check_privilege(user, Privilege.OVERRIDE)
    if medication.id not in policy.override_items:
        raise SafetyError(
            "policy.override_not_listed",
            f"{medication.display_name} is not on the override list; it needs a pharmacist-verified order",
            item=medication.id,
        )
    if reason is None or reason not in policy.override_reasons:
        allowed = ", ".join(sorted(r.value for r in policy.override_reasons))
        raise SafetyError(
            "policy.override_reason_required",
            f"an override needs one of these reasons: {allowed}",
            item=medication.id,
        )
    return RemovalAuthorisation(is_override=True, reason=reason, max_quantity=None)


# --- drug search -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchResult:
    matches: tuple[Medication, ...]

    @property
    def unique(self) -> bool:
        """ISMP prefers searches that return exactly one item."""
        return len(self.matches) == 1


def search_medications(policy: Policy, query: str, formulary: Iterable[Medication]) -> SearchResult:
    """Match the query against the start of any word of an item's names, case-insensitively.

    Fewer than ``search_min_chars`` characters is refused: "ve" once picked vecuronium instead of Versed.
    """
    needle = _fold(query)
    typed = len(needle.replace(" ", ""))
    if typed < policy.search_min_chars:
        raise SafetyError(
            "policy.search_too_short",
            f"type at least {policy.search_min_chars} characters of the drug name (got {typed})",
            query=query,
        )
    matches = [m for m in formulary if any(_name_matches(name, needle) for name in m.search_names())]
    matches.sort(key=lambda m: (m.display_name.casefold(), m.id))
    return SearchResult(matches=tuple(matches))


# Names and queries are split into words the same way, so "piperacillin-tazo" finds "piperacillin-tazobactam"
# and "(Toradol)" in a display name is a word that starts with "torad".
_WORD_SEPARATORS = str.maketrans({"-": " ", "/": " ", "(": " ", ")": " "})


def _fold(text: str) -> str:
    return " ".join(text.translate(_WORD_SEPARATORS).split()).casefold()


def _name_matches(name: str, needle: str) -> bool:
    return f" {_fold(name)}".find(f" {needle}") >= 0


# --- discrepancy deadline ----------------------------------------------------------------------------------------


def end_of_shift(policy: Policy, at: datetime) -> datetime:
    """The first shift boundary strictly after ``at`` (an aware datetime), in the same zone as ``at``.

    Shift starts are local wall-clock times in ``policy.timezone`` so a 07:00/19:00 pattern holds across DST.
    A start in the hour that repeats when clocks go back is its first occurrence; one in the hour that is
    skipped when they go forward falls as far after the jump (PEP 495 ``fold=0``, as RFC 5545 calendars do).
    """
    if at.tzinfo is None:
        raise ValueError("end_of_shift needs an aware datetime")
    zone = ZoneInfo(policy.timezone)
    # Compare instants in UTC: aware datetimes sharing a tzinfo compare by wall clock, which is wrong around DST.
    instant = at.astimezone(UTC)
    today = instant.astimezone(zone).date()
    boundaries = (
        datetime.combine(today + timedelta(days=day_offset), start, tzinfo=zone).astimezone(UTC)
        for day_offset in range(2)
        for start in policy.shift_starts
    )
    return min(b for b in boundaries if b > instant).astimezone(at.tzinfo)


def discrepancy_deadline(policy: Policy, raised_at: datetime) -> datetime:
    """A discrepancy must be resolved by the end of the shift in which it arose."""
    return end_of_shift(policy, raised_at)


# --- automatic counting (USP <800>) -------------------------------------------------------------------------------


def check_automatic_counting(medication: Medication) -> None:
    """Hazardous tablets are never routed to an automatic counter (contamination of the device and the next vial)."""
    if medication.hazardous:
        raise SafetyError(
            "policy.hazardous_automatic_counter",
            f"{medication.display_name} is a USP <800> hazardous drug: count it by hand in a containment device",
            item=medication.id,
        )


def needs_double_count(medication: Medication) -> bool:
    """Schedule II tablet fills get a second, independent count (DOMAIN.md rule 13)."""
    return medication.dea_schedule in (DeaSchedule.II, DeaSchedule.IIN) and medication.is_oral_solid
