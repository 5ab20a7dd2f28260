"""What the pharmacy reads of the fleet: each cabinet's link, last contact, what waits to reach the central, its
chain's head here, its open alarms and its stock-outs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, func, select

from controller.store.central import stock
from controller.store.central import tables as t

LINK_DOWN_AFTER = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class CabinetStatus:
    cabinet_id: str
    name: str
    care_area: str
    active: bool
    last_contact_at: datetime | None
    clock_skew_s: float | None
    reported_head_seq: int | None
    central_seq: int
    open_alarms: int
    console_url: str | None = None  # the cabinet's own pharmacy console, for its per-cabinet views

    def link(self, now: datetime) -> str:
        if not self.active:
            return "retired"
        if self.last_contact_at is None:
            return "never heard"
        return "up" if now - self.last_contact_at <= LINK_DOWN_AFTER else "down"

    @property
    def queued(self) -> int | None:
        """Entries the cabinet holds that the central does not (as of its last heartbeat)."""
        return None if self.reported_head_seq is None else max(0, self.reported_head_seq - self.central_seq)


def fleet_status(connection: Connection) -> list[CabinetStatus]:
    alarms = (
        select(t.alarms.c.cabinet_id, func.count().label("n"))
        .where(t.alarms.c.cleared_at.is_(None))
        .group_by(t.alarms.c.cabinet_id)
        .subquery()
    )
    rows = connection.execute(
        select(t.cabinets, t.heads.c.seq, func.coalesce(alarms.c.n, 0).label("alarms"))
        .join(t.heads, t.heads.c.cabinet_id == t.cabinets.c.cabinet_id)
        .outerjoin(alarms, alarms.c.cabinet_id == t.cabinets.c.cabinet_id)
        .order_by(t.cabinets.c.cabinet_id)
    ).all()
    return [
        CabinetStatus(
            cabinet_id=r.cabinet_id,
            name=r.name,
            care_area=r.care_area,
            active=r.active,
            last_contact_at=r.last_contact_at,
            clock_skew_s=r.clock_skew_s,
            reported_head_seq=r.reported_head_seq,
            central_seq=int(r.seq),
            open_alarms=int(r.alarms),
            console_url=r.console_url,
        )
        for r in rows
    ]


def board(connection: Connection, now: datetime) -> list[tuple[CabinetStatus, int]]:
    """Each cabinet's status with its pockets that have nothing usable today: the fleet page's rows."""
    outs = stock.stock_outs(connection, now.astimezone(UTC).date())
    return [(c, outs.get(c.cabinet_id, 0)) for c in fleet_status(connection)]


def open_alarms(connection: Connection, *, limit: int = 50) -> list[tuple[str, int | None, str, str, datetime]]:
    rows = connection.execute(
        select(t.alarms.c.cabinet_id, t.alarms.c.seq, t.alarms.c.code, t.alarms.c.detail, t.alarms.c.raised_at)
        .where(t.alarms.c.cleared_at.is_(None))
        .order_by(t.alarms.c.raised_at.desc())
        .limit(limit)
    ).all()
    return [(r.cabinet_id, r.seq, r.code, r.detail, r.raised_at) for r in rows]
