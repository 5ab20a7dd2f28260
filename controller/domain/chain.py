"""A cabinet's hash chain as another party receives it, entry by entry: the rule that decides whether an arriving
entry continues the chain held so far, repeats one already held, leaves a gap, or contradicts it.

Responsible for: the chain's hash (``entry_hash``: SHA-256 over the previous hash and the entry's canonical body,
the same the cabinet's ledger seals with) and ``judge``, which a central server (or any copy of a cabinet's
ledger) asks before it applies an entry: only ``APPLY`` is applied; ``DUPLICATE`` is acknowledged and dropped (a
redelivery: applying it again would count a dose twice); ``GAP`` waits for the missing entries; ``FORK``,
``BAD_HASH`` and ``MISMATCH`` are alarms naming the cabinet and the seq, never applied. The cabinet's own seq is the
cursor, never a sequence of the receiving database.

Not responsible for: storing the chain, transport, or what an alarm does (the fleet tier).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

GENESIS_HASH = "0" * 64


def entry_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One entry as it travels: the cabinet and seq it claims, its links and its canonical body."""

    cabinet_id: str
    seq: int
    prev_hash: str
    hash: str
    body: str


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last entry held of one cabinet's chain (seq 0 and the genesis hash before the first)."""

    seq: int = 0
    hash: str = GENESIS_HASH


class Verdict(StrEnum):
    APPLY = "apply"  # the next entry: apply it, then advance the head to it
    DUPLICATE = "duplicate"  # already held, identical: acknowledge, do not apply again
    GAP = "gap"  # entries before it are missing: hold it until they arrive
    FORK = "fork"  # contradicts what is held: another entry at that seq, or a predecessor other than the head
    BAD_HASH = "bad_hash"  # its hash is not the hash of its body and predecessor: altered on the way or forged
    MISMATCH = "mismatch"  # the body names another cabinet or seq than the envelope


# The catalogue code of each verdict that is an alarm.
ALARM_CODES = {
    Verdict.FORK: "fleet.chain_fork",
    Verdict.BAD_HASH: "fleet.entry_hash_mismatch",
    Verdict.MISMATCH: "fleet.entry_mismatch",
}


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    detail: str = ""
    missing_from: int | None = None  # GAP: the first seq not yet held

    @property
    def is_alarm(self) -> bool:
        return self.verdict in ALARM_CODES

    @property
    def code(self) -> str | None:
        return ALARM_CODES.get(self.verdict)


def judge(head: ChainHead, entry: ChainEntry, held_hash: Callable[[int], str | None]) -> Judgement:
    """Whether ``entry`` continues the chain whose last held entry is ``head``. ``held_hash(seq)`` gives the hash
    held at an earlier seq (None if none is held), to tell a redelivery from a rewrite."""
    where = f"cabinet {entry.cabinet_id} seq {entry.seq}"
    if entry_hash(entry.prev_hash, entry.body) != entry.hash:
        return Judgement(Verdict.BAD_HASH, f"{where}: the hash is not that of the entry's body and predecessor")
    claimed = _claimed(entry.body)
    if claimed != (entry.cabinet_id, entry.seq):
        return Judgement(Verdict.MISMATCH, f"{where}: the body says cabinet {claimed[0]} seq {claimed[1]}")
    if entry.seq <= head.seq:
        held = held_hash(entry.seq)
        if held == entry.hash:
            return Judgement(Verdict.DUPLICATE, f"{where}: already held")
        return Judgement(Verdict.FORK, f"{where}: another entry is held at this seq ({held})")
    if entry.seq > head.seq + 1:
        return Judgement(Verdict.GAP, f"{where}: entries from {head.seq + 1} are missing", missing_from=head.seq + 1)
    if entry.prev_hash != head.hash:
        return Judgement(Verdict.FORK, f"{where}: its predecessor is {entry.prev_hash}, the entry held at "
                         f"{head.seq} is {head.hash}")  # fmt: skip
    return Judgement(Verdict.APPLY)


def _claimed(body: str) -> tuple[str | None, int | None]:
    try:
        document = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    cabinet, seq = document.get("cabinet_id"), document.get("seq")
    return (cabinet if isinstance(cabinet, str) else None, seq if isinstance(seq, int) else None)
