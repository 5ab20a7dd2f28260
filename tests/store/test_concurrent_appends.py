"""Two writers appending at once — two processes on SQLite, two connections (in two processes) on PostgreSQL:
every entry lands, the sequence has no gap and the chain no fork."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter

import sqlalchemy as sa

from controller.domain.clock import SystemClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.store.database import Database
from controller.store.ledger import Ledger, verify_chain

ENTRIES_PER_WRITER = 150


def _writer(
    url: str,
    writer: str,
    ready: mp.Queue,  # type: ignore[type-arg]
    start: mp.synchronize.Event,
    results: mp.Queue,  # type: ignore[type-arg]
) -> None:
    try:
        db = Database.open(url)
        ledger = Ledger("CAB-C", SystemClock(), is_simulator=True)
        ready.put(writer)
        start.wait(timeout=60)
        began = time.monotonic()
        for index in range(ENTRIES_PER_WRITER):
            with db.write() as session:
                ledger.append(session, LedgerRecord(EventType.LOGIN, actor_id=writer, details={"i": index}))
        results.put((writer, began, time.monotonic(), None))
        db.dispose()
    except BaseException as exc:
        results.put((writer, 0.0, 0.0, f"{type(exc).__name__}: {exc}"))


def test_two_writers_interleave_without_gaps_or_forks(db: Database) -> None:
    context = mp.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    url = db.url.render_as_string(hide_password=False)
    workers = [context.Process(target=_writer, args=(url, name, ready, start, results)) for name in ("W1", "W2")]
    for worker in workers:
        worker.start()
    assert {ready.get(timeout=60), ready.get(timeout=60)} == {"W1", "W2"}  # both connected and waiting
    start.set()
    outcomes = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert [error for *_, error in outcomes if error] == []
    # The writers really ran at the same time: each started before the other finished.
    assert max(began for _, began, _, _ in outcomes) < min(ended for _, _, ended, _ in outcomes)

    with db.reader.connect() as connection:
        rows = connection.execute(sa.text("SELECT seq, actor_id FROM ledger_entries ORDER BY seq")).all()
        report = verify_chain(connection)
    assert [r.seq for r in rows] == list(range(1, 2 * ENTRIES_PER_WRITER + 1))
    assert Counter(r.actor_id for r in rows) == {"W1": ENTRIES_PER_WRITER, "W2": ENTRIES_PER_WRITER}
    assert report.ok, report.problems
