"""The safety rules in ``controller.domain.policies``, as tables: each row is inputs -> expected outcome.

Expected values are written out here from DOMAIN.md and the issue text, never computed with the code under
test, so a change of behaviour shows up as a failing row. Refusals are checked by their catalogue code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from controller.domain.medication import DeaSchedule, Medication
from controller.domain.ndc import Ndc
from controller.domain.patients import Order, OrderStatus
from controller.domain.policies import (
    BlindCount,
    OverrideReason,
    Policy,
    RemovalAuthorisation,
    WitnessedAction,
    authorise_removal,
    blind_count_required,
    check_automatic_counting,
    check_witness,
    discrepancy_deadline,
    end_of_shift,
    needs_double_count,
    search_medications,
    witness_required,
)
from controller.domain.users import Privilege, Role, User
from controller.errors import CATALOGUE, Category, SafetyError

CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)


# -- builders ------------------------------------------------------------------------------------------------

_ndc_serial = iter(range(1000, 10000))


def med(
    item_id: str,
    generic: str,
    *,
    display: str | None = None,
    brand: str = "",
    schedule: DeaSchedule = DeaSchedule.NONE,
    form: str = "injection",
    hazardous: bool = False,
) -> Medication:
    """A formulary item with only the fields the rules read; each gets its own (made-up but valid) NDC."""
    return Medication(
        id=item_id,
        ndc=Ndc("99999", f"{next(_ndc_serial):04d}", "01"),
        generic_name=generic,
        display_name=display or generic,
        strength="",
        dosage_form=form,
        route="PO" if form.startswith(("tablet", "capsule")) else "IV",
        unit="each",
        brand_name=brand,
        dea_schedule=schedule,
        hazardous=hazardous,
    )


def user(user_id: str, *roles: Role, revoked: Iterable[Privilege] = (), **kwargs: Any) -> User:
    return User(
        id=user_id,
        display_name=user_id,
        roles=frozenset(roles),
        revoked_privileges=frozenset(revoked),
        **kwargs,
    )


def order(order_id: str, item: Medication, status: OrderStatus = OrderStatus.ACTIVE, *, verified: bool) -> Order:
    return Order(
        id=order_id,
        patient_id="MRN-1001",
        item_id=item.id,
        dose_amount=Decimal(4),
        dose_unit="mg",
        route="IV",
        frequency="q4h PRN",
        status=status,
        pharmacist_verified=verified,
    )


def refused(code: str, call: Callable[[], object]) -> SafetyError:
    """Assert that ``call()`` raises SafetyError with catalogue code ``code``; return it."""
    assert code in CATALOGUE, f"test expects {code!r}, which is not in the catalogue"
    with pytest.raises(SafetyError) as caught:
        call()
    assert caught.value.code == code, f"{caught.value} (wanted {code})"
    assert caught.value.definition.category is Category.SAFETY
    return caught.value


# -- items used across the tables ----------------------------------------------------------------------------

CEFAZOLIN = med("cefazolin", "ceFAZolin", display="ceFAZolin 1 g vial")
MORPHINE_INJ = med("morphine-inj", "morphine", display="morphine 4 mg/mL carpuject", schedule=DeaSchedule.II)
METHYLPHENIDATE = med("methylphenidate", "methylphenidate", schedule=DeaSchedule.IIN, form="tablet")
KETAMINE = med("ketamine", "ketamine", schedule=DeaSchedule.III)
TESTOSTERONE = med("testosterone", "testosterone cypionate", schedule=DeaSchedule.IIIN)
LORAZEPAM = med("lorazepam", "LORazepam", schedule=DeaSchedule.IV)
LACOSAMIDE = med("lacosamide", "lacosamide", schedule=DeaSchedule.V, form="tablet")

ITEMS_BY_SCHEDULE: dict[str, Medication | None] = {
    "non-controlled": CEFAZOLIN,
    "CII": MORPHINE_INJ,
    "CIIN": METHYLPHENIDATE,
    "CIII": KETAMINE,
    "CIIIN": TESTOSTERONE,
    "CIV": LORAZEPAM,
    "CV": LACOSAMIDE,
    "empty-pocket": None,
}


# -- blind count ---------------------------------------------------------------------------------------------

# setting -> items whose pocket needs a blind count before it opens
BLIND_COUNT_TABLE: dict[BlindCount, set[str]] = {
    BlindCount.EVERY_CONTROLLED_ACCESS: {"CII", "CIIN", "CIII", "CIIIN", "CIV", "CV"},
    BlindCount.SCHEDULE_II_ONLY: {"CII", "CIIN"},
    BlindCount.EVERY_ACCESS: {"non-controlled", "CII", "CIIN", "CIII", "CIIIN", "CIV", "CV", "empty-pocket"},
}


def test_blind_count_table_covers_every_setting() -> None:
    assert set(BLIND_COUNT_TABLE) == set(BlindCount)


@pytest.mark.parametrize(
    ("setting", "item", "expected"),
    [
        pytest.param(setting, item, item in needs, id=f"{setting}-{item}-{'blind' if item in needs else 'open'}")
        for setting, needs in BLIND_COUNT_TABLE.items()
        for item in ITEMS_BY_SCHEDULE
    ],
)
def test_blind_count_required(setting: BlindCount, item: str, expected: bool) -> None:
    assert blind_count_required(Policy(blind_count=setting), ITEMS_BY_SCHEDULE[item]) is expected


def test_default_policy_blind_counts_every_controlled_pocket() -> None:
    """Issue default: every access to a pocket holding a controlled substance, so a loss narrows to two users."""
    assert Policy().blind_count is BlindCount.EVERY_CONTROLLED_ACCESS


# -- witness required ----------------------------------------------------------------------------------------

W = WitnessedAction
WITNESS_CONFIGS: dict[str, frozenset[WitnessedAction]] = {
    "default": Policy().witnessed_actions,
    "none": frozenset(),
    "any-waste": frozenset({W.ANY_WASTE, W.DISCREPANCY_RESOLUTION}),
    "returns-and-restocks": frozenset({W.CONTROLLED_RETURN, W.CONTROLLED_RESTOCK}),
    "all": frozenset(WitnessedAction),
}

# (config, action) -> (witness for a controlled item?, witness for a non-controlled item?)
WITNESS_TABLE: dict[tuple[str, WitnessedAction], tuple[bool, bool]] = {
    ("default", W.CONTROLLED_WASTE): (True, False),
    ("default", W.DISCREPANCY_RESOLUTION): (True, True),
    ("default", W.CONTROLLED_RETURN): (False, False),
    ("default", W.CONTROLLED_RESTOCK): (False, False),
    ("default", W.ANY_WASTE): (True, False),
    ("none", W.CONTROLLED_WASTE): (False, False),
    ("none", W.DISCREPANCY_RESOLUTION): (False, False),
    ("none", W.CONTROLLED_RETURN): (False, False),
    ("none", W.CONTROLLED_RESTOCK): (False, False),
    ("none", W.ANY_WASTE): (False, False),
    ("any-waste", W.CONTROLLED_WASTE): (True, True),
    ("any-waste", W.DISCREPANCY_RESOLUTION): (True, True),
    ("any-waste", W.CONTROLLED_RETURN): (False, False),
    ("any-waste", W.CONTROLLED_RESTOCK): (False, False),
    ("any-waste", W.ANY_WASTE): (True, True),
    ("returns-and-restocks", W.CONTROLLED_WASTE): (False, False),
    ("returns-and-restocks", W.DISCREPANCY_RESOLUTION): (False, False),
    ("returns-and-restocks", W.CONTROLLED_RETURN): (True, False),
    ("returns-and-restocks", W.CONTROLLED_RESTOCK): (True, False),
    ("returns-and-restocks", W.ANY_WASTE): (False, False),
    ("all", W.CONTROLLED_WASTE): (True, True),
    ("all", W.DISCREPANCY_RESOLUTION): (True, True),
    ("all", W.CONTROLLED_RETURN): (True, False),
    ("all", W.CONTROLLED_RESTOCK): (True, False),
    ("all", W.ANY_WASTE): (True, True),
}


def test_witness_table_covers_every_action_and_configuration() -> None:
    assert set(WITNESS_TABLE) == {(config, action) for config in WITNESS_CONFIGS for action in WitnessedAction}


def test_default_witnessed_actions_are_controlled_waste_and_discrepancy_resolution() -> None:
    assert Policy().witnessed_actions == {W.CONTROLLED_WASTE, W.DISCREPANCY_RESOLUTION}


@pytest.mark.parametrize(
    ("config", "action", "item", "expected"),
    [
        pytest.param(
            config,
            action,
            item,
            expected,
            id=f"{config}-{action}-{'controlled' if item is MORPHINE_INJ else 'non-controlled'}"
            f"-{'witness' if expected else 'alone'}",
        )
        for (config, action), (for_controlled, for_other) in WITNESS_TABLE.items()
        for item, expected in ((MORPHINE_INJ, for_controlled), (CEFAZOLIN, for_other))
    ],
)
def test_witness_required(config: str, action: WitnessedAction, item: Medication, expected: bool) -> None:
    policy = Policy(witnessed_actions=WITNESS_CONFIGS[config])
    assert witness_required(policy, action, item) is expected


@pytest.mark.parametrize(
    ("config", "action", "expected"),
    [
        pytest.param("default", W.CONTROLLED_WASTE, False, id="default-waste-from-empty-pocket-alone"),
        pytest.param("default", W.DISCREPANCY_RESOLUTION, True, id="default-discrepancy-in-empty-pocket-witness"),
        pytest.param("all", W.CONTROLLED_RETURN, False, id="all-return-of-nothing-alone"),
        pytest.param("any-waste", W.ANY_WASTE, True, id="any-waste-unknown-item-witness"),
    ],
)
def test_witness_required_without_an_item(config: str, action: WitnessedAction, expected: bool) -> None:
    assert witness_required(Policy(witnessed_actions=WITNESS_CONFIGS[config]), action, None) is expected


# -- check_witness -------------------------------------------------------------------------------------------

NURSE = user("rn-ada", Role.NURSE)
TEMP_EXPIRY = NOW + timedelta(hours=3)


@dataclass(frozen=True)
class WitnessCase:
    witness: User | None
    required: bool = True
    actor: User = NURSE
    now: datetime = NOW
    action: WitnessedAction | None = None


@pytest.mark.parametrize(
    ("case", "expected_code"),
    [
        pytest.param(WitnessCase(None, required=True), "policy.witness_required", id="missing-when-required"),
        pytest.param(WitnessCase(None, required=False), None, id="missing-when-not-required-ok"),
        pytest.param(WitnessCase(NURSE), "policy.witness_is_actor", id="actor-witnesses-self"),
        pytest.param(
            WitnessCase(user("rn-ada", Role.PHARMACIST)), "policy.witness_is_actor", id="same-user-id-other-record"
        ),
        pytest.param(WitnessCase(NURSE, required=False), "policy.witness_is_actor", id="actor-as-optional-witness"),
        pytest.param(
            WitnessCase(user("agency-rn", Role.NURSE, expires_at=TEMP_EXPIRY), now=TEMP_EXPIRY - timedelta(seconds=1)),
            None,
            id="temporary-witness-before-expiry-ok",
        ),
        pytest.param(
            WitnessCase(user("agency-rn", Role.NURSE, expires_at=TEMP_EXPIRY), now=TEMP_EXPIRY),
            "auth.user_expired",
            id="temporary-witness-exactly-at-expiry",
        ),
        pytest.param(
            WitnessCase(user("agency-rn", Role.NURSE, expires_at=NOW - timedelta(hours=1))),
            "auth.user_expired",
            id="temporary-witness-expired",
        ),
        pytest.param(WitnessCase(user("rn-gone", Role.NURSE, active=False)), "auth.user_inactive", id="deactivated"),
        pytest.param(
            WitnessCase(user("rn-gone", Role.NURSE, active=False, expires_at=NOW - timedelta(hours=1))),
            "auth.user_inactive",
            id="deactivated-and-expired-reports-deactivated",
        ),
        pytest.param(WitnessCase(user("it-admin", Role.ADMIN)), "policy.witness_lacks_privilege", id="admin"),
        pytest.param(WitnessCase(user("qa-bot", Role.QA)), "policy.witness_lacks_privilege", id="qa"),
        pytest.param(
            WitnessCase(user("rn-no-witness", Role.NURSE, revoked={Privilege.WITNESS})),
            "policy.witness_lacks_privilege",
            id="nurse-with-witness-revoked",
        ),
        pytest.param(
            WitnessCase(user("it-admin", Role.ADMIN), required=False),
            "policy.witness_lacks_privilege",
            id="optional-witness-still-checked",
        ),
        pytest.param(WitnessCase(user("rn-bob", Role.NURSE)), None, id="second-nurse-ok"),
        pytest.param(WitnessCase(user("rph-cho", Role.PHARMACIST)), None, id="pharmacist-ok"),
        pytest.param(WitnessCase(user("cpht-dee", Role.TECHNICIAN)), None, id="technician-ok"),
        pytest.param(WitnessCase(user("crna-eve", Role.ANESTHESIA_PROVIDER)), None, id="anesthesia-provider-ok"),
        pytest.param(
            WitnessCase(user("cpht-dee", Role.TECHNICIAN), action=WitnessedAction.CONTROLLED_WASTE),
            "policy.witness_lacks_privilege",
            id="technician-cannot-witness-waste",
        ),
        pytest.param(
            WitnessCase(user("cpht-dee", Role.TECHNICIAN), action=WitnessedAction.CONTROLLED_RESTOCK),
            None,
            id="technician-witnesses-restock-ok",
        ),
        pytest.param(
            WitnessCase(user("rph-cho", Role.PHARMACIST), action=WitnessedAction.CONTROLLED_WASTE),
            None,
            id="pharmacist-witnesses-waste-ok",
        ),
        pytest.param(
            WitnessCase(user("rn-bob", Role.NURSE), action=WitnessedAction.ANY_WASTE), None, id="nurse-witnesses-waste"
        ),
        pytest.param(
            WitnessCase(
                User("qa-lead", "qa-lead", frozenset({Role.QA}), extra_privileges=frozenset({Privilege.WITNESS}))
            ),
            None,
            id="qa-granted-witness-ok",
        ),
        pytest.param(
            WitnessCase(user("rn-bob", Role.NURSE), actor=user("it-admin", Role.ADMIN)),
            None,
            id="actor-privileges-are-not-the-witness-check",
        ),
    ],
)
def test_check_witness(case: WitnessCase, expected_code: str | None) -> None:
    def call() -> None:
        check_witness(case.actor, case.witness, case.now, required=case.required, action=case.action)

    if expected_code is None:
        call()
    else:
        refused(expected_code, call)


# -- removal authorisation -----------------------------------------------------------------------------------

ONDANSETRON = med("ondansetron", "ondansetron", display="ondansetron 4 mg/2 mL vial")
NALOXONE = med("naloxone", "naloxone", brand="Narcan", display="naloxone 0.4 mg/mL vial")
# On the formulary's critical-override list (NALOXONE above is only on the policy's override list).
EPINEPHRINE = replace(
    NALOXONE, id="epinephrine", generic_name="EPINEPHrine", brand_name="", display_name="EPINEPHrine 1 mg/mL vial",
    critical_override=True,
)  # fmt: skip
OXYCODONE_TAB = med(
    "oxycodone-tab", "oxyCODONE", display="oxyCODONE 5 mg tablet", schedule=DeaSchedule.II, form="tablet"
)

OVERRIDE_POLICY = Policy(
    override_items=frozenset({NALOXONE.id, MORPHINE_INJ.id}),
    override_reasons=frozenset({OverrideReason.RESCUE, OverrideReason.SEVERE_PAIN, OverrideReason.EMERGENT_PROCEDURE}),
)

RN = user("rn-ada", Role.NURSE)
RN_NO_OVERRIDE = user("rn-new", Role.NURSE, revoked={Privilege.OVERRIDE})
RN_NO_CII = user("rn-float", Role.NURSE, revoked={Privilege.ACCESS_SCHEDULE_II})
CRNA = user("crna-eve", Role.ANESTHESIA_PROVIDER)
RPH = user("rph-cho", Role.PHARMACIST)
TECH = user("cpht-dee", Role.TECHNICIAN)
ADMIN = user("it-admin", Role.ADMIN)
QA = user("qa-bot", Role.QA)

ONDANSETRON_VERIFIED = order("O-1", ONDANSETRON, verified=True)
ONDANSETRON_UNVERIFIED = order("O-2", ONDANSETRON, verified=False)
ONDANSETRON_HELD = order("O-3", ONDANSETRON, OrderStatus.HELD, verified=True)
ONDANSETRON_DISCONTINUED = order("O-4", ONDANSETRON, OrderStatus.DISCONTINUED, verified=True)
CEFAZOLIN_VERIFIED = order("O-5", CEFAZOLIN, verified=True)
NALOXONE_UNVERIFIED = order("O-6", NALOXONE, verified=False)
MORPHINE_VERIFIED = order("O-7", MORPHINE_INJ, verified=True)


@dataclass(frozen=True)
class Refused:
    code: str
    context: dict[str, str] = field(default_factory=dict)


def allowed(*, override: bool, reason: OverrideReason | None = None, cap: int | None = None) -> RemovalAuthorisation:
    return RemovalAuthorisation(is_override=override, reason=reason, max_quantity=cap)


@dataclass(frozen=True)
class Removal:
    item: Medication
    order: Order | None = None
    user: User = RN
    profiled: bool = True
    critical: bool = False
    reason: OverrideReason | None = None
    policy: Policy = OVERRIDE_POLICY


PRIV = "policy.privilege_missing"

REMOVAL_TABLE = [
    # -- against an order
    pytest.param(Removal(ONDANSETRON, ONDANSETRON_VERIFIED), allowed(override=False, cap=2), id="profiled-verified"),
    pytest.param(
        Removal(ONDANSETRON, ONDANSETRON_VERIFIED, profiled=False),
        allowed(override=False, cap=2),
        id="non-profiled-verified",
    ),
    pytest.param(
        Removal(ONDANSETRON, ONDANSETRON_VERIFIED, reason=OverrideReason.RESCUE),
        allowed(override=False, cap=2),
        id="verified-order-makes-a-reason-moot",
    ),
    pytest.param(Removal(ONDANSETRON, ONDANSETRON_UNVERIFIED), Refused("policy.order_not_verified"), id="unverified"),
    pytest.param(Removal(ONDANSETRON, ONDANSETRON_HELD), Refused("policy.order_not_verified"), id="held"),
    pytest.param(
        Removal(ONDANSETRON, ONDANSETRON_DISCONTINUED), Refused("policy.order_not_verified"), id="discontinued"
    ),
    pytest.param(
        Removal(ONDANSETRON, CEFAZOLIN_VERIFIED), Refused("policy.order_not_verified"), id="order-for-another-item"
    ),
    pytest.param(
        Removal(ONDANSETRON, CEFAZOLIN_VERIFIED, profiled=False),
        Refused("policy.order_not_verified"),
        id="non-profiled-order-for-another-item",
    ),
    pytest.param(
        Removal(ONDANSETRON, CEFAZOLIN_VERIFIED, critical=True),
        Refused("policy.order_not_verified"),
        id="critical-mode-order-for-another-item",
    ),
    pytest.param(
        Removal(MORPHINE_INJ, MORPHINE_VERIFIED), allowed(override=False, cap=2), id="nurse-verified-cii-order"
    ),
    # -- without a verified order: non-profiled areas are not overrides
    pytest.param(Removal(ONDANSETRON, profiled=False), allowed(override=False), id="non-profiled-no-order"),
    pytest.param(
        Removal(ONDANSETRON, ONDANSETRON_UNVERIFIED, profiled=False),
        allowed(override=False),
        id="non-profiled-unverified-order",
    ),
    pytest.param(
        Removal(MORPHINE_INJ, user=CRNA, profiled=False), allowed(override=False), id="anesthesia-or-no-order-cii"
    ),
    # -- overrides in a profiled area
    pytest.param(
        Removal(NALOXONE, reason=OverrideReason.RESCUE),
        allowed(override=True, reason=OverrideReason.RESCUE),
        id="override-listed-with-reason",
    ),
    pytest.param(
        Removal(MORPHINE_INJ, reason=OverrideReason.SEVERE_PAIN),
        allowed(override=True, reason=OverrideReason.SEVERE_PAIN),
        id="override-listed-cii-with-reason",
    ),
    pytest.param(
        Removal(NALOXONE, NALOXONE_UNVERIFIED, reason=OverrideReason.RESCUE),
        allowed(override=True, reason=OverrideReason.RESCUE),
        id="override-ahead-of-pending-verification",
    ),
    pytest.param(
        Removal(ONDANSETRON, reason=OverrideReason.RESCUE),
        Refused("policy.override_not_listed", {"item": "ondansetron"}),
        id="override-not-listed",
    ),
    pytest.param(
        Removal(OXYCODONE_TAB, reason=OverrideReason.SEVERE_PAIN),
        Refused("policy.override_not_listed"),
        id="override-oral-cii-not-listed",
    ),
    pytest.param(Removal(ONDANSETRON), Refused("policy.override_not_listed"), id="no-order-no-reason-not-listed"),
    pytest.param(Removal(NALOXONE), Refused("policy.override_reason_required"), id="override-without-reason"),
    pytest.param(
        Removal(NALOXONE, reason=OverrideReason.PHARMACY_CLOSED),
        Refused("policy.override_reason_required"),
        id="override-reason-not-allowed-by-policy",
    ),
    pytest.param(
        Removal(NALOXONE, reason=OverrideReason.RESCUE, policy=Policy()),
        Refused("policy.override_not_listed"),
        id="default-policy-has-empty-override-list",
    ),
    pytest.param(
        Removal(NALOXONE, user=RN_NO_OVERRIDE, reason=OverrideReason.RESCUE),
        Refused(PRIV, {"privilege": "override"}),
        id="user-without-override-privilege",
    ),
    pytest.param(
        Removal(NALOXONE, user=RPH, reason=OverrideReason.RESCUE),
        Refused(PRIV, {"privilege": "override"}),
        id="pharmacist-does-not-override",
    ),
    # -- who may remove at all
    pytest.param(
        Removal(MORPHINE_INJ, MORPHINE_VERIFIED, user=RN_NO_CII),
        Refused(PRIV, {"privilege": "access_schedule_ii"}),
        id="cii-without-schedule-ii-privilege",
    ),
    pytest.param(
        Removal(MORPHINE_INJ, user=RN_NO_CII, critical=True),
        Refused(PRIV, {"privilege": "access_schedule_ii"}),
        id="critical-mode-does-not-lift-cii-access",
    ),
    pytest.param(
        Removal(METHYLPHENIDATE, user=RN_NO_CII, profiled=False),
        Refused(PRIV, {"privilege": "access_schedule_ii"}),
        id="ciin-needs-schedule-ii-privilege",
    ),
    pytest.param(
        Removal(LORAZEPAM, user=RN_NO_CII, profiled=False), allowed(override=False), id="civ-without-cii-privilege-ok"
    ),
    pytest.param(
        Removal(ONDANSETRON, ONDANSETRON_VERIFIED, user=TECH), Refused(PRIV, {"privilege": "remove"}), id="technician"
    ),
    pytest.param(Removal(ONDANSETRON, ONDANSETRON_VERIFIED, user=ADMIN), Refused(PRIV), id="admin"),
    pytest.param(Removal(ONDANSETRON, ONDANSETRON_VERIFIED, user=QA), Refused(PRIV), id="qa"),
    # -- critical-override mode: the critical-override list without an order, every removal flagged for review
    pytest.param(Removal(EPINEPHRINE, critical=True), allowed(override=True), id="critical-no-order"),
    pytest.param(
        Removal(EPINEPHRINE, critical=True, reason=OverrideReason.PHARMACY_CLOSED),
        allowed(override=True, reason=OverrideReason.PHARMACY_CLOSED),
        id="critical-keeps-the-given-reason",
    ),
    pytest.param(
        Removal(ONDANSETRON, ONDANSETRON_UNVERIFIED, critical=True),
        Refused("policy.critical_override_not_listed"),
        id="critical-unverified-order-of-an-unlisted-item",
    ),
    pytest.param(
        Removal(ONDANSETRON, critical=True),
        Refused("policy.critical_override_not_listed"),
        id="critical-mode-item-not-listed",
    ),
    pytest.param(
        Removal(NALOXONE, critical=True, reason=OverrideReason.RESCUE),
        allowed(override=True, reason=OverrideReason.RESCUE),
        id="critical-unlisted-by-ordinary-override",
    ),
    pytest.param(
        Removal(ONDANSETRON, critical=True, reason=OverrideReason.RESCUE),
        Refused("policy.override_not_listed"),
        id="critical-unlisted-not-on-the-override-list",
    ),
    pytest.param(
        Removal(ONDANSETRON, ONDANSETRON_VERIFIED, critical=True),
        allowed(override=False, cap=2),
        id="critical-verified-order-is-not-an-override",
    ),
    pytest.param(
        Removal(EPINEPHRINE, user=RN_NO_OVERRIDE, critical=True),
        allowed(override=True),
        id="critical-needs-no-override-privilege",
    ),
    pytest.param(
        Removal(ONDANSETRON, critical=True, profiled=False), allowed(override=False), id="critical-in-non-profiled"
    ),
]


@pytest.mark.parametrize(("case", "expected"), REMOVAL_TABLE)
def test_authorise_removal(case: Removal, expected: RemovalAuthorisation | Refused) -> None:
    def call() -> RemovalAuthorisation:
        return authorise_removal(
            case.policy,
            profiled_area=case.profiled,
            critical_override_mode=case.critical,
            user=case.user,
            medication=case.item,
            order=case.order,
            override_reason=case.reason,
            order_max_units=2,
        )

    if isinstance(expected, Refused):
        error = refused(expected.code, call)
        for key, value in expected.context.items():
            assert error.context[key] == value
    else:
        assert call() == expected


# -- drug search ---------------------------------------------------------------------------------------------

VECURONIUM = med("vecuronium", "vecuronium", display="vecuronium 10 mg vial")
MIDAZOLAM = med(
    "midazolam", "midazolam", brand="Versed", display="midazolam 1 mg/mL 2 mL vial", schedule=DeaSchedule.IV
)
ROCURONIUM = med("rocuronium", "rocuronium", display="rocuronium 50 mg/5 mL vial")
FLUMAZENIL = med("flumazenil", "flumazenil", brand="Romazicon", display="flumazenil 0.1 mg/mL 5 mL vial")
HYDROMORPHONE = med(
    "hydromorphone",
    "HYDROmorphone",
    brand="Dilaudid",
    display="HYDROmorphone 2 mg/mL 1 mL carpuject",
    schedule=DeaSchedule.II,
)
HYDROXYZINE = med("hydroxyzine", "hydrOXYzine", brand="Atarax", display="hydrOXYzine 25 mg tablet", form="tablet")
NORCO = med(
    "hydrocodone-apap",
    "HYDROcodone-acetaminophen",
    brand="Norco",
    display="HYDROcodone-acetaminophen 5-325 mg tablet",
    schedule=DeaSchedule.II,
    form="tablet",
)
HEPARIN_1000 = med("heparin-1000", "heparin", display="heparin 1,000 units/mL 1 mL vial")
HEPARIN_10000 = med("heparin-10000", "heparin", display="heparin 10,000 units/mL 1 mL vial")
HEPARIN_FLUSH = med("heparin-flush", "heparin", brand="Hep-Lock", display="heparin 10 units/mL 5 mL flush")
ZOSYN = med("pip-tazo", "piperacillin-tazobactam", brand="Zosyn", display="piperacillin-tazobactam 3.375 g/50 mL bag")

KETOROLAC = med("ketorolac", "ketorolac", display="ketorolac (Toradol) 30 mg/mL vial")  # brand only in the display

FORMULARY = (
    VECURONIUM,
    MIDAZOLAM,
    ROCURONIUM,
    FLUMAZENIL,
    HYDROMORPHONE,
    HYDROXYZINE,
    NORCO,
    HEPARIN_1000,
    HEPARIN_10000,
    HEPARIN_FLUSH,
    ZOSYN,
    KETOROLAC,
)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("ve", id="ve-picked-vecuronium-for-versed"),
        pytest.param("ro", id="ro-picked-romazicon-for-rocuronium"),
        pytest.param("  ve  ", id="whitespace-does-not-count"),
        pytest.param("VE", id="upper-case"),
        pytest.param("Vecu", id="four-letters"),
        pytest.param("ROCU", id="four-letters-upper"),
        pytest.param("HYDR", id="tall-man-four-letters"),
        pytest.param("hy dr", id="inner-space-does-not-count"),
        pytest.param("v-e-c-u", id="hyphens-do-not-count"),
        pytest.param("(ve)", id="brackets-do-not-count"),
        pytest.param("\thydr\n", id="tabs-and-newlines"),
        pytest.param("", id="empty"),
        pytest.param("     ", id="only-spaces"),
    ],
)
def test_search_refuses_fewer_than_five_characters(query: str) -> None:
    error = refused("policy.search_too_short", lambda: search_medications(Policy(), query, FORMULARY))
    assert "5" in error.detail


@pytest.mark.parametrize(
    ("query", "expected_ids", "unique"),
    [
        pytest.param("vecur", ["vecuronium"], True, id="vecur-exactly-five"),
        pytest.param("verse", ["midazolam"], True, id="verse-finds-versed-by-brand"),
        pytest.param("VERSED", ["midazolam"], True, id="brand-upper-case"),
        pytest.param("midaz", ["midazolam"], True, id="midaz-generic"),
        pytest.param("rocur", ["rocuronium"], True, id="rocur-not-romazicon"),
        pytest.param("romaz", ["flumazenil"], True, id="romaz-finds-flumazenil-by-brand"),
        pytest.param("  rocur  ", ["rocuronium"], True, id="surrounding-whitespace-ignored"),
        pytest.param(
            "hydro", ["hydrocodone-apap", "hydromorphone", "hydroxyzine"], False, id="hydro-is-ambiguous-sorted"
        ),
        pytest.param("hydrom", ["hydromorphone"], True, id="hydrom-lower"),
        pytest.param("HYDROM", ["hydromorphone"], True, id="hydrom-upper"),
        pytest.param("HYDROmorphone", ["hydromorphone"], True, id="tall-man-as-printed"),
        pytest.param("hYdRoMoRpHoNe", ["hydromorphone"], True, id="mixed-case"),
        pytest.param("hydrox", ["hydroxyzine"], True, id="hydrox"),
        pytest.param("HYDROXYZINE", ["hydroxyzine"], True, id="hydroxyzine-upper"),
        pytest.param("dilau", ["hydromorphone"], True, id="dilaudid-brand"),
        pytest.param("morphone", [], False, id="middle-of-a-word-does-not-match"),
        pytest.param("zolam", [], False, id="suffix-does-not-match"),
        pytest.param("aceta", ["hydrocodone-apap"], True, id="word-after-hyphen"),
        pytest.param("tazob", ["pip-tazo"], True, id="second-half-of-combination"),
        pytest.param("piperacillin-tazobactam", ["pip-tazo"], True, id="combination-typed-with-hyphen"),
        pytest.param("HYDROcodone-acet", ["hydrocodone-apap"], True, id="tall-man-combination-with-hyphen"),
        pytest.param("piperacillin tazobactam", ["pip-tazo"], True, id="combination-typed-with-space"),
        pytest.param("hepar", ["heparin-1000", "heparin-flush", "heparin-10000"], False, id="heparin-ambiguous"),
        pytest.param("heparin 10", ["heparin-flush", "heparin-10000"], False, id="heparin-10-still-ambiguous"),
        pytest.param("heparin 10,000", ["heparin-10000"], True, id="heparin-10000-unique"),
        pytest.param("heparin 1,000", ["heparin-1000"], True, id="heparin-1000-unique"),
        pytest.param("hep-lock", ["heparin-flush"], True, id="hyphenated-brand"),
        pytest.param("torad", ["ketorolac"], True, id="bracketed-brand-in-display-name"),
        pytest.param("vecuronium 10 mg", ["vecuronium"], True, id="name-and-strength"),
        pytest.param("xylitol", [], False, id="nothing-found-is-not-unique"),
    ],
)
def test_search_medications(query: str, expected_ids: list[str], unique: bool) -> None:
    result = search_medications(Policy(), query, FORMULARY)
    assert [m.id for m in result.matches] == expected_ids
    assert result.unique is unique


@pytest.mark.parametrize(
    ("min_chars", "query", "expected_ids"),
    [
        pytest.param(3, "ve", None, id="three-refuses-two"),
        pytest.param(3, "vec", ["vecuronium"], id="three-accepts-three"),
        pytest.param(3, "hyd", ["hydrocodone-apap", "hydromorphone", "hydroxyzine"], id="three-accepts-ambiguous"),
        pytest.param(1, "z", ["pip-tazo"], id="one-accepts-one"),
        pytest.param(8, "hydromo", None, id="eight-refuses-seven"),
        pytest.param(8, "hydromor", ["hydromorphone"], id="eight-accepts-eight"),
        pytest.param(8, "hydro mo", None, id="eight-refuses-seven-letters-and-a-space"),
    ],
)
def test_search_min_chars_is_configurable(min_chars: int, query: str, expected_ids: list[str] | None) -> None:
    policy = Policy(search_min_chars=min_chars)
    if expected_ids is None:
        refused("policy.search_too_short", lambda: search_medications(policy, query, FORMULARY))
    else:
        assert [m.id for m in search_medications(policy, query, FORMULARY).matches] == expected_ids


def test_default_search_min_chars_is_five() -> None:
    assert Policy().search_min_chars == 5


@pytest.mark.parametrize("min_chars", [0, -1])
def test_search_min_chars_must_be_positive(min_chars: int) -> None:
    with pytest.raises(ValueError, match="search_min_chars"):
        Policy(search_min_chars=min_chars)


def _word_prefixes(names: Iterable[str]) -> list[str]:
    """Every prefix of a formulary name with at least five letters or digits (long enough to be searched)."""
    prefixes = {name[:n] for name in names for n in range(5, len(name) + 1)}
    return sorted(p for p in prefixes if sum(c.isalnum() for c in p) >= 5)


@given(
    query=st.sampled_from(_word_prefixes(n for m in FORMULARY for n in m.search_names())),
    case=st.sampled_from([str.lower, str.upper, str.swapcase, str.title]),
)
def test_search_ignores_letter_case(query: str, case: Callable[[str], str]) -> None:
    assert search_medications(Policy(), case(query), FORMULARY) == search_medications(Policy(), query, FORMULARY)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzHYDRO \t", max_size=12))
def test_search_refuses_any_query_with_fewer_than_five_letters(query: str) -> None:
    if len("".join(query.split())) < 5:
        refused("policy.search_too_short", lambda: search_medications(Policy(), query, FORMULARY))
    else:
        search_medications(Policy(), query, FORMULARY)


# -- discrepancy deadline: end of the shift in which it arose ------------------------------------------------


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, *, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raised_at", "deadline"),
    [
        pytest.param(utc(2026, 11, 25, 14, 30), utc(2026, 11, 25, 19), id="day-shift-ends-19"),
        pytest.param(utc(2026, 11, 25, 0, 0), utc(2026, 11, 25, 7), id="midnight-night-shift-ends-07"),
        pytest.param(
            utc(2026, 11, 25, 6, 59, second=59, micro=999999), utc(2026, 11, 25, 7), id="last-microsecond-of-night"
        ),
        pytest.param(utc(2026, 11, 25, 7), utc(2026, 11, 25, 19), id="exactly-07-is-next-shift-ends-19"),
        pytest.param(utc(2026, 11, 25, 7, 0, micro=1), utc(2026, 11, 25, 19), id="just-after-07"),
        pytest.param(utc(2026, 11, 25, 18, 59), utc(2026, 11, 25, 19), id="18-59"),
        pytest.param(utc(2026, 11, 25, 19), utc(2026, 11, 26, 7), id="exactly-19-is-next-shift-ends-07"),
        pytest.param(utc(2026, 11, 25, 23, 30), utc(2026, 11, 26, 7), id="late-night-ends-next-morning"),
        pytest.param(utc(2026, 12, 31, 22), utc(2027, 1, 1, 7), id="new-year"),
        pytest.param(utc(2028, 2, 28, 20), utc(2028, 2, 29, 7), id="leap-day"),
    ],
)
def test_discrepancy_deadline_default_shifts_utc(raised_at: datetime, deadline: datetime) -> None:
    assert Policy().shift_starts == (time(7), time(19))
    assert discrepancy_deadline(Policy(), raised_at) == deadline
    assert end_of_shift(Policy(), raised_at) == deadline


def test_deadline_is_returned_in_the_zone_of_the_input() -> None:
    raised_at = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("America/New_York"))  # 15:00 UTC
    deadline = discrepancy_deadline(Policy(), raised_at)
    assert deadline == utc(2026, 11, 25, 19)
    assert deadline.tzinfo is raised_at.tzinfo
    assert (deadline.hour, deadline.minute) == (14, 0)


THREE_SHIFTS = Policy(shift_starts=(time(23), time(7), time(15)))  # given out of order on purpose


@pytest.mark.parametrize(
    ("raised_at", "deadline"),
    [
        pytest.param(utc(2026, 11, 25, 3), utc(2026, 11, 25, 7), id="night-ends-07"),
        pytest.param(utc(2026, 11, 25, 7), utc(2026, 11, 25, 15), id="exactly-07-day-ends-15"),
        pytest.param(utc(2026, 11, 25, 12), utc(2026, 11, 25, 15), id="day-ends-15"),
        pytest.param(utc(2026, 11, 25, 15), utc(2026, 11, 25, 23), id="exactly-15-evening-ends-23"),
        pytest.param(utc(2026, 11, 25, 22, 59, second=59), utc(2026, 11, 25, 23), id="evening-last-second"),
        pytest.param(utc(2026, 11, 25, 23), utc(2026, 11, 26, 7), id="exactly-23-night-ends-07-next-day"),
    ],
)
def test_discrepancy_deadline_three_shift_pattern(raised_at: datetime, deadline: datetime) -> None:
    assert discrepancy_deadline(THREE_SHIFTS, raised_at) == deadline


CHICAGO_POLICY = Policy(timezone="America/Chicago")


def chicago(month: int, day: int, hour: int, minute: int = 0, *, fold: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, fold=fold, tzinfo=CHICAGO)


# In 2026 US daylight time starts Sunday 8 March (02:00 CST -> 03:00 CDT) and ends Sunday 1 November
# (02:00 CDT -> 01:00 CST). Shift boundaries stay at 07:00 and 19:00 on the wall clock.
@pytest.mark.parametrize(
    ("raised_at", "deadline", "local_deadline"),
    [
        pytest.param(utc(2026, 3, 8, 1), utc(2026, 3, 8, 12), "2026-03-08 07:00 CDT", id="spring-19-cst-night-is-11h"),
        pytest.param(chicago(3, 8, 0, 30), utc(2026, 3, 8, 12), "2026-03-08 07:00 CDT", id="spring-before-jump"),
        pytest.param(chicago(3, 8, 3, 30), utc(2026, 3, 8, 12), "2026-03-08 07:00 CDT", id="spring-after-jump"),
        pytest.param(chicago(3, 8, 7), utc(2026, 3, 9, 0), "2026-03-08 19:00 CDT", id="spring-exactly-07-cdt"),
        pytest.param(utc(2026, 3, 8, 13), utc(2026, 3, 9, 0), "2026-03-08 19:00 CDT", id="spring-day-shift-utc-in"),
        pytest.param(chicago(10, 31, 19), utc(2026, 11, 1, 13), "2026-11-01 07:00 CST", id="fall-19-cdt-night-is-13h"),
        pytest.param(
            chicago(11, 1, 1, 30, fold=0), utc(2026, 11, 1, 13), "2026-11-01 07:00 CST", id="fall-first-01-30-cdt"
        ),
        pytest.param(
            chicago(11, 1, 1, 30, fold=1), utc(2026, 11, 1, 13), "2026-11-01 07:00 CST", id="fall-second-01-30-cst"
        ),
        pytest.param(chicago(11, 1, 7), utc(2026, 11, 2, 1), "2026-11-01 19:00 CST", id="fall-exactly-07-cst"),
        pytest.param(utc(2026, 11, 1, 12), utc(2026, 11, 1, 13), "2026-11-01 07:00 CST", id="fall-06-cst-utc-in"),
    ],
)
def test_discrepancy_deadline_follows_local_wall_clock_across_dst(
    raised_at: datetime, deadline: datetime, local_deadline: str
) -> None:
    result = discrepancy_deadline(CHICAGO_POLICY, raised_at)
    assert result.astimezone(UTC) == deadline
    assert result.astimezone(CHICAGO).strftime("%Y-%m-%d %H:%M %Z") == local_deadline


# A shift that starts inside the hour that repeats (fall) or is skipped (spring). Deadlines must still come
# after the discrepancy; a skipped wall time counts as the same time after the jump (RFC 5545, PEP 495 fold=0).
@pytest.mark.parametrize(
    ("shift_starts", "raised_at", "deadline"),
    [
        pytest.param(
            (time(1, 30), time(13, 30)), chicago(11, 1, 1, 15, fold=0), utc(2026, 11, 1, 6, 30), id="fall-first-01-15"
        ),
        pytest.param(
            (time(1, 30), time(13, 30)),
            chicago(11, 1, 1, 15, fold=1),
            utc(2026, 11, 1, 19, 30),
            id="fall-second-01-15-boundary-already-passed",
        ),
        pytest.param(
            (time(1, 30), time(13, 30)), chicago(11, 1, 1, 45, fold=0), utc(2026, 11, 1, 19, 30), id="fall-01-45-cdt"
        ),
        pytest.param(
            (time(2, 30), time(14, 30)), chicago(3, 8, 1, 50), utc(2026, 3, 8, 8, 30), id="spring-skipped-02-30"
        ),
        pytest.param(
            (time(2, 30), time(14, 30)), chicago(3, 8, 3, 10), utc(2026, 3, 8, 8, 30), id="spring-03-10-before-03-30"
        ),
        pytest.param(
            (time(2, 30), time(3)),
            chicago(3, 8, 1, 50),
            utc(2026, 3, 8, 8),
            id="spring-03-00-comes-before-skipped-02-30",
        ),
    ],
)
def test_discrepancy_deadline_with_shift_start_in_a_dst_transition(
    shift_starts: tuple[time, ...], raised_at: datetime, deadline: datetime
) -> None:
    result = discrepancy_deadline(Policy(shift_starts=shift_starts, timezone="America/Chicago"), raised_at)
    assert result > raised_at
    assert result.astimezone(UTC) == deadline


def test_end_of_shift_refuses_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        end_of_shift(Policy(), datetime(2026, 11, 25, 14, 30))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"shift_starts": ()}, ValueError, id="no-shift-starts"),
        pytest.param({"timezone": "America/Chicgo"}, LookupError, id="misspelt-timezone"),
    ],
)
def test_policy_refuses_bad_shift_configuration(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Policy(**kwargs)


ZONES = ("UTC", "America/Chicago", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata")
shift_times = st.builds(time, hour=st.integers(0, 23), minute=st.sampled_from([0, 15, 30, 45]))
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC))


def _utc_offset_changes(zone: str, years: range) -> list[datetime]:
    """The hours at which ``zone`` starts a new UTC offset: the moments the bugs hide near (from tzdata)."""
    tz = ZoneInfo(zone)
    day, hour = timedelta(days=1), timedelta(hours=1)
    changes: list[datetime] = []
    midnight = datetime(years.start, 1, 1, tzinfo=UTC)
    while midnight.year < years.stop:
        if midnight.astimezone(tz).utcoffset() != (midnight + day).astimezone(tz).utcoffset():
            changes.extend(
                midnight + n * hour
                for n in range(1, 25)
                if (midnight + n * hour).astimezone(tz).utcoffset()
                != (midnight + (n - 1) * hour).astimezone(tz).utcoffset()
            )
        midnight += day
    return changes


OFFSET_CHANGES = {zone: _utc_offset_changes(zone, range(2025, 2028)) for zone in ZONES}


@st.composite
def instants_near_offset_changes(draw: st.DrawFn, zone: str) -> datetime:
    """Mostly instants within a few hours of a DST change in ``zone``; sometimes any instant."""
    changes = OFFSET_CHANGES[zone]
    if not changes or draw(st.booleans()):
        return draw(instants)
    return draw(st.sampled_from(changes)) + timedelta(minutes=draw(st.integers(-240, 240)))


def _configured_boundaries(policy: Policy, around: datetime) -> list[datetime]:
    """Every configured shift start, resolved like a calendar would (fold=0), on the days near ``around``."""
    zone = ZoneInfo(policy.timezone)
    local_day = around.astimezone(zone).date()
    return [
        datetime.combine(local_day + timedelta(days=offset), start, tzinfo=zone).astimezone(UTC)
        for offset in range(-1, 3)
        for start in policy.shift_starts
    ]


@given(
    starts=st.lists(shift_times, min_size=1, max_size=4, unique=True),
    zone=st.shared(st.sampled_from(ZONES), key="zone"),
    instant=st.shared(st.sampled_from(ZONES), key="zone").flatmap(instants_near_offset_changes),
    in_policy_zone=st.booleans(),
)
@example(
    starts=[time(1, 30), time(13, 30)], zone="America/Chicago", instant=utc(2026, 11, 1, 7, 15), in_policy_zone=True
)
@example(starts=[time(2, 30), time(3)], zone="America/Chicago", instant=utc(2026, 3, 8, 7, 50), in_policy_zone=True)
def test_end_of_shift_is_the_next_configured_boundary(
    starts: list[time], zone: str, instant: datetime, in_policy_zone: bool
) -> None:
    policy = Policy(shift_starts=tuple(starts), timezone=zone)
    at = instant.astimezone(ZoneInfo(zone)) if in_policy_zone else instant
    result = end_of_shift(policy, at)

    assert result > at
    # 24 h apart at most, plus the longest DST shift (1 h) when the clocks go back inside the interval.
    assert result - at <= timedelta(hours=24 if zone in ("UTC", "Asia/Kolkata") else 25)
    assert result.tzinfo is at.tzinfo
    # Compared in UTC: == between zones is always False for a time in a repeated or skipped hour (PEP 495).
    result_utc, at_utc = result.astimezone(UTC), at.astimezone(UTC)
    boundaries = _configured_boundaries(policy, at)
    assert result_utc in boundaries, "the deadline is a configured shift start"
    assert not [b for b in boundaries if at_utc < b < result_utc], "no shift boundary is skipped"


@given(instant=instants)
def test_default_shifts_in_utc_end_within_twelve_hours(instant: datetime) -> None:
    result = end_of_shift(Policy(), instant)
    assert timedelta(0) < result - instant <= timedelta(hours=12)
    assert (result.hour, result.minute, result.second, result.microsecond) in ((7, 0, 0, 0), (19, 0, 0, 0))


# -- USP <800>: automatic counting, and double counts for CII tablets ----------------------------------------

METHOTREXATE = med("methotrexate", "methotrexate", display="methotrexate 2.5 mg tablet", form="tablet", hazardous=True)
TAMOXIFEN = med("tamoxifen", "tamoxifen", display="tamoxifen 20 mg tablet", form="tablet", hazardous=True)
METOPROLOL = med("metoprolol", "metoprolol tartrate", display="metoprolol tartrate 25 mg tablet", form="tablet")


@pytest.mark.parametrize(
    ("item", "refused_code"),
    [
        pytest.param(METHOTREXATE, "policy.hazardous_automatic_counter", id="methotrexate-refused"),
        pytest.param(TAMOXIFEN, "policy.hazardous_automatic_counter", id="tamoxifen-refused"),
        pytest.param(METOPROLOL, None, id="metoprolol-allowed"),
        pytest.param(OXYCODONE_TAB, None, id="oxycodone-cii-allowed"),
        pytest.param(HYDROXYZINE, None, id="hydroxyzine-allowed"),
    ],
)
def test_check_automatic_counting(item: Medication, refused_code: str | None) -> None:
    if refused_code is None:
        check_automatic_counting(item)
    else:
        error = refused(refused_code, lambda: check_automatic_counting(item))
        assert error.context["item"] == item.id


@pytest.mark.parametrize(
    ("schedule", "form", "expected"),
    [
        pytest.param(DeaSchedule.II, "tablet", True, id="cii-tablet"),
        pytest.param(DeaSchedule.II, "Tablet, Extended Release", True, id="cii-er-tablet"),
        pytest.param(DeaSchedule.II, "capsule", True, id="cii-capsule"),
        pytest.param(DeaSchedule.IIN, "tablet", True, id="ciin-tablet"),
        pytest.param(DeaSchedule.II, "injection", False, id="cii-injection"),
        pytest.param(DeaSchedule.II, "oral solution", False, id="cii-oral-solution"),
        pytest.param(DeaSchedule.II, "transdermal patch", False, id="cii-patch"),
        pytest.param(DeaSchedule.III, "tablet", False, id="ciii-tablet"),
        pytest.param(DeaSchedule.IV, "tablet", False, id="civ-tablet"),
        pytest.param(DeaSchedule.V, "tablet", False, id="cv-tablet"),
        pytest.param(DeaSchedule.NONE, "tablet", False, id="non-controlled-tablet"),
    ],
)
def test_needs_double_count(schedule: DeaSchedule, form: str, expected: bool) -> None:
    assert needs_double_count(med("item", "item", schedule=schedule, form=form)) is expected


def test_fixture_dates_are_consistent() -> None:
    """Guard for the tables above: 2026's US DST dates are the ones the rows assume."""
    assert chicago(3, 8, 1, 59).utcoffset() == timedelta(hours=-6)
    assert chicago(3, 8, 3, 0).utcoffset() == timedelta(hours=-5)
    assert chicago(11, 1, 1, 30, fold=0).utcoffset() == timedelta(hours=-5)
    assert chicago(11, 1, 1, 30, fold=1).utcoffset() == timedelta(hours=-6)
    assert date(2026, 3, 8).weekday() == date(2026, 11, 1).weekday() == 6
