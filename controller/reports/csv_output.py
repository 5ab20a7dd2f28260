"""A report as CSV (RFC 4180, stdlib ``csv``): one header line of the column keys, then one line per row, each
cell as ``model.cell_text`` writes it (ISO dates, plain decimals, ``true``/``false``, lists joined by "; ").
Only the table: the period and the facts are in the HTML and PDF forms."""

from __future__ import annotations

import csv
import io
from typing import Any

from controller.reports.model import Report


def to_csv(report: Report[Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.key for column in report.columns])
    writer.writerows(report.table())
    return buffer.getvalue()
