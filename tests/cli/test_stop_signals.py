"""``adc serve`` and ``adc sim`` stop on SIGTERM (what systemd sends) as on SIGINT (Ctrl-C): within 5 s, with a
clean exit status, and with every process they started, also while the machine is busy.

Real processes, found through /proc: the simulators run as a child process (``python -m simulators``; for
``adc serve`` in a session of its own, so no terminal signal reaches it), and nothing of it may outlive the stop.
Each test stops whatever it started, also when it fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

STOP_S = 5.0  # what the README promises
READY_S = 90.0  # start-up, on a loaded machine too
SIMULATORS = "simulators"  # in the child's command line: python -m simulators

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc")


@dataclass(frozen=True)
class Proc:
    """A process as /proc shows it; the start time tells it from a later process given the same pid."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> Proc | None:
        stat = _stat(pid)
        return None if stat is None else cls(pid, int(stat[19]))

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and int(stat[19]) == self.start and stat[0] != "Z"

    def command(self) -> str:
        with contextlib.suppress(OSError):
            return Path(f"/proc/{self.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        return ""

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name: [0] state, [1] parent pid, [19] start time."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[Proc]:
    """Every process below ``pid``, children first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(int(stat[1]), []).append(int(entry.name))
    found: list[Proc] = []
    todo = list(parents.get(pid, []))
    while todo:
        child = todo.pop(0)
        if (proc := Proc.of(child)) is not None:
            found.append(proc)
        todo.extend(parents.get(child, []))
    return found


@dataclass
class Adc:
    process: subprocess.Popen[bytes]
    output: Path
    tree: list[Proc]  # every process it started, as seen before it was stopped

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def simulators(self) -> Proc:
        """The simulator process, once it runs (it starts before anything is announced)."""
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"adc exited {self.process.returncode}:\n{self.text()}"
            self.tree = descendants(self.process.pid)
            found = [proc for proc in self.tree if SIMULATORS in proc.command()]
            if found:
                return found[0]
            time.sleep(0.05)
        pytest.fail(f"no simulator process under adc:\n{self.text()}")

    def stop(self, signum: int) -> tuple[float, int | None]:
        """Send ``signum``; how long until adc and everything it started were gone (None: adc did not exit)."""
        self.tree = descendants(self.process.pid)
        started = time.monotonic()
        self.process.send_signal(signum)
        try:
            code: int | None = self.process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            code = None
        while any(proc.alive() for proc in self.tree) and time.monotonic() < started + STOP_S:
            time.sleep(0.02)  # a child killed at the very end may take a moment to be reaped
        return time.monotonic() - started, code


@contextlib.contextmanager
def adc(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Adc]:
    """``adc ARGS`` with its output in a file (a pipe nobody reads could fill and stall it); killed, with all it
    started, on the way out if it is still there."""
    output = tmp_path / "adc.out"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    full_env |= {"ADC_ARGON2_TIME_COST": "1", "ADC_ARGON2_MEMORY_KIB": "8", "COLUMNS": "200"} | (env or {})
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "controller.cli.app", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=tmp_path,
        )
    running = Adc(process, output, [])
    try:
        yield running
    finally:
        leftovers = [*descendants(process.pid), *running.tree]
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        for proc in leftovers:
            proc.kill()


@contextlib.contextmanager
def busy_cpus() -> Iterator[None]:
    """Every CPU this test may use (at least two, at most four) kept busy by a burner process, killed at the end."""
    count = min(max(len(os.sched_getaffinity(0)), 2), 4)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            with contextlib.suppress(subprocess.TimeoutExpired):
                burner.wait(timeout=5)


def wait_for_line(running: Adc, prefix: str) -> str:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        for line in running.text().splitlines():
            if line.startswith(prefix):
                return line
        assert running.process.poll() is None, f"adc exited {running.process.returncode}:\n{running.text()}"
        time.sleep(0.05)
    pytest.fail(f"no {prefix} line:\n{running.text()}")


def wait_for_health(running: Adc, port: int) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        assert running.process.poll() is None, f"adc exited {running.process.returncode}:\n{running.text()}"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"adc serve did not answer /health:\n{running.text()}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_stopped(running: Adc, elapsed: float, code: int | None, simulators: Proc) -> None:
    assert code is not None, f"still running {STOP_S} s after the signal:\n{running.text()}"
    assert code == 0, f"exit status {code}:\n{running.text()}"
    assert elapsed < STOP_S, f"took {elapsed:.2f} s:\n{running.text()}"
    assert not simulators.alive(), f"the simulators (pid {simulators.pid}) outlived adc:\n{running.text()}"
    assert not [proc for proc in running.tree if proc.alive()], running.text()


@pytest.mark.timeout(150)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_adc_serve_stops_with_its_simulators(tmp_path: Path, signum: int) -> None:
    port = free_port()
    with adc(tmp_path, "serve", "--port", str(port), env={"ADC_DATA_DIR": str(tmp_path / "data")}) as running:
        simulators = running.simulators()
        wait_for_health(running, port)
        elapsed, code = running.stop(signum)
        assert_stopped(running, elapsed, code, simulators)
    assert "created the demo cabinet" in running.text()


@pytest.mark.timeout(150)
def test_adc_serve_stops_its_simulators_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with adc(tmp_path, "serve", "--port", str(port), env={"ADC_DATA_DIR": str(tmp_path / "data")}) as running:
            simulators = running.simulators()
            code = running.process.wait(timeout=READY_S)
            assert code != 0, running.text()
            assert not simulators.alive(), f"the simulators outlived a failed adc serve:\n{running.text()}"


@pytest.mark.timeout(150)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("serial_over", ["pty", "tcp"])
def test_adc_sim_stops_with_its_simulators(tmp_path: Path, signum: int, serial_over: str) -> None:
    with adc(tmp_path, "sim", "--serial", serial_over) as running:
        wait_for_line(running, "ADC_SIM_CONTROL=")
        simulators = running.simulators()
        elapsed, code = running.stop(signum)
        assert_stopped(running, elapsed, code, simulators)


@pytest.mark.timeout(200)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_adc_sim_stops_in_time_on_a_busy_machine(tmp_path: Path, signum: int) -> None:
    with busy_cpus(), adc(tmp_path, "sim") as running:
        wait_for_line(running, "ADC_SIM_CONTROL=")
        simulators = running.simulators()
        elapsed, code = running.stop(signum)
        assert_stopped(running, elapsed, code, simulators)
