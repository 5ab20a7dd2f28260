"""Two writers appending at once — two processes on SQLite, two connections (in two processes) on PostgreSQL:
every entry lands, the sequence has no gap and the chain no fork."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from itertools import pairwise

import sqlalchemy as sa

from controller.domain.clock import SystemClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.store.database import Database
from controller.store.ledger import Ledger, verify_chain

ENTRIES_PER_WRITER = 150


def _writer(url: str, writer: str, start: mp.synchronize.Event, errors: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        db = Database.open(url)
        ledger = Ledger("CAB-C", SystemClock(), is_simulator=True)
        start.wait(timeout=30)
        for index in range(ENTRIES_PER_WRITER):
            with db.write() as session:
                ledger.append(session, LedgerRecord(EventType.LOGIN, actor_id=writer, details={"i": index}))
        db.dispose()
    except BaseException as exc:
        errors.put(f"{writer}: {type(exc).__name__}: {exc}")


def test_two_writers_interleave_without_gaps_or_forks(db: Database) -> None:
    context = mp.get_context("spawn")
    start, errors = context.Event(), context.Queue()
    url = db.url.render_as_string(hide_password=False)
    workers = [context.Process(target=_writer, args=(url, name, start, errors)) for name in ("W1", "W2")]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=180)
        assert worker.exitcode == 0
    assert errors.empty(), errors.get()

    with db.reader.connect() as connection:
        rows = connection.execute(sa.text("SELECT seq, actor_id FROM ledger_entries ORDER BY seq")).all()
        report = verify_chain(connection)
    assert [r.seq for r in rows] == list(range(1, 2 * ENTRIES_PER_WRITER + 1))
    assert Counter(r.actor_id for r in rows) == {"W1": ENTRIES_PER_WRITER, "W2": ENTRIES_PER_WRITER}
    # The writers really ran at the same time: their entries interleave.
    switches = sum(1 for a, b in pairwise(rows) if a.actor_id != b.actor_id)
    assert switches > 1
    assert report.ok, report.problems
