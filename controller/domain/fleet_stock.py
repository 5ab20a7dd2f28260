"""What one ledger entry tells the central about a cabinet's stock: the central keeps no stock of its own, it reads
every cabinet's pockets, lots and holds out of the chain it receives, in seq order.

A stock entry carries its pocket, lot, signed change, the lot's expiry and the lot's quantity after the change (the
cabinet's store writes them with the entry, ``controller.store.inventory``), so the central's figure is the
cabinet's own, not a sum that drifts. A ``pocket.item_assigned`` entry gives a pocket its item and levels; a
``stock.quarantined`` entry places a hold (on one pocket's lot, or on a lot everywhere for a recall), and a
``stock.quarantine_reviewed`` entry that releases it ends the hold (a condemned lot stays held: its units are
unloaded by their own entries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from controller.domain.quarantine import QuarantineDecision
from controller.domain.transactions import EventType


@dataclass(frozen=True, slots=True)
class LotLevel:
    pocket_id: str
    item_id: str | None
    lot_number: str
    expiry: date | None
    quantity_after: int | None  # None: an entry without it (older bodies); the change is added instead
    change: int


@dataclass(frozen=True, slots=True)
class PocketAssigned:
    pocket_id: str
    item_id: str
    par: int
    min: int
    max: int


@dataclass(frozen=True, slots=True)
class HoldPlaced:
    item_id: str
    lot_number: str
    pocket_id: str | None  # None: a recall of the lot in every pocket
    reason: str


@dataclass(frozen=True, slots=True)
class HoldReleased:
    quarantined_seq: int


StockFact = LotLevel | PocketAssigned | HoldPlaced | HoldReleased


def stock_fact(document: Mapping[str, Any]) -> StockFact | None:
    """The stock fact an entry's body carries, or None. A body missing a field the fact needs yields None: the
    entry is still stored whole in the central's ledger, only the stock view skips it."""
    try:
        kind = EventType(str(document.get("event_type")))
    except ValueError:
        return None
    details = document.get("details") or {}
    if not isinstance(details, Mapping):
        return None
    pocket, item, lot = _text(document, "pocket_id"), _text(document, "item_id"), _text(document, "lot_number")
    if kind.moves_stock:
        change = document.get("quantity_change")
        if pocket is None or lot is None or not isinstance(change, int):
            return None
        after = details.get("lot_quantity_after")
        return LotLevel(pocket, item, lot, _date(details.get("lot_expiry")), after if isinstance(after, int) else None,
                        change)  # fmt: skip
    if kind is EventType.ITEM_ASSIGNED and pocket is not None and item is not None:
        levels = [details.get(k, 0) for k in ("par", "min", "max")]
        if not all(isinstance(v, int) for v in levels):
            return None
        return PocketAssigned(pocket, item, *levels)
    if kind is EventType.LOT_QUARANTINED and item is not None and lot is not None:
        return HoldPlaced(item, lot, pocket, _text(document, "reason_code") or "quarantined")
    if kind is EventType.QUARANTINE_REVIEWED and details.get("decision") == QuarantineDecision.RELEASE.value:
        seq = details.get("quarantined_seq")
        return HoldReleased(seq) if isinstance(seq, int) else None
    return None


def _text(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    return None if value is None else str(value)


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
