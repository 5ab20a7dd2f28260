"""The three forms of every report: CSV that reads back to the same cells, an HTML page carrying its charts as
inline SVG (and escaping whatever the store holds), a PDF; plus the period's local days and the stock walk that
measures time without usable stock."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from controller.errors import VerificationError
from controller.reports.csv_output import to_csv
from controller.reports.html_output import to_html
from controller.reports.model import BarChart, Column, Period, Report, Series, TimeChart
from controller.reports.pdf_output import to_pdf
from controller.reports.registry import REPORTS, build_report
from controller.reports.request import GroupBy, ReportRequest
from controller.reports.stock_history import Hold, LotChange, zero_time
from tests.reports.conftest import Ran

T0 = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture(scope="module")
def reports(ran: Ran) -> list[Report[Any]]:
    with ran.db.read() as session:
        return [
            build_report(session, name, ReportRequest(ran.period(), group_by=GroupBy.USER), ran.now) for name in REPORTS
        ]


def test_csv_reads_back_to_the_same_cells(reports: list[Report[Any]]) -> None:
    for report in reports:
        text = to_csv(report)
        parsed = list(csv.reader(io.StringIO(text, newline="")))
        assert parsed[0] == [c.key for c in report.columns], report.name
        assert parsed[1:] == report.table(), report.name
        by_key = list(csv.DictReader(io.StringIO(text, newline="")))
        assert [[row[c.key] for c in report.columns] for row in by_key] == report.table()
    cs = next(r for r in reports if r.name == "cs-activity")
    nurse1 = next(
        row for row in csv.DictReader(io.StringIO(to_csv(cs), newline=""))
        if (row["group_id"], row["item_id"]) == ("NURSE1", "MORPHINE-4MG-ML-CARP")
    )  # fmt: skip
    assert (nurse1["removed"], nurse1["wasted"], nurse1["witnesses"]) == ("5", "2", "NURSE2")


def test_html_carries_each_chart_as_inline_svg_and_pdf_is_a_pdf(reports: list[Report[Any]]) -> None:
    for report in reports:
        page = to_html(report)
        assert page.startswith("<!DOCTYPE html>") and "<script" not in page
        assert page.count("<svg") == len(report.charts), report.name
        assert f'data-report="{report.name}"' in page
        assert page.count("<tr>") >= len(report.rows) + 1
        document = to_pdf(report)
        assert document.startswith(b"%PDF-") and document.rstrip().endswith(b"%%EOF")
    named = {r.name: r for r in reports}
    assert len(named["overrides"].charts) == 2 and len(named["expiring"].charts) == 1
    usage = to_html(named["cs-activity"])
    assert "Controlled substances removed per day" in usage and "morphine 4 mg/mL inj" in usage


@dataclass(frozen=True)
class Line:
    name: str
    amount: int
    when: datetime | None
    flag: bool
    lots: tuple[str, ...]


def _report(rows: tuple[Line, ...]) -> Report[Line]:
    period = Period(T0, T0 + timedelta(days=2))
    return Report(
        name="sample",
        title="Sample <report>",
        period=period,
        generated_at=T0 + timedelta(days=1),
        columns=(
            Column("name", "name"),
            Column("amount", "amount"),
            Column("when", "when"),
            Column("flag", "flag"),
            Column("lots", "lots"),
        ),
        rows=rows,
        facts=(("by", "Ann & Bob"),),
        notes=("<b>not bold</b>",),
        charts=(
            BarChart("bars", "n", ("<a>", "b"), (1.0, 2.0), (True, False), threshold=1.5),
            TimeChart("line", "x", (Series("s", ((T0, 1.0), (T0 + timedelta(hours=5), 3.0))),), start=T0),
        ),
    )


def test_text_from_the_store_is_escaped_and_cells_read_back() -> None:
    rows = (
        Line('<img src=x onerror="alert(1)">', 3, T0, True, ("A1 ×2", "B2 ×1")),
        Line('comma, "quote"\nnewline', -1, None, False, ()),
    )
    report = _report(rows)
    page = to_html(report)
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "Sample &lt;report&gt;" in page and "Ann &amp; Bob" in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert page.count("<svg") == 2
    assert re.search(r'<td class="num">-1</td>', page)
    parsed = list(csv.reader(io.StringIO(to_csv(report), newline="")))
    assert parsed[1] == ['<img src=x onerror="alert(1)">', "3", "2026-11-25T00:00:00+00:00", "true", "A1 ×2; B2 ×1"]
    assert parsed[2] == ['comma, "quote"\nnewline', "-1", "", "false", ""]
    assert to_pdf(report).startswith(b"%PDF-")
    empty = to_html(_report(()))
    assert "nothing to report" in empty


def test_period_counts_local_days() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    chicago = Period.from_dates(date(2026, 11, 1), date(2026, 11, 2), now=now, timezone="America/Chicago")
    # 1 November 2026 is the end of daylight saving time in the US: a 25-hour day.
    assert chicago.start == datetime(2026, 11, 1, 5, tzinfo=UTC)
    assert chicago.end == datetime(2026, 11, 3, 6, tzinfo=UTC)
    assert chicago.days() == [date(2026, 11, 1), date(2026, 11, 2)]
    default = Period.from_dates(None, None, now=now)
    assert (default.end, default.end - default.start) == (now, timedelta(days=30))
    with pytest.raises(VerificationError) as backwards:
        Period.from_dates(date(2026, 11, 3), date(2026, 11, 2), now=now)
    assert backwards.value.code == "report.bad_period"
    with pytest.raises(VerificationError) as zone:
        Period.from_dates(None, None, now=now, timezone="Mars/Olympus")
    assert zone.value.code == "report.bad_parameter"
    for bad in ({"expiring_days": -1}, {"override_threshold_pct": 101.0}):
        with pytest.raises(VerificationError) as refused:
            ReportRequest(default, **bad)
        assert refused.value.code == "report.bad_parameter"


def test_zero_time_follows_removals_expiry_and_holds() -> None:
    def change(hours: float, lot: str, units: int, expiry: date) -> LotChange:
        return LotChange(T0 + timedelta(hours=hours), "CAB", int(hours * 10), "P1", "ITEM", lot, units, expiry)

    changes = [
        change(0, "A", 2, date(2026, 11, 25)),  # usable through 25 November (UTC)
        change(2, "A", -2, date(2026, 11, 25)),  # emptied at 02:00: out until the restock
        change(5, "B", 1, date(2027, 1, 1)),
        change(10, "C", 3, date(2026, 11, 25)),  # expires at midnight
    ]
    hold = Hold("ITEM", "B", None, "recall", T0 + timedelta(hours=30), None, None)
    walked = zero_time(
        "P1", item_id="ITEM", changes=changes, pocket_holds=[hold], start=T0, end=T0 + timedelta(hours=40)
    )
    # zero 02:00-05:00 (3 h), then B and C; at 24:00 C expires (B still usable); at 30:00 B is recalled: zero to 40:00
    assert (walked.hours_at_zero, walked.stock_outs, walked.usable_at_end) == (13.0, 2, 0)
    released = Hold("ITEM", "B", None, "recall", T0 + timedelta(hours=30), T0 + timedelta(hours=36), "release")
    again = zero_time(
        "P1", item_id="ITEM", changes=changes, pocket_holds=[released], start=T0, end=T0 + timedelta(hours=40)
    )
    assert (again.hours_at_zero, again.stock_outs, again.usable_at_end) == (9.0, 2, 1)
