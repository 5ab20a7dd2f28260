"""What a caller asks of a report: the period, the cabinet (or every cabinet in the store) and the few knobs
some reports take. Checked here, so every entry point (CLI, API) refuses the same values the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from controller.errors import VerificationError
from controller.reports.model import Period

DEFAULT_OVERRIDE_THRESHOLD_PCT = 5.0  # ISMP: keep overrides near or below 5 % of removals
DEFAULT_EXPIRING_DAYS = 30


class GroupBy(StrEnum):
    """Controlled-substance activity: one row per item, or per user and item, or per patient and item."""

    ITEM = "item"
    USER = "user"
    PATIENT = "patient"


class InventoryTiming(StrEnum):
    """DEA 21 CFR 1304.11(a): an inventory says whether it was taken at the opening or the close of business."""

    OPENING = "opening"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class ReportRequest:
    period: Period
    cabinet_id: str | None = None  # None: every cabinet in the store (a central server's pharmacy)
    group_by: GroupBy = GroupBy.ITEM
    expiring_days: int = DEFAULT_EXPIRING_DAYS
    override_threshold_pct: float = DEFAULT_OVERRIDE_THRESHOLD_PCT
    taken_by: str | None = None  # the person taking a DEA inventory (a user id)
    inventory_timing: InventoryTiming = InventoryTiming.CLOSE
    # Refrigerator readings the caller holds (the API keeps recent ones in memory); the ledger keeps excursions only.
    temperature_readings: tuple[tuple[datetime, float], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.expiring_days <= 3650:
            raise VerificationError(
                "report.bad_parameter",
                f"expiring days must be 0 to 3650, not {self.expiring_days}",
                days=self.expiring_days,
            )
        if not 0 <= self.override_threshold_pct <= 100:
            raise VerificationError(
                "report.bad_parameter",
                f"the override threshold is a percentage (0 to 100), not {self.override_threshold_pct}",
                threshold=self.override_threshold_pct,
            )
