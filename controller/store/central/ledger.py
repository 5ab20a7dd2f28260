"""The central's copy of every cabinet's chain: applying arriving entries exactly once, in seq order.

Responsible for: ``ingest``, which in the caller's transaction locks the heads of the cabinets a batch names (in
cabinet order, so concurrent workers never deadlock), asks ``controller.domain.chain.judge`` of each entry, inserts
what continues a chain, drops a redelivery, holds an entry whose predecessors have not arrived (and applies held
entries as soon as the gap closes), and records an alarm naming cabinet and seq for a fork, an altered entry or one
that names another seq; folds what the applied entries say of stock into the central's stock view
(``controller.store.central.stock``) in the same transaction. Entries recorded later than the central's clock
allows are applied (they are real doses) and flagged. The cabinet's own seq is the cursor: nothing here uses a
database sequence to decide what is new.

Not responsible for: transport, signatures or acknowledgements (``controller.fleet.central_worker`` acks a
message only after the transaction this runs in has committed).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from controller.domain.chain import GENESIS_HASH, ChainEntry, ChainHead, Judgement, Verdict, judge
from controller.store.central import stock
from controller.store.central import tables as t

FUTURE_TOLERANCE = timedelta(minutes=5)
RESEND_AFTER = timedelta(seconds=10)
HELD = "held"  # the outcome of an entry kept until its predecessors arrive


@dataclass(frozen=True, slots=True)
class Outcome:
    entry: ChainEntry
    verdict: str  # a Verdict value, or HELD
    code: str | None = None  # the alarm's catalogue code, if it raised one
    detail: str = ""


@dataclass
class IngestResult:
    outcomes: list[Outcome] = field(default_factory=list)
    heads: dict[str, ChainHead] = field(default_factory=dict)  # the heads this batch advanced
    resend_from: dict[str, int] = field(default_factory=dict)  # cabinet -> first seq the central lacks
    alarms: list[tuple[str, int | None, str, str]] = field(default_factory=list)
    # cabinet -> the entries this batch applied, in seq order, with their body documents (for the stock view and
    # the observers the worker runs in the same transaction: the HL7 outbox)
    applied_entries: dict[str, list[tuple[ChainEntry, dict[str, Any]]]] = field(default_factory=dict)

    @property
    def applied(self) -> int:
        return sum(1 for o in self.outcomes if o.verdict == Verdict.APPLY)


def register_cabinet(
    connection: Connection, cabinet_id: str, *, name: str, care_area: str, public_key: str, now: datetime,
    console_url: str | None = None,
) -> None:  # fmt: skip
    """Register a cabinet (or replace its key and place); its chain head starts at genesis the first time.
    ``console_url``: the cabinet's own pharmacy console, which the fleet page links to (None: keep the one held)."""
    values = {"name": name, "care_area": care_area, "public_key": public_key, "active": True}
    if console_url is not None:  # a new key or place keeps the console address registered before
        values["console_url"] = console_url
    connection.execute(
        pg_insert(t.cabinets)
        .values(cabinet_id=cabinet_id, registered_at=now, **values)
        .on_conflict_do_update(index_elements=["cabinet_id"], set_=values)
    )
    connection.execute(
        pg_insert(t.heads)
        .values(cabinet_id=cabinet_id, seq=0, hash=GENESIS_HASH, updated_at=now)
        .on_conflict_do_nothing(index_elements=["cabinet_id"])
    )


def ingest(connection: Connection, entries: Sequence[ChainEntry], *, now: datetime) -> IngestResult:
    result = IngestResult()
    by_cabinet: dict[str, list[ChainEntry]] = defaultdict(list)
    for entry in entries:
        by_cabinet[entry.cabinet_id].append(entry)
    if not by_cabinet:
        return result
    locked = connection.execute(
        select(t.heads.c.cabinet_id, t.heads.c.seq, t.heads.c.hash)
        .where(t.heads.c.cabinet_id.in_(sorted(by_cabinet)))
        .order_by(t.heads.c.cabinet_id)
        .with_for_update()
    ).all()
    heads = {row.cabinet_id: ChainHead(int(row.seq), str(row.hash)) for row in locked}
    held_rows = _held_rows(connection, sorted(heads))
    rows: list[dict[str, Any]] = []
    for cabinet_id in sorted(by_cabinet):
        arrivals = sorted(by_cabinet[cabinet_id], key=lambda e: e.seq)
        if cabinet_id not in heads:  # the caller checks registration; a cabinet deregistered meanwhile lands here
            for entry in arrivals:
                result.outcomes.append(Outcome(entry, "unknown", "fleet.unknown_cabinet", "not registered"))
            continue
        chain = _Chain(connection, cabinet_id, heads[cabinet_id], arrivals, held_rows.get(cabinet_id, {}))
        for entry in arrivals:
            _settle(chain, entry, result, now)
            while (waiting := chain.next_waiting()) is not None:
                _settle(chain, waiting, result, now)
        if chain.head != heads[cabinet_id]:
            result.heads[cabinet_id] = chain.head
        rows.extend(chain.rows)
        if chain.applied:
            result.applied_entries[cabinet_id] = chain.applied
        if chain.waiting_since is not None and chain.waiting_since < now - RESEND_AFTER and chain.waiting:
            # Entries have waited behind this gap a while (not merely arrived out of order between two workers):
            # ask the cabinet to publish again from the first one missing.
            result.resend_from[cabinet_id] = chain.head.seq + 1
    if rows:
        connection.execute(insert(t.ledger), rows)
    if result.applied_entries:  # the stock view moves in the same transaction as the ledger
        stock.apply(connection, result.applied_entries, now)
    for cabinet_id, head in result.heads.items():  # held entries the chain has now passed, however they came
        if cabinet_id not in held_rows:  # entries held in this batch all lie beyond the head it reached
            continue
        connection.execute(delete(t.held).where(t.held.c.cabinet_id == cabinet_id, t.held.c.seq <= head.seq))
    if result.heads:
        connection.execute(
            update(t.heads).where(t.heads.c.cabinet_id == bindparam("cab")),
            [{"cab": c, "seq": h.seq, "hash": h.hash, "updated_at": now} for c, h in result.heads.items()],
        )
    if result.alarms:
        connection.execute(
            pg_insert(t.alarms).on_conflict_do_nothing(),
            [
                {"cabinet_id": c, "seq": s, "code": code, "detail": d, "raised_at": now, "entry_hash": None}
                for c, s, code, d in result.alarms
            ],
        )
    return result


class _Chain:
    """One cabinet's chain during one ingest: its moving head, what this batch applies, and its held entries."""

    def __init__(
        self, connection: Connection, cabinet_id: str, head: ChainHead, arrivals: list[ChainEntry],
        held: dict[int, tuple[ChainEntry, datetime]],
    ) -> None:  # fmt: skip
        self.connection = connection
        self.cabinet_id = cabinet_id
        self.head = head
        self.rows: list[dict[str, Any]] = []
        self.applied: list[tuple[ChainEntry, dict[str, Any]]] = []  # with their body documents
        self.applied_hashes: dict[int, str] = {}
        self.waiting_since: datetime | None = min((at for _, at in held.values()), default=None)
        earlier = [e.seq for e in arrivals if e.seq <= head.seq]
        self._stored = self._stored_hashes(earlier) if earlier else {}
        self.waiting = {seq: entry for seq, (entry, _) in held.items() if seq > head.seq}

    def _stored_hashes(self, seqs: Iterable[int]) -> dict[int, str]:
        found = self.connection.execute(
            select(t.ledger.c.seq, t.ledger.c.hash).where(
                t.ledger.c.cabinet_id == self.cabinet_id, t.ledger.c.seq.in_(sorted(set(seqs)))
            )
        ).all()
        return {int(r.seq): str(r.hash) for r in found}

    def held_hash(self, seq: int) -> str | None:
        if seq in self.applied_hashes:
            return self.applied_hashes[seq]
        if seq not in self._stored:
            self._stored.update(self._stored_hashes([seq]))
        return self._stored.get(seq)

    def next_waiting(self) -> ChainEntry | None:
        """The held entry that follows the head now, if any (taken out of the held set)."""
        return self.waiting.pop(self.head.seq + 1, None)

    def apply(self, entry: ChainEntry, document: dict[str, Any], now: datetime) -> None:
        self.rows.append(_row(entry, document, now))
        self.applied.append((entry, document))
        self.applied_hashes[entry.seq] = entry.hash
        self.head = ChainHead(entry.seq, entry.hash)


def _settle(chain: _Chain, entry: ChainEntry, result: IngestResult, now: datetime) -> None:
    judgement: Judgement = judge(chain.head, entry, chain.held_hash)
    if judgement.verdict is Verdict.APPLY:
        document = json.loads(entry.body)
        recorded_at = _recorded_at(document, now)
        chain.apply(entry, document, now)
        if recorded_at > now + FUTURE_TOLERANCE:
            result.alarms.append(
                (entry.cabinet_id, entry.seq, "fleet.entry_from_future",
                 f"recorded at {recorded_at.isoformat()}, received at {now.isoformat()}")
            )  # fmt: skip
        result.outcomes.append(Outcome(entry, Verdict.APPLY.value))
        return
    if judgement.verdict is Verdict.GAP:
        other = chain.waiting.get(entry.seq)
        if other is not None and other.hash != entry.hash:
            result.alarms.append((entry.cabinet_id, entry.seq, "fleet.chain_fork", "two entries held at this seq"))
            result.outcomes.append(Outcome(entry, Verdict.FORK.value, "fleet.chain_fork", judgement.detail))
            return
        if other is None:
            chain.waiting[entry.seq] = entry
            chain.connection.execute(
                pg_insert(t.held)
                .values(cabinet_id=entry.cabinet_id, seq=entry.seq, prev_hash=entry.prev_hash, hash=entry.hash,
                        body=entry.body, received_at=now)
                .on_conflict_do_nothing()
            )  # fmt: skip
        result.outcomes.append(Outcome(entry, HELD, None, judgement.detail))
        return
    if judgement.is_alarm:
        assert judgement.code is not None
        result.alarms.append((entry.cabinet_id, entry.seq, judgement.code, judgement.detail))
    result.outcomes.append(Outcome(entry, judgement.verdict.value, judgement.code, judgement.detail))


def _held_rows(connection: Connection, cabinets: list[str]) -> dict[str, dict[int, tuple[ChainEntry, datetime]]]:
    """The entries held behind a gap, for every cabinet of the batch in one query (usually none)."""
    found: dict[str, dict[int, tuple[ChainEntry, datetime]]] = defaultdict(dict)
    for r in connection.execute(select(t.held).where(t.held.c.cabinet_id.in_(cabinets))).all():
        entry = ChainEntry(r.cabinet_id, int(r.seq), r.prev_hash, r.hash, r.body)
        found[r.cabinet_id][int(r.seq)] = (entry, r.received_at)
    return dict(found)


def _recorded_at(document: dict[str, Any], fallback: datetime) -> datetime:
    value = document.get("recorded_at")
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return fallback


def _row(entry: ChainEntry, document: dict[str, Any], now: datetime) -> dict[str, Any]:
    def text_of(key: str) -> str | None:
        value = document.get(key)
        return None if value is None else str(value)

    change = document.get("quantity_change")
    return {
        "cabinet_id": entry.cabinet_id,
        "seq": entry.seq,
        "recorded_at": _recorded_at(document, now),
        "received_at": now,
        "event_type": str(document.get("event_type", "")),
        "actor_id": text_of("actor_id"),
        "witness_id": text_of("witness_id"),
        "patient_id": text_of("patient_id"),
        "order_id": text_of("order_id"),
        "item_id": text_of("item_id"),
        "pocket_id": text_of("pocket_id"),
        "lot_number": text_of("lot_number"),
        "quantity_change": change if isinstance(change, int) else None,
        "is_simulator": bool(document.get("is_simulator", False)),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "body": entry.body,
    }


def head_of(connection: Connection, cabinet_id: str) -> ChainHead | None:
    row = connection.execute(select(t.heads.c.seq, t.heads.c.hash).where(t.heads.c.cabinet_id == cabinet_id)).first()
    return None if row is None else ChainHead(int(row.seq), str(row.hash))


def chain_of(connection: Connection, cabinet_id: str) -> list[ChainEntry]:
    """The central's copy of one cabinet's chain, in seq order."""
    found = connection.execute(
        select(t.ledger.c.seq, t.ledger.c.prev_hash, t.ledger.c.hash, t.ledger.c.body)
        .where(t.ledger.c.cabinet_id == cabinet_id)
        .order_by(t.ledger.c.seq)
    ).all()
    return [ChainEntry(cabinet_id, int(r.seq), r.prev_hash, r.hash, r.body) for r in found]


def record_alarm(
    connection: Connection, cabinet_id: str, seq: int | None, code: str, detail: str, *, now: datetime,
    entry_hash: str | None = None,
) -> None:  # fmt: skip
    connection.execute(
        pg_insert(t.alarms)
        .values(cabinet_id=cabinet_id, seq=seq, code=code, detail=detail, entry_hash=entry_hash, raised_at=now)
        .on_conflict_do_nothing()
    )


def record_dead_letter(
    connection: Connection, *, subject: str, stream_seq: int | None, payload: bytes, code: str, detail: str,
    now: datetime,
) -> None:  # fmt: skip
    connection.execute(
        insert(t.dead_letters).values(
            subject=subject, stream_seq=stream_seq, payload=payload, code=code, detail=detail, received_at=now
        )
    )
