"""The async serial link against a real pseudo-terminal and pyserial's loop:// and socket:// endpoints."""

from __future__ import annotations

import asyncio
import os

import pytest

from controller.errors import CommunicationError, ConfigurationError
from controller.hardware.serial_transport import SerialLink
from simulators.common.pty import open_pseudo_terminal


def test_bytes_cross_a_pseudo_terminal_both_ways() -> None:
    async def scenario() -> tuple[bytes, bytes, bytes]:
        terminal = open_pseudo_terminal()
        link = await SerialLink.open(terminal.path)
        try:
            os.write(terminal.master_fd, b"]d2 0103\r\n")
            line = await link.read_until(b"\r\n", max_size=64, timeout=2)
            await link.write(b"\x16T\r")
            await asyncio.sleep(0.05)
            sent = os.read(terminal.master_fd, 64)
            nothing = await link.read(8, timeout=0.1)
            return line, sent, nothing
        finally:
            await link.close()
            terminal.close()

    line, sent, nothing = asyncio.run(scenario())
    assert line == b"]d2 0103\r\n"
    assert sent == b"\x16T\r"
    assert nothing == b""  # a quiet line times out with what arrived, not an exception


def test_loopback_read_returns_what_arrived() -> None:
    async def scenario() -> bytes:
        link = await SerialLink.open("loop://")
        try:
            await link.write(b"abc")
            return await link.read(10, timeout=0.2)
        finally:
            await link.close()

    assert asyncio.run(scenario()) == b"abc"


@pytest.mark.parametrize("url", ["nosuchscheme://x", "socket://no-port-here"])
def test_bad_endpoints_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        asyncio.run(SerialLink.open(url))
    assert caught.value.code == "comm.bad_endpoint"


def test_missing_device_is_a_communication_error() -> None:
    with pytest.raises(CommunicationError) as caught:
        asyncio.run(SerialLink.open("/dev/does-not-exist-adc"))
    assert caught.value.code == "comm.disconnected"


def test_refused_tcp_endpoint_is_a_communication_error() -> None:
    async def closed_port() -> int:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = int(server.sockets[0].getsockname()[1])
        server.close()
        await server.wait_closed()
        return port

    port = asyncio.run(closed_port())
    with pytest.raises(CommunicationError) as caught:
        asyncio.run(SerialLink.open(f"socket://127.0.0.1:{port}"))
    assert caught.value.code == "comm.disconnected"
