"""The reports over HTTP, as the pharmacy console calls them: the list with URLs, a report as JSON agreeing with
the inventory route, the CSV/HTML/PDF files, the refrigerator chart carrying the readings the API holds, refusals
as problem+json, and who may call (the role matrix in ``tests/api/test_role_matrix.py`` covers every role)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.rig import Cabinet, bearer, open_cabinet


@pytest.fixture(scope="module")
def cabinet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cabinet]:
    with open_cabinet(Path(tmp_path_factory.mktemp("reports_api"))) as cab:
        yield cab


@pytest.fixture(scope="module")
def pharmacist(cabinet: Cabinet) -> Iterator[dict[str, str]]:
    token = cabinet.login("PHARM1")
    yield bearer(token)
    cabinet.logout(token)


def get(cabinet: Cabinet, path: str, headers: dict[str, str]) -> Any:
    return cabinet.client.get(path, headers=headers)


def test_the_list_names_every_report_with_its_urls(cabinet: Cabinet, pharmacist: dict[str, str]) -> None:
    answer = get(cabinet, "/api/v1/reports", pharmacist)
    assert answer.status_code == 200, answer.text
    listed = {r["name"]: r for r in answer.json()["data"]["reports"]}
    assert set(listed) == {"cs-activity", "discrepancies", "overrides", "expiring", "par", "dea-inventory",
                           "theft-loss"}  # fmt: skip
    assert listed["par"]["formats"]["html"] == "/api/v1/reports/par?format=html"
    for report in listed.values():
        assert get(cabinet, report["url"], pharmacist).status_code == 200, report["name"]


def test_dea_inventory_as_json_agrees_with_the_inventory_route(cabinet: Cabinet, pharmacist: dict[str, str]) -> None:
    answer = get(cabinet, "/api/v1/reports/dea-inventory?timing=opening", pharmacist)
    assert answer.status_code == 200, answer.text
    report = answer.json()["data"]
    facts = {f["label"]: f["value"] for f in report["facts"]}
    assert facts["taken by"] == "PHARM1 (Priya Shah, PharmD)"  # the user at the cabinet takes it
    assert facts["taken at"] == "opening of business"
    pockets = get(cabinet, "/api/v1/inventory/pockets", pharmacist).json()["data"]
    controlled = {
        (p["pocket_id"], lot["lot"]): lot["quantity"] for p in pockets if p["dea_schedule"] for lot in p["lots"]
    }
    assert {(r["pocket_id"], r["lot"]): r["quantity"] for r in report["rows"]} == controlled
    assert len(controlled) > 5
    exact = {r["count_rule"] for r in report["rows"] if r["schedule"] in ("II", "IIN")}
    assert exact == {"exact count"}


def test_csv_html_and_pdf_files(cabinet: Cabinet, pharmacist: dict[str, str]) -> None:
    as_csv = get(cabinet, "/api/v1/reports/par?format=csv", pharmacist)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"].startswith('attachment; filename="par-')
    rows = list(csv.DictReader(io.StringIO(as_csv.text, newline="")))
    as_json = get(cabinet, "/api/v1/reports/par", pharmacist).json()["data"]["rows"]
    assert [(r["pocket_id"], int(r["usable"])) for r in rows] == [(r["pocket_id"], r["usable"]) for r in as_json]
    # The refrigerator chart shows the readings the API has kept since it started (the simulator's fridge).
    cabinet.wait_until(lambda: bool(get(cabinet, "/api/v1/devices/temperature", pharmacist).json()["data"]["readings"]))
    page = get(cabinet, "/api/v1/reports/expiring?format=html&days=400", pharmacist)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "recent readings" in page.text
    usage = get(cabinet, "/api/v1/reports/cs-activity", pharmacist).json()["data"]["charts"]
    assert [c["kind"] for c in usage] == ["TimeChart"]  # the demo's initial load: no removal yet, still a chart
    pdf = get(cabinet, "/api/v1/reports/overrides?format=pdf", pharmacist)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/reports/narcotics", 404, "report.unknown"),
        ("/api/v1/reports/par?from=2026-11-25&to=2026-11-01", 422, "report.bad_period"),
        ("/api/v1/reports/par?tz=Mars/Olympus", 422, "report.bad_parameter"),
        ("/api/v1/reports/dea-inventory?taken_by=NOBODY", 422, "report.bad_parameter"),
        ("/api/v1/reports/overrides?threshold=150", 422, "api.validation"),
        ("/api/v1/reports/par?format=docx", 422, "api.validation"),
    ],
)
def test_refusals_are_problems(cabinet: Cabinet, pharmacist: dict[str, str], path: str, status: int, code: str) -> None:
    answer = get(cabinet, path, pharmacist)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code


def test_a_nurse_is_refused(cabinet: Cabinet, pharmacist: dict[str, str]) -> None:
    token = cabinet.login_after_logout(pharmacist["Authorization"].removeprefix("Bearer "), "NURSE1")
    try:
        answer = get(cabinet, "/api/v1/reports/theft-loss", bearer(token))
        assert answer.status_code == 403 and answer.json()["code"] == "policy.privilege_missing"
    finally:
        cabinet.logout(token)
