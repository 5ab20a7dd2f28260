"""Users, roles and privileges; argon2 credentials; cabinet topology (levels, lots, FEFO, drawer kinds);
DEA schedules; the fixed clock. Tables of inputs -> expected outcome, expectations written out by hand.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.domain.clock import FixedClock, SystemClock
from controller.domain.credentials import CredentialHasher, HashCost
from controller.domain.medication import DeaSchedule
from controller.domain.policies import Policy
from controller.domain.topology import DrawerKind, Lot, StockLevels, fefo
from controller.domain.users import TEMPORARY_USER_LIFETIME, Privilege, Role, User, temporary_expiry
from controller.errors import CATALOGUE, Category, VerificationError

P = Privilege
T0 = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def staff(*roles: Role, active: bool = True, expires_at: datetime | None = None) -> User:
    return User(id="u1", display_name="Test User", roles=frozenset(roles), active=active, expires_at=expires_at)


# -- roles and privileges ------------------------------------------------------------------------------------

# What each role holds, written out from the hospital's point of view (not copied from users.py).
EXPECTED_ROLE_PRIVILEGES = {
    Role.NURSE: {P.REMOVE, P.OVERRIDE, P.WITNESS, P.ACCESS_SCHEDULE_II, P.RESOLVE_DISCREPANCY},
    Role.ANESTHESIA_PROVIDER: {P.REMOVE, P.OVERRIDE, P.WITNESS, P.ACCESS_SCHEDULE_II, P.RESOLVE_DISCREPANCY},
    Role.PHARMACIST: {P.REMOVE, P.WITNESS, P.ACCESS_SCHEDULE_II, P.RESTOCK, P.RESOLVE_DISCREPANCY, P.REVIEW},
    Role.TECHNICIAN: {P.RESTOCK, P.ACCESS_SCHEDULE_II, P.WITNESS},
    Role.ADMIN: {P.ADMINISTER},
    Role.QA: set(),
}


def test_role_table_covers_every_role() -> None:
    assert set(EXPECTED_ROLE_PRIVILEGES) == set(Role)


@pytest.mark.parametrize(
    ("role", "expected"),
    [pytest.param(role, privileges, id=role.value) for role, privileges in EXPECTED_ROLE_PRIVILEGES.items()],
)
def test_role_grants_exactly_these_privileges(role: Role, expected: set[Privilege]) -> None:
    assert staff(role).privileges == expected


@pytest.mark.parametrize(
    ("role", "privilege", "holds"),
    [
        pytest.param(Role.NURSE, P.REMOVE, True, id="nurse-removes"),
        pytest.param(Role.NURSE, P.RESTOCK, False, id="nurse-cannot-restock"),
        pytest.param(Role.NURSE, P.REVIEW, False, id="nurse-cannot-review-overrides"),
        pytest.param(Role.NURSE, P.ADMINISTER, False, id="nurse-cannot-administer-the-system"),
        pytest.param(Role.TECHNICIAN, P.REMOVE, False, id="technician-cannot-remove"),
        pytest.param(Role.TECHNICIAN, P.OVERRIDE, False, id="technician-cannot-override"),
        pytest.param(Role.TECHNICIAN, P.RESTOCK, True, id="technician-restocks"),
        pytest.param(Role.TECHNICIAN, P.ACCESS_SCHEDULE_II, True, id="technician-restocks-cii"),
        pytest.param(Role.TECHNICIAN, P.WITNESS, True, id="technician-witnesses"),
        pytest.param(Role.PHARMACIST, P.REVIEW, True, id="pharmacist-reviews"),
        pytest.param(Role.PHARMACIST, P.OVERRIDE, False, id="pharmacist-verifies-instead-of-overriding"),
        pytest.param(Role.ANESTHESIA_PROVIDER, P.REMOVE, True, id="anesthesia-removes"),
        pytest.param(Role.ANESTHESIA_PROVIDER, P.RESTOCK, False, id="anesthesia-cannot-restock"),
        pytest.param(Role.ADMIN, P.ADMINISTER, True, id="admin-administers"),
        pytest.param(Role.ADMIN, P.REMOVE, False, id="admin-cannot-remove"),
        pytest.param(Role.ADMIN, P.WITNESS, False, id="admin-cannot-witness"),
        pytest.param(Role.ADMIN, P.ACCESS_SCHEDULE_II, False, id="admin-cannot-open-cii"),
        *(pytest.param(Role.QA, p, False, id=f"qa-cannot-{p.value}") for p in Privilege),
    ],
)
def test_what_a_hospital_expects_of_each_role(role: Role, privilege: Privilege, holds: bool) -> None:
    assert staff(role).has(privilege) is holds


@pytest.mark.parametrize(
    ("roles", "extra", "revoked", "expected"),
    [
        pytest.param(
            {Role.NURSE},
            {P.RESTOCK},
            set(),
            {P.REMOVE, P.OVERRIDE, P.WITNESS, P.ACCESS_SCHEDULE_II, P.RESOLVE_DISCREPANCY, P.RESTOCK},
            id="nurse-granted-restock",
        ),
        pytest.param(
            {Role.NURSE},
            set(),
            {P.OVERRIDE, P.ACCESS_SCHEDULE_II},
            {P.REMOVE, P.WITNESS, P.RESOLVE_DISCREPANCY},
            id="new-grad-nurse-without-override-or-cii",
        ),
        pytest.param({Role.QA}, {P.WITNESS}, {P.WITNESS}, set(), id="revoked-beats-extra"),
        pytest.param(
            {Role.PHARMACIST, Role.ADMIN},
            set(),
            set(),
            {P.REMOVE, P.WITNESS, P.ACCESS_SCHEDULE_II, P.RESTOCK, P.RESOLVE_DISCREPANCY, P.REVIEW, P.ADMINISTER},
            id="two-roles-union",
        ),
        pytest.param(
            {Role.NURSE, Role.TECHNICIAN},
            set(),
            {P.WITNESS},
            {P.REMOVE, P.OVERRIDE, P.ACCESS_SCHEDULE_II, P.RESOLVE_DISCREPANCY, P.RESTOCK},
            id="revoked-even-when-two-roles-grant-it",
        ),
        pytest.param(set(), {P.REVIEW}, set(), {P.REVIEW}, id="no-role-only-extras"),
    ],
)
def test_extra_and_revoked_privileges(
    roles: set[Role], extra: set[Privilege], revoked: set[Privilege], expected: set[Privilege]
) -> None:
    user = User(
        id="u1",
        display_name="Test User",
        roles=frozenset(roles),
        extra_privileges=frozenset(extra),
        revoked_privileges=frozenset(revoked),
    )
    assert user.privileges == expected
    for privilege in Privilege:
        assert user.has(privilege) is (privilege in expected)


# -- temporary and deactivated users -------------------------------------------------------------------------


def test_temporary_users_last_24_hours_by_default() -> None:
    assert timedelta(hours=24) == TEMPORARY_USER_LIFETIME
    assert Policy().temporary_user_lifetime == timedelta(hours=24)
    assert temporary_expiry(T0) == datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    assert temporary_expiry(T0, timedelta(hours=12)) == datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


AGENCY_NURSE = staff(Role.NURSE, expires_at=temporary_expiry(T0))


@pytest.mark.parametrize(
    ("since_creation", "usable"),
    [
        pytest.param(timedelta(0), True, id="at-creation"),
        pytest.param(timedelta(hours=12), True, id="12h"),
        pytest.param(timedelta(hours=24) - timedelta(microseconds=1), True, id="last-microsecond"),
        pytest.param(timedelta(hours=24), False, id="exactly-24h-expired"),
        pytest.param(timedelta(hours=24, microseconds=1), False, id="just-after"),
        pytest.param(timedelta(days=30), False, id="a-month-later"),
    ],
)
def test_temporary_user_usable_until_expiry(since_creation: timedelta, usable: bool) -> None:
    assert AGENCY_NURSE.is_temporary
    assert AGENCY_NURSE.is_usable_at(T0 + since_creation) is usable


def test_expiry_is_an_instant_whatever_zone_now_is_given_in() -> None:
    local_expiry = temporary_expiry(T0).astimezone(ZoneInfo("America/Chicago"))
    assert AGENCY_NURSE.is_usable_at(local_expiry - timedelta(seconds=1))
    assert not AGENCY_NURSE.is_usable_at(local_expiry)


@pytest.mark.parametrize(
    ("user", "now", "usable"),
    [
        pytest.param(staff(Role.NURSE), T0 + timedelta(days=3650), True, id="permanent-user-usable-years-later"),
        pytest.param(staff(Role.NURSE, active=False), T0, False, id="deactivated"),
        pytest.param(
            staff(Role.NURSE, active=False, expires_at=T0 + timedelta(hours=1)), T0, False, id="deactivated-temporary"
        ),
        pytest.param(staff(Role.PHARMACIST, active=False), T0 - timedelta(days=1), False, id="deactivated-any-time"),
    ],
)
def test_usable(user: User, now: datetime, usable: bool) -> None:
    assert user.is_usable_at(now) is usable


def test_permanent_user_is_not_temporary() -> None:
    assert not staff(Role.NURSE).is_temporary


# -- credentials ---------------------------------------------------------------------------------------------

FAST = HashCost(time_cost=1, memory_kib=8, parallelism=1)


@pytest.fixture(scope="module")
def hasher() -> CredentialHasher:
    return CredentialHasher(FAST)


PIN = "90210357"


def test_pin_hash_is_argon2id_with_the_configured_cost(hasher: CredentialHasher) -> None:
    stored = hasher.hash_pin(PIN)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert PIN not in stored


def test_default_cost_is_not_the_test_cost() -> None:
    """Production keeps argon2-cffi's RFC 9106 profile; only tests lower it."""
    assert CredentialHasher().hash_pin("4321").startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize(
    ("candidate", "matches"),
    [
        pytest.param(PIN, True, id="right-pin"),
        pytest.param("90210358", False, id="last-digit-wrong"),
        pytest.param("9021035", False, id="prefix"),
        pytest.param("902103570", False, id="extra-digit"),
        pytest.param(" 90210357", False, id="leading-space"),
        pytest.param("", False, id="empty"),
        pytest.param("\ud800", False, id="unencodable-candidate"),
    ],
)
def test_verify_pin(hasher: CredentialHasher, candidate: str, matches: bool) -> None:
    assert hasher.verify(hasher.hash_pin(PIN), candidate) is matches


def test_same_pin_hashes_differently_each_time(hasher: CredentialHasher) -> None:
    first, second = hasher.hash_pin(PIN), hasher.hash_pin(PIN)
    assert first != second, "each hash has its own salt"
    assert hasher.verify(first, PIN)
    assert hasher.verify(second, PIN)


def test_hash_made_at_another_cost_still_verifies(hasher: CredentialHasher) -> None:
    """Raising the cost later must not lock out users whose hashes were made at the old cost."""
    older = CredentialHasher(HashCost(time_cost=2, memory_kib=16, parallelism=2)).hash_pin(PIN)
    assert hasher.verify(older, PIN)
    assert not hasher.verify(older, "11111111")


@pytest.mark.parametrize(
    "pin",
    [
        pytest.param("", id="empty"),
        pytest.param("1", id="one-digit"),
        pytest.param("123", id="three-digits"),
        pytest.param("12a4", id="letter"),
        pytest.param("abcd", id="letters"),
        pytest.param("12 34", id="space"),
        pytest.param("1234\n", id="trailing-newline"),
        pytest.param("-1234", id="sign"),
        pytest.param("١٢٣٤", id="arabic-indic-digits"),
        pytest.param("１２３４", id="fullwidth-digits"),
        pytest.param("१२३४", id="devanagari-digits"),
        pytest.param("²³⁴⁵", id="superscript-digits"),
    ],
)
def test_weak_pin_refused(hasher: CredentialHasher, pin: str) -> None:
    with pytest.raises(VerificationError) as caught:
        hasher.hash_pin(pin)
    assert caught.value.code == "auth.weak_pin"
    assert CATALOGUE["auth.weak_pin"].category is Category.VERIFICATION


@pytest.mark.parametrize("pin", ["1234", "0000", "000123", "12345678901234567890"])
def test_acceptable_pins(hasher: CredentialHasher, pin: str) -> None:
    assert hasher.verify(hasher.hash_pin(pin), pin)


def test_badge_secret_hashed_and_empty_refused(hasher: CredentialHasher) -> None:
    badge = "04:A3:2B:11:7F:80"
    stored = hasher.hash_secret(badge)
    assert stored.startswith("$argon2id$")
    assert hasher.verify(stored, badge)
    assert not hasher.verify(stored, badge.lower())
    with pytest.raises(VerificationError) as caught:
        hasher.hash_secret("")
    assert caught.value.code == "auth.weak_pin"


def _corruptions(stored: str) -> dict[str, str]:
    last = "A" if stored[-1] != "A" else "B"
    return {
        "empty": "",
        "not-a-hash": "garbage",
        "plain-pin-stored-by-mistake": PIN,
        "truncated": stored[:-10],
        "header-only": stored[:30],
        "last-char-changed": stored[:-1] + last,
        "argon2i-header": stored.replace("$argon2id$", "$argon2i$"),
        "unknown-variant": stored.replace("$argon2id$", "$argon2xx$"),
        "memory-changed": stored.replace("m=8,", "m=16,"),
        "zero-passes": stored.replace("t=1,", "t=0,"),
        "bad-version": stored.replace("v=19", "v=99"),
        "non-ascii-appended": stored + "é",
        "non-ascii-prefix": "é" + stored,
        "bcrypt-hash": "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    }


@pytest.mark.parametrize("corruption", list(_corruptions("$argon2id$x")))
def test_corrupted_hash_verifies_false_without_raising(hasher: CredentialHasher, corruption: str) -> None:
    stored = _corruptions(hasher.hash_pin(PIN))[corruption]
    assert hasher.verify(stored, PIN) is False


# -- stock levels --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("par", "min_", "max_"),
    [
        pytest.param(3, 1, 6, id="typical-3-days-par-6-days-max"),
        pytest.param(4, 0, 8, id="min-zero"),
        pytest.param(6, 2, 6, id="par-equals-max"),
        pytest.param(5, 5, 5, id="all-equal"),
        pytest.param(0, 0, 0, id="all-zero-pocket-being-retired"),
    ],
)
def test_good_levels(par: int, min_: int, max_: int) -> None:
    levels = StockLevels(par=par, min=min_, max=max_)
    assert (levels.par, levels.min, levels.max) == (par, min_, max_)


@pytest.mark.parametrize(
    ("par", "min_", "max_"),
    [
        pytest.param(3, 4, 6, id="min-above-par"),
        pytest.param(7, 1, 6, id="par-above-max"),
        pytest.param(3, 7, 6, id="min-above-max"),
        pytest.param(3, -1, 6, id="negative-min"),
        pytest.param(-1, -2, 0, id="negative-par-and-min"),
        pytest.param(0, 0, -1, id="negative-max"),
        pytest.param(6, 3, 1, id="reversed"),
    ],
)
def test_bad_levels_refused(par: int, min_: int, max_: int) -> None:
    with pytest.raises(VerificationError) as caught:
        StockLevels(par=par, min=min_, max=max_)
    assert caught.value.code == "inventory.bad_levels"
    assert caught.value.context == {"par": par, "min": min_, "max": max_}


@pytest.mark.parametrize(
    ("levels", "on_hand", "restock", "refill"),
    [
        pytest.param(StockLevels(par=4, min=1, max=8), 0, True, 4, id="empty"),
        pytest.param(StockLevels(par=4, min=1, max=8), 1, True, 3, id="at-min"),
        pytest.param(StockLevels(par=4, min=1, max=8), 2, False, 2, id="above-min"),
        pytest.param(StockLevels(par=4, min=1, max=8), 4, False, 0, id="at-par"),
        pytest.param(StockLevels(par=4, min=1, max=8), 8, False, 0, id="at-max"),
        pytest.param(StockLevels(par=4, min=1, max=8), 9, False, 0, id="over-max"),
        pytest.param(StockLevels(par=2, min=2, max=4), 1, True, 1, id="min-equals-par-below"),
        pytest.param(StockLevels(par=2, min=2, max=4), 2, False, 0, id="min-equals-par-at-par-nothing-to-load"),
        pytest.param(StockLevels(par=0, min=0, max=0), 0, False, 0, id="retired-pocket-never-restocked"),
    ],
)
def test_restock(levels: StockLevels, on_hand: int, restock: bool, refill: int) -> None:
    assert levels.needs_restock(on_hand) is restock
    assert levels.refill_quantity(on_hand) == refill


@given(
    levels=st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
    .map(sorted)
    .map(lambda v: StockLevels(min=v[0], par=v[1], max=v[2])),
    on_hand=st.integers(0, 60),
)
def test_restock_list_and_refill_agree(levels: StockLevels, on_hand: int) -> None:
    """A pocket on the restock list always has something to load, and a refill never goes above max."""
    if levels.needs_restock(on_hand):
        assert levels.refill_quantity(on_hand) > 0
    assert on_hand + levels.refill_quantity(on_hand) <= max(levels.max, on_hand)


# -- lots and FEFO -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "expired"),
    [
        pytest.param(date(2026, 10, 1), False, id="two-months-before"),
        pytest.param(date(2026, 11, 29), False, id="day-before"),
        pytest.param(date(2026, 11, 30), False, id="on-the-expiry-date-usable"),
        pytest.param(date(2026, 12, 1), True, id="day-after-expired"),
        pytest.param(date(2027, 6, 1), True, id="long-after"),
    ],
)
def test_lot_expiry(today: date, expired: bool) -> None:
    assert Lot("L1", date(2026, 11, 30), 10).is_expired(today) is expired


LOT_A = Lot("A7", date(2027, 3, 31), 5)
LOT_B = Lot("B2", date(2026, 12, 31), 5)
LOT_C10 = Lot("C10", date(2027, 1, 31), 2)
LOT_C9 = Lot("C9", date(2027, 1, 31), 2)
LOT_OLD = Lot("Z1", date(2026, 6, 30), 1)


@pytest.mark.parametrize(
    ("lots", "expected"),
    [
        pytest.param([], [], id="no-lots"),
        pytest.param([LOT_A], [LOT_A], id="one-lot"),
        pytest.param([LOT_A, LOT_B], [LOT_B, LOT_A], id="earlier-expiry-first"),
        pytest.param([LOT_C9, LOT_C10], [LOT_C10, LOT_C9], id="tie-broken-by-lot-number-text"),
        pytest.param(
            [LOT_A, LOT_C9, LOT_B, LOT_OLD, LOT_C10],
            [LOT_OLD, LOT_B, LOT_C10, LOT_C9, LOT_A],
            id="mixed-expired-lot-still-sorted-first",
        ),
    ],
)
def test_fefo(lots: list[Lot], expected: list[Lot]) -> None:
    for permutation in itertools.permutations(lots):
        assert fefo(list(permutation)) == expected
        assert fefo(tuple(permutation)) == expected


def test_fefo_leaves_its_input_alone() -> None:
    lots = [LOT_A, LOT_B]
    fefo(lots)
    assert lots == [LOT_A, LOT_B]


# -- drawer kinds --------------------------------------------------------------------------------------------

# kind -> (each pocket has its own locked lid?, keeps one assigned item per pocket?)
DRAWER_KINDS = {
    DrawerKind.MATRIX: (False, True),
    DrawerKind.LIDDED: (True, True),
    DrawerKind.SINGLE_DOSE: (True, True),
    DrawerKind.REFRIGERATOR: (False, True),
    DrawerKind.VAULT: (False, True),
    DrawerKind.RETURN_BIN: (False, False),
}


def test_drawer_table_covers_every_kind() -> None:
    assert set(DRAWER_KINDS) == set(DrawerKind)


@pytest.mark.parametrize(
    ("kind", "lidded", "assigned"),
    [pytest.param(kind, lidded, assigned, id=kind.value) for kind, (lidded, assigned) in DRAWER_KINDS.items()],
)
def test_drawer_kind(kind: DrawerKind, lidded: bool, assigned: bool) -> None:
    assert kind.lidded_pockets is lidded
    assert kind.holds_assigned_items is assigned


# -- DEA schedules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("CII", DeaSchedule.II, id="CII"),
        pytest.param("cii", DeaSchedule.II, id="cii-lower"),
        pytest.param("II", DeaSchedule.II, id="II"),
        pytest.param("IIN", DeaSchedule.IIN, id="IIN"),
        pytest.param("CIIN", DeaSchedule.IIN, id="CIIN"),
        pytest.param("CIII", DeaSchedule.III, id="CIII"),
        pytest.param("CIIIN", DeaSchedule.IIIN, id="CIIIN"),
        pytest.param(" CIV ", DeaSchedule.IV, id="CIV-padded"),
        pytest.param("CV", DeaSchedule.V, id="CV"),
        pytest.param("V", DeaSchedule.V, id="V"),
        pytest.param("", DeaSchedule.NONE, id="blank"),
        pytest.param("   ", DeaSchedule.NONE, id="spaces"),
    ],
)
def test_dea_schedule_parse(text: str, expected: DeaSchedule) -> None:
    assert DeaSchedule.parse(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("VI", id="VI"),
        pytest.param("X", id="X"),
        pytest.param("C", id="C-alone"),
        pytest.param("CI", id="schedule-I-not-dispensable"),
        pytest.param("I", id="I"),
        pytest.param("CVI", id="CVI"),
        pytest.param("IVN", id="IVN"),
    ],
)
def test_dea_schedule_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="unknown DEA schedule"):
        DeaSchedule.parse(text)


@pytest.mark.parametrize(
    ("schedule", "controlled", "schedule_ii"),
    [
        pytest.param(DeaSchedule.NONE, False, False, id="none"),
        pytest.param(DeaSchedule.II, True, True, id="II"),
        pytest.param(DeaSchedule.IIN, True, True, id="IIN"),
        pytest.param(DeaSchedule.III, True, False, id="III"),
        pytest.param(DeaSchedule.IIIN, True, False, id="IIIN"),
        pytest.param(DeaSchedule.IV, True, False, id="IV"),
        pytest.param(DeaSchedule.V, True, False, id="V"),
    ],
)
def test_dea_schedule_properties(schedule: DeaSchedule, controlled: bool, schedule_ii: bool) -> None:
    assert schedule.is_controlled is controlled
    assert schedule.is_schedule_ii is schedule_ii


# -- clock ---------------------------------------------------------------------------------------------------


def test_fixed_clock_refuses_naive_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        FixedClock(datetime(2026, 11, 25, 14, 30))


def test_fixed_clock_reports_utc_and_moves_only_forward() -> None:
    clock = FixedClock(datetime(2026, 11, 25, 8, 30, tzinfo=ZoneInfo("America/Chicago")))
    assert clock.now() == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    clock.advance(timedelta(0))
    assert clock.now() == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    clock.advance(timedelta(hours=24))
    assert clock.now() == datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(microseconds=-1))
    assert clock.now() == datetime(2026, 11, 26, 14, 30, tzinfo=UTC), "a refused move leaves the clock alone"


def test_system_clock_is_aware_utc() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)
