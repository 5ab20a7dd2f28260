"""``adc fleet sim``: a simulated hospital of whole cabinets (``adc serve`` each, with its own simulators, store,
key and forwarder) and one central, as processes. A nurse's pull at one cabinet, driven over its REST API by a
scenario, reaches the central's ledger and stock view; the central sees both cabinets' heartbeats and its console
answers; a nurse disabled in the hospital directory while logged in at a cabinet is logged off there within the
fleet's limit; Ctrl-C stops the lot with exit status 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from controller.scenarios.model import Scenario
from controller.scenarios.runner import load_all, run_scenario
from controller.scenarios.targets import RemoteTarget
from controller.store.central import status as fleet_status
from controller.store.central import stock
from controller.store.database import Database
from controller.store.fleet_link import entries_after
from controller.store.models import FleetDownlinkVersionRow
from tests.cli.test_cli import FAST_ARGON, adc
from tests.fleet.harness import NatsServer, central_chain
from tests.fleet.test_central_process import free_port
from tests.scenarios.helpers import write

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

PULL = """
scenario: a pull at one cabinet of the fleet
steps:
  - login: NURSE1
  - pull: {patient: MRN100002, order: ORD9005}
  - open: D4
  - take: 1
  - close: D4
  - logout: true
"""


def free_block(size: int) -> int:
    """A port p with p+1 .. p+size free on the loopback (probed, then released)."""
    for _ in range(50):
        base = free_port()
        if base + size > 65000:
            continue
        probes = []
        try:
            for offset in range(1, size + 1):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise AssertionError("no free block of ports")


def wait_for_start(sim: subprocess.Popen[str]) -> None:
    assert sim.stdout is not None
    started = time.monotonic()
    seen = []
    for line in sim.stdout:
        seen.append(line)
        if "Ctrl-C stops every cabinet" in line:
            return
        assert time.monotonic() - started < 150, "".join(seen)
    raise AssertionError("".join(seen))


def disable_a_logged_in_nurse(central_url: str, cabinet_url: str, cabinet_dir: Path) -> float:
    """NURSE1 joins the hospital directory, logs in at the cabinet, and is disabled centrally: seconds until the
    cabinet ended the session (the next call with the session's token is refused)."""
    env = {"ADC_CENTRAL_DATABASE_URL": central_url}
    added = adc("central", "user", "add", "NURSE1", "--name", "Ann Cho, RN", "--role", "nurse", "--pin", "1111",
                env=env)  # fmt: skip
    assert added.returncode == 0, added.stderr
    cabinet_db = Database.open(f"sqlite:///{cabinet_dir / 'adc.db'}")
    try:
        deadline = time.monotonic() + 30
        while True:
            with cabinet_db.read() as session:
                if session.get(FleetDownlinkVersionRow, ("user", "NURSE1")) is not None:
                    break
            assert time.monotonic() < deadline, "the directory record never reached the cabinet"
            time.sleep(0.2)
    finally:
        cabinet_db.dispose()
    login = httpx.post(f"{cabinet_url}/api/v1/cabinet/session", json={"user_id": "NURSE1", "pin": "1111"}, timeout=10)
    assert login.status_code == 200, login.text
    token = {"Authorization": f"Bearer {login.json()['data']['token']}"}
    assert adc("central", "user", "disable", "NURSE1", env=env).returncode == 0
    disabled_at = time.monotonic()
    while True:
        answer = httpx.get(f"{cabinet_url}/api/v1/cabinet/session", headers=token, timeout=10)
        if answer.status_code == 401:
            assert answer.json()["code"] == "auth.session_ended", answer.text
            return time.monotonic() - disabled_at
        assert time.monotonic() - disabled_at < 90, "the session outlived the disable"
        time.sleep(0.2)


POLICY = """
[witness]
actions = ["controlled_waste", "discrepancy_resolution", "controlled_return"]
"""
LAYOUT = """
[[pockets]]
pocket = "D1-P01"
item = "ACETAMINOPHEN-325MG-TAB"
par = 40
min = 12
max = 60
"""
MOVED_STOCK = """
[[pockets]]
pocket = "D1-P02"
item = "ACETAMINOPHEN-325MG-TAB"
par = 10
min = 3
max = 20
"""


def configure_a_cabinet_from_the_central(central_url: str, cabinet_url: str, tmp_path: Path) -> None:
    """The pharmacy sets SIM-02's policy and layout at the central: the running cabinet puts them in force (its
    API shows the central's rules, its pocket the new levels); a layout that would give a stocked pocket another
    item is refused at the cabinet, and the refusal reaches the central's ledger."""
    env = {"ADC_CENTRAL_DATABASE_URL": central_url}
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "layout.toml").write_text(LAYOUT)
    (tmp_path / "moved.toml").write_text(MOVED_STOCK)
    typo = adc("central", "policy", "SIM-02", str(tmp_path / "layout.toml"), "--reason", "P&T", env=env)
    assert typo.returncode != 0 and "fleet.policy_refused" in typo.stderr, typo.stderr  # refused at the central
    put = adc("central", "policy", "SIM-02", str(tmp_path / "policy.toml"), "--reason", "P&T 2026-12", env=env)
    assert put.returncode == 0 and "version 1" in put.stdout, put.stderr
    assert adc("central", "layout", "SIM-02", str(tmp_path / "layout.toml"), env=env).returncode == 0
    login = httpx.post(f"{cabinet_url}/api/v1/cabinet/session", json={"user_id": "ADMIN1", "pin": "6666"}, timeout=10)
    assert login.status_code == 200, login.text
    admin = {"Authorization": f"Bearer {login.json()['data']['token']}"}
    deadline = time.monotonic() + 30
    while True:
        rules = httpx.get(f"{cabinet_url}/api/v1/admin/policies", headers=admin, timeout=10).json()["data"]
        pockets = httpx.get(f"{cabinet_url}/api/v1/inventory/pockets", headers=admin, timeout=10).json()["data"]
        d1 = next(p for p in pockets if p["pocket_id"] == "D1-P01")
        if rules["source"] == "central v1" and (d1["par"], d1["min"]) == (40, 12):
            break
        assert time.monotonic() < deadline, f"SIM-02 did not take its configuration: {rules['source']}, {d1}"
        time.sleep(0.2)
    assert "controlled_return" in rules["document"]["witness"]["actions"]
    assert adc("central", "layout", "SIM-02", str(tmp_path / "moved.toml"), env=env).returncode == 0
    central_db = Database.open(central_url)
    try:
        deadline = time.monotonic() + 30
        while not any('"fleet.layout_pocket_busy"' in body for *_, body in central_chain(central_db, "SIM-02")):
            assert time.monotonic() < deadline, "the cabinet's refusal of the layout never reached the central"
            time.sleep(0.2)
    finally:
        central_db.dispose()
    pockets = httpx.get(f"{cabinet_url}/api/v1/inventory/pockets", headers=admin, timeout=10).json()["data"]
    assert next(p for p in pockets if p["pocket_id"] == "D1-P02")["item_id"] == "ONDANSETRON-2MG-ML-INJ"


def test_a_simulated_hospital_runs_whole_cabinets_against_one_central(
    central_db: Database, postgres_schema_url: str, nats: NatsServer, tmp_path: Path
) -> None:
    base, console_port = free_block(2), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")} | FAST_ARGON
    command = [sys.executable, "-m", "controller.cli.app", "fleet", "sim", "--cabinets", "2", "--nats", nats.url,
               "--database-url", postgres_schema_url, "--data-dir", str(tmp_path / "fleet"), "--base-port", str(base),
               "--central-port", str(console_port)]  # fmt: skip
    sim = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_start(sim)
        cabinet_url = f"http://127.0.0.1:{base + 1}"
        [scenario] = load_all([write(tmp_path, PULL, "pull.yaml")], RemoteTarget(cabinet_url))
        assert isinstance(scenario, Scenario), scenario
        result = asyncio.run(asyncio.wait_for(run_scenario(scenario, RemoteTarget(cabinet_url)), timeout=120))
        assert result.passed, result.summary()

        cabinet_db = Database.open(f"sqlite:///{tmp_path / 'fleet' / 'SIM-01' / 'adc.db'}")
        try:
            deadline = time.monotonic() + 30
            while True:
                local = [(e.seq, e.hash, e.body) for e in entries_after(cabinet_db, "SIM-01", 0, limit=10**6)]
                if local == central_chain(central_db, "SIM-01") and any('"dose.removed"' in b for *_, b in local):
                    break
                assert time.monotonic() < deadline, "SIM-01's chain did not reach the central"
                time.sleep(0.2)
        finally:
            cabinet_db.dispose()
        with central_db.reader.connect() as connection:
            d4 = [lot for lot in stock.lots_of(connection, "SIM-01") if lot.pocket_id == "D4-P01"]
            other = [lot for lot in stock.lots_of(connection, "SIM-02") if lot.pocket_id == "D4-P01"]
            links = {c.cabinet_id: c.link(datetime.now(UTC)) for c in fleet_status.fleet_status(connection)}
        assert sum(lot.quantity for lot in d4) == sum(lot.quantity for lot in other) - 1
        assert links == {"SIM-01": "up", "SIM-02": "up"}  # heartbeats from both

        configure_a_cabinet_from_the_central(postgres_schema_url, f"http://127.0.0.1:{base + 2}", tmp_path)
        health = httpx.get(f"http://127.0.0.1:{console_port}/health", timeout=5)
        assert health.status_code == 200
        elapsed = disable_a_logged_in_nurse(postgres_schema_url, cabinet_url, tmp_path / "fleet" / "SIM-01")
        print(f"a disabled nurse's cabinet session ended {elapsed:.1f} s after the disable")
        assert elapsed < 60, f"the disabled nurse's session lasted {elapsed:.1f} s"  # the fleet's limit
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            code = sim.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sim.kill()
            raise
    rest = sim.stdout.read() if sim.stdout else ""
    assert code == 0, rest
    assert "fleet stopped: 2 cabinets" in rest
