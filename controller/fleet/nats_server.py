"""A private ``nats-server -js`` for a hospital simulated on one machine (tests, benchmarks): Debian's binary on
an ephemeral port of 127.0.0.1, its JetStream store in a directory of the caller's, stopped by the caller. It can
be stopped and started again on the same port and store, which is what a NATS restart is."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

DEBIAN_BINARY = "/usr/sbin/nats-server"


def binary() -> str | None:
    found = shutil.which("nats-server")
    return found if found else (DEBIAN_BINARY if Path(DEBIAN_BINARY).exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class NatsServer:
    def __init__(self, directory: Path) -> None:
        found = binary()
        if found is None:
            raise FileNotFoundError("nats-server is not installed (Debian package nats-server)")
        self.binary = found
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
