"""Refrigerator temperature for the reports. The ledger keeps one ``environment.temperature_excursion`` entry per
excursion that lasted past the limit (when it began, how long it had lasted, the worst reading, the allowed range);
the readings themselves are not persisted (the API keeps recent ones in memory). So the chart draws each
excursion as a span from its start at its worst temperature, and the readings when the caller has them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from controller.domain.transactions import EventType
from controller.reports.ledger_entries import read_entries
from controller.reports.model import Series, Span, TimeChart
from controller.reports.request import ReportRequest

DEFAULT_BAND = (2.0, 8.0)  # USP <659> refrigerator range; an excursion entry names its own


@dataclass(frozen=True, slots=True)
class Excursion:
    cabinet_id: str
    since: datetime
    recorded_at: datetime  # when it passed the limit and the contents were held
    minutes: int  # how long it had lasted when recorded (it may have lasted longer)
    worst_c: float
    band: tuple[float, float]


def excursions(session: Session, request: ReportRequest) -> list[Excursion]:
    found = []
    for entry in read_entries(
        session,
        event_types=[EventType.TEMPERATURE_EXCURSION.value],
        cabinet_id=request.cabinet_id,
        since=request.period.start - timedelta(days=1),  # one that began before the period may reach into it
        until=request.period.end,
    ):
        details = entry.details
        since = datetime.fromisoformat(str(details["since"])) if details.get("since") else entry.at
        worst = details.get("worst_c") or details.get("temperature_c")
        band = details.get("range_c") or DEFAULT_BAND
        found.append(
            Excursion(
                cabinet_id=entry.cabinet_id,
                since=since,
                recorded_at=entry.at,
                minutes=int(details.get("minutes", 0)),
                worst_c=float(worst) if worst is not None else float("nan"),
                band=(float(band[0]), float(band[1])),
            )
        )
    return [e for e in found if e.recorded_at >= request.period.start or e.since >= request.period.start]


def temperature_charts(request: ReportRequest, found: list[Excursion], fridges: list[str]) -> tuple[TimeChart, ...]:
    """One chart per cabinet with a refrigerator (and per cabinet with a recorded excursion). The readings the
    request carries belong to the request's own cabinet."""
    charts = []
    for cabinet_id in sorted(set(fridges) | {e.cabinet_id for e in found}):
        mine = [e for e in found if e.cabinet_id == cabinet_id]
        readings = tuple(
            (at, celsius)
            for at, celsius in request.temperature_readings
            if cabinet_id == request.cabinet_id and request.period.start <= at < request.period.end
        )
        charts.append(
            TimeChart(
                title=f"Refrigerator of {cabinet_id}: "
                + ("recent readings and " if readings else "")
                + f"recorded excursions ({len(mine)})",
                y_label="°C",
                series=(Series("reading", readings, step=True),) if readings else (),
                band=mine[0].band if mine else DEFAULT_BAND,
                spans=tuple(
                    Span(e.since, e.recorded_at, e.worst_c, f"{e.worst_c:.1f} °C, ≥ {e.minutes} min") for e in mine
                ),
                start=request.period.start,
                end=request.period.end,
            )
        )
    return tuple(charts)
