"""``adc hl7 listen`` as an operator runs it: a real process on an ephemeral port, a message in, its ACK out,
Ctrl-C to stop; and a one-line refusal when the store is not initialised."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from controller.store import schema
from controller.store.database import Database
from tests.integration.hl7_rig import CR, FS, VT, adt, one, parse_ack


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    env.update({"ADC_DATABASE_URL": url, "ADC_CABINET_ID": "CAB-CLI"})
    return env


def _exchange(port: int, payload: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"\r\n" + VT + payload + FS + CR)  # a stray line before the frame, as some engines send
        data = b""
        while not data.endswith(FS + CR):
            chunk = connection.recv(4096)
            assert chunk, data
            data += chunk
    return data[1:-2].decode("utf-8")


def test_listen_acknowledges_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adc.db'}"
    db = Database.open(url, create=True)
    schema.upgrade(db)
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli.app", "hl7", "listen", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(url),
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.search(r"listening on 127\.0\.0\.1:(\d+) \(cabinet CAB-CLI\)", banner)
        assert found, banner
        ack = parse_ack(_exchange(int(found.group(1)), adt("A01", "CLI-1", "MRN9")))
        assert (ack.code, ack.control_id, ack.msh[3]) == ("AA", "CLI-1", "CAB-CLI")
        assert one(db, "patients", id="MRN9")["family_name"] == "Doe"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        db.dispose()
    assert process.returncode == 0, err
    assert "stopped after 1 message(s)" in out


def test_listen_on_a_store_without_schema_says_so_on_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli.app", "hl7", "listen", "--port", "0"],
        capture_output=True,
        text=True,
        env=_env(f"sqlite:///{tmp_path / 'missing.db'}"),
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().startswith("adc: error: [store.not_initialised]"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
