"""Bad scenario files fail when they are read, before anything runs, and each problem names file, line and field:
YAML syntax, the schema (unknown fields with a suggestion, wrong types, bad durations), one action a step, unknown
users, patients, orders, items, drawers and pockets, lids that do not exist, and what a remote cabinet cannot do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from controller.scenarios.loader import FLEET_ACTIONS, actions, load_scenario, schema
from controller.scenarios.local_steps import LOCAL_ACTIONS
from controller.scenarios.problems import ScenarioLoadError
from controller.scenarios.remote import REMOTE_ACTIONS, check_remote
from controller.scenarios.targets import RemoteTarget
from tests.scenarios.helpers import line_of, write


def problems_of(path: Path) -> tuple[str, list[str]]:
    with pytest.raises(ScenarioLoadError) as caught:
        load_scenario(path)
    return caught.value.code, [str(p) for p in caught.value.problems]


def test_the_schema_is_valid_and_every_action_has_an_executor() -> None:
    Draft202012Validator.check_schema(schema())
    assert actions() == LOCAL_ACTIONS | FLEET_ACTIONS  # the fleet's own steps run in controller.scenarios.fleet_run
    assert REMOTE_ACTIONS < LOCAL_ACTIONS


def test_schema_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: schema errors
        tick: 5 minutes
        steps:
          - login: NURSE1
          - pul: {patient: MRN100001, order: ORD9002}
          - take: "two"
          - pull: {patient: MRN100001, ordr: ORD9002}
            expect:
              ledgr: []
    """,
    )
    code, found = problems_of(path)
    assert code == "scenario.invalid"
    assert found == [
        f"{path}:{line_of(path, 'tick:')}: tick: '5 minutes' is not valid: whole seconds (90) or a text such as "
        "31s, 5m, 2h, 1h30m",
        f"{path}:{line_of(path, 'pul:')}: step 2: pul: unknown field 'pul'; did you mean 'pull'?",
        f"{path}:{line_of(path, 'take:')}: step 3: take: 'two' is not of type 'integer'",
        f"{path}:{line_of(path, 'ordr')}: step 4: pull.ordr: unknown field 'ordr'; did you mean 'order'?",
        f"{path}:{line_of(path, 'ledgr')}: step 4: expect.ledgr: unknown field 'ledgr'; did you mean 'ledger'?",
    ]


def test_yaml_syntax_and_duplicate_keys_name_the_line(tmp_path: Path) -> None:
    broken = write(tmp_path, "scenario: x\nsteps:\n  - login: [NURSE1\n", "broken.yaml")
    code, found = problems_of(broken)
    assert code == "scenario.invalid" and found[0].startswith(f"{broken}:4: (the file): not valid YAML")
    twice = write(
        tmp_path,
        """
        scenario: twice
        steps:
          - open: D1
            open: D2
    """,
        "twice.yaml",
    )
    _, found = problems_of(twice)
    assert found == [f"{twice}:4: step 1: open: 'open' is given twice (first on line 3)"]


def test_a_missing_required_field_and_two_actions_in_one_step(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: structure
        steps:
          - login: NURSE1
            logout: true
          - waste: {amount: 1}
    """,
    )
    _, found = problems_of(path)
    assert f"{path}:{line_of(path, 'waste')}: step 2: waste: 'unit' is required here" in found
    path = write(
        tmp_path,
        """
        scenario: structure
        steps:
          - login: NURSE1
            logout: true
    """,
        "two.yaml",
    )
    _, found = problems_of(path)
    assert found == [f"{path}:3: step 1: one action a step, not 2 (login, logout): split it into steps"]


def test_unknown_references_fail_at_load_not_halfway(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: references
        cabinet: demo
        steps:
          - login: NURSE9
          - pull: {patient: MRN999999, order: ORD0001}
          - lift_lid: D1-P01
          - open: D9
          - scan_package: {item: NOT-A-DRUG, lot: L1, expiry: 2027-01-31, serial: S1}
          - expect:
              inventory: {D2-P99: 3}
              ledger: [{type: dose.removed, actor: NURSE3}]
    """,
    )
    code, found = problems_of(path)
    assert code == "scenario.unknown_reference"
    at = {text: line_of(path, text) for text in ("NURSE9", "MRN999999", "D1-P01", "D9", "NOT-A-DRUG", "D2-P99",
                                                 "NURSE3")}  # fmt: skip
    expected_starts = [
        f"{path}:{at['NURSE9']}: step 1: login: unknown user 'NURSE9'; did you mean 'NURSE2'?",
        f"{path}:{at['MRN999999']}: step 2: pull.patient: unknown patient 'MRN999999'",
        f"{path}:{at['MRN999999']}: step 2: pull.order: unknown order 'ORD0001'",
        f"{path}:{at['D1-P01']}: step 3: lift_lid: pocket D1-P01 has no lid (matrix drawer D1)",
        f"{path}:{at['D9']}: step 4: open: unknown drawer 'D9'",
        f"{path}:{at['NOT-A-DRUG']}: step 5: scan_package.item: unknown formulary item 'NOT-A-DRUG'",
        f"{path}:{at['D2-P99']}: step 6: expect.inventory.D2-P99: unknown pocket 'D2-P99'",
        f"{path}:{at['NURSE3']}: step 6: expect.ledger[0].actor: unknown user 'NURSE3'",
    ]
    assert len(found) == len(expected_starts), found
    for problem, start in zip(found, expected_starts, strict=True):
        assert problem.startswith(start), (problem, start)


def test_patients_and_orders_an_earlier_hl7_message_brings_are_known(tmp_path: Path) -> None:
    message = (
        "MSH|^~\\\\&|PHARM|HOSP|ADC|CAB-4W|20261125141000||RDE^O11^RDE_O11|R1|P|2.5.1\\n"
        "PID|1||MRN300001^^^HOSP^MR||Lee^Ann||19600310|F\\n"
        "ORC|NW|RX-1^PHARM|||||||20261125141000\\n"
    )
    path = write(
        tmp_path,
        f"""
        scenario: hl7 references
        steps:
          - login: NURSE1
          - pull: {{patient: MRN300001, order: RX-1}}
          - hl7: "{message}"
          - pull: {{patient: MRN300001, order: RX-1}}
    """,
    )
    _, found = problems_of(path)
    assert [p.split(": ", 1)[1].split(":", 1)[0] for p in found] == ["step 2", "step 2"]  # only before the message


def test_a_cabinet_of_its_own_is_checked_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: own cabinet
        cabinet:
          care_area: {id: ICU, name: ICU, profiled: true}
          cabinet: {id: CAB-T, name: test}
          user: [{id: N1, name: Nurse, roles: [nurse], pin: "1111"}]
          drawer:
            - {id: D1, kind: matrix, label: m, pocket: [{id: D1-P01, item: NO-SUCH-ITEM}]}
          patient: [{mrn: M1, encounter: E1, family_name: Doe, given_name: Jo}]
          order: [{id: O1, mrn: M2, item: HEPARIN-5000U-ML-1ML, dose: 1, dose_unit: mL}]
        steps:
          - login: N1
    """,
    )
    _, found = problems_of(path)
    assert any("cabinet.drawer[0].pocket[0].item: unknown formulary item 'NO-SUCH-ITEM'" in p for p in found), found
    assert any("cabinet.order[0].mrn: unknown patient 'M2'" in p for p in found), found


def test_what_a_remote_cabinet_cannot_do_is_refused_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: remote
        start: 2026-11-25T07:00:00Z
        steps:
          - login: NURSE1
          - advance: 5m
          - fault: {jam: D1}
          - logout: true
            expect: {inventory: {D1-P01: 40}}
    """,
    )
    scenario = load_scenario(path)
    with pytest.raises(ScenarioLoadError) as caught:
        check_remote(scenario, RemoteTarget("http://127.0.0.1:8000"))
    assert caught.value.code == "scenario.not_supported_remotely"
    found = [str(p) for p in caught.value.problems]
    assert found == [
        f"{path}:2: start: start cannot be set on a cabinet reached by URL; run this scenario without --url",
        f"{path}:{line_of(path, 'advance')}: step 2: advance: advance is not possible on a cabinet reached by URL; "
        "run this scenario without --url",
        f"{path}:{line_of(path, 'fault')}: step 3: fault: fault is not possible on a cabinet reached by URL; "
        "run this scenario without --url",
        f"{path}:{line_of(path, 'inventory')}: step 4: expect.inventory: reading inventory remotely needs an "
        "integrator client: give --client-id and --client-secret (adc api client add NAME --scopes "
        "'ledger:read inventory:read devices:read')",
    ]


def test_the_json_schema_file_is_plain_json() -> None:
    text = (Path(__file__).resolve().parents[2] / "controller" / "scenarios" / "schema.json").read_text("utf-8")
    assert json.loads(text)["$id"] == "urn:open-adc:scenario:1"


def test_a_remote_cabinet_is_the_demo_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: remote with its own cabinet
        cabinet:
          extends: demo
          user: [{id: NURSE9, name: Nine, roles: [nurse], pin: "9999"}]
        steps:
          - login: NURSE9
    """,
    )
    with pytest.raises(ScenarioLoadError) as caught:
        check_remote(load_scenario(path), RemoteTarget("http://127.0.0.1:8000"))
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2: cabinet: a cabinet reached by URL is the one adc serve runs: write cabinet: demo"
    ]


def test_fleet_steps_name_cabinets_of_the_fleet_and_need_one(tmp_path: Path) -> None:
    fleet = write(
        tmp_path,
        """
        scenario: a fleet with typos
        tick: 10m
        fleet: {cabinets: [4W-A, 4W-B]}
        steps:
          - cut_link: 4W-C
          - {cabinet: 4W-AA, login: NURSE1}
          - sync: 30s
            expect: {central: {caught_up: [4W-A, 4W-BB]}}
        """,
        "fleet.yaml",
    )
    code, found = problems_of(fleet)
    assert code == "scenario.unknown_reference"
    assert found == [
        f"{fleet}:{line_of(fleet, 'tick:')}: tick: a fleet scenario's tick is at most 300s: the central flags a "
        "cabinet whose clock is more than 5 min off",
        f"{fleet}:{line_of(fleet, 'cut_link')}: step 1: cut_link: unknown cabinet '4W-C': the fleet is 4W-A, 4W-B; "
        "did you mean '4W-B'?",
        f"{fleet}:{line_of(fleet, '4W-AA')}: step 2: cabinet: unknown cabinet '4W-AA': the fleet is 4W-A, 4W-B; "
        "did you mean '4W-A'?",
        f"{fleet}:{line_of(fleet, '4W-BB')}: step 3: expect.central.caught_up[1]: unknown cabinet '4W-BB': the fleet "
        "is 4W-A, 4W-B; did you mean '4W-B'?",
    ]
    alone = write(
        tmp_path,
        """
        scenario: one cabinet
        steps:
          - restore_link: CAB-4W
          - expect: {central: {alarms: []}}
        """,
        "alone.yaml",
    )
    _, found = problems_of(alone)
    assert found == [
        f"{alone}:{line_of(alone, 'restore_link')}: step 1: restore_link: 'restore_link' needs a fleet: add fleet: "
        "{cabinets: [...]}",
        f"{alone}:{line_of(alone, 'central')}: step 2: expect.central: 'central' needs a fleet: add fleet: "
        "{cabinets: [...]}",
    ]
