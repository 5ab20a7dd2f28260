"""``adc report`` as a user runs it, in a real process against the scenario's store: the same numbers as the
report built in process, the three files, and one-line errors with their catalogue codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from controller.reports.csv_output import to_csv
from controller.reports.registry import build_report
from controller.reports.request import GroupBy, ReportRequest
from controller.store import schema
from controller.store.database import Database
from tests.cli.test_cli import adc
from tests.reports.conftest import Ran

DAYS = ("--from", "2026-11-25", "--to", "2026-11-27")
# The command only wires the store to the report code the other modules run on both databases: SQLite is enough,
# and each process costs a second of imports.
on_sqlite = pytest.mark.parametrize("ran", ["sqlite"], indirect=True)


@on_sqlite
def test_json_matches_the_report_built_in_process(ran: Ran) -> None:
    result = adc("report", "overrides", *DAYS, "--json", "--database-url", ran.url)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    with ran.db.read() as session:
        expected = build_report(session, "overrides", ReportRequest(ran.period()), ran.now).as_json()
    assert printed["rows"] == expected["rows"]
    nurse1 = next(r for r in printed["rows"] if r["key"] == "NURSE1")
    assert (nurse1["removals"], nurse1["overrides"], nurse1["flagged"]) == (6, 1, True)


@on_sqlite
def test_files_and_the_table(ran: Ran, tmp_path: Path) -> None:
    files = {kind: tmp_path / f"activity.{kind}" for kind in ("csv", "html", "pdf")}
    result = adc(
        "report", "cs-activity", *DAYS, "--by", "user", "--database-url", ran.url,
        "--csv", str(files["csv"]), "--html", str(files["html"]), "--pdf", str(files["pdf"]),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Controlled-substance activity by user" in result.stdout and "Nurse One" in result.stdout
    assert all(f"wrote {path}" in result.stdout for path in files.values())
    with ran.db.read() as session:
        report = build_report(session, "cs-activity", ReportRequest(ran.period(), group_by=GroupBy.USER), ran.now)
    written = files["csv"].read_bytes().decode("utf-8")
    assert written == to_csv(report)
    rows = list(csv.DictReader(io.StringIO(written, newline="")))
    assert {(r["group_id"], r["item_id"], r["removed"]) for r in rows} >= {("NURSE1", "MORPHINE-4MG-ML-CARP", "5")}
    assert "<svg" in files["html"].read_text(encoding="utf-8")
    assert files["pdf"].read_bytes().startswith(b"%PDF-")


def test_bad_values_are_one_line_with_a_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adc.db'}"
    db = Database.open(url, create=True)
    schema.upgrade(db)
    db.dispose()
    backwards = adc("report", "overrides", "--from", "2026-11-27", "--to", "2026-11-25", "--database-url", url)
    assert backwards.returncode == 1
    assert backwards.stderr.strip().splitlines() == [
        "adc: error: [report.bad_period] --from 2026-11-27 is after --to 2026-11-25"
    ]
    not_a_date = adc("report", "par", "--from", "25/11/2026", "--database-url", url)
    assert not_a_date.returncode == 2 and len(not_a_date.stderr.strip().splitlines()) == 1
    assert "'25/11/2026' does not match" in not_a_date.stderr
