"""The fleet's stock at the central: each cabinet's pockets, lots and holds, kept from the entries ingest applies,
and the reads the pharmacy asks of it (Global Find, the fleet-wide pick list, stock-outs per cabinet).

Responsible for: ``apply``, called by ``ledger.ingest`` in the transaction that inserts the entries (so the view
never runs ahead of or behind the central's ledger), and the reads. Usable follows the cabinet's rule
(``controller.engine.engine_state``): units of a lot not past its expiry date (usable through that UTC day), not
under a hold that has not been released, in a pocket assigned that item (a return bin's units are never usable).
Not responsible for deciding what an entry means (``controller.domain.fleet_stock``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from controller.domain.chain import ChainEntry
from controller.domain.fleet_stock import HoldPlaced, HoldReleased, LotLevel, PocketAssigned, stock_fact
from controller.domain.topology import StockLevels
from controller.store.central import tables as t


def apply(
    connection: Connection, applied: Mapping[str, Sequence[tuple[ChainEntry, Mapping[str, Any]]]], now: datetime
) -> None:
    """Fold a batch's applied entries (per cabinet: entry and body document, in seq order) into the stock view, with
    one statement per kind of change for the whole batch (a batch of 500 cabinets' single entries costs what one
    cabinet's 500 entries do)."""
    lots: dict[tuple[str, str, str], _LotState] = {}
    pockets: dict[tuple[str, str], dict[str, Any]] = {}
    placed: list[dict[str, Any]] = []
    released: list[dict[str, Any]] = []
    for cabinet_id, entries in applied.items():
        for entry, document in entries:
            seq, fact = entry.seq, stock_fact(document)
            if isinstance(fact, LotLevel):
                lots.setdefault((cabinet_id, fact.pocket_id, fact.lot_number), _LotState()).add(seq, fact)
            elif isinstance(fact, PocketAssigned):
                pockets[cabinet_id, fact.pocket_id] = {
                    "cabinet_id": cabinet_id, "pocket_id": fact.pocket_id, "item_id": fact.item_id,
                    "par_level": fact.par, "min_level": fact.min, "max_level": fact.max, "seq": seq,
                }  # fmt: skip
            elif isinstance(fact, HoldPlaced):
                placed.append({"cabinet_id": cabinet_id, "seq": seq, "item_id": fact.item_id, "reason": fact.reason,
                               "lot_number": fact.lot_number, "pocket_id": fact.pocket_id})  # fmt: skip
            elif isinstance(fact, HoldReleased):
                released.append({"cab": cabinet_id, "held": fact.quarantined_seq, "released_seq": seq})
    if pockets:
        statement = pg_insert(t.pockets)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["cabinet_id", "pocket_id"],
                set_={c: statement.excluded[c] for c in ("item_id", "par_level", "min_level", "max_level", "seq")},
            ),
            list(pockets.values()),
        )
    _write_lots(connection, lots, now)
    if placed:
        connection.execute(pg_insert(t.holds).on_conflict_do_nothing(), placed)
    if released:
        connection.execute(
            update(t.holds)
            .where(t.holds.c.cabinet_id == bindparam("cab"), t.holds.c.seq == bindparam("held"))
            .values(released_seq=bindparam("released_seq")),
            released,
        )


@dataclass
class _LotState:
    """A lot's stock facts in one batch, collapsed: an absolute quantity once one entry gave it, else a sum."""

    item_id: str | None = None
    expiry: date | None = None
    absolute: int | None = None
    delta: int = 0
    seq: int = 0

    def add(self, seq: int, fact: LotLevel) -> None:
        self.item_id = fact.item_id or self.item_id
        self.expiry = fact.expiry or self.expiry
        self.seq = seq
        if fact.quantity_after is not None:
            self.absolute, self.delta = fact.quantity_after, 0
        elif self.absolute is not None:
            self.absolute += fact.change
        else:
            self.delta += fact.change


def _write_lots(connection: Connection, lots: Mapping[tuple[str, str, str], _LotState], now: datetime) -> None:
    absolute, relative = [], []
    for (cabinet_id, pocket_id, lot_number), state in lots.items():
        row = {"cabinet_id": cabinet_id, "pocket_id": pocket_id, "lot_number": lot_number,
               "item_id": state.item_id, "expiry": state.expiry, "seq": state.seq, "updated_at": now}  # fmt: skip
        if state.absolute is not None:
            absolute.append({**row, "quantity": state.absolute})
        else:
            relative.append({**row, "quantity": state.delta})
    statement = pg_insert(t.stock)
    keys = ["cabinet_id", "pocket_id", "lot_number"]
    kept = {
        "item_id": text("coalesce(excluded.item_id, fleet_stock.item_id)"),
        "expiry": text("coalesce(excluded.expiry, fleet_stock.expiry)"),
        "seq": statement.excluded.seq,
        "updated_at": statement.excluded.updated_at,
    }
    if absolute:
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=keys, set_={**kept, "quantity": statement.excluded.quantity}
            ),
            absolute,
        )
    if relative:
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=keys, set_={**kept, "quantity": t.stock.c.quantity + statement.excluded.quantity}
            ),
            relative,
        )


# --- reads ------------------------------------------------------------------------------------------------------

# Per assigned pocket: every unit on hand, the usable ones, and the earliest expiry among usable units.
_POCKET_LEVELS = """
WITH lots AS (
    SELECT s.cabinet_id, s.pocket_id, s.lot_number, s.expiry, s.quantity,
           (s.quantity > 0 AND (s.expiry IS NULL OR s.expiry >= :today) AND NOT EXISTS (
                SELECT 1 FROM fleet_holds h
                WHERE h.cabinet_id = s.cabinet_id AND h.item_id = s.item_id AND h.lot_number = s.lot_number
                  AND (h.pocket_id IS NULL OR h.pocket_id = s.pocket_id) AND h.released_seq IS NULL
           )) AS usable
    FROM fleet_stock s
    JOIN fleet_pockets p ON p.cabinet_id = s.cabinet_id AND p.pocket_id = s.pocket_id AND p.item_id = s.item_id
)
SELECT p.cabinet_id, c.name AS cabinet_name, c.care_area, p.pocket_id, p.item_id, m.display_name AS item_name,
       p.par_level, p.min_level, p.max_level,
       coalesce(sum(l.quantity), 0) AS on_hand,
       coalesce(sum(l.quantity) FILTER (WHERE l.usable), 0) AS usable,
       min(l.expiry) FILTER (WHERE l.usable) AS next_expiry
FROM fleet_pockets p
JOIN fleet_cabinets c ON c.cabinet_id = p.cabinet_id AND c.active
LEFT JOIN lots l ON l.cabinet_id = p.cabinet_id AND l.pocket_id = p.pocket_id
LEFT JOIN medications m ON m.id = p.item_id
WHERE {where}
GROUP BY p.cabinet_id, c.name, c.care_area, p.pocket_id, p.item_id, m.display_name,
         p.par_level, p.min_level, p.max_level
"""


@dataclass(frozen=True, slots=True)
class PocketStock:
    cabinet_id: str
    cabinet_name: str
    care_area: str
    pocket_id: str
    item_id: str
    item_name: str  # the central formulary's name, or the item id if the formulary lacks it
    levels: StockLevels
    on_hand: int  # every unit, expired and held ones included
    usable: int
    next_expiry: date | None  # of the usable units

    @property
    def status(self) -> str:
        return self.levels.status(self.usable, self.on_hand)

    @property
    def to_par(self) -> int:
        return self.levels.to_par(self.usable, self.on_hand)


def _pockets(connection: Connection, today: date, where: str, **params: Any) -> list[PocketStock]:
    found = connection.execute(text(_POCKET_LEVELS.format(where=where)), {"today": today, **params})
    return [
        PocketStock(r.cabinet_id, r.cabinet_name, r.care_area, r.pocket_id, r.item_id, r.item_name or r.item_id,
                    StockLevels(r.par_level, r.min_level, r.max_level), int(r.on_hand), int(r.usable), r.next_expiry)
        for r in found
    ]  # fmt: skip


def find(connection: Connection, query: str, today: date, *, limit: int = 200) -> list[PocketStock]:
    """Global Find: the assigned pockets of every active cabinet whose item id or formulary name contains
    ``query`` (case-insensitive), most usable units first."""
    pattern = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    names = ("p.item_id", "m.display_name", "m.generic_name", "m.brand_name")
    rows = _pockets(connection, today, "(" + " OR ".join(f"{n} ILIKE :q" for n in names) + ")", q=pattern)
    rows.sort(key=lambda r: (-r.usable, r.next_expiry or date.max, r.cabinet_id, r.pocket_id))
    return rows[:limit]


def pick_list(connection: Connection, today: date, *, cabinet_ids: Sequence[str] = ()) -> list[PocketStock]:
    """Every assigned pocket below par with units to load, stock-outs first, then below minimum, by cabinet."""
    where, params = "true", {}
    if cabinet_ids:
        where, params = "p.cabinet_id = ANY(:cabinets)", {"cabinets": list(cabinet_ids)}
    rows = [r for r in _pockets(connection, today, where, **params) if r.to_par > 0]
    order = {"stock_out": 0, "below_min": 1, "below_par": 2}
    rows.sort(key=lambda r: (order.get(r.status, 3), r.cabinet_id, r.pocket_id))
    return rows


def pockets_of(connection: Connection, cabinet_id: str, today: date) -> list[PocketStock]:
    """Every assigned pocket of one cabinet, by pocket id."""
    return sorted(_pockets(connection, today, "p.cabinet_id = :cabinet", cabinet=cabinet_id), key=lambda r: r.pocket_id)


def stock_outs(connection: Connection, today: date) -> dict[str, int]:
    """Assigned pockets with nothing usable, per cabinet (cabinets with none are left out)."""
    found = connection.execute(
        text(f"SELECT cabinet_id, count(*) AS n FROM ({_POCKET_LEVELS.format(where='true')}) x "
             "WHERE usable <= 0 GROUP BY cabinet_id"),
        {"today": today},
    )  # fmt: skip
    return {str(r.cabinet_id): int(r.n) for r in found}


@dataclass(frozen=True, slots=True)
class LotStock:
    pocket_id: str
    item_id: str | None
    lot_number: str
    expiry: date | None
    quantity: int


def lots_of(connection: Connection, cabinet_id: str) -> list[LotStock]:
    """One cabinet's lots with units, as the central holds them (for comparing with the cabinet's own store)."""
    found = connection.execute(
        t.stock.select()
        .where(t.stock.c.cabinet_id == cabinet_id, t.stock.c.quantity != 0)
        .order_by(t.stock.c.pocket_id, t.stock.c.lot_number)
    )
    return [LotStock(r.pocket_id, r.item_id, r.lot_number, r.expiry, int(r.quantity)) for r in found]
