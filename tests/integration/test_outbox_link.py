"""The link to the receiver: backoff delays grow exponentially with jitter and stay capped; a receiver that is
down is retried (never given up on, nothing parked) with growing pauses and gets everything once it is up."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
from datetime import datetime

import pytest

from controller.domain.clock import FixedClock, SystemClock
from controller.errors import ConfigurationError
from controller.integration.hl7.outbound import OutboxSender, RetryPolicy, parse_endpoint
from controller.integration.hl7.outbound import queue as outbox_queue
from controller.store.database import Database
from tests.hardware.io_board.rigs import run
from tests.integration.outbox_rig import OK, FlakyReceiver, append, attempt_rows, outbox_ledger, removal, seed_patients


def test_delays_grow_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=60.0)
    rng = random.Random(3)
    for failures in range(1, 12):
        step = min(60.0, 2.0 ** (failures - 1))
        drawn = [policy.delay(failures, rng) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in drawn), failures
        assert max(drawn) - min(drawn) > step / 4  # jitter: not one fixed delay
    assert 30.0 <= policy.delay(10_000, rng) <= 60.0  # no overflow, still capped


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)  # SQLite answers text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_receiver_that_is_down_is_retried_with_growing_pauses_until_it_is_up(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    append(db, outbox_ledger(clock), removal("MRN1"), removal("MRN2"))
    port = free_port()  # nothing listens there yet
    policy = RetryPolicy(base_s=0.05, cap_s=1.0, max_refusals=2)

    async def scenario() -> FlakyReceiver:
        sender = OutboxSender(db, SystemClock(), cabinet_id="CAB-E", host="127.0.0.1", port=port, policy=policy,
                              connect_timeout_s=0.5, poll_s=0.02, rng=random.Random(5))  # fmt: skip
        receiver = FlakyReceiver(lambda _n, _c: OK)
        async with sender:
            while len(attempt_rows(db)) < 5:
                await asyncio.sleep(0.02)
            assert outbox_queue.counts(db, "CAB-E") == {"pending": 4, "parked": 0, "delivered": 0}
            server = await asyncio.start_server(receiver._serve, "127.0.0.1", port)
            try:
                while outbox_queue.counts(db, "CAB-E")["pending"]:
                    await asyncio.sleep(0.02)
            finally:
                server.close()
                await receiver.close()
        return receiver

    receiver = run(scenario(), timeout=30)
    failed = [a for a in attempt_rows(db) if a["outcome"] == "failed"]
    assert len(failed) >= 5 and {a["error_code"] for a in failed} == {"hl7.outbound_unreachable"}
    times = [_moment(a["attempted_at"]) for a in failed[:5]]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert all(gap >= 0.02 for gap in gaps), gaps  # never hammered
    assert gaps[2] > gaps[0] and gaps[3] > gaps[1], gaps  # each pause at least the one two before, doubled
    assert len(receiver.applied) == 4 and receiver.violations == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10.0.0.5:2575", ("10.0.0.5", 2575)), ("hl7-engine.example:6661", ("hl7-engine.example", 6661)),
     ("[::1]:2575", ("::1", 2575)), ("nonsense", None), ("host:", None), (":2575", None), ("host:70000", None)],
)  # fmt: skip
def test_the_endpoint_setting_is_host_and_port(value: str, expected: tuple[str, int] | None) -> None:
    if expected is not None:
        assert parse_endpoint(value, "ADC_HL7_OUTBOUND") == expected
        return
    with pytest.raises(ConfigurationError) as refused:
        parse_endpoint(value, "ADC_HL7_OUTBOUND")
    assert refused.value.code == "config.invalid" and "ADC_HL7_OUTBOUND" in refused.value.detail
