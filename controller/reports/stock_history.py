"""Stock as the ledger tells it, at any moment: every stock entry carries its pocket, lot, signed quantity change
and the lot's expiry, so the quantity of each lot at a time is the sum of its changes up to then (the ledger and
``pocket_lots`` agree by construction: the store writes both in one transaction).

Usable stock follows the engine's rule (``engine_state.usable_lots``): a lot with units, not past its expiry date
(usable through that UTC day), and not under an active hold (a recall of the item's lot anywhere, or a hold on the
pocket's lot) from the hold's start until a pharmacist released it. ``zero_time`` walks those facts through a
period to measure how long a pocket had nothing usable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.reports.ledger_entries import STOCK_EVENTS, Entry, read_entries
from controller.store.models import QuarantinedLotRow

RELEASED = "released"


@dataclass(frozen=True, slots=True)
class LotChange:
    at: datetime
    cabinet_id: str
    seq: int
    pocket_id: str
    item_id: str | None
    lot: str
    change: int
    expiry: date | None


@dataclass(frozen=True, slots=True)
class Hold:
    item_id: str
    lot: str
    pocket_id: str | None  # None: a recall, every pocket holding the item
    reason: str
    start: datetime
    end: datetime | None  # released at; None while it blocks
    review_decision: str | None

    def blocks(self, pocket_id: str, item_id: str | None, lot: str, at: datetime) -> bool:
        return (
            self.item_id == item_id
            and self.lot == lot
            and self.pocket_id in (None, pocket_id)
            and self.start <= at
            and (self.end is None or at < self.end)
        )


@dataclass(frozen=True, slots=True)
class LotQuantity:
    pocket_id: str
    item_id: str | None
    lot: str
    expiry: date | None
    quantity: int


def lot_changes(
    session: Session,
    cabinet_id: str | None,
    until: datetime | None,
    *,
    pocket_id: str | None = None,
    item_id: str | None = None,
) -> list[LotChange]:
    entries = read_entries(
        session, event_types=STOCK_EVENTS, cabinet_id=cabinet_id, until=until, pocket_id=pocket_id, item_id=item_id
    )
    return [_change(e) for e in entries]


def _change(entry: Entry) -> LotChange:
    assert entry.pocket_id is not None and entry.lot_number is not None and entry.quantity_change is not None
    expiry = entry.details.get("lot_expiry")
    return LotChange(
        at=entry.at,
        cabinet_id=entry.cabinet_id,
        seq=entry.seq,
        pocket_id=entry.pocket_id,
        item_id=entry.item_id,
        lot=entry.lot_number,
        change=entry.quantity_change,
        expiry=date.fromisoformat(str(expiry)) if expiry else None,
    )


def quantities(changes: Iterable[LotChange]) -> list[LotQuantity]:
    """Units per (pocket, item, lot) after ``changes``; lots at zero are left out."""
    totals: dict[tuple[str, str | None, str], int] = defaultdict(int)
    expiry: dict[tuple[str, str | None, str], date | None] = {}
    for c in changes:
        key = (c.pocket_id, c.item_id, c.lot)
        totals[key] += c.change
        expiry[key] = c.expiry or expiry.get(key)
    return [LotQuantity(p, i, lot, expiry[p, i, lot], q) for (p, i, lot), q in sorted(totals.items()) if q != 0]


def holds(session: Session, cabinet_id: str | None) -> list[Hold]:
    statement = select(QuarantinedLotRow)
    if cabinet_id is not None:
        statement = statement.where(QuarantinedLotRow.cabinet_id == cabinet_id)
    result = []
    for row in session.execute(statement).scalars():
        released = row.status == RELEASED
        result.append(
            Hold(
                item_id=row.item_id,
                lot=row.lot_number,
                pocket_id=row.pocket_id,
                reason=row.reason,
                start=_aware(row.quarantined_at),
                end=_aware(row.reviewed_at) if released and row.reviewed_at is not None else None,
                review_decision=row.review_decision,
            )
        )
    return result


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def expiry_end(expiry: date) -> datetime:
    """The first moment a lot is expired: the engine uses it through its expiry date (UTC)."""
    return datetime.combine(expiry + timedelta(days=1), time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ZeroTime:
    hours_at_zero: float
    stock_outs: int  # times the usable quantity fell to zero during the period
    usable_at_end: int


def zero_time(
    pocket_id: str,
    *,
    item_id: str | None,
    changes: list[LotChange],
    pocket_holds: list[Hold],
    start: datetime,
    end: datetime,
) -> ZeroTime:
    """How long, within [start, end), ``pocket_id`` had no usable unit. ``changes`` are this pocket's, in order."""
    moments = {start}
    moments.update(c.at for c in changes if start < c.at < end)
    moments.update(expiry_end(c.expiry) for c in changes if c.expiry and start < expiry_end(c.expiry) < end)
    for h in pocket_holds:
        moments.update(t for t in (h.start, h.end) if t is not None and start < t < end)
    ordered = sorted(moments)
    lots: dict[str, int] = defaultdict(int)
    expiries: dict[str, date | None] = {}
    applied = 0
    zero_seconds = 0.0
    stock_outs = 0
    previous: int | None = None
    usable = 0
    for index, moment in enumerate(ordered):
        while applied < len(changes) and changes[applied].at <= moment:
            change = changes[applied]
            lots[change.lot] += change.change
            expiries[change.lot] = change.expiry or expiries.get(change.lot)
            applied += 1
        usable = sum(
            units
            for lot, units in lots.items()
            if units > 0
            and ((expiry := expiries.get(lot)) is None or moment < expiry_end(expiry))
            and not any(h.blocks(pocket_id, item_id, lot, moment) for h in pocket_holds)
        )
        following = ordered[index + 1] if index + 1 < len(ordered) else end
        if usable <= 0:
            zero_seconds += (following - moment).total_seconds()
            if previous is not None and previous > 0:
                stock_outs += 1
        previous = usable
    return ZeroTime(round(zero_seconds / 3600, 2), stock_outs, max(usable, 0))
