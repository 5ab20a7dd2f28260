"""What every report is made of: the period it covers, its typed rows and the columns that show them, the facts
printed above the table, and the data of its charts.

Responsible for: the ``Period`` (local calendar days in a time zone, turned into an aware half-open interval);
the ``Report`` record every builder returns; ``cell_text`` and ``json_value``, the one place a row value becomes
text (CSV, HTML, PDF) or JSON. Not responsible for querying (the report modules), drawing (``plots``) or any file
format (``csv_output``, ``html_output``, ``pdf_output``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller.errors import VerificationError

DEFAULT_PERIOD_DAYS = 30


@dataclass(frozen=True, slots=True)
class Period:
    """``start`` (inclusive) to ``end`` (exclusive), both aware; ``timezone`` names the zone whose calendar days
    the report counts (day buckets of the charts, the dates shown)."""

    start: datetime
    end: datetime
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise VerificationError("report.bad_period", "a report period needs times with a zone")
        if self.start >= self.end:
            raise VerificationError(
                "report.bad_period",
                f"the period starts ({self.start.isoformat()}) at or after it ends ({self.end.isoformat()})",
                start=self.start.isoformat(),
                end=self.end.isoformat(),
            )

    @property
    def zone(self) -> ZoneInfo:
        return zone_of(self.timezone)

    @classmethod
    def from_dates(cls, first: date | None, last: date | None, *, now: datetime, timezone: str = "UTC") -> Period:
        """Whole local days ``first`` to ``last`` (both included). Without ``last`` the period runs to ``now``;
        without ``first`` it starts ``DEFAULT_PERIOD_DAYS`` days before its end."""
        zone = zone_of(timezone)
        end = _midnight(last + timedelta(days=1), zone) if last is not None else now
        start = _midnight(first, zone) if first is not None else end - timedelta(days=DEFAULT_PERIOD_DAYS)
        if first is not None and last is not None and first > last:
            raise VerificationError(
                "report.bad_period",
                f"--from {first.isoformat()} is after --to {last.isoformat()}",
                start=first.isoformat(),
                end=last.isoformat(),
            )
        return cls(start.astimezone(UTC), end.astimezone(UTC), timezone)

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def days(self) -> list[date]:
        """Every local day the period touches, in order."""
        first, last = self.local_day(self.start), self.local_day(self.end - timedelta(microseconds=1))
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def describe(self) -> str:
        zone = self.zone
        shown = "%Y-%m-%d %H:%M"
        return f"{self.start.astimezone(zone):{shown}} to {self.end.astimezone(zone):{shown}} ({self.timezone})"


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise VerificationError(
            "report.bad_parameter", f"unknown time zone {name!r} (use an IANA name such as America/Chicago)"
        ) from error


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


# --- charts (data only: ``plots`` draws them) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    points: tuple[tuple[datetime, float], ...]
    step: bool = False  # a reading holds until the next one (temperatures), rather than a count per day


@dataclass(frozen=True, slots=True)
class Span:
    """An interval drawn as a shaded bar at ``value`` (a refrigerator excursion: since when, how warm)."""

    start: datetime
    end: datetime
    value: float
    label: str


@dataclass(frozen=True, slots=True)
class TimeChart:
    title: str
    y_label: str
    series: tuple[Series, ...]
    threshold: float | None = None  # a horizontal rule (the 5 % override target)
    band: tuple[float, float] | None = None  # a shaded allowed range (2-8 °C)
    spans: tuple[Span, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    bars: bool = False  # one bar per day instead of a line
    daily: bool = False  # points stand for local days: ticks on days


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    y_label: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    flagged: tuple[bool, ...] = ()  # drawn in the warning colour
    threshold: float | None = None


Chart = TimeChart | BarChart


# --- the report --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # the row attribute
    heading: str


Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class Report(Generic[Row]):
    """One report: typed ``rows`` (dataclass instances) shown through ``columns``; ``facts`` are the label/value
    lines above the table (who took an inventory, the threshold applied), ``notes`` say how numbers were made."""

    name: str
    title: str
    period: Period
    generated_at: datetime
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    facts: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    charts: tuple[Chart, ...] = ()

    def values(self, row: Row) -> list[Any]:
        return [getattr(row, column.key) for column in self.columns]

    def table(self) -> list[list[str]]:
        """Every row as the cells of its columns, as text."""
        return [[cell_text(value) for value in self.values(row)] for row in self.rows]

    def display_table(self) -> list[list[str]]:
        """The cells for people (HTML, PDF): times in the report's zone to the minute."""
        zone = self.period.zone
        return [[display_text(value, zone) for value in self.values(row)] for row in self.rows]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "period": {
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
                "timezone": self.period.timezone,
            },
            "generated_at": self.generated_at.isoformat(),
            "facts": [{"label": label, "value": value} for label, value in self.facts],
            "notes": list(self.notes),
            "columns": [{"key": c.key, "heading": c.heading} for c in self.columns],
            "rows": [{c.key: json_value(getattr(row, c.key)) for c in self.columns} for row in self.rows],
            # The chart data, for a client that draws its own (the HTML and PDF forms carry them drawn).
            "charts": [{"kind": type(chart).__name__, **json_value(chart)} for chart in self.charts],
        }


def cell_text(value: Any) -> str:
    """Text that reads back to the same value: ISO dates, plain decimals, ``true``/``false``, empty for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "; ".join(cell_text(item) for item in value)
    return str(value)


def display_text(value: Any, zone: ZoneInfo) -> str:
    if isinstance(value, datetime):
        return f"{value.astimezone(zone):%Y-%m-%d %H:%M}"
    return cell_text(value)


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return cell_text(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [json_value(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_value(dataclasses.asdict(value))
    return str(value)
