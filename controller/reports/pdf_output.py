"""A report as PDF, drawn with matplotlib's own PDF backend (``PdfPages``; no other dependency): a landscape
first page with the title, period, facts and notes, one page per chart, then the table over as many pages as it
needs (long cells are shortened on paper; the CSV carries them whole)."""

from __future__ import annotations

import io
import textwrap
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from controller.reports.model import Report
from controller.reports.plots import figure

PAGE = (11.0, 8.5)  # US Letter, landscape
ROWS_PER_PAGE = 26
CELL_LIMIT = 34


def to_pdf(report: Report[Any]) -> bytes:
    buffer = io.BytesIO()
    zone = report.period.zone
    metadata = {"Title": report.title, "Subject": report.period.describe(), "Creator": "open-adc adc report"}
    with PdfPages(buffer, metadata=metadata) as pdf:
        pdf.savefig(_cover(report))
        for chart in report.charts:
            page = figure(chart, zone)
            page.set_size_inches(*PAGE)
            pdf.savefig(page)
        for first in range(0, max(len(report.rows), 1), ROWS_PER_PAGE):
            pdf.savefig(_table_page(report, first))
    return buffer.getvalue()


def _page() -> Figure:
    page = Figure(figsize=PAGE)
    FigureCanvasAgg(page)
    return page


def _cover(report: Report[Any]) -> Figure:
    page = _page()
    generated = report.generated_at.astimezone(report.period.zone).strftime("%Y-%m-%d %H:%M")
    lines = [f"Period {report.period.describe()}; generated {generated}", ""]
    lines += [f"{label}: {value}" for label, value in report.facts]
    lines.append("")
    for note in report.notes:
        lines += textwrap.wrap(note, 120) or [""]
    page.text(0.05, 0.92, report.title, fontsize=16, weight="bold", va="top")
    page.text(0.05, 0.85, "\n".join(lines), fontsize=9, va="top", family="sans-serif", linespacing=1.5)
    return page


def _table_page(report: Report[Any], first: int) -> Figure:
    page = _page()
    ax = page.add_axes((0.03, 0.04, 0.94, 0.88))
    ax.set_axis_off()
    limit = CELL_LIMIT if len(report.columns) <= 12 else CELL_LIMIT * 2 // 3
    cells = [[_short(text, limit) for text in row] for row in report.display_table()[first : first + ROWS_PER_PAGE]]
    shown = f"rows {first + 1}-{first + len(cells)} of {len(report.rows)}" if report.rows else "nothing to report"
    page.text(0.03, 0.95, f"{report.title}: {shown}", fontsize=10, weight="bold")
    if cells:
        headings = [c.heading for c in report.columns]
        # Each column as wide as its longest text, scaled so the table fits the page.
        lengths = [max(len(text) for text in column) + 2 for column in zip(headings, *cells, strict=True)]
        table = ax.table(
            cellText=cells,
            colLabels=headings,
            colWidths=[n / sum(lengths) for n in lengths],
            loc="upper left",
            cellLoc="left",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(5.5 if len(report.columns) > 12 else 7)
    return page


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
