"""JUnit XML and the HTML report of a run with a passing scenario, a failing one and a file that does not load."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from controller.scenarios.html_report import html_report
from controller.scenarios.junit import junit_xml
from controller.scenarios.runner import load_all, run_all
from tests.scenarios.helpers import line_of, write


def test_junit_and_html_name_the_failed_step_and_the_bad_file(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        """
        scenario: logs in
        steps:
          - login: NURSE1
            expect: {logged_in: NURSE1}
    """,
        "good.yaml",
    )
    bad = write(
        tmp_path,
        """
        scenario: expects the wrong stock
        steps:
          - login: NURSE1
          - pull: {patient: MRN100001, order: ORD9002}
          - open: D1
          - take: 1
          - close: D1
            expect: {inventory: {D1-P02: 3}}
    """,
        "bad.yaml",
    )
    broken = write(tmp_path, "scenario: broken\nsteps:\n  - login: NOBODY\n", "broken.yaml")
    results = run_all(load_all([good, bad, broken]))
    assert [r.status for r in results] == ["passed", "failed", "error"]

    root = ET.fromstring(junit_xml(results))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["good: logs in", "bad: expects the wrong stock", "broken: broken"]
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == (
        f"step 5 (close: D1): line {line_of(bad, 'inventory')}, inventory: D1-P02 holds 11, not 3 "
        "(lots {'ON2411B': 11})"
    )
    assert "ledger around the step:" in (failure.text or "") and "dose.removed by NURSE1" in (failure.text or "")
    error = cases[2].find("error")
    assert error is not None and error.get("type") == "scenario.unknown_reference"
    assert (error.get("message") or "").startswith(f"{broken}:3: step 1: login: unknown user 'NOBODY'")
    out = cases[1].find("system-out")
    assert out is not None and "step 5 (line 7) close: D1: ok" in (out.text or "")

    page = html_report(results)
    assert "1 of 3 scenarios passed" in page
    assert "D1-P02 holds 11, not 3" in page and "unknown user &#x27;NOBODY&#x27;" in page
    assert "Ledger around the failed step" in page
