"""Every report by the name the CLI and the API use (``adc report NAME``, ``GET /api/v1/reports/NAME``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy.orm import Session

from controller.errors import VerificationError
from controller.reports.cs_activity import cs_activity
from controller.reports.dea_inventory import dea_inventory
from controller.reports.discrepancies import discrepancies
from controller.reports.expiring import expiring
from controller.reports.model import Report
from controller.reports.overrides import overrides
from controller.reports.par_levels import par_compliance
from controller.reports.request import ReportRequest
from controller.reports.theft_loss import theft_loss

Builder = Callable[[Session, ReportRequest, datetime], Report[Any]]


@dataclass(frozen=True, slots=True)
class ReportKind:
    name: str
    summary: str
    build: Builder


REPORTS: Mapping[str, ReportKind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            ReportKind("cs-activity", "controlled-substance activity by item, user or patient", cs_activity),
            ReportKind("discrepancies", "discrepancies with their age and resolution", discrepancies),
            ReportKind("overrides", "override rate by user and unit, flagged above the threshold", overrides),
            ReportKind("expiring", "expiring and quarantined stock, refrigerator excursions", expiring),
            ReportKind("par", "par compliance and stock-outs", par_compliance),
            ReportKind("dea-inventory", "DEA biennial inventory of controlled substances", dea_inventory),
            ReportKind("theft-loss", "unexplained controlled-substance shortages: facts for DEA Form 106", theft_loss),
        )
    }
)


def build_report(session: Session, name: str, request: ReportRequest, now: datetime) -> Report[Any]:
    kind = REPORTS.get(name)
    if kind is None:
        raise VerificationError(
            "report.unknown", f"no report {name!r}; the reports are {', '.join(REPORTS)}", report=name
        )
    return kind.build(session, request, now)
