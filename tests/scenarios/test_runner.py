"""The runner's own tests on the simulated cabinet: a scenario that should fail does fail, at the right step, naming
the expectation and what was found, with the ledger around it; later steps do not run; what a passing scenario
claims is really checked (a library scenario with one number changed fails)."""

from __future__ import annotations

from pathlib import Path

from tests.scenarios.helpers import line_of, run_file, write

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"


def test_a_wrong_refusal_code_fails_at_that_step_and_stops_the_scenario(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: wrong refusal expected
        steps:
          - login: NURSE1
          - search: morp
            expect: {refused: policy.override_not_listed}
          - logout: true
    """,
    )
    result = run_file(path)
    assert result.status == "failed" and not result.passed
    failed = result.failed_step
    assert failed is not None and failed.step.number == 2 and len(result.steps) == 2  # step 3 never ran
    [failure] = failed.failures
    assert failure.line == line_of(path, "refused:")
    assert failure.message == (
        "expected refused [policy.override_not_listed]; got refused [policy.search_too_short] "
        "type at least 5 characters of the drug name (got 4)"
    )
    assert result.summary().splitlines()[0] == f"{path}:{line_of(path, 'search:')}: step 2 (search: morp)"


def test_an_unexpected_refusal_a_wrong_stock_and_a_missing_entry_are_each_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: several failures
        steps:
          - login: NURSE1
          - pull: {patient: MRN100001, order: ORD9002}
          - open: D1
          - take: 1
          - close: D1
            expect:
              inventory: {D1-P02: 10}
              ledger: [{type: dose.removed, actor: NURSE2}]
              compartments: {D1: open}
    """,
    )
    result = run_file(path)
    failed = result.failed_step
    assert failed is not None and failed.step.number == 5
    messages = [f.message for f in failed.failures]
    assert messages[0] == "D1-P02 holds 11, not 10 (lots {'ON2411B': 11})"
    assert messages[1].startswith("no entry like {type: dose.removed, actor: NURSE2} among this step's entries: ")
    assert "dose.removed by NURSE1 patient MRN100001 item ONDANSETRON-2MG-ML-INJ" in messages[1]
    assert messages[2] == "D1 is locked, not open"
    assert [f.expectation for f in failed.failures] == ["inventory", "ledger", "compartments"]
    # the ledger around the failed step: the entries before it and its own
    assert [e["event_type"] for e in failed.entries] == ["drawer.closed", "dose.removed"]
    assert [e["event_type"] for e in result.context] == ["session.login", "drawer.opened", "drawer.closed",
                                                         "dose.removed"]  # fmt: skip


def test_an_expected_success_that_is_refused_fails(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: refused
        steps:
          - login: {user: NURSE1, pin: "9999"}
    """,
    )
    result = run_file(path)
    failed = result.failed_step
    assert failed is not None
    assert [str(f) for f in failed.failures] == [
        "line 3, ok: expected the step to succeed; got refused [auth.bad_credentials] unknown user or wrong credentials"
    ]


def test_unexpected_and_missing_alarms_and_the_wrong_actor(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: alarms
        steps:
          - fault: {stuck_sensor: D1, sensor: open, value: true}
          - fault: {stuck_sensor: D1, sensor: closed, value: false}
            expect: {alarms: [{type: drawer.left_open}]}
    """,
    )
    failed = run_file(path).failed_step
    assert failed is not None
    [failure] = failed.failures
    assert failure.expectation == "alarms"
    assert failure.message.startswith("missing {type: drawer.left_open}, unexpected #")
    assert "drawer.tamper reason opened_without_unlock" in failure.message

    path = write(
        tmp_path,
        """
        scenario: actor
        steps:
          - login: NURSE1
          - actor: NURSE2
            pull: {patient: MRN100001, order: ORD9002}
    """,
        "actor.yaml",
    )
    failed = run_file(path).failed_step
    assert failed is not None
    assert failed.failures[0].message == "the step could not run: the step's actor is NURSE2, but NURSE1 is logged in"


def test_a_physical_act_the_simulator_cannot_do(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        scenario: locked drawer
        steps:
          - name: nobody unlocked it
            open: D2
            expect: {impossible: locked}
          - open: D2
    """,
    )
    result = run_file(path)
    failed = result.failed_step
    assert failed is not None and failed.step.number == 2
    assert failed.failures[0].message == "expected the step to succeed; got the simulator could not do it: " \
        "ValueError: drawer 2 is locked"  # fmt: skip


def test_a_library_scenario_with_one_number_changed_fails(tmp_path: Path) -> None:
    """What the library asserts is really checked: the blind-count scenario with a wrong stock level fails there."""
    text = (LIBRARY / "blind-count.yaml").read_text("utf-8")
    assert text.count("inventory: {D2-P01: 9}") == 1
    path = tmp_path / "mutated.yaml"
    path.write_text(text.replace("inventory: {D2-P01: 9}", "inventory: {D2-P01: 10}"), "utf-8")
    result = run_file(path)
    failed = result.failed_step
    assert failed is not None and failed.step.line == line_of(path, "- close: D2")
    assert failed.failures[0].message == "D2-P01 holds 9, not 10 (lots {'MO2409A': 9})"
