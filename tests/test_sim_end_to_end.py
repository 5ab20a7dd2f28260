"""``adc sim`` and ``adc devices`` as a user runs them: every simulator starts, prints its URL, and the controller
connects to each through the composition root by that URL alone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

DEVICES = {"ADC_IO_BOARD", "ADC_PILL_COUNTER", "ADC_SCANNER", "ADC_LABEL_PRINTER", "ADC_CAMERA"}
START_S = 90.0  # a busy machine, a fresh clone compiling every module: far slower than the 2 s it usually takes
# adc sim ends within 5 s of Ctrl-C (killing the simulators if it must; tests/cli/test_stop_signals.py holds it to
# that); the margin is for a busy machine. A stop that needed a kill fails the test by its exit status.
STOP_S = 10.0


def start_simulators(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli.app", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    endpoints: dict[str, str] = {}
    timer = threading.Timer(START_S, kill_all, (process,))  # readline waits for a line that may never come
    timer.start()
    try:
        assert process.stdout is not None
        while "ADC_SIM_CONTROL" not in endpoints:
            line = process.stdout.readline()
            if not line:
                break
            name, _, url = line.strip().partition("=")
            endpoints[name] = url
    finally:
        timer.cancel()
    if "ADC_SIM_CONTROL" not in endpoints:
        kill_all(process)
        pytest.fail(f"simulators did not start: {process.stderr.read() if process.stderr else ''}")
    return process, endpoints


def stop(process: subprocess.Popen[str]) -> int:
    """Ctrl-C: adc sim must exit, and the simulators it started with it."""
    children = child_pids(process.pid)
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        kill_all(process, children)
        raise
    left = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    kill_all(process, left)
    assert not left, "adc sim left its simulators running"
    return code


def child_pids(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def kill_all(process: subprocess.Popen[str], children: list[int] | None = None) -> None:
    """``adc sim`` and the simulators it started (killing ``adc sim`` alone would leave them running)."""
    for pid in child_pids(process.pid) if children is None else children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def adc_devices(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.app", "devices", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def control(endpoint: str, request: dict[str, object]) -> dict[str, object]:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(json.dumps(request).encode() + b"\n")
        answer: dict[str, object] = json.loads(connection.makefile().readline())
        return answer


@pytest.mark.timeout(240)
@pytest.mark.parametrize("serial_over", ["pty", "tcp"])
def test_adc_sim_then_adc_devices(serial_over: str) -> None:
    process, endpoints = start_simulators("--serial", serial_over)
    try:
        assert set(endpoints) >= DEVICES
        assert all(url.startswith("tcp://127.0.0.1:") for name, url in endpoints.items() if "BOARD" in name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
        env.update({name: url for name, url in endpoints.items() if name in DEVICES})
        result = adc_devices(env)
        assert result.returncode == 0, result.stderr
        reports = {r["device"]: r for r in json.loads(result.stdout)}
        assert set(reports) == {"io_board", "pill_counter", "scanner", "label_printer", "camera"}
        assert reports["camera"]["identity"]["model"].startswith("ADC-CAMERA-SIMULATOR")
        for report in reports.values():
            assert report["connected"] and report["error"] is None
            assert report["is_simulator"] is True  # as each device reported it over the wire
        listed = control(endpoints["ADC_SIM_CONTROL"], {"device": "nothing", "action": "none"})
        assert listed["ok"] is False and "io_board" in str(listed["error"])
    finally:
        code = stop(process)
    assert code == 0


def test_adc_devices_reports_a_device_that_does_not_answer() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    env["ADC_LABEL_PRINTER"] = f"tcp://127.0.0.1:{closed_port}"
    result = adc_devices(env)
    assert result.returncode == 1
    (report,) = json.loads(result.stdout)
    assert report["connected"] is False and "comm.disconnected" in report["error"]
