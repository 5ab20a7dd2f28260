"""Delivering the outbox to a receiver that drops connections, answers AE and AR, stalls, acknowledges the wrong
message or answers garbage, with the controller restarted in the middle (a new sender, and a new ledger adding
doses, on the same store): every message is applied exactly once, in order per patient, and only an AA marks a
message delivered. A message refused too often is parked and holds its patient's later messages, not the others'.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

from controller.domain.clock import FixedClock, SystemClock
from controller.integration.hl7.outbound import OutboxSender, RetryPolicy
from controller.integration.hl7.outbound import queue as outbox_queue
from controller.store.database import Database
from tests.hardware.io_board.rigs import run
from tests.integration.outbox_rig import (
    AR,
    OK,
    PATIENTS,
    FlakyReceiver,
    append,
    attempt_rows,
    flaky_script,
    outbox_ledger,
    outbox_rows,
    queued_order,
    removal,
    returned,
    seed_patients,
    wasted,
)

FAST = RetryPolicy(base_s=0.005, cap_s=0.05, max_refusals=4)


def sender(db: Database, port: int, *, policy: RetryPolicy = FAST, seed: int = 1) -> OutboxSender:
    return OutboxSender(
        db,
        SystemClock(),
        cabinet_id="CAB-E",
        host="127.0.0.1",
        port=port,
        policy=policy,
        connect_timeout_s=1.0,
        ack_timeout_s=0.25,
        poll_s=0.02,
        batch=7,  # small rounds: the restart lands between them and within them
        rng=random.Random(seed),
    )


def doses(db: Database, clock: FixedClock, rounds: int) -> None:
    """Each patient: removals, a return and a waste, interleaved across patients."""
    ledger = outbox_ledger(clock)
    for round_number in range(rounds):
        for mrn in PATIENTS:
            append(db, ledger, removal(mrn, units=1 + round_number % 2, order="ORD1" if mrn == "MRN1" else None))
        append(db, ledger, returned(PATIENTS[round_number % 4]), wasted(PATIENTS[(round_number + 1) % 4]))


async def until(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_exactly_once_in_order_per_patient_across_a_restart(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    doses(db, clock, rounds=3)
    first_batch = len(outbox_rows(db))

    async def scenario() -> FlakyReceiver:
        receiver = FlakyReceiver(flaky_script(seed=11))
        port = await receiver.start()
        receiver.expect_order(queued_order(db))
        try:
            before = sender(db, port)
            await before.start()
            await until(lambda: len(receiver.applied) >= first_batch // 2)
            await before.close()  # the controller stops, mid-flight or not

            doses(db, clock, rounds=2)  # the restarted controller goes on dispensing
            receiver.expect_order(queued_order(db))
            restarted = Database.open(db.url.render_as_string(hide_password=False))
            after = sender(restarted, port, seed=2)
            try:
                await after.start()
                await until(lambda: outbox_queue.counts(db, "CAB-E")["pending"] == 0, timeout=60)
            finally:
                await after.close()
                restarted.dispose()
        finally:
            await receiver.close()
        return receiver

    receiver = run(scenario(), timeout=90)
    rows = outbox_rows(db)
    controls = [row["control_id"] for row in rows]
    assert len(rows) > first_batch
    assert receiver.violations == []
    assert sorted(receiver.applied) == sorted(controls)  # each applied once: a repeat is counted, not applied
    for mrn, queued in queued_order(db).items():
        assert [c for c in receiver.applied_order if c in set(queued)] == queued, mrn
    assert {row["status"] for row in rows} == {"delivered"}
    assert all(row["ack"] and f"MSA|AA|{row['control_id']}" in row["ack"] for row in rows)
    # The trouble really happened, and each kind was recorded with its own code.
    outcomes = Counter((a["outcome"], a["error_code"]) for a in attempt_rows(db))
    for expected in [
        ("refused", "hl7.outbound_error"),
        ("refused", "hl7.outbound_rejected"),
        ("failed", "hl7.outbound_disconnected"),
        ("failed", "hl7.outbound_no_ack"),
        ("failed", "hl7.outbound_bad_ack"),
    ]:
        assert outcomes[expected] > 0, (expected, outcomes)
    assert outcomes[("delivered", None)] == len(rows)
    assert receiver.duplicates > 0  # ACKs were lost after the receiver applied: resent, recognised, not re-applied


def test_a_parked_message_holds_its_patient_only_until_requeued(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    ledger = outbox_ledger(clock)
    append(db, ledger, removal("MRN1", order="ORD1"), removal("MRN2"), removal("MRN1", order="ORD1"))
    queued = [row["control_id"] for row in outbox_rows(db)]  # MRN1 RDS, DFT; MRN2 RDS, DFT; MRN1 RDS, DFT
    stuck = queued[0]
    refusing = {"on": True}

    def script(_number: int, control: str) -> str:
        return AR if control == stuck and refusing["on"] else OK

    async def scenario() -> FlakyReceiver:
        receiver = FlakyReceiver(script)
        receiver.expect_order(queued_order(db))
        port = await receiver.start()
        try:
            async with sender(db, port):
                await until(lambda: outbox_queue.counts(db, "CAB-E")["parked"] == 1)
                await until(lambda: set(queued[2:4]) <= set(receiver.applied))  # MRN2's messages go on
                await asyncio.sleep(0.2)
                assert [r["status"] for r in outbox_rows(db)] == ["parked", "pending", "delivered", "delivered",
                                                                   "pending", "pending"]  # fmt: skip
                refusing["on"] = False
                parked_id = outbox_rows(db)[0]["id"]
                assert outbox_queue.requeue(db, "CAB-E", parked_id, clock.now()) == stuck
                await until(lambda: outbox_queue.counts(db, "CAB-E")["pending"] == 0)
        finally:
            await receiver.close()
        return receiver

    receiver = run(scenario(), timeout=60)
    assert receiver.violations == []
    assert receiver.received.count(stuck) == FAST.max_refusals + 1
    assert receiver.applied_order == [*queued[2:4], *queued[0:2], *queued[4:6]]
    refusals = [a for a in attempt_rows(db) if a["ack_code"] == "AR"]
    assert [a["outcome"] for a in refusals] == ["refused"] * (FAST.max_refusals - 1) + ["parked"]
    assert all(a["ack"] and "MSA|AR|" in a["ack"] for a in refusals)
