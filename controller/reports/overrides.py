"""Override rate by user and by unit (care area), from the ledger: override removals over all removals in the
period, flagged above the threshold (ISMP suggests keeping overrides near or below 5 %). Each override's pharmacist
review (pending, appropriate, order followed, follow up) comes from the review queue.

A removal is one pull however many lots it came from (its first ``dose.removed`` part); an override is its
``dose.override`` entry. A user with no removal in the period has no rate and no row.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.transactions import EventType
from controller.reports.ledger_entries import Entry, read_entries
from controller.reports.model import BarChart, Column, Report, Series, TimeChart
from controller.reports.reference import Directory, load_directory
from controller.reports.request import ReportRequest
from controller.store.models import OverrideReviewRow

USER, CARE_AREA = "user", "care_area"


@dataclass(frozen=True, slots=True)
class OverrideRateRow:
    dimension: str  # "user" or "care_area"
    key: str
    name: str
    removals: int
    overrides: int
    rate_pct: float
    flagged: bool  # rate above the threshold
    reasons: tuple[str, ...]  # "severe_pain ×2"
    reviewed: int
    follow_up: int  # reviews that referred the override on (not justified by what is on file)
    pending_review: int


def _rate(overrides: int, removals: int) -> float:
    return round(100 * overrides / removals, 2) if removals else 0.0


def override_rows(
    session: Session, request: ReportRequest, directory: Directory
) -> tuple[list[OverrideRateRow], list[Entry], list[Entry]]:
    entries = read_entries(
        session,
        event_types=[EventType.DOSE_REMOVED.value, EventType.OVERRIDE.value],
        cabinet_id=request.cabinet_id,
        since=request.period.start,
        until=request.period.end,
    )
    removals = [e for e in entries if e.event_type == EventType.DOSE_REMOVED and e.is_first_lot_part]
    overrides = [e for e in entries if e.event_type == EventType.OVERRIDE]
    reviews = _review_status(session, overrides)

    def area(entry: Entry) -> str:
        place = directory.cabinets.get(entry.cabinet_id)
        return place.care_area_id if place is not None else f"cabinet {entry.cabinet_id}"

    rows: list[OverrideRateRow] = []
    for dimension, key_of, name_of in (
        (USER, lambda e: e.actor_id or "", directory.user_name),
        (CARE_AREA, area, lambda key: _area_name(directory, key)),
    ):
        removed: Counter[str] = Counter(key_of(e) for e in removals)
        overridden: defaultdict[str, list[Entry]] = defaultdict(list)
        for e in overrides:
            overridden[key_of(e)].append(e)
        for key in sorted(removed, key=lambda k: (-_rate(len(overridden[k]), removed[k]), k)):
            mine = overridden[key]
            statuses = Counter(reviews.get((e.cabinet_id, e.seq), "open") for e in mine)
            reasons = Counter(e.reason_code or "none" for e in mine)
            rate = _rate(len(mine), removed[key])
            rows.append(
                OverrideRateRow(
                    dimension=dimension,
                    key=key,
                    name=name_of(key) or key,
                    removals=removed[key],
                    overrides=len(mine),
                    rate_pct=rate,
                    flagged=rate > request.override_threshold_pct,
                    reasons=tuple(f"{reason} ×{n}" for reason, n in sorted(reasons.items())),
                    reviewed=len(mine) - statuses["open"],
                    follow_up=statuses["follow_up"],
                    pending_review=statuses["open"],
                )
            )
    return rows, removals, overrides


def _area_name(directory: Directory, care_area_id: str) -> str:
    for place in directory.cabinets.values():
        if place.care_area_id == care_area_id:
            return place.care_area
    return care_area_id


def _review_status(session: Session, overrides: list[Entry]) -> dict[tuple[str, int], str]:
    """(cabinet, override entry) -> the review row's status. Read by range of sequence numbers, not by a list of
    them: a year of overrides would exceed a database's limit of bound parameters."""
    if not overrides:
        return {}
    seqs = [e.seq for e in overrides]
    rows = session.execute(
        select(OverrideReviewRow.cabinet_id, OverrideReviewRow.ledger_seq, OverrideReviewRow.status).where(
            OverrideReviewRow.ledger_seq.between(min(seqs), max(seqs))
        )
    ).all()
    return {(r.cabinet_id, int(r.ledger_seq)): str(r.status) for r in rows}


def overrides(session: Session, request: ReportRequest, now: datetime) -> Report[OverrideRateRow]:
    directory = load_directory(session)
    rows, removals, override_entries = override_rows(session, request, directory)
    threshold = request.override_threshold_pct
    users = [r for r in rows if r.dimension == USER]
    columns = tuple(
        Column(key, heading)
        for key, heading in (
            ("dimension", "by"),
            ("key", "id"),
            ("name", "name"),
            ("removals", "removals"),
            ("overrides", "overrides"),
            ("rate_pct", "override rate (%)"),
            ("flagged", f"above {threshold:g} %"),
            ("reasons", "reasons"),
            ("reviewed", "reviewed"),
            ("follow_up", "referred for follow-up"),
            ("pending_review", "awaiting review"),
        )
    )
    charts = (
        BarChart(
            title="Override rate by user",
            y_label="% of removals",
            labels=tuple(r.name for r in users),
            values=tuple(r.rate_pct for r in users),
            flagged=tuple(r.flagged for r in users),
            threshold=threshold,
        ),
        _daily_rate_chart(request, removals, override_entries),
    )
    total = _rate(len(override_entries), len(removals))
    return Report(
        name="overrides",
        title="Override rate by user and unit",
        period=request.period,
        generated_at=now,
        columns=columns,
        rows=tuple(rows),
        facts=(
            ("cabinet", request.cabinet_id or "every cabinet"),
            ("removals", str(len(removals))),
            ("overrides", str(len(override_entries))),
            ("override rate", f"{total:.2f} %"),
            ("threshold", f"{threshold:g} % (ISMP: keep overrides near or below 5 %)"),
            ("users above the threshold", str(sum(1 for r in users if r.flagged))),
        ),
        notes=(
            "Rate = override removals / all removals (one per pull, however many lots), per user and per care "
            "area of the cabinet.",
        ),
        charts=charts if rows else (),
    )


def _daily_rate_chart(request: ReportRequest, removals: list[Entry], overrides: list[Entry]) -> TimeChart:
    per_day: Counter[date] = Counter(request.period.local_day(e.at) for e in removals)
    overridden: Counter[date] = Counter(request.period.local_day(e.at) for e in overrides)
    zone = request.period.zone
    points = tuple(
        (datetime(d.year, d.month, d.day, 12, tzinfo=zone), _rate(overridden[d], per_day[d]))
        for d in request.period.days()
        if per_day[d]
    )
    return TimeChart(
        title="Override rate per day",
        y_label="% of removals",
        series=(Series("override rate", points),),
        threshold=request.override_threshold_pct,
        start=request.period.start,
        end=request.period.end,
        daily=True,
    )
