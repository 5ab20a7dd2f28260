"""The API under test: the demo cabinet on a fresh SQLite store, every device simulator on its real transport (TCP)
in a thread of its own (as ``adc sim`` would run them beside the controller), and the app built by ``create_app``
with its lifespan running in Starlette's TestClient. The person at the cabinet acts through the simulators'
control socket over TCP, like the touchscreen's simulator panel does."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.testclient import TestClient

from controller.api.app import create_app
from controller.api.settings import ApiSettings
from controller.domain.clock import FixedClock
from controller.settings import Settings
from controller.store import schema
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.seed import demo_layout, seed_cabinet
from simulators import io_board, label_printer, pill_counter, scanner
from simulators.common.control import ControlSurface
from simulators.common.running import RunningSimulator
from tests.store.test_inventory import FAST_HASHER

CABINET = "CAB-4W"
START = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
PINS = {"NURSE1": "1111", "NURSE2": "2222", "PHARM1": "3333", "TECH1": "4444", "ANES1": "5555", "ADMIN1": "6666"}


@dataclass
class Simulators:
    urls: dict[str, str]
    control_url: str
    models: dict[str, Any]
    loop: asyncio.AbstractEventLoop

    def act(self, device: str, action: str, **args: Any) -> Any:
        """The physical world, over the simulators' control socket (one JSON line each way)."""
        host, port = self.control_url.removeprefix("tcp://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(json.dumps({"device": device, "action": action, "args": args}).encode() + b"\n")
            answer = json.loads(connection.makefile().readline())
        assert answer["ok"], answer
        return answer["result"]

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function(*args)`` on the simulators' own loop (their models are not thread-safe)."""

        async def call() -> Any:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(5)


@contextmanager
def running_simulators() -> Iterator[Simulators]:
    loop = asyncio.new_event_loop()
    ready: Future[tuple[list[RunningSimulator], ControlSurface, int]] = Future()
    stop = asyncio.Event()

    async def main() -> None:
        control = ControlSurface()
        running = [
            await io_board.start(control=control, transport="tcp"),
            await scanner.start(control=control, transport="tcp"),
            await pill_counter.start(control=control, transport="tcp"),
            await label_printer.start(control=control),
        ]
        port = await control.serve("127.0.0.1", 0)
        ready.set_result((running, control, port))
        await stop.wait()
        await control.close()
        for simulator in reversed(running):
            await simulator.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="simulators", daemon=True)
    thread.start()
    running, _control, port = ready.result(timeout=20)
    try:
        yield Simulators(
            urls={s.env_var: s.url for s in running},
            control_url=f"tcp://127.0.0.1:{port}",
            models={s.name: s.model for s in running},
            loop=loop,
        )
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)


def seed_demo(database_url: str, clock: FixedClock) -> None:
    db = Database.open(database_url, create=True)
    try:
        schema.upgrade(db)
        with db.write() as session:
            seed_cabinet(
                session,
                demo_layout(),
                load_formulary(),
                ledger=Ledger(CABINET, clock, is_simulator=True),
                hasher=FAST_HASHER,
                clock=clock,
            )
    finally:
        db.dispose()


@dataclass
class Cabinet:
    client: TestClient
    sims: Simulators
    clock: FixedClock
    settings: Settings
    database_url: str

    def login(self, user_id: str, pin: str | None = None) -> str:
        answer = self.client.post("/api/v1/cabinet/session", json={"user_id": user_id, "pin": pin or PINS[user_id]})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["data"]["token"]
        return token

    def login_after_logout(self, token: str, user_id: str) -> str:
        self.logout(token)
        return self.login(user_id)

    def logout(self, token: str) -> None:
        answer = self.client.delete("/api/v1/cabinet/session", headers=bearer(token))
        assert answer.status_code in (200, 401), answer.text

    def entries(self, after: int = 0) -> list[dict[str, Any]]:
        db = Database.open(self.database_url)
        try:
            with db.reader.connect() as connection:
                rows = connection.exec_driver_sql(
                    "SELECT body FROM ledger_entries WHERE seq > ? ORDER BY seq", (after,)
                ).all()
        finally:
            db.dispose()
        return [json.loads(row[0]) for row in rows]

    def wait_until(self, predicate: Any, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.05)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cabinet_settings(tmp_path: Path, sims: Simulators) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'adc.db'}",
        cabinet_id=CABINET,
        io_board=sims.urls["ADC_IO_BOARD"],
        scanner=sims.urls["ADC_SCANNER"],
        pill_counter=sims.urls["ADC_PILL_COUNTER"],
        label_printer=sims.urls["ADC_LABEL_PRINTER"],
        argon2_time_cost=1,
        argon2_memory_kib=8,
    )


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """The app under uvicorn on an ephemeral loopback port, in a thread: real HTTP. Yields the base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def open_cabinet(tmp_path: Path, **api_options: Any) -> Iterator[Cabinet]:
    clock = FixedClock(START)
    database_url = f"sqlite:///{tmp_path / 'adc.db'}"
    seed_demo(database_url, clock)
    with running_simulators() as sims:
        settings = cabinet_settings(tmp_path, sims)
        api = ApiSettings(sim_control=sims.control_url, **api_options)
        app = create_app(settings, api, clock=clock)
        with TestClient(app, raise_server_exceptions=False) as client:
            cabinet = Cabinet(client, sims, clock, settings, database_url)
            cabinet.wait_until(lambda: client.get("/ready").status_code == 200, timeout=15)
            yield cabinet
