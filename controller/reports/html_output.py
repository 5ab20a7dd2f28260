"""A report as one self-contained HTML page: title, period, facts, the charts as inline SVG, the table and the
notes. Every text from the store is escaped; no script, no external resource, so the page opens from a file or
an e-mail and prints as it looks."""

from __future__ import annotations

from html import escape
from typing import Any

from controller.reports.model import Report
from controller.reports.plots import svg

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; }
h1 { font-size: 1.35rem; margin-bottom: 0.2rem; }
p.period { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.4rem; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
table.facts th { background: none; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 0.6rem 0; }
figure.chart svg { max-width: 100%; height: auto; }
ul.notes { color: #444; font-size: 0.85rem; }
@media print { figure.chart { break-inside: avoid; } }
"""


def to_html(report: Report[Any]) -> str:
    zone = report.period.zone
    facts = "".join(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in report.facts)
    charts = "".join(
        f'<figure class="chart" aria-label="{escape(chart.title)}">{svg(chart, zone)}</figure>'
        for chart in report.charts
    )
    head = "".join(f"<th>{escape(column.heading)}</th>" for column in report.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(text)}</td>'
            if isinstance(value, int | float) and not isinstance(value, bool)
            else f"<td>{escape(text)}</td>"
            for value, text in zip(report.values(row), cells, strict=True)
        )
        + "</tr>"
        for row, cells in zip(report.rows, report.display_table(), strict=True)
    )
    empty = f'<tr><td colspan="{len(report.columns)}">nothing to report</td></tr>' if not report.rows else ""
    notes = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
    generated = report.generated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(report.title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(report.title)}</h1>"
        f'<p class="period">Period {escape(report.period.describe())}; generated {escape(generated)}</p>'
        f'<table class="facts">{facts}</table>{charts}'
        f'<table class="rows" data-report="{escape(report.name)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}{empty}</tbody></table>"
        f'<ul class="notes">{notes}</ul></body></html>\n'
    )
