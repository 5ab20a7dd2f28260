"""``adc scenario run`` in a real process: the progress of many files, exit 1 naming the failed step, the
expectation and the ledger around it, JUnit XML and the HTML report written, exit 0 when all pass, and a path that
does not exist as a one-line usage error."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.scenarios.helpers import line_of, write

ADC = [sys.executable, "-c", "from controller.cli.app import main; main()"]


def adc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*ADC, *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=env, check=False)


def test_run_fails_naming_the_step_and_writes_junit_and_html(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        scenario: a pull that passes
        steps:
          - login: NURSE1
          - pull: {patient: MRN100001, order: ORD9002}
          - open: D1
          - take: 1
          - close: D1
            expect: {inventory: {D1-P02: 11}}
    """,
        "suite/pass.yaml",
    )
    failing = write(
        tmp_path,
        """
        scenario: a witness that is the actor
        steps:
          - login: NURSE1
          - pull: {patient: MRN100001, order: ORD9001}
          - count: 10
          - open: D2
          - lift_lid: D2-P02
          - take: 1
          - close_lid: D2-P02
          - waste: {amount: 0.5, unit: mg, reason: partial_dose}
          - witness: NURSE1
            expect:
              ledger: [{type: dose.wasted, witness: NURSE1}]
          - logout: true
    """,
        "suite/fail.yaml",
    )
    done = adc("scenario", "run", "suite", "--junit", "out.xml", "--report", "out.html", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("FAIL suite/fail.yaml: a witness that is the actor (9/10 steps")
    step_line = line_of(failing, "witness: NURSE1")
    assert lines[1] == f"    suite/fail.yaml:{step_line}: step 9 (witness: NURSE1)"
    assert lines[2] == (
        f"      line {step_line}, ok: expected the step to succeed; got refused [policy.witness_is_actor] user NURSE1 "
        "cannot witness their own action"
    )
    assert lines[3] == "    ledger around the step (> marks the step's own entries):"
    assert any("dose.removed by NURSE1" in line for line in lines[4:])
    assert any(line.startswith("PASS suite/pass.yaml: a pull that passes (5/5 steps") for line in lines)
    assert "1 of 2 scenarios passed" in done.stdout
    root = ET.parse(tmp_path / "out.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    assert "policy.witness_is_actor" in (tmp_path / "out.html").read_text("utf-8")


def test_run_passes_with_exit_0_and_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        scenario: search
        steps:
          - login: NURSE1
          - search: vecuronium
            expect: {data: {unique: true}}
    """,
        "ok.yaml",
    )
    done = adc("scenario", "run", "ok.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 of 1 scenarios passed" in done.stdout
    missing = adc("scenario", "run", "nowhere.yaml", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("adc: error: ") and "nowhere.yaml" in missing.stderr
    assert "Traceback" not in missing.stderr
