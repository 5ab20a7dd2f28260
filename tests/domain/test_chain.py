"""The rule a copy of a cabinet's chain applies to each arriving entry: entries delivered in any order, repeated,
with gaps, end up applied exactly once and in order; a rewritten entry (its hash recomputed, and every hash after
it) is told from a redelivery; a body altered on the way, or naming another seq, is refused."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.domain.chain import GENESIS_HASH, ChainEntry, ChainHead, Verdict, entry_hash, judge

CABINET = "CAB-1"


def body(seq: int, note: str = "", cabinet: str = CABINET) -> str:
    return json.dumps({"cabinet_id": cabinet, "seq": seq, "event_type": "dose.removed", "note": note}, sort_keys=True)


def chain(
    length: int, *, notes: dict[int, str] | None = None, prev: str = GENESIS_HASH, start: int = 1
) -> list[ChainEntry]:
    entries = []
    for seq in range(start, start + length):
        text = body(seq, (notes or {}).get(seq, ""))
        digest = entry_hash(prev, text)
        entries.append(ChainEntry(CABINET, seq, prev, digest, text))
        prev = digest
    return entries


class Copy:
    """A receiver that applies what ``judge`` says to apply and holds back what arrived early."""

    def __init__(self) -> None:
        self.applied: list[ChainEntry] = []
        self.waiting: dict[int, ChainEntry] = {}
        self.verdicts: list[Verdict] = []

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.applied[-1].seq, self.applied[-1].hash) if self.applied else ChainHead()

    def held(self, seq: int) -> str | None:
        return self.applied[seq - 1].hash if 0 < seq <= len(self.applied) else None

    def receive(self, entry: ChainEntry) -> Verdict:
        verdict = judge(self.head, entry, self.held).verdict
        self.verdicts.append(verdict)
        if verdict is Verdict.GAP:
            self.waiting[entry.seq] = entry
        elif verdict is Verdict.APPLY:
            self.applied.append(entry)
            while (following := self.waiting.pop(self.head.seq + 1, None)) is not None:
                assert judge(self.head, following, self.held).verdict is Verdict.APPLY
                self.applied.append(following)
        return verdict


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32), st.integers(0, 30))
def test_any_order_with_redeliveries_applies_every_entry_exactly_once_in_order(
    length: int, seed: int, redeliveries: int
) -> None:
    sent = chain(length)
    rng = random.Random(seed)
    deliveries = sent + [rng.choice(sent) for _ in range(redeliveries)]
    rng.shuffle(deliveries)
    copy = Copy()
    for entry in deliveries:
        copy.receive(entry)
    for entry in sent:  # the sender redelivers whatever was not acknowledged; here: everything, once more
        copy.receive(entry)
    assert copy.applied == sent
    assert not copy.waiting
    assert Verdict.FORK not in copy.verdicts and Verdict.BAD_HASH not in copy.verdicts


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 30), st.data())
def test_a_chain_rewritten_from_a_point_is_a_fork_not_a_redelivery(length: int, data: st.DataObject) -> None:
    """Someone with write access to the cabinet's store edits entry k and recomputes every hash after it: the
    rewritten chain verifies on its own, but the copy that already holds the original refuses it at k."""
    original = chain(length)
    held_up_to = data.draw(st.integers(1, length))
    point = data.draw(st.integers(1, held_up_to))
    rewritten = original[: point - 1] + chain(
        length - point + 1, notes={point: "edited"}, prev=original[point - 2].hash if point > 1 else GENESIS_HASH,
        start=point,
    )  # fmt: skip
    copy = Copy()
    for entry in original[:held_up_to]:
        assert copy.receive(entry) is Verdict.APPLY
    verdicts = [copy.receive(entry) for entry in rewritten]
    assert verdicts[: point - 1] == [Verdict.DUPLICATE] * (point - 1)
    assert verdicts[point - 1] is Verdict.FORK
    assert copy.applied == original[:held_up_to]  # nothing of the rewrite was applied


def test_a_body_altered_on_the_way_or_naming_another_seq_is_refused() -> None:
    first, second = chain(2)
    altered = ChainEntry(CABINET, 2, second.prev_hash, second.hash, second.body.replace("dose.removed", "x"))
    head = ChainHead(1, first.hash)
    judged = judge(head, altered, lambda _seq: None)
    assert judged.verdict is Verdict.BAD_HASH and judged.code == "fleet.entry_hash_mismatch"
    assert "cabinet CAB-1 seq 2" in judged.detail
    other = body(3)
    relabelled = ChainEntry(CABINET, 2, first.hash, entry_hash(first.hash, other), other)
    assert judge(head, relabelled, lambda _seq: None).verdict is Verdict.MISMATCH
    foreign = body(2, cabinet="CAB-2")
    stray = ChainEntry(CABINET, 2, first.hash, entry_hash(first.hash, foreign), foreign)
    assert judge(head, stray, lambda _seq: None).code == "fleet.entry_mismatch"
    gap = judge(ChainHead(), second, lambda _seq: None)
    assert (gap.verdict, gap.missing_from, gap.is_alarm) == (Verdict.GAP, 1, False)
