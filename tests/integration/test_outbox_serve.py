"""``adc serve`` with ``ADC_HL7_LISTEN`` and ``ADC_HL7_OUTBOUND``, as a hospital would run it: a real process on the
demo cabinet and its simulators. The listener takes an ADT and acknowledges it; a nurse's pull over HTTP reaches a
receiver (a plain socket server here) as an RDS^O13 and a DFT^P03; ``adc hl7 outbox`` lists both as delivered,
and ``--requeue`` of a message that is not parked is refused on one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.hl7_rig import CR, FS, VT, adt, parse_ack
from tests.integration.outbox_rig import ack, field_of, parse

PATIENT, ORDER = "MRN100001", "ORD9001"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    """Accepts one connection at a time and answers AA to every frame; keeps what it got."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = int(self.server.getsockname()[1])
        self.messages: list[str] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping:
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with connection:
                data = b""
                while chunk := connection.recv(65536):
                    data += chunk
                    while FS + CR in data:
                        block, data = data.split(FS + CR, 1)
                        text = block[block.index(VT) + 1 :].decode("utf-8")
                        self.messages.append(text)
                        connection.sendall(ack(field_of(parse(text), "MSH", 10)))

    def close(self) -> None:
        self.stopping = True
        self.thread.join(timeout=5)
        self.server.close()


def environment(data_dir: Path, listen: int, outbound: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    return env | {
        "ADC_DATA_DIR": str(data_dir),
        "ADC_ARGON2_TIME_COST": "1",
        "ADC_ARGON2_MEMORY_KIB": "8",
        "ADC_HL7_LISTEN": f"127.0.0.1:{listen}",
        "ADC_HL7_OUTBOUND": f"127.0.0.1:{outbound}",
    }


def adc(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "controller.cli.app", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def send_to_listener(port: int, payload: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(VT + payload + FS + CR)
        data = b""
        while not data.endswith(FS + CR):
            chunk = connection.recv(4096)
            assert chunk, data
            data += chunk
    return data[1:-2].decode("utf-8")


def pull_one(base: str, token: str) -> None:
    h = {"Authorization": f"Bearer {token}"}

    def ok(answer: httpx.Response) -> dict[str, Any]:
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    def act(action: str, **args: int) -> None:
        ok(httpx.post(f"{base}/api/v1/devices/simulator/actions", json={"device": "io_board", "action": action,
                                                                         "args": args}, headers=h))  # fmt: skip

    def state(pull_id: str) -> str:
        return str(ok(httpx.get(f"{base}/api/v1/pulls/{pull_id}", headers=h))["state"])

    def wait_for(pull_id: str, wanted: str) -> None:
        deadline = time.monotonic() + 15
        while state(pull_id) != wanted:
            assert time.monotonic() < deadline, wanted
            time.sleep(0.1)

    pull_id = ok(httpx.post(f"{base}/api/v1/pulls", json={"patient_id": PATIENT}, headers=h))["pull"]["pull_id"]
    ok(httpx.post(f"{base}/api/v1/pulls/{pull_id}/item", json={"order_id": ORDER}, headers=h))
    ok(httpx.post(f"{base}/api/v1/pulls/{pull_id}/count", json={"count": 10}, headers=h))
    act("open_drawer", drawer=2)
    act("lift_lid", drawer=2, pocket=2)
    wait_for(pull_id, "open")
    ok(httpx.post(f"{base}/api/v1/pulls/{pull_id}/take", json={"quantity": 1}, headers=h))
    act("close_lid", drawer=2, pocket=2)
    act("close_drawer", drawer=2)
    wait_for(pull_id, "done")


@pytest.mark.timeout(180)
def test_serve_runs_the_listener_and_delivers_a_pull_to_the_receiver(tmp_path: Path) -> None:
    receiver = Receiver()
    port, listen = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = environment(tmp_path, listen, receiver.port)
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli.app", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "adc serve did not become ready"
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        answer = parse_ack(send_to_listener(listen, adt("A01", "SERVE-1", "MRN777", location="4W^410^A")))
        assert (answer.code, answer.control_id) == ("AA", "SERVE-1")
        token = httpx.post(f"{base}/api/v1/cabinet/session", json={"user_id": "NURSE1", "pin": "1111"}).json()
        pull_one(base, token["data"]["token"])
        deadline = time.monotonic() + 20
        while len(receiver.messages) < 2:
            assert time.monotonic() < deadline, receiver.messages
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        receiver.close()
    assert process.returncode == 0, output
    sent = [parse(text) for text in receiver.messages]
    assert [str(m.segment("MSH")[9]) for m in sent] == ["RDS^O13^RDS_O13", "DFT^P03^DFT_P03"]
    assert {field_of(m, "PID", 3) for m in sent} == {PATIENT}
    assert field_of(sent[0], "RXD", 7) == ORDER

    shown = adc(env, tmp_path, "hl7", "outbox", "--json", "--all")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["counts"] == {"pending": 0, "parked": 0, "delivered": 2}
    assert [(m["message_type"], m["status"], m["attempts"]) for m in document["messages"]] == [
        ("RDS^O13", "delivered", 1),
        ("DFT^P03", "delivered", 1),
    ]
    table = adc(env, tmp_path, "hl7", "outbox")
    assert table.returncode == 0 and "0 pending, 0 parked, 2 delivered" in table.stdout, table.stdout
    refused = adc(env, tmp_path, "hl7", "outbox", "--requeue", str(document["messages"][0]["id"]))
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("adc: error: [hl7.outbox_not_parked]"), refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
