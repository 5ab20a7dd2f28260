"""The fleet link under faults: a cut or stalled link, a NATS restart, a worker killed mid-batch, PostgreSQL
dropping the central's connections, a cabinet killed mid-drain, a rewritten chain, bad messages, a clock hours
off, a stale directory record. Each ends with 0 entries lost and 0 applied twice, or a refusal with a code."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from sqlalchemy import func, select, text

from controller.domain.chain import ChainEntry, entry_hash
from controller.domain.clock import SystemClock
from controller.domain.credentials import CredentialHasher, HashCost
from controller.domain.directory import DirectoryUser
from controller.domain.users import Role, User
from controller.engine.credentials import CredentialCheck
from controller.errors import ControllerError
from controller.fleet import link as links
from controller.fleet import protocol as p
from controller.fleet.central_service import CentralConfig, CentralService
from controller.fleet.central_worker import CentralWorker, WorkerConfig
from controller.store import fleet_link
from controller.store import repositories as repo
from controller.store.cabinet_store import CabinetStore
from controller.store.central import directory
from controller.store.central import tables as t
from controller.store.database import Database
from tests.fleet.harness import (
    Cabinet,
    LinkProxy,
    NatsServer,
    central_chain,
    central_worker,
    eventually,
    local_chain,
    make_cabinet,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

FAST = WorkerConfig(ack_wait_s=2.0, fetch_timeout_s=0.2)


def _run(factory: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(factory())  # type: ignore[arg-type]


def _same(central_db: Database, *cabinets: Cabinet) -> Callable[[], bool]:
    return lambda: all(local_chain(c) == central_chain(central_db, c.cabinet_id) for c in cabinets)


def _alarms(central_db: Database) -> list[tuple[str, int | None, str]]:
    with central_db.reader.connect() as connection:
        rows = connection.execute(select(t.alarms.c.cabinet_id, t.alarms.c.seq, t.alarms.c.code)).all()
    return sorted(((r.cabinet_id, r.seq, r.code) for r in rows), key=lambda a: (a[0], a[1] or 0, a[2]))


def _stock(entries: list[tuple[int, str, str]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for _, _, body in entries:
        document = json.loads(body)
        if document.get("quantity_change") is not None:
            totals[document["pocket_id"]] = totals.get(document["pocket_id"], 0) + document["quantity_change"]
    return totals


def test_a_cabinet_cut_off_keeps_dispensing_and_drains_in_order(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with central_worker(central_db, nats.url, FAST) as worker:
            proxy = LinkProxy(nats.port)
            await proxy.start()
            cut_off = make_cabinet(tmp_path, central_db, "CAB-CUT", proxy.url)
            others = [make_cabinet(tmp_path, central_db, f"CAB-{i}", nats.url) for i in range(9)]
            for cabinet in (cut_off, *others):
                cabinet.start()
            cut_off.dispense(5)
            await eventually(_same(central_db, cut_off), what="first entries at the central")
            proxy.drop()
            for _ in range(10):  # the outage: the cut-off cabinet and the rest keep dispensing
                await asyncio.to_thread(cut_off.dispense, 30, pocket="CAB-CUT-D2-P3")
                for cabinet in others:
                    await asyncio.to_thread(cabinet.dispense, 3)
            await eventually(lambda: not cut_off.forwarder.status.link_up, what="the cabinet to see its link down")
            assert cut_off.forwarder.status.queued > 0
            assert len(central_chain(central_db, "CAB-CUT")) < len(local_chain(cut_off))
            proxy.restore()
            await eventually(_same(central_db, cut_off, *others), timeout=60, what="the drain after the cut")
            for cabinet in (cut_off, *others):
                await cabinet.halt()
        await proxy.close()
        for cabinet in (cut_off, *others):
            held = central_chain(central_db, cabinet.cabinet_id)
            assert held == local_chain(cabinet)  # entry for entry, hash for hash
            assert _stock(held) == _stock(local_chain(cabinet))
        assert _alarms(central_db) == []
        assert worker.stats.dead_letters == 0

    _run(scenario)


def test_a_stalled_link_and_a_nats_restart_lose_nothing(central_db: Database, nats: NatsServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with central_worker(central_db, nats.url, FAST):
            proxy = LinkProxy(nats.port)
            await proxy.start()
            cabinet = make_cabinet(tmp_path, central_db, "CAB-S", proxy.url)
            cabinet.start()
            cabinet.dispense(10)
            await eventually(_same(central_db, cabinet), what="entries before the stall")
            proxy.stalled = True  # connections stay open and pass nothing
            cabinet.dispense(20)
            await asyncio.sleep(3)
            proxy.restore()
            await eventually(_same(central_db, cabinet), timeout=60, what="entries after the stall")
            nats.stop()  # NATS restarts on the same store: the stream, the consumer and the buckets survive
            cabinet.dispense(15)
            await asyncio.sleep(1)
            nats.start()
            cabinet.dispense(5)
            await eventually(_same(central_db, cabinet), timeout=60, what="entries after the NATS restart")
            await cabinet.halt()
        await proxy.close()
        assert _alarms(central_db) == []

    _run(scenario)


def test_a_killed_worker_and_dropped_database_connections_apply_nothing_twice(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    application = f"adc-central-{uuid.uuid4().hex[:8]}"
    workers_db = Database.open(
        central_db.url.update_query_dict({"application_name": application}).render_as_string(False)
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        survivors = [CentralWorker(workers_db, nats.url, SystemClock(), name=f"w{i}", config=FAST) for i in range(2)]
        doomed = CentralWorker(workers_db, nats.url, SystemClock(), name="doomed", config=FAST)
        tasks = [asyncio.create_task(w.run(stop)) for w in survivors]
        doomed_task = asyncio.create_task(doomed.run(asyncio.Event()))
        cabinets = [make_cabinet(tmp_path, central_db, f"CAB-K{i}", nats.url) for i in range(10)]
        for cabinet in cabinets:
            cabinet.start()
        for _ in range(4):
            for cabinet in cabinets:
                await asyncio.to_thread(cabinet.dispense, 5)
        await asyncio.sleep(0.3)
        doomed_task.cancel()  # killed whatever it was doing: its unacknowledged messages go to the others
        await asyncio.gather(doomed_task, return_exceptions=True)
        for cabinet in cabinets:
            await asyncio.to_thread(cabinet.dispense, 5)
        # PostgreSQL drops every connection of the central's workers (what a restart does to its clients).
        with central_db.writer.begin() as connection:
            dropped = connection.execute(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :a"),
                {"a": application},
            ).scalar()
        assert dropped
        for cabinet in cabinets:
            await asyncio.to_thread(cabinet.dispense, 5)
        await eventually(_same(central_db, *cabinets), timeout=90, what="every chain after the kill")
        for cabinet in cabinets:
            await cabinet.halt()
        stop.set()
        await asyncio.gather(*tasks)
        with central_db.reader.connect() as connection:
            per_chain = connection.execute(
                select(t.ledger.c.cabinet_id, t.ledger.c.seq, func.count())
                .group_by(t.ledger.c.cabinet_id, t.ledger.c.seq)
                .having(func.count() > 1)
            ).all()
        assert per_chain == []  # nothing applied twice
        assert _alarms(central_db) == []

    try:
        _run(scenario)
    finally:
        workers_db.dispose()


def test_a_lost_tail_is_asked_for_again_once_nothing_is_in_flight(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    """The last messages of a chain vanish from the stream (what a message dropped after its last delivery
    looks like): no later entry reveals a gap, so the central compares the cabinet's heartbeat with its head."""

    async def scenario() -> None:
        client = await nats_connect(nats.url)
        js = client.jetstream()
        await links.declare_streams(js)
        cabinet = make_cabinet(tmp_path, central_db, "CAB-TAIL", nats.url)
        cabinet.dispense(12)
        cabinet.start()
        await eventually(lambda: cabinet.forwarder.status.queued == 0 and cabinet.forwarder.status.published_seq > 0,
                         what="every entry published")  # fmt: skip
        lost: list[int] = []
        seq = (await js.stream_info(p.LEDGER_STREAM)).state.last_seq
        while len(lost) < 4:  # the cabinet's last four messages
            if (await js.get_msg(p.LEDGER_STREAM, seq)).subject == p.ledger_subject("CAB-TAIL"):
                await js.delete_msg(p.LEDGER_STREAM, seq)
                lost.append(seq)
            seq -= 1
        async with central_worker(central_db, nats.url, FAST) as worker:
            await eventually(_same(central_db, cabinet), timeout=60, what="the lost tail after a resend")
            assert worker.stats.tail_resends >= 1
            await cabinet.halt()
        await client.close()
        assert _alarms(central_db) == []

    _run(scenario)


def test_a_cabinet_killed_mid_drain_resumes_without_duplicates(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with central_worker(central_db, nats.url, FAST) as worker:
            cabinet = make_cabinet(tmp_path, central_db, "CAB-D", nats.url)
            cabinet.dispense(600)  # queued before the forwarder ever ran
            cabinet.start()
            await eventually(lambda: cabinet.forwarder.status.published_seq > 0, what="the drain to start")
            assert cabinet.task is not None
            cabinet.task.cancel()  # killed mid-drain
            await asyncio.gather(cabinet.task, return_exceptions=True)
            cabinet.start()  # restarted: resumes from the last seq JetStream acknowledged
            await eventually(_same(central_db, cabinet), timeout=60, what="the resumed drain")
            await cabinet.halt()
        assert worker.stats.refused == 0 and _alarms(central_db) == []

    _run(scenario)


def _rewrite_from(cabinet: Cabinet, seq: int) -> None:
    """What someone with write access to the cabinet's SQLite store could do: rewrite every entry from ``seq``
    (a smaller take), recomputing each hash so the cabinet's own chain still verifies."""
    path = str(cabinet.db.url.database)
    cabinet.db.dispose()
    connection = sqlite3.connect(path)
    rows = connection.execute("SELECT id, seq, body FROM ledger_entries ORDER BY seq").fetchall()
    prev = connection.execute("SELECT hash FROM ledger_entries WHERE seq = ?", (seq - 1,)).fetchone()[0]
    for trigger in ("ledger_entries_no_update", "ledger_heads_advance_only"):
        connection.execute(f"DROP TRIGGER {trigger}")
    for row_id, row_seq, body in rows:
        if row_seq < seq:
            continue
        document = json.loads(body)
        if document.get("quantity_change") is not None:
            document["quantity_change"] = 0
        new_body = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = entry_hash(prev, new_body)
        connection.execute(
            "UPDATE ledger_entries SET body = ?, prev_hash = ?, hash = ? WHERE id = ?", (new_body, prev, digest, row_id)
        )
        prev = digest
    connection.execute("UPDATE ledger_heads SET last_hash = ?", (prev,))
    connection.commit()
    connection.close()


def test_a_rewritten_chain_is_detected_on_both_sides(central_db: Database, nats: NatsServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with central_worker(central_db, nats.url, FAST):
            cabinet = make_cabinet(tmp_path, central_db, "CAB-T", nats.url)
            cabinet.dispense(20)
            cabinet.start()
            await eventually(
                lambda: fleet_link.forward_state(cabinet.db, "CAB-T").acknowledged_seq >= 20, what="the central's head"
            )
            await cabinet.halt()
            _rewrite_from(cabinet, 8)
            reopened = make_cabinet(tmp_path, central_db, "CAB-T", nats.url, register=False)
            reopened.forwarder.key = cabinet.key  # the same cabinet, its store rewritten
            reopened.dispense(3)
            fleet_link.rewind(reopened.db, "CAB-T", 0, SystemClock().now())
            reopened.start()
            # The cabinet sees the central's head contradict its chain, halts and records it ...
            await eventually(lambda: reopened.forwarder.status.halted is not None, what="the cabinet's halt")
            bodies = [b for _, _, b in local_chain(reopened)]
            assert any('"reason_code":"fleet.local_chain_rewritten"' in b for b in bodies)
            await reopened.halt()
            # ... and the central, offered the rewritten entries, refuses them as a fork naming cabinet and seq.
            fleet_link.rewind(reopened.db, "CAB-T", 0, SystemClock().now())
            client = await nats_connect(nats.url)
            js = client.jetstream()
            for entry in fleet_link.entries_after(reopened.db, "CAB-T", 7, limit=5):
                payload = p.encode_entry(entry)
                await js.publish(
                    p.ledger_subject("CAB-T"), payload,
                    headers={p.MSG_ID_HEADER: f"replay:{entry.seq}", p.SIGNATURE_HEADER: p.sign(cabinet.key, payload)},  # type: ignore[arg-type]
                )  # fmt: skip
            await client.close()
            await eventually(lambda: ("CAB-T", 8, "fleet.chain_fork") in _alarms(central_db), what="the fork alarm")
        assert len(central_chain(central_db, "CAB-T")) >= 20
        assert all('"quantity_change":0' not in b for _, _, b in central_chain(central_db, "CAB-T")[7:20])

    _run(scenario)


async def nats_connect(url: str) -> nats.aio.client.Client:
    return await nats.connect(url)


def test_bad_messages_are_refused_with_a_code_and_never_applied(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with central_worker(central_db, nats.url, FAST) as worker:
            await asyncio.wait_for(worker.ready.wait(), 20)
            cabinet = make_cabinet(tmp_path, central_db, "CAB-B", nats.url)
            cabinet.dispense(1)
            entry = fleet_link.entries_after(cabinet.db, "CAB-B", 0, limit=1)[0]
            stranger_key = p.new_signing_key()
            client = await nats_connect(nats.url)
            js = client.jetstream()
            payload = p.encode_entry(entry)
            # Not signed, signed by another key, garbled, from a cabinet nobody registered.
            await js.publish(p.ledger_subject("CAB-B"), payload, headers={p.MSG_ID_HEADER: "x1"})
            await js.publish(
                p.ledger_subject("CAB-B"), payload,
                headers={p.MSG_ID_HEADER: "x2", p.SIGNATURE_HEADER: p.sign(stranger_key, payload)},
            )  # fmt: skip
            await js.publish(p.ledger_subject("CAB-B"), b"\x00{not json", headers={p.MSG_ID_HEADER: "x3"})
            ghost_body = json.dumps({"cabinet_id": "CAB-GHOST", "seq": 1})
            ghost = p.encode_entry(ChainEntry("CAB-GHOST", 1, "0" * 64, entry_hash("0" * 64, ghost_body), ghost_body))
            await js.publish(
                p.ledger_subject("CAB-GHOST"), ghost,
                headers={p.MSG_ID_HEADER: "CAB-GHOST:1", p.SIGNATURE_HEADER: p.sign(stranger_key, ghost)},
            )  # fmt: skip
            await client.close()
            await eventually(lambda: worker.stats.dead_letters >= 4, what="four refusals")
            codes = [code for _, _, code in _alarms(central_db)]
            assert codes.count("fleet.bad_signature") == 2
            assert "fleet.unreadable_message" in codes and "fleet.unknown_cabinet" in codes
            assert central_chain(central_db, "CAB-B") == []
            with central_db.reader.connect() as connection:
                assert connection.execute(select(func.count()).select_from(t.dead_letters)).scalar() == 4
            # The true entry, properly signed, still applies.
            cabinet.start()
            await eventually(_same(central_db, cabinet), what="the signed entry")
            await cabinet.halt()

    _run(scenario)


class _SkewedClock:
    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_a_cabinet_clock_hours_off_raises_an_alarm(central_db: Database, nats: NatsServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with central_worker(central_db, nats.url, FAST):
            cabinet = make_cabinet(tmp_path, central_db, "CAB-C", nats.url, clock=_SkewedClock(timedelta(hours=3)))
            cabinet.dispense(2)
            cabinet.start()
            await eventually(lambda: ("CAB-C", None, "fleet.clock_skew") in _alarms(central_db), what="the skew alarm")
            await eventually(_same(central_db, cabinet), what="the entries, applied though flagged")
            assert ("CAB-C", 1, "fleet.entry_from_future") in _alarms(central_db)
            with central_db.reader.connect() as connection:
                skew = connection.execute(select(t.cabinets.c.clock_skew_s)).scalar()
            assert skew is not None and 10_700 < skew < 10_900
            await cabinet.halt()

    _run(scenario)


def test_a_user_disabled_centrally_cannot_log_in_at_a_connected_cabinet_within_60_s(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    hasher = CredentialHasher(HashCost(time_cost=1, memory_kib=8, parallelism=1))

    async def scenario() -> None:
        stop = asyncio.Event()
        service = CentralService(
            central_db, nats.url, SystemClock(), config=CentralConfig(directory_interval_s=0.5, worker=FAST)
        )
        running = asyncio.create_task(service.run(stop))
        now = SystemClock().now()
        with central_db.write() as session:
            user = User("rn.kim", "Kim, RN", frozenset({Role.NURSE}), active=True)
            repo.save_user(session, user, pin_hash=hasher.hash_pin("4321"), created_at=now)
            directory.bump(session, "rn.kim", now)
        cabinets = [make_cabinet(tmp_path, central_db, f"CAB-U{i}", nats.url) for i in range(3)]
        for cabinet in cabinets:
            cabinet.start()

        def can_log_in(cabinet: Cabinet) -> bool:
            check = CredentialCheck(CabinetStore(cabinet.db, cabinet.ledger), hasher)
            credentials = asyncio.run(check.present("rn.kim", pin="4321", badge=None))
            return (
                credentials.user is not None
                and credentials.user.is_usable_at(SystemClock().now())
                and bool(credentials.verified)
            )

        await eventually(lambda: all(can_log_in(c) for c in cabinets), what="the user at every cabinet")
        with central_db.write() as session:
            directory.set_active(session, "rn.kim", False, SystemClock().now())
        await eventually(lambda: not any(can_log_in(c) for c in cabinets), timeout=60, what="the disable")
        # A record older than the one held (a restored central, a replayed message) is refused and recorded.
        client = await nats_connect(nats.url)
        users = await client.jetstream().key_value(p.USERS_BUCKET)
        stale = DirectoryUser("rn.kim", 1, "Kim, RN", hasher.hash_pin("4321"), None, ("nurse",), True, None)
        await users.put(p.user_key("rn.kim"), p.encode_directory_record(stale))
        await users.put(p.user_key("rn.kim"), b"{not a record")  # and one no cabinet can read

        def refused_everywhere(code: str) -> bool:
            return all(any(f'"reason_code":"{code}"' in b for _, _, b in local_chain(c)) for c in cabinets)

        await eventually(lambda: refused_everywhere("fleet.stale_downlink"), what="the stale record refused")
        await eventually(lambda: refused_everywhere("fleet.unreadable_message"), what="the unreadable one refused")

        async def bucket_version() -> int:
            held = await users.get(p.user_key("rn.kim"))
            try:
                return p.decode_directory_record(held.value or b"").version
            except ControllerError:  # the garbled one, not yet put right
                return 0

        for _ in range(100):  # the central puts its own version back over both
            if await bucket_version() == 2:
                break
            await asyncio.sleep(0.1)
        assert await bucket_version() == 2
        await client.close()
        assert not any([await asyncio.to_thread(can_log_in, c) for c in cabinets])
        for cabinet in cabinets:
            await cabinet.halt()
        stop.set()
        await running

    _run(scenario)
