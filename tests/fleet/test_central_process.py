"""``adc central serve`` as the process a hospital runs: the fleet console answers on its port and the HL7
listener takes an admission while the ingest runs; SIGKILL in the middle of a cabinet's drain loses nothing and
applies nothing twice once a new process takes over; SIGTERM stops console and ingest together with exit 0."""

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

from controller.domain.users import Role, User
from controller.store import repositories as repo
from controller.store.database import Database
from controller.store.models import PatientRow
from tests.cli.test_cli import FAST_ARGON, adc
from tests.fleet.harness import NatsServer, central_chain, eventually, local_chain, make_cabinet
from tests.fleet.test_fleet_downlink import ADMIT_4W
from tests.integration.hl7_rig import MllpClient
from tests.store.test_inventory import FAST_HASHER

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_central(database_url: str, nats_url: str, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    env.update(FAST_ARGON)
    env["ADC_CENTRAL_DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "controller.cli.app", "central", "serve", "--nats", nats_url, "--port", str(port),
               "--key-dir", str(log.parent / "keys"), *extra]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_for_console(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "adc central serve exited"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the fleet console never answered"
        time.sleep(0.1)


def integrator(url: str, database_url: str) -> dict[str, str]:
    """An integrator added with ``adc central client add``, with a token from the central's /oauth/token."""
    added = adc(
        "central", "client", "add", "his", "--scope", "fhir:read", env={"ADC_CENTRAL_DATABASE_URL": database_url}
    )
    assert added.returncode == 0, added.stderr
    secret = added.stdout.rsplit("secret (shown once): ", 1)[1].split()[0]
    form = {"grant_type": "client_credentials", "client_id": "his", "client_secret": secret}
    issued = httpx.post(f"{url}/oauth/token", data=form, timeout=10)
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


def patients(url: str, headers: dict[str, str]) -> list[str]:
    found = httpx.get(f"{url}/fhir/Patient", params={"identifier": "MRN300001"}, headers=headers, timeout=10)
    assert found.status_code == 200, found.text
    return [entry["resource"]["id"] for entry in found.json().get("entry", [])]


def test_a_killed_central_process_loses_nothing_and_a_stopped_one_exits_cleanly(
    central_db: Database, postgres_schema_url: str, nats: NatsServer, tmp_path: Path
) -> None:
    with central_db.write() as session:
        repo.save_user(session, User("PHARM1", "Pat Lee", frozenset({Role.PHARMACIST})),
                       pin_hash=FAST_HASHER.hash_pin("1357"), created_at=datetime.now(UTC))  # fmt: skip
    log = tmp_path / "central.log"
    port, hl7_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"

    async def scenario() -> None:
        first = start_central(postgres_schema_url, nats.url, port, log, "--hl7-listen", f"127.0.0.1:{hl7_port}")
        try:
            await asyncio.to_thread(wait_for_console, url, first)
            page = httpx.get(f"{url}/fleet/", timeout=5)
            assert page.status_code == 200 and "fleet console" in page.text
            signed = httpx.post(f"{url}/api/v1/central/session", json={"user_id": "PHARM1", "pin": "1357"}, timeout=5)
            assert signed.status_code == 200, signed.text
            feed = await MllpClient.connect(("127.0.0.1", hl7_port))  # the hospital's one ADT/order feed
            assert (await feed.send(ADMIT_4W.encode())).code == "AA"
            await feed.close()
            with central_db.read() as session:
                assert session.get(PatientRow, "MRN300001") is not None
            his = integrator(url, postgres_schema_url)
            assert patients(url, his) == ["MRN300001"]  # the central's FHIR API, over what its feed wrote

            cabinet = make_cabinet(tmp_path, central_db, "CAB-K", nats.url, seeded=True)
            cabinet.start()
            await asyncio.to_thread(cabinet.dispense, 200)
            await eventually(lambda: len(central_chain(central_db, "CAB-K")) > 20, what="the drain under way")
            first.send_signal(signal.SIGKILL)  # mid-drain: no clean-up of any kind
            await asyncio.to_thread(first.wait, 10)
            await asyncio.to_thread(cabinet.dispense, 50)
        finally:
            if first.poll() is None:
                first.kill()
        second = start_central(postgres_schema_url, nats.url, port, log)
        try:
            await asyncio.to_thread(wait_for_console, url, second)
            await eventually(
                lambda: local_chain(cabinet) == central_chain(central_db, "CAB-K"),
                timeout=60,
                what="the cabinet's whole chain at the central after the kill",
            )
            assert patients(url, his) == ["MRN300001"]  # a token of the killed process: the key is shared
            await cabinet.halt()
            cabinet.db.dispose()
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, 15) == 0
        finally:
            if second.poll() is None:
                second.kill()
        assert "central stopped" in log.read_text()

    asyncio.run(scenario())
