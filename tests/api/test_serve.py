"""``adc serve`` as a new user runs it: on an empty data directory it creates the demo cabinet, starts the
simulators, serves the API and pages, prints the URL and the demo credentials; a nurse can log in; Ctrl-C stops
the server and the simulators. A second run reuses the store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    env |= {"ADC_DATA_DIR": str(data_dir), "ADC_ARGON2_TIME_COST": "1", "ADC_ARGON2_MEMORY_KIB": "8"}
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli.app", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=data_dir,
    )


def wait_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("adc serve did not become ready")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


@pytest.mark.timeout(180)
def test_adc_serve_runs_the_simulated_cabinet(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(tmp_path, port)
    try:
        wait_ready(base, process)
        assert "/cabinet/" in httpx.get(f"{base}/").text and "/pharmacy/" in httpx.get(f"{base}/").text
        login = httpx.post(f"{base}/api/v1/cabinet/session", json={"user_id": "NURSE1", "pin": "1111"})
        assert login.status_code == 200, login.text
        token = login.json()["data"]["token"]
        devices = httpx.get(f"{base}/api/v1/devices", headers={"Authorization": f"Bearer {token}"}).json()["data"]
        assert devices["is_simulator"] is True and devices["simulator_control"] is True
        board_url = next(d["url"] for d in devices["devices"] if d["device"] == "io_board")
        patient = httpx.get(f"{base}/api/v1/patients/MRN100001", headers={"Authorization": f"Bearer {token}"})
        assert patient.status_code == 200, patient.text
        # The event stream as the pages open it: the token offered as a subprotocol, never in the URL.
        with connect(
            f"ws://127.0.0.1:{port}/api/v1/events", subprotocols=[Subprotocol("adc.bearer"), Subprotocol(token)]
        ) as stream:
            assert '"hello"' in str(stream.recv(timeout=10)) and stream.subprotocol == "adc.bearer"
    finally:
        output = stop(process)
    served = output.split("stops the cabinet and the simulators.", 1)[-1]  # after the banner (it shows demo PINs)
    for secret in (token, "MRN100001", '"pin"'):
        assert secret not in served, f"the server's log shows {secret[:12]}…"
    assert "created the demo cabinet CAB-4W" in output
    assert f"http://127.0.0.1:{port}/" in output and "NURSE1" in output and "1111" in output
    host, board_port = board_url.removeprefix("tcp://").split("?")[0].rsplit(":", 1)
    with pytest.raises(OSError), socket.create_connection((host, int(board_port)), timeout=2):
        pass  # the simulators stopped with it

    process = start(tmp_path, port)  # the second run keeps the store
    try:
        wait_ready(base, process)
    finally:
        output = stop(process)
    assert "created the demo cabinet" not in output
