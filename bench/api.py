"""API benchmark: the cabinet's HTTP API under bounded loopback load, against a bare FastAPI app doing the same
database work, and the time from a PIN submitted over HTTP to the drawer unlocking on the wire.

Both apps run under uvicorn in this process, each in a thread of its own on an ephemeral loopback port, on the same
SQLite store (the bench cabinet, PINs at the default argon2 cost); the I/O board simulator runs on Modbus TCP in a
third thread; the client is httpx. The bare app has no middleware, no authentication, no engine: one endpoint per
measure running the same store query, or appending the same ledger entries with the same stock change.

- read routes: ``CLIENTS`` concurrent clients, closed loop; requests/s and p99 of each route, each as a ratio to
  the bare endpoint (throughput ratio = ours / bare, p99 ratio = bare / ours: 1.00 = no overhead).
- complete pull flow: start, choose the order, blind count (the drawer unlocks over Modbus), take; the person's
  opening and closing of the drawer and lid are excluded (the sensor loop notices them at 10 Hz). Pulls/s and p99
  of the controller's time per pull, against the bare endpoints doing the same writes (the count entry, the
  removal entry with its stock change).
- PIN submitted -> unlock on the wire: from sending the login to the moment the simulated board acts on the unlock
  write, through login (argon2), start, item and count over HTTP; p50 and p99.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from statistics import quantiles
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table

from controller.api.app import create_app
from controller.api.routes_patients import area_patients, due_counts
from controller.api.settings import ApiSettings
from controller.domain.clock import SystemClock
from controller.domain.credentials import CredentialHasher
from controller.domain.policies import Policy, search_medications
from controller.domain.transactions import EventType, LedgerRecord
from controller.settings import Settings
from controller.store import repositories as repo
from controller.store import schema
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import InventoryStore, StockChange, list_pockets
from controller.store.ledger import Ledger
from controller.store.seed import seed_cabinet
from firmware_protocols.io_board.register_map import CabinetLayout
from simulators import io_board as io_board_sim
from simulators.common.control import ControlSurface

CABINET = "CAB-B"
MORPHINE = "MORPHINE-4MG-ML-CARP"
LAYOUT = CabinetLayout(drawer_count=4, pockets_per_drawer=4, lidded=frozenset({(2, 1), (2, 2)}))
CLIENTS = 4
UNITS = 10_000


def _layout(units: int) -> dict[str, Any]:
    patients = [
        {"mrn": f"MRN{i}", "encounter": f"ENC{i}", "family_name": f"Doe{i}", "given_name": "Jo"} for i in range(1, 21)
    ]
    return {
        "loaded_by": "PHARM1",
        "care_area": {"id": "ICU", "name": "ICU", "profiled": True},
        "cabinet": {"id": CABINET, "name": "Bench station"},
        "user": [
            {"id": "NURSE1", "name": "Nurse", "roles": ["nurse"], "pin": "1111"},
            {"id": "PHARM1", "name": "Pharmacist", "roles": ["pharmacist"], "pin": "3333"},
        ],
        "drawer": [
            {"id": "D1", "kind": "matrix", "label": "matrix", "pocket": [{"id": "D1-P01"}]},
            {"id": "D2", "kind": "lidded", "label": "lidded", "pocket": [
                {"id": "D2-P01", "item": MORPHINE, "par": 10, "min": 3, "max": units,
                 "lots": [{"lot": "A1", "expiry": "2099-01-31", "quantity": units}]},
            ]},
        ],
        "patient": patients,
        "order": [{"id": "ORD1", "mrn": "MRN1", "item": MORPHINE, "dose": "4", "dose_unit": "mg", "verified": True}],
    }  # fmt: skip


# --- the parts: simulator thread, servers ----------------------------------------------------------------------


class _Board:
    """The I/O board simulator on Modbus TCP in a thread of its own; records when the board acts on an unlock."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.released_at: list[float] = []
        self._stop = asyncio.Event()
        ready: Future[Any] = Future()

        async def main() -> None:
            sim = await io_board_sim.start(control=ControlSurface(), transport="tcp", layout=LAYOUT)
            model = sim.model
            original = model._command

            def watch(latch: Any, value: int) -> None:  # the moment the board model acts on the unlock write
                original(latch, value)
                if value and latch is model.drawers[2] and latch.released:
                    self.released_at.append(time.perf_counter())

            model._command = watch
            ready.set_result(sim)
            await self._stop.wait()
            await sim.close()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),), daemon=True)
        self.thread.start()
        self.sim = ready.result(timeout=20)

    def act(self, function: Callable[..., Any], *args: Any) -> None:
        async def call() -> None:
            function(*args)

        asyncio.run_coroutine_threadsafe(call(), self.loop).result(5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=10)


@contextmanager
def _served(app: Any) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _bare_app(db: Database) -> FastAPI:
    """The same store work with nothing around it: no middleware, no auth, no engine, no problem mapping."""
    app = FastAPI()
    clock = SystemClock()
    ledger = Ledger(CABINET, clock, is_simulator=True)
    inventory = InventoryStore(ledger)

    @app.get("/patients")
    def patients() -> dict[str, Any]:
        with db.read() as session:
            rows = area_patients(session, CABINET)
            due = due_counts(session, [p.id for p, _ in rows])
            return {"data": [{"patient_id": p.id, "room": e.room, "due": due.get(p.id, 0)} for p, e in rows]}

    @app.get("/search")
    def search(q: str) -> dict[str, Any]:
        with db.read() as session:
            found = search_medications(Policy(), q, repo.list_medications(session))
        return {"data": [m.id for m in found.matches]}

    @app.get("/pockets")
    def pockets() -> dict[str, Any]:
        with db.read() as session:
            return {
                "data": [{"pocket_id": p.pocket_id, "quantity": p.quantity} for p in list_pockets(session, CABINET)]
            }

    @app.post("/pull/start")
    def start() -> dict[str, Any]:
        return {"data": {"state": "patient_selected"}}

    @app.post("/pull/item")
    def item() -> dict[str, Any]:
        with db.read() as session:
            return {"data": {"pockets": len(list_pockets(session, CABINET))}}

    @app.post("/pull/count")
    def count() -> dict[str, Any]:
        with db.write() as session:
            seq = ledger.append(session, LedgerRecord(EventType.COUNT_ENTERED, actor_id="NURSE1", pocket_id="D2-P01",
                                                      item_id=MORPHINE, quantity_actual=1)).seq  # fmt: skip
        return {"data": {"ledger_seqs": [seq]}}

    @app.post("/pull/take")
    def take() -> dict[str, Any]:
        record = LedgerRecord(EventType.DOSE_REMOVED, actor_id="NURSE1", patient_id="MRN1", order_id="ORD1",
                              item_id=MORPHINE, pocket_id="D2-P01", lot_number="A1", quantity_change=-1)  # fmt: skip
        with db.write() as session:
            seq = inventory.apply(session, StockChange("D2-P01", "A1", -1), record).seq
        return {"data": {"ledger_seqs": [seq]}}

    return app


# --- measures --------------------------------------------------------------------------------------------------


async def _load(client: httpx.AsyncClient, url: str, headers: dict[str, str], requests: int) -> tuple[float, float]:
    """``requests`` GETs from CLIENTS concurrent clients: (requests/s, p99 seconds)."""
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            answer = await client.get(url, headers=headers)
            latencies.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:200]}")

    for _ in range(20):  # warm up
        await client.get(url, headers=headers)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    wall = time.perf_counter() - started
    return len(latencies) / wall, quantiles(latencies, n=100)[98]


async def _timed(call: Awaitable[httpx.Response]) -> float:
    started = time.perf_counter()
    answer = await call
    if answer.status_code != 200:
        raise RuntimeError(f"benchmark step refused: {answer.status_code} {answer.text[:300]}")
    return time.perf_counter() - started


async def _wait(client: httpx.AsyncClient, url: str, headers: dict[str, str], state: str) -> None:
    for _ in range(400):
        if (await client.get(url, headers=headers)).json()["data"]["state"] == state:
            return
        await asyncio.sleep(0.005)
    raise RuntimeError(f"the pull never reached {state}")


async def _pulls(client: httpx.AsyncClient, base: str, board: _Board, runs: int) -> dict[str, list[float]]:
    model = board.sim.model
    login_to_unlock: list[float] = []
    per_pull: list[float] = []
    for done in range(runs):
        board.released_at.clear()
        started = time.perf_counter()
        login = await client.post(f"{base}/api/v1/cabinet/session", json={"user_id": "NURSE1", "pin": "1111"})
        headers = {"Authorization": f"Bearer {login.json()['data']['token']}"}
        pull_started = time.perf_counter()
        answer = await client.post(f"{base}/api/v1/pulls", json={"patient_id": "MRN1"}, headers=headers)
        pull = f"{base}/api/v1/pulls/{answer.json()['data']['pull']['pull_id']}"
        spent = time.perf_counter() - pull_started
        spent += await _timed(client.post(f"{pull}/item", json={"order_id": "ORD1"}, headers=headers))
        on_hand = UNITS - done  # the person counts right: no discrepancy
        spent += await _timed(client.post(f"{pull}/count", json={"count": on_hand}, headers=headers))
        login_to_unlock.append(board.released_at[0] - started)
        board.act(model.open_drawer, 2)
        board.act(model.lift_lid, 2, 1)
        await _wait(client, pull, headers, "open")
        spent += await _timed(client.post(f"{pull}/take", json={"quantity": 1}, headers=headers))
        per_pull.append(spent)
        board.act(model.close_lid, 2, 1)
        board.act(model.close_drawer, 2)
        await _wait(client, pull, headers, "done")
        await client.delete(f"{base}/api/v1/cabinet/session", headers=headers)
    return {"login_to_unlock": login_to_unlock, "per_pull": per_pull}


async def _bare_pulls(client: httpx.AsyncClient, base: str, runs: int) -> list[float]:
    per_pull = []
    for _ in range(runs):
        spent = 0.0
        for step in ("start", "item", "count", "take"):
            spent += await _timed(client.post(f"{base}/pull/{step}"))
        per_pull.append(spent)
    return per_pull


async def _measure(folder: Path, requests: int, runs: int) -> dict[str, Any]:
    clock = SystemClock()
    database_url = f"sqlite:///{folder / 'bench.db'}"
    db = Database.open(database_url, create=True)
    schema.upgrade(db)
    with db.write() as session:  # PINs at the default argon2 cost, as a cabinet runs
        seed_cabinet(session, _layout(UNITS), load_formulary(), ledger=Ledger(CABINET, clock, is_simulator=True),
                     hasher=CredentialHasher(), clock=clock)  # fmt: skip
    board = _Board()
    settings = Settings(data_dir=folder, database_url=database_url, cabinet_id=CABINET, io_board=board.sim.url)
    results: dict[str, Any] = {"reads": {}}
    try:
        with _served(create_app(settings, ApiSettings())) as ours, _served(_bare_app(db)) as bare:
            async with httpx.AsyncClient(timeout=30) as client:
                for _ in range(300):
                    if (await client.get(f"{ours}/ready")).status_code == 200:
                        break
                    await asyncio.sleep(0.05)
                samples = await _pulls(client, ours, board, runs)
                results["login_to_unlock"] = samples["login_to_unlock"]
                results["pull"] = (samples["per_pull"], await _bare_pulls(client, bare, runs))
                login = await client.post(f"{ours}/api/v1/cabinet/session", json={"user_id": "PHARM1", "pin": "3333"})
                headers = {"Authorization": f"Bearer {login.json()['data']['token']}"}
                for name, our_path, bare_path in (
                    ("GET /api/v1/patients", "/api/v1/patients", "/patients"),
                    ("GET /api/v1/medications/search", "/api/v1/medications/search?q=morph", "/search?q=morph"),
                    ("GET /api/v1/inventory/pockets", "/api/v1/inventory/pockets", "/pockets"),
                ):
                    results["reads"][name] = (
                        await _load(client, ours + our_path, headers, requests),
                        await _load(client, bare + bare_path, {}, requests),
                    )
    finally:
        board.close()
        db.dispose()
    return results


def run(console: Console, requests: int = 400, runs: int = 30) -> Table:
    console.print(f"[dim]API benchmark: {requests} requests per read route ({CLIENTS} clients), {runs} pulls...[/dim]")
    with tempfile.TemporaryDirectory() as folder:
        results = asyncio.run(_measure(Path(folder), requests, runs))
    table = Table(title="REST API over loopback HTTP (uvicorn, httpx), against a bare FastAPI endpoint")
    for column in ("measure", "ours", "bare", "ratio", "ours p99 ms", "bare p99 ms", "p99 ratio"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for name, ((our_rate, our_p99), (bare_rate, bare_p99)) in results["reads"].items():
        table.add_row(f"{name} (req/s)", f"{our_rate:.0f}", f"{bare_rate:.0f}", f"{our_rate / bare_rate:.2f}",
                      f"{our_p99 * 1000:.1f}", f"{bare_p99 * 1000:.1f}", f"{bare_p99 / our_p99:.2f}")  # fmt: skip
    ours, bare = results["pull"]
    our_rate, bare_rate = len(ours) / sum(ours), len(bare) / sum(bare)
    our_p99, bare_p99 = quantiles(ours, n=100)[98], quantiles(bare, n=100)[98]
    table.add_row("complete pull flow (pulls/s)", f"{our_rate:.0f}", f"{bare_rate:.0f}", f"{our_rate / bare_rate:.2f}",
                  f"{our_p99 * 1000:.1f}", f"{bare_p99 * 1000:.1f}", f"{bare_p99 / our_p99:.2f}")  # fmt: skip
    cuts = quantiles(results["login_to_unlock"], n=100)
    table.add_row("PIN submitted -> unlock on the wire", "", "", "", f"{cuts[98] * 1000:.1f}", "", "")
    table.caption = (
        f"PIN -> unlock p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms (argon2 default cost, Modbus TCP); "
        f"ratio = ours / bare; measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    return table


if __name__ == "__main__":
    out = Console(width=120)
    out.print(run(out))
