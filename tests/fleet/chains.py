"""Cabinet chains built the way a cabinet's ledger seals them, for tests of what receives them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.domain.chain import GENESIS_HASH, ChainEntry, entry_hash
from controller.domain.transactions import EventType, LedgerRecord
from controller.store.ledger import canonical_body

START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def body(cabinet_id: str, seq: int, *, at: datetime | None = None, quantity: int = -1, note: str = "") -> str:
    """A dose's entry body exactly as the cabinet's ledger seals it."""
    record = LedgerRecord(
        EventType.DOSE_REMOVED,
        actor_id="nurse1",
        item_id="morphine-2mg",
        pocket_id=f"{cabinet_id}-D1-P1",
        quantity_change=quantity,
        note=note or None,
    )
    moment = at or START + timedelta(minutes=seq)
    return canonical_body(record, cabinet_id=cabinet_id, seq=seq, recorded_at=moment, is_simulator=True)


def chain(
    cabinet_id: str, length: int, *, start_seq: int = 1, prev: str = GENESIS_HASH, note: str = ""
) -> list[ChainEntry]:
    entries = []
    for seq in range(start_seq, start_seq + length):
        text = body(cabinet_id, seq, note=note)
        digest = entry_hash(prev, text)
        entries.append(ChainEntry(cabinet_id, seq, prev, digest, text))
        prev = digest
    return entries
