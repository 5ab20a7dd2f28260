"""Mutated messages over a real socket: every frame gets exactly one ACK, the listener never falls over, and a
message that is not accepted leaves the store exactly as it was (one archive row more, nothing else).

Mutations of the shared samples and of our own ADT/RDE messages: cut anywhere, a segment duplicated, dropped or
moved, the separators in MSH-1/MSH-2 replaced, random text in a field, random bytes inserted, or a frame of
random bytes. Bytes that are not a frame at all (they may hold stray start and end blocks) are followed by a
good message on the same connection, whose ACK must still come.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.domain.clock import FixedClock
from controller.store import schema
from controller.store.database import Database
from tests.integration.hl7_rig import CR, FS, VT, Ack, adt, archive, listening, rde, segments, snapshot

PROBE = b"MSH|^~\\&|PROBE|P|ADC|CAB|2026||ORU^R01|PROBE|P|2.5.1\rPID|1||X^^^H^MR"  # always AR, changes nothing
MUTATIONS = ("cut", "duplicate", "drop", "move", "separators", "field", "bytes", "random")
FUZZ_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _seeds(shared_external: Path) -> list[bytes]:
    shared = [p.read_bytes() for p in sorted((shared_external / "hl7").glob("*.hl7"))]
    own = [
        adt("A01", "S1", "MRN1"),
        adt("A02", "S2", "MRN1", location="ICU^1^A"),
        adt("A01", "S3", "MRN2", visit="V1"),  # MRN1's visit number: refused after MRN2 was written
        rde("S4", "ORD1", "MRN1"),
        rde("S5", "ORD1", "MRN1", control="DC"),
        rde("S6", "ORD5", "MRN5") + b"ORC|DC|NOPE^PHARM\r",  # files ORD5, then finds NOPE is not held
    ]
    return shared + own


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    base = draw(st.sampled_from(seeds))
    lines = segments(base)
    if draw(st.booleans()) and lines[0].startswith("MSH|"):  # a fresh MSH-10, so the message is judged anew
        fields = lines[0].split("|")
        if len(fields) > 9:
            fields[9] = f"FZ{draw(st.integers(0, 10**9))}"
            lines[0] = "|".join(fields)
    kind = draw(st.sampled_from(MUTATIONS))
    index = draw(st.integers(0, len(lines) - 1))
    if kind == "duplicate":
        lines.insert(index, lines[index])
    elif kind == "drop":
        del lines[index]
    elif kind == "move":
        lines.insert(draw(st.integers(0, len(lines) - 1)), lines.pop(index))
    elif kind == "separators":
        chars = draw(st.text(alphabet="|^~\\&#A1 $", min_size=0, max_size=6))
        lines[0] = lines[0][:3] + chars + lines[0][8:]
    elif kind == "field":
        fields = lines[index].split("|")
        fields[draw(st.integers(0, len(fields) - 1))] = draw(st.text(max_size=30))
        lines[index] = "|".join(fields)
    text = "\r".join(lines).encode("utf-8")
    if kind == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif kind == "bytes":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=20)) + text[at:]
    elif kind == "random":
        text = draw(st.binary(max_size=200))
    return text.replace(VT, b"").replace(FS, b"")  # one frame: the framing bytes cannot appear inside it


def _fresh_store(tmp_path: Path) -> Database:
    db = Database.open(f"sqlite:///{tmp_path / 'fuzz.db'}", create=True)
    schema.upgrade(db)
    return db


def test_mutated_messages_each_get_one_ack_and_are_never_half_applied(
    shared_external: Path, tmp_path: Path, clock: FixedClock
) -> None:
    db = _fresh_store(tmp_path)
    seeds = _seeds(shared_external)
    seen: list[str] = []

    @FUZZ_SETTINGS
    @given(payload=mutated(seeds))
    def one_message(payload: bytes) -> None:
        before, archived = snapshot(db), len(archive(db))
        acks: list[Ack] = []

        async def send() -> None:
            async with listening(db, clock) as (_, client):
                acks.append(await client.send(payload))
                after_first.append(snapshot(db))
                acks.append(await client.send(PROBE))  # the listener still answers on this connection
                acks.append(await client.send(payload))  # and the message once more

        after_first: list[dict[str, list[dict[str, object]]]] = []
        asyncio.run(asyncio.wait_for(send(), 20))
        first, probe, again = acks
        rows = archive(db)
        assert len(rows) == archived + 3  # every frame archived, with the bytes as received
        assert [bytes(r["payload"]) for r in (rows[archived], rows[archived + 2])] == [payload, payload]
        assert [r["ack_code"] for r in rows[archived:]] == [first.code, "AR", again.code]
        assert probe.code == "AR"
        outcome = rows[archived]["outcome"]
        seen.append(outcome)
        if first.code != "AA" or outcome == "duplicate":
            assert after_first[0] == before  # refused (or a repeat): nothing of it applied
        assert snapshot(db) == after_first[0]  # the repeat applied nothing
        if first.code == "AA":
            assert (again.text, rows[archived + 2]["outcome"]) == (first.text, "duplicate")
        else:
            assert (again.code, again.app_code) == (first.code, first.app_code)

    try:
        one_message()
    finally:
        db.dispose()
    # The mutations reach every path: applied, repeated, refused as wrong, refused as unreadable or unsupported.
    assert {"applied", "error", "rejected"} <= set(seen), sorted(set(seen))
    assert len(seen) >= 100


def test_bytes_that_are_not_a_frame_never_stop_the_connection(tmp_path: Path, clock: FixedClock) -> None:
    db = _fresh_store(tmp_path)
    frames: list[int] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(noise=st.binary(max_size=300))
    def noise_then_a_good_message(noise: bytes) -> None:
        async def scenario() -> None:
            async with listening(db, clock) as (_, client):
                await client.send_bytes(noise)
                # End whatever frame the noise may have opened, then send a good message.
                await client.send_bytes(FS + CR + VT + rde("GOOD", "ORD1", "MRN1") + FS + CR)
                while (ack := await client.read_ack()).control_id != "GOOD":
                    assert ack.code in ("AA", "AE", "AR")
                assert ack.code == "AA", ack.text
                frames.append(1)

        asyncio.run(asyncio.wait_for(scenario(), 20))

    try:
        noise_then_a_good_message()
    finally:
        db.dispose()
    assert len(frames) >= 50


@pytest.mark.parametrize("size", [5 * 1024 * 1024])
def test_an_oversized_frame_is_refused_and_the_connection_goes_on(size: int, tmp_path: Path, clock: FixedClock) -> None:
    db = _fresh_store(tmp_path)
    huge = rde("BIG", "ORD1", "MRN1") + b"NTE|1||" + b"x" * size + b"\r"

    async def scenario() -> None:
        async with listening(db, clock, max_frame_bytes=1024 * 1024) as (_, client):
            refused = await client.send(huge)
            assert (refused.code, refused.control_id, refused.app_code) == ("AR", "BIG", "hl7.message_too_large")
            assert (await client.send(rde("NEXT", "ORD2", "MRN1"))).code == "AA"

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
        assert [r["id"] for r in snapshot(db)["orders"]] == ["ORD2"]
    finally:
        db.dispose()


def test_a_store_that_fails_gets_ae_and_the_listener_keeps_answering(tmp_path: Path, clock: FixedClock) -> None:
    """No schema at all: nothing can be stored, so every message is answered AE (resend later), never AA."""
    db = Database.open(f"sqlite:///{tmp_path / 'empty.db'}", create=True)

    async def scenario() -> None:
        async with listening(db, clock) as (_, client):
            for control_id in ("F1", "F2"):
                ack = await client.send(rde(control_id, "ORD1", "MRN1"))
                assert (ack.code, ack.control_id, ack.error, ack.app_code) == (
                    "AE", control_id, "207", "hl7.internal_error",
                )  # fmt: skip

    try:
        asyncio.run(asyncio.wait_for(scenario(), 20))
    finally:
        db.dispose()
