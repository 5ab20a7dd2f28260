"""The rules document (``controller.domain.rules_document``): round trips, one clear message per mistake, partial
changes and their diffs, the hash, and the shipped default file.

Expected messages are written out here, not computed with the code under test, so a change of wording or of
behaviour shows up as a failing row.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import fields, replace
from datetime import time, timedelta
from importlib import resources
from typing import Any

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from controller.domain.medication import DeaSchedule
from controller.domain.policies import BlindCount, OverrideReason, Policy, WitnessedAction
from controller.domain.rules_document import (
    DOCUMENT_FIELDS,
    SECTIONS,
    CabinetRules,
    apply_changes,
    canonical_json,
    diff_rules,
    dump_rules,
    parse_rules,
    rules_to_document,
)
from controller.errors import Category, ConfigurationError
from controller.fsm.settings import FsmSettings

DEFAULTS = CabinetRules(Policy(), FsmSettings())
SHIPPED = (resources.files("controller") / "data" / "policy.toml").read_text("utf-8")

SECTION_LIST = (
    "[blind_count], [witness], [removal], [search], [shifts], [users], [session], [compartments], [pull], "
    "[returns], [restock], [refrigerator]"
)


def refused(text: str, *, source: str = "policy.toml") -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules(text, source=source)
    error = caught.value
    assert error.code == "config.invalid"
    assert error.definition.category is Category.CONFIGURATION
    return error


# --- the shipped file ----------------------------------------------------------------------------------------------


def test_the_shipped_file_is_exactly_the_code_defaults() -> None:
    assert parse_rules(SHIPPED, source="policy.toml") == CabinetRules(Policy(), FsmSettings())


def test_the_shipped_file_states_every_key_of_every_section() -> None:
    document = tomllib.loads(SHIPPED)
    assert {section: tuple(keys) for section, keys in document.items()} == dict(SECTIONS)


def test_every_field_of_policy_and_fsm_settings_has_a_key() -> None:
    expected = {("policy", f.name) for f in fields(Policy)} | {("machines", f.name) for f in fields(FsmSettings)}
    assert set(DOCUMENT_FIELDS.values()) == expected
    assert len(DOCUMENT_FIELDS) == len(expected)  # one key per field, never two


SOURCE_MARKERS = ("ISMP", "DEA", "USP", "TJC", "DOMAIN.md", "hospital", "vendor", "controller design", "pharmacy")


def test_every_key_of_the_shipped_file_has_a_comment_naming_where_it_comes_from() -> None:
    comment: list[str] = []
    for line in SHIPPED.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        elif "=" in stripped:
            key = stripped.split("=")[0].strip()
            assert comment, f"{key} has no comment above it"
            text = " ".join(comment)
            assert any(marker in text for marker in SOURCE_MARKERS), f"{key}: the comment names no source"
            comment = []
        elif stripped.startswith("["):
            comment = []


def test_the_shipped_defaults_read_as_domain_md_says() -> None:
    document = rules_to_document(parse_rules(SHIPPED))
    assert document["search"] == {"min_chars": 5}  # ISMP 2019, 4.4
    assert document["users"] == {"temporary_lifetime_hours": 24}  # rule 12
    assert document["refrigerator"] == {"low_c": 2.0, "high_c": 8.0, "excursion_minutes": 30}  # rule 9
    assert document["session"]["inactivity_logout_s"] == 60
    assert document["session"]["lockout_minutes"] == 15


def test_policy_carries_the_refrigerator_limits() -> None:
    policy = Policy()
    assert (policy.fridge_low_c, policy.fridge_high_c, policy.fridge_excursion_limit) == (
        2.0,
        8.0,
        timedelta(minutes=30),
    )


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        pytest.param({"fridge_low_c": 8.0}, "fridge_low_c", id="low-equals-high"),
        pytest.param({"fridge_high_c": 1.0}, "fridge_low_c", id="high-below-low"),
        pytest.param({"fridge_excursion_limit": timedelta(0)}, "fridge_excursion_limit", id="zero-limit"),
        pytest.param({"fridge_excursion_limit": timedelta(minutes=-1)}, "fridge_excursion_limit", id="negative"),
    ],
)
def test_policy_refuses_bad_refrigerator_limits(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Policy(**changes)


# --- reading -------------------------------------------------------------------------------------------------------


def test_an_empty_document_is_the_defaults_and_a_missing_key_takes_its_default() -> None:
    assert parse_rules("") == DEFAULTS
    assert parse_rules("[session]\n") == DEFAULTS
    rules = parse_rules("[session]\ninactivity_logout_s = 90\n\n[refrigerator]\nhigh_c = 7.5\n")
    assert rules == CabinetRules(
        Policy(fridge_high_c=7.5), FsmSettings(inactivity_logout=timedelta(seconds=90))
    )  # every other key as the defaults


def test_each_key_reads_into_its_field() -> None:
    text = """
[blind_count]
required_for = "schedule_ii_only"
[witness]
actions = ["any_waste", "controlled_restock"]
[removal]
override_items = ["naloxone", "epinephrine"]
override_reasons = ["rescue"]
[search]
min_chars = 4
[shifts]
starts = ["23:00", "07:00", "15:00"]
timezone = "America/Chicago"
[users]
temporary_lifetime_hours = 12
[session]
inactivity_warning_s = 100
inactivity_logout_s = 180
max_failed_logins = 3
lockout_minutes = "none"
min_login_factors = 2
[compartments]
left_open_s = 90
block_unlocks_while_unaccounted = false
[pull]
stop_on_count_mismatch = true
open_cs_discrepancy_blocks_pulls = false
removal_witness_schedules = ["II", "IIN"]
scan_removed_package = true
[returns]
sealed_to_pocket = true
[restock]
short_dated_warning_days = 0
[refrigerator]
low_c = 2
high_c = 8
excursion_minutes = 15
"""
    assert parse_rules(text) == CabinetRules(
        Policy(
            blind_count=BlindCount.SCHEDULE_II_ONLY,
            witnessed_actions=frozenset({WitnessedAction.ANY_WASTE, WitnessedAction.CONTROLLED_RESTOCK}),
            override_items=frozenset({"naloxone", "epinephrine"}),
            override_reasons=frozenset({OverrideReason.RESCUE}),
            search_min_chars=4,
            shift_starts=(time(23), time(7), time(15)),
            timezone="America/Chicago",
            temporary_user_lifetime=timedelta(hours=12),
            fridge_low_c=2.0,
            fridge_high_c=8.0,
            fridge_excursion_limit=timedelta(minutes=15),
        ),
        FsmSettings(
            inactivity_warning=timedelta(seconds=100),
            inactivity_logout=timedelta(minutes=3),
            max_failed_logins=3,
            lockout_duration=None,
            min_login_factors=2,
            left_open_limit=timedelta(seconds=90),
            block_unlocks_while_unaccounted=False,
            stop_pull_on_count_mismatch=True,
            open_cs_discrepancy_blocks_pulls=False,
            removal_witness_schedules=frozenset({DeaSchedule.II, DeaSchedule.IIN}),
            scan_removed_package=True,
            return_sealed_to_pocket=True,
            short_dated_warning=timedelta(0),
        ),
    )


def test_fractions_and_toml_local_times_are_read() -> None:
    rules = parse_rules("[session]\ninactivity_warning_s = 2.5\n[shifts]\nstarts = [07:00:00, 19:30:00]\n")
    assert rules.machines.inactivity_warning == timedelta(seconds=2.5)
    assert rules.policy.shift_starts == (time(7), time(19, 30))
    assert rules_to_document(rules)["session"]["inactivity_warning_s"] == 2.5
    assert rules_to_document(rules)["shifts"]["starts"] == ["07:00", "19:30"]


# --- one clear message per mistake ---------------------------------------------------------------------------------

SESSION_KEYS = "inactivity_warning_s, inactivity_logout_s, max_failed_logins, lockout_minutes, min_login_factors"
ACTIONS = '"controlled_waste", "discrepancy_resolution", "controlled_return", "controlled_restock", "any_waste"'
SCHEDULES = '"II", "IIN", "III", "IIIN", "IV", "V"'
ZONE = 'an IANA time zone name, e.g. "America/Chicago" or "UTC"'

BAD_DOCUMENTS = [
    # unknown sections and keys: a typo must not fall back to a default
    pytest.param(
        "[refrigirator]\nlow_c = 2.0\n",
        f"policy.toml: unknown section [refrigirator] (did you mean [refrigerator]?); the sections are {SECTION_LIST}",
        id="unknown-section",
    ),
    pytest.param(
        "[pharmacy]\nopen = true\n",
        f"policy.toml: unknown section [pharmacy]; the sections are {SECTION_LIST}",
        id="unknown-section-no-hint",
    ),
    pytest.param(
        'timezone = "UTC"\n',
        f"policy.toml: unknown section [timezone] (timezone is a key: put it under [shifts]); the sections are "
        f"{SECTION_LIST}",
        id="key-outside-its-section",
    ),
    pytest.param(
        "search = 5\n[blind_count]\n",
        "policy.toml: [search] must be a section (a table of keys); got 5",
        id="section-not-a-table",
    ),
    pytest.param(
        "[session]\ninactivity_logout = 60\n",
        "policy.toml: [session] unknown key inactivity_logout (did you mean inactivity_logout_s?); the keys of "
        f"[session] are {SESSION_KEYS}",
        id="unknown-key",
    ),
    pytest.param(
        "[session.timing]\nlogout_s = 60\n",
        "policy.toml: [session] unknown key timing; the keys of [session] are " + SESSION_KEYS,
        id="sub-table",
    ),
    # wrong types
    pytest.param(
        '[session]\ninactivity_logout_s = "60"\n',
        'policy.toml: [session] inactivity_logout_s must be a number of seconds; got "60" (a string)',
        id="string-for-seconds",
    ),
    pytest.param(
        "[search]\nmin_chars = true\n",
        "policy.toml: [search] min_chars must be a whole number of characters; got true (a boolean)",
        id="bool-for-int",
    ),
    pytest.param(
        "[refrigerator]\nexcursion_minutes = true\n",
        "policy.toml: [refrigerator] excursion_minutes must be a number of minutes; got true (a boolean)",
        id="bool-for-duration",
    ),
    pytest.param(
        "[refrigerator]\nlow_c = false\n",
        "policy.toml: [refrigerator] low_c must be a number of °C; got false (a boolean)",
        id="bool-for-temperature",
    ),
    pytest.param(
        "[search]\nmin_chars = 5.0\n",
        "policy.toml: [search] min_chars must be a whole number of characters; got 5.0",
        id="float-for-int",
    ),
    pytest.param(
        "[pull]\nscan_removed_package = 1\n",
        "policy.toml: [pull] scan_removed_package must be true or false; got 1",
        id="int-for-bool",
    ),
    pytest.param(
        '[compartments]\nblock_unlocks_while_unaccounted = "yes"\n',
        'policy.toml: [compartments] block_unlocks_while_unaccounted must be true or false; got "yes" (a string)',
        id="string-for-bool",
    ),
    pytest.param(
        '[witness]\nactions = "controlled_waste"\n',
        f'policy.toml: [witness] actions must be a list of actions from {ACTIONS}; got "controlled_waste" (a string)',
        id="string-for-list",
    ),
    pytest.param(
        "[shifts]\nstarts = 2026-01-01T07:00:00\n",
        'policy.toml: [shifts] starts must be a list of local times, e.g. ["07:00", "19:00"]; got 2026-01-01T07:00:00 '
        "(a TOML date-time)",
        id="date-time-for-list",
    ),
    pytest.param(
        "[users]\ntemporary_lifetime_hours = inf\n",
        "policy.toml: [users] temporary_lifetime_hours must be a number of hours, not nan or inf; got inf",
        id="infinite",
    ),
    pytest.param(
        "[refrigerator]\nlow_c = nan\n",
        "policy.toml: [refrigerator] low_c must be a number of °C, not nan or inf; got nan",
        id="nan",
    ),
    # out of range
    pytest.param(
        "[search]\nmin_chars = 0\n",
        "policy.toml: [search] min_chars must be at least 1; got 0",
        id="min-chars-zero",
    ),
    pytest.param(
        "[session]\nmax_failed_logins = 0\n",
        "policy.toml: [session] max_failed_logins must be at least 1; got 0",
        id="failed-logins-zero",
    ),
    pytest.param(
        "[session]\nmin_login_factors = 4\n",
        "policy.toml: [session] min_login_factors must be from 1 to 3; got 4",
        id="four-factors",
    ),
    pytest.param(
        "[refrigerator]\nexcursion_minutes = 0\n",
        "policy.toml: [refrigerator] excursion_minutes must be more than zero; got 0",
        id="zero-excursion",
    ),
    pytest.param(
        "[compartments]\nleft_open_s = -5\n",
        "policy.toml: [compartments] left_open_s must be more than zero; got -5",
        id="negative-seconds",
    ),
    pytest.param(
        "[restock]\nshort_dated_warning_days = -1\n",
        "policy.toml: [restock] short_dated_warning_days must be zero or more; got -1",
        id="negative-days",
    ),
    pytest.param(
        "[refrigerator]\nhigh_c = 80\n",
        "policy.toml: [refrigerator] high_c must be from -40 to 40 °C; got 80",
        id="eighty-for-eight",
    ),
    pytest.param(
        "[users]\ntemporary_lifetime_hours = 1e300\n",
        "policy.toml: [users] temporary_lifetime_hours is too large for a number of hours; got 1e+300",
        id="too-large",
    ),
    pytest.param(
        "[session]\ninactivity_warning_s = 0.0000001\n",
        "policy.toml: [session] inactivity_warning_s must be more than zero; got 1e-07",
        id="rounds-to-zero",
    ),
    # two keys together
    pytest.param(
        "[refrigerator]\nlow_c = 2.0\nhigh_c = 1.5\n",
        "policy.toml: [refrigerator] high_c must be above low_c (2.0); got 1.5",
        id="high-below-low",
    ),
    pytest.param(
        "[refrigerator]\nhigh_c = 2\n",
        "policy.toml: [refrigerator] high_c must be above low_c (2.0); got 2.0",
        id="high-equals-default-low",
    ),
    pytest.param(
        "[session]\ninactivity_warning_s = 60\n",
        "policy.toml: [session] inactivity_warning_s must be below inactivity_logout_s (60); got 60",
        id="warning-not-before-logout",
    ),
    # time zones, enums, schedules
    pytest.param(
        '[shifts]\ntimezone = "America/Chicgo"\n',
        f'policy.toml: [shifts] timezone must be {ZONE} (did you mean "America/Chicago"?); got "America/Chicgo" '
        "(a string)",
        id="misspelt-zone",
    ),
    pytest.param(
        '[shifts]\ntimezone = "Mars/Olympus_Mons"\n',
        f'policy.toml: [shifts] timezone must be {ZONE}; got "Mars/Olympus_Mons" (a string)',
        id="unknown-zone",
    ),
    pytest.param(
        '[shifts]\ntimezone = "../etc/passwd"\n',
        f'policy.toml: [shifts] timezone must be {ZONE}; got "../etc/passwd" (a string)',
        id="path-for-zone",
    ),
    pytest.param(
        '[shifts]\ntimezone = ""\n',
        f'policy.toml: [shifts] timezone must be {ZONE}; got "" (a string)',
        id="empty-zone",
    ),
    pytest.param(
        '[blind_count]\nrequired_for = "always"\n',
        'policy.toml: [blind_count] required_for must be one of "every_controlled_access", "schedule_ii_only", '
        '"every_access"; got "always" (a string)',
        id="bad-enum",
    ),
    pytest.param(
        '[witness]\nactions = ["controled_waste"]\n',
        f'policy.toml: [witness] actions may list only {ACTIONS}; "controled_waste" is not one of them (did you mean '
        '"controlled_waste"?); got ["controled_waste"] (an array)',
        id="bad-enum-in-list",
    ),
    pytest.param(
        '[witness]\nactions = ["any_waste", "any_waste"]\n',
        'policy.toml: [witness] actions lists "any_waste" twice; got ["any_waste", "any_waste"] (an array)',
        id="listed-twice",
    ),
    pytest.param(
        '[removal]\noverride_reasons = ["boredom"]\n',
        'policy.toml: [removal] override_reasons may list only "rescue", "severe_pain", "emergent_procedure", '
        '"stat_order_pending_verification", "pharmacy_closed"; "boredom" is not one of them; got ["boredom"] '
        "(an array)",
        id="bad-reason",
    ),
    pytest.param(
        '[pull]\nremoval_witness_schedules = ["CIII"]\n',
        f'policy.toml: [pull] removal_witness_schedules may list only {SCHEDULES}; "CIII" is not one of them (did you '
        'mean "III"?); got ["CIII"] (an array)',
        id="schedule-spelt-as-the-fda-does",
    ),
    pytest.param(
        '[pull]\nremoval_witness_schedules = [""]\n',
        f'policy.toml: [pull] removal_witness_schedules may list only {SCHEDULES}; "" is not one of them; got [""] '
        "(an array)",
        id="no-schedule-is-not-a-schedule",
    ),
    pytest.param(
        '[removal]\noverride_items = ["naloxone", ""]\n',
        'policy.toml: [removal] override_items must list formulary item ids as non-empty strings; "" is not one; '
        'got ["naloxone", ""] (an array)',
        id="blank-item",
    ),
    pytest.param(
        '[removal]\noverride_items = [" naloxone"]\n',
        'policy.toml: [removal] override_items lists " naloxone", which has spaces around the id; got [" naloxone"] '
        "(an array)",
        id="padded-item",
    ),
    pytest.param(
        '[session]\nlockout_minutes = "never"\n',
        'policy.toml: [session] lockout_minutes must be a number of minutes or "none" (only an administrator clears '
        'a lockout); got "never" (a string)',
        id="bad-none",
    ),
    # shifts
    pytest.param(
        "[shifts]\nstarts = []\n",
        'policy.toml: [shifts] starts must list at least one shift start, e.g. ["07:00", "19:00"]; got [] (an array)',
        id="empty-shifts",
    ),
    pytest.param(
        '[shifts]\nstarts = ["7:00"]\n',
        'policy.toml: [shifts] starts must list local times as "HH:MM" (00:00 to 23:59); "7:00" is not one; '
        'got ["7:00"] (an array)',
        id="shift-without-leading-zero",
    ),
    pytest.param(
        '[shifts]\nstarts = ["24:00"]\n',
        'policy.toml: [shifts] starts must list local times as "HH:MM" (00:00 to 23:59); "24:00" is not one; '
        'got ["24:00"] (an array)',
        id="shift-at-24",
    ),
    pytest.param(
        '[shifts]\nstarts = ["07:00", "07:00"]\n',
        'policy.toml: [shifts] starts lists 07:00 twice; got ["07:00", "07:00"] (an array)',
        id="shift-twice",
    ),
    # TOML syntax: the line is named
    pytest.param(
        "[session]\ninactivity_logout_s = \nmax_failed_logins = 5\n",
        "policy.toml: line 2, column 23: not valid TOML: Invalid value",
        id="syntax-error",
    ),
    pytest.param(
        "[session]\nmax_failed_logins = 5\nmax_failed_logins = 6\n",
        "policy.toml: line 3, column 22: not valid TOML: Cannot overwrite a value",
        id="key-twice",
    ),
    pytest.param(
        "[session]\nmax_failed_logins = [1,\n",
        "policy.toml: line 3 (the end of the document): not valid TOML: Invalid value",
        id="syntax-error-at-the-end",
    ),
]


@pytest.mark.parametrize(("text", "detail"), BAD_DOCUMENTS)
def test_each_mistake_has_its_own_clear_message(text: str, detail: str) -> None:
    assert refused(text).detail == detail


def test_every_problem_in_a_document_is_listed_at_once() -> None:
    error = refused("[search]\nmin_chars = 0\n[session]\nmax_failed_logins = true\n")
    assert error.detail == (
        "policy.toml: 2 problems:\n"
        "  policy.toml: [search] min_chars must be at least 1; got 0\n"
        "  policy.toml: [session] max_failed_logins must be a whole number; got true (a boolean)"
    )
    assert error.context["problems"] == [
        "policy.toml: [search] min_chars must be at least 1; got 0",
        "policy.toml: [session] max_failed_logins must be a whole number; got true (a boolean)",
    ]


def test_the_source_defaults_to_a_placeholder() -> None:
    with pytest.raises(ConfigurationError, match=r"<policy>: \[search\] min_chars must be at least 1"):
        parse_rules("[search]\nmin_chars = 0\n")


def test_a_syntax_error_wraps_the_toml_error() -> None:
    error = refused("[search\n")
    assert isinstance(error.__cause__, tomllib.TOMLDecodeError)
    assert error.context["line"] == 1


def test_a_check_of_fsm_settings_itself_surfaces_naming_the_section(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FsmSettings.__post_init__

    def stricter(self: FsmSettings) -> None:
        original(self)
        if self.max_failed_logins > 10:
            raise ValueError("max_failed_logins above 10 invites guessing")

    monkeypatch.setattr(FsmSettings, "__post_init__", stricter)
    error = refused("[compartments]\nleft_open_s = 45\n[session]\nmax_failed_logins = 11\n")
    assert error.detail == (
        "policy.toml: [session] not accepted: max_failed_logins above 10 invites guessing; "
        "got [session] max_failed_logins = 11"
    )
    assert isinstance(error.__cause__, ValueError)


def test_a_check_across_sections_names_every_section_involved(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Policy.__post_init__

    def stricter(self: Policy) -> None:
        original(self)
        if self.search_min_chars > 5 and self.temporary_user_lifetime > timedelta(hours=24):
            raise ValueError("not both")

    monkeypatch.setattr(Policy, "__post_init__", stricter)
    error = refused("[search]\nmin_chars = 6\n[users]\ntemporary_lifetime_hours = 48\n")
    assert error.detail == (
        "policy.toml: [search] [users] not accepted: not both; got [search] min_chars = 6; "
        "[users] temporary_lifetime_hours = 48"
    )


# --- round trips and the hash --------------------------------------------------------------------------------------

CLOCK_TIMES = st.builds(time, st.integers(0, 23), st.integers(0, 59))
ZONES = st.sampled_from(["UTC", "America/Chicago", "Europe/Paris", "Asia/Kolkata", "Australia/Lord_Howe"])
ITEM_IDS = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)
CONTROLLED = [s for s in DeaSchedule if s.is_controlled]


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    low = draw(st.integers(-400, 399)) / 10
    return Policy(
        blind_count=draw(st.sampled_from(BlindCount)),
        witnessed_actions=draw(st.frozensets(st.sampled_from(WitnessedAction))),
        override_items=draw(st.frozensets(ITEM_IDS, max_size=5)),
        override_reasons=draw(st.frozensets(st.sampled_from(OverrideReason))),
        search_min_chars=draw(st.integers(1, 20)),
        shift_starts=tuple(draw(st.lists(CLOCK_TIMES, min_size=1, max_size=4, unique=True))),
        timezone=draw(ZONES),
        temporary_user_lifetime=timedelta(minutes=draw(st.integers(1, 72 * 60))),
        fridge_low_c=low,
        fridge_high_c=draw(st.integers(int(low * 10) + 1, 400)) / 10,
        fridge_excursion_limit=timedelta(seconds=draw(st.integers(1, 24 * 3600))),
    )


@st.composite
def machine_settings(draw: st.DrawFn) -> FsmSettings:
    warning_ms = draw(st.integers(1, 600_000))
    return FsmSettings(
        inactivity_warning=timedelta(milliseconds=warning_ms),
        inactivity_logout=timedelta(milliseconds=warning_ms + draw(st.integers(1, 600_000))),
        max_failed_logins=draw(st.integers(1, 20)),
        lockout_duration=draw(st.none() | st.builds(lambda s: timedelta(seconds=s), st.integers(1, 86_400))),
        min_login_factors=draw(st.integers(1, 3)),
        left_open_limit=timedelta(milliseconds=draw(st.integers(1, 3_600_000))),
        block_unlocks_while_unaccounted=draw(st.booleans()),
        stop_pull_on_count_mismatch=draw(st.booleans()),
        open_cs_discrepancy_blocks_pulls=draw(st.booleans()),
        removal_witness_schedules=draw(st.frozensets(st.sampled_from(CONTROLLED))),
        scan_removed_package=draw(st.booleans()),
        return_sealed_to_pocket=draw(st.booleans()),
        short_dated_warning=timedelta(hours=draw(st.integers(0, 24 * 365))),
    )


RULES = st.builds(CabinetRules, policies(), machine_settings())


@given(RULES)
def test_dump_then_parse_gives_the_same_rules_and_hash(rules: CabinetRules) -> None:
    again = parse_rules(dump_rules(rules))
    assert again == rules
    assert again.hash == rules.hash


@given(RULES)
def test_the_document_through_json_is_the_same_rules(rules: CabinetRules) -> None:
    """The ledger keeps the document as JSON; the composition root reads it back with ``apply_changes``."""
    document = json.loads(json.dumps(rules_to_document(rules)))
    assert document == rules_to_document(rules)
    again = apply_changes(DEFAULTS, document)
    assert again == rules
    assert again.hash == rules.hash


@given(RULES)
def test_the_document_has_every_section_and_key_in_order(rules: CabinetRules) -> None:
    document = rules_to_document(rules)
    assert {section: tuple(keys) for section, keys in document.items()} == dict(SECTIONS)


def test_the_hash_is_sha256_of_the_canonical_json() -> None:
    document = rules_to_document(DEFAULTS)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert canonical_json(document) == canonical
    assert " " not in canonical  # no value of the defaults holds a space, so any space is the separators
    assert DEFAULTS.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert len(DEFAULTS.hash) == 64


def test_the_hash_ignores_comments_key_order_and_spelling_of_numbers() -> None:
    document = tomllib.loads(SHIPPED)
    reordered = {section: dict(reversed(keys.items())) for section, keys in reversed(document.items())}
    reordered["refrigerator"]["excursion_minutes"] = 30.0  # the same number, spelt as a float
    reordered["refrigerator"]["low_c"] = 2  # and as an integer
    text = "# a comment\n" + tomli_w.dumps(reordered).replace("\n[", "\n# another comment\n[")
    assert text != SHIPPED
    assert parse_rules(text).hash == parse_rules(SHIPPED).hash == DEFAULTS.hash


# One changed value per key: (section, key, document value, the field's value it means).
CHANGES: list[tuple[str, str, Any, Any]] = [
    ("blind_count", "required_for", "every_access", BlindCount.EVERY_ACCESS),
    ("witness", "actions", ["any_waste"], frozenset({WitnessedAction.ANY_WASTE})),
    ("removal", "override_items", ["naloxone"], frozenset({"naloxone"})),
    ("removal", "override_reasons", ["rescue"], frozenset({OverrideReason.RESCUE})),
    ("search", "min_chars", 3, 3),
    ("shifts", "starts", ["06:30", "18:30"], (time(6, 30), time(18, 30))),
    ("shifts", "timezone", "America/Chicago", "America/Chicago"),
    ("users", "temporary_lifetime_hours", 12, timedelta(hours=12)),
    ("session", "inactivity_warning_s", 45, timedelta(seconds=45)),
    ("session", "inactivity_logout_s", 120, timedelta(minutes=2)),
    ("session", "max_failed_logins", 3, 3),
    ("session", "lockout_minutes", "none", None),
    ("session", "min_login_factors", 2, 2),
    ("compartments", "left_open_s", 20, timedelta(seconds=20)),
    ("compartments", "block_unlocks_while_unaccounted", False, False),
    ("pull", "stop_on_count_mismatch", True, True),
    ("pull", "open_cs_discrepancy_blocks_pulls", False, False),
    ("pull", "removal_witness_schedules", ["II"], frozenset({DeaSchedule.II})),
    ("pull", "scan_removed_package", True, True),
    ("returns", "sealed_to_pocket", True, True),
    ("restock", "short_dated_warning_days", 60, timedelta(days=60)),
    ("refrigerator", "low_c", 3.0, 3.0),
    ("refrigerator", "high_c", 7.0, 7.0),
    ("refrigerator", "excursion_minutes", 45, timedelta(minutes=45)),
]


def test_the_change_table_covers_every_key() -> None:
    assert {(section, key) for section, key, _, _ in CHANGES} == set(DOCUMENT_FIELDS)


@pytest.mark.parametrize(
    ("section", "key", "value", "meaning"), [pytest.param(*c, id=f"{c[0]}.{c[1]}") for c in CHANGES]
)
def test_one_changed_value_sets_its_field_changes_the_hash_and_is_the_only_difference(
    section: str, key: str, value: Any, meaning: Any
) -> None:
    after = apply_changes(DEFAULTS, {section: {key: value}})
    target, field_name = DOCUMENT_FIELDS[(section, key)]
    assert getattr(after.policy if target == "policy" else after.machines, field_name) == meaning
    assert after.hash != DEFAULTS.hash
    old = rules_to_document(DEFAULTS)[section][key]
    assert diff_rules(DEFAULTS, after) == [(section, key, old, value)]
    assert parse_rules(f"[{section}]\n{tomli_w.dumps({key: value})}") == after


# --- an administrator's partial change ------------------------------------------------------------------------------


def test_a_change_keeps_every_other_value_and_leaves_the_original_alone() -> None:
    before = apply_changes(DEFAULTS, {"removal": {"override_items": ["naloxone"]}})
    after = apply_changes(before, {"refrigerator": {"high_c": 7.5}, "session": {"lockout_minutes": None}})
    assert after == CabinetRules(
        replace(before.policy, fridge_high_c=7.5), replace(before.machines, lockout_duration=None)
    )
    assert before.policy.fridge_high_c == 8.0
    assert diff_rules(before, after) == [
        ("session", "lockout_minutes", 15, "none"),
        ("refrigerator", "high_c", 8.0, 7.5),
    ]


def test_no_change_is_no_difference() -> None:
    assert apply_changes(DEFAULTS, {}) == DEFAULTS
    assert apply_changes(DEFAULTS, {"session": {}}) == DEFAULTS
    assert apply_changes(DEFAULTS, {"session": {"inactivity_logout_s": 60.0}}) == DEFAULTS
    assert diff_rules(DEFAULTS, DEFAULTS) == []


@pytest.mark.parametrize(
    ("before", "changes", "detail"),
    [
        pytest.param(
            {},
            {"refrigerator": {"high_c": 1.5}},
            "change: [refrigerator] high_c must be above low_c (2.0); got 1.5",
            id="against-the-value-in-force",
        ),
        pytest.param(
            {"refrigerator": {"low_c": 0.5, "high_c": 9.0}},
            {"refrigerator": {"high_c": 0.5}},
            "change: [refrigerator] high_c must be above low_c (0.5); got 0.5",
            id="against-a-changed-value-in-force",
        ),
        pytest.param(
            {},
            {"session": {"inactivity_logout_s": 30}},
            "change: [session] inactivity_warning_s must be below inactivity_logout_s (30); got 50",
            id="logout-before-the-warning",
        ),
        pytest.param(
            {},
            {"fridge": {"low_c": 1.0}},
            f"change: unknown section [fridge]; the sections are {SECTION_LIST}",
            id="unknown-section",
        ),
        pytest.param(
            {},
            {"refrigerator": {"low": 1.0}},
            "change: [refrigerator] unknown key low (did you mean low_c?); the keys of [refrigerator] are low_c, "
            "high_c, excursion_minutes",
            id="unknown-key",
        ),
        pytest.param(
            {},
            {"session": 60},
            "change: [session] must be a section (a table of keys); got 60",
            id="not-a-table",
        ),
        pytest.param(
            {},
            {"search": {"min_chars": True}},
            "change: [search] min_chars must be a whole number of characters; got true (a boolean)",
            id="bool-for-number",
        ),
        pytest.param(
            {},
            {"removal": {"override_items": "naloxone"}},
            'change: [removal] override_items must be a list of formulary item ids (strings, e.g. ["naloxone"]); '
            'got "naloxone" (a string)',
            id="string-for-list",
        ),
        pytest.param(
            {},
            {"shifts": {"starts": None}},
            'change: [shifts] starts must be a list of local times, e.g. ["07:00", "19:00"]; got null',
            id="null",
        ),
    ],
)
def test_a_change_is_validated_as_a_document_is(
    before: dict[str, dict[str, Any]], changes: dict[str, Any], detail: str
) -> None:
    rules = apply_changes(DEFAULTS, before)
    with pytest.raises(ConfigurationError) as caught:
        apply_changes(rules, changes)
    assert caught.value.code == "config.invalid"
    assert caught.value.detail == detail


def test_a_change_names_its_source() -> None:
    with pytest.raises(ConfigurationError, match=r"^\[config.invalid\] admin alice: \[search\] min_chars"):
        apply_changes(DEFAULTS, {"search": {"min_chars": 0}}, source="admin alice")
