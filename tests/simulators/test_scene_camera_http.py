"""Scene camera simulator on the wire: MJPEG over HTTP as a network camera serves it, read here byte by byte (no
OpenCV), and the control socket that tells it what to show."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.scene import camera as camera_sim
from simulators.scene.camera_server import BOUNDARY


def run(coro: Any, timeout: float = 20.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


async def http(url: str, method: str = "GET", path: str | None = None) -> tuple[asyncio.StreamReader, Any, bytes]:
    """Send one request; returns the reader, the writer and the response head."""
    host_port = url.removeprefix("http://").split("/", 1)[0]
    host, port = host_port.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    target = path or "/" + url.removeprefix("http://").split("/", 1)[1]
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: {host_port}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head


async def read_part(reader: asyncio.StreamReader) -> bytes:
    """One multipart part: boundary line, headers with Content-Length, the JPEG, CRLF."""
    assert await reader.readline() == f"--{BOUNDARY}\r\n".encode()
    headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
    assert "content-type: image/jpeg" in headers
    length = int(headers.split("content-length:")[1].split("\r\n")[0])
    body = await reader.readexactly(length)
    assert await reader.readexactly(2) == b"\r\n"
    return body


def picture_of(jpeg: bytes) -> npt.NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, np.uint8)


def test_stream_is_multipart_jpeg_at_the_frame_rate_and_names_a_simulator() -> None:
    async def scenario() -> None:
        running = await camera_sim.start(control=ControlSurface(), width=160, height=120, fps=20.0)
        try:
            assert running.url.startswith("http://127.0.0.1:") and running.url.endswith("/stream.mjpg")
            assert running.env_var == "ADC_CAMERA"
            reader, writer, head = await http(running.url)
            assert head.startswith(b"HTTP/1.0 200 OK\r\n")
            assert f"multipart/x-mixed-replace; boundary={BOUNDARY}".encode() in head
            assert b"Server: ADC-CAMERA-SIMULATOR/1.0\r\n" in head
            loop = asyncio.get_running_loop()
            started = loop.time()
            parts = [await read_part(reader) for _ in range(11)]
            elapsed = loop.time() - started
            assert 0.35 < elapsed < 1.5  # ten frame periods of 50 ms, paced, not a burst
            assert picture_of(parts[-1]).shape == (120, 160, 3)
            writer.close()
        finally:
            await running.close()

    run(scenario())


def test_head_snapshot_and_unknown_paths() -> None:
    async def scenario() -> None:
        running = await camera_sim.start(control=ControlSurface(), width=160, height=120)
        try:
            reader, writer, head = await http(running.url, "HEAD")
            assert b"200 OK" in head and b"ADC-CAMERA-SIMULATOR" in head
            assert await reader.read() == b""  # headers only, then the connection closes
            writer.close()
            running.model.show_scene("solid", green=180)
            reader, writer, head = await http(running.url, path="/snapshot.jpg")
            assert b"Content-Type: image/jpeg" in head
            snapshot = picture_of(await reader.read())
            assert abs(float(snapshot[:, :, 1].mean()) - 180) < 2
            writer.close()
            reader, writer, head = await http(running.url, path="/admin")
            assert head.startswith(b"HTTP/1.0 404") and b"stream.mjpg" in await reader.read()
            writer.close()
            reader, writer, head = await http(running.url, "POST")
            assert head.startswith(b"HTTP/1.0 405")
            writer.close()
        finally:
            await running.close()

    run(scenario())


def test_disconnect_fault_and_unplug_close_the_stream_and_new_streams_are_served() -> None:
    async def scenario() -> None:
        plan = FaultPlan([Fault(FaultKind.DISCONNECT, at_request=3)])
        running = await camera_sim.start(control=ControlSurface(), faults=plan, width=160, height=120, fps=50.0)
        try:
            reader, writer, _head = await http(running.url)
            await read_part(reader)
            await read_part(reader)
            assert await reader.read() == b""  # the third slot closes the connection
            writer.close()
            reader, writer, _head = await http(running.url)
            await read_part(reader)
            running.model.unplug()
            async with asyncio.timeout(2):
                while await reader.read(65536):  # frames already sent, then the end
                    pass
            writer.close()
        finally:
            await running.close()

    run(scenario())


def test_control_socket_shows_scenes_and_reports_status() -> None:
    async def scenario() -> None:
        control = ControlSurface()
        running = await camera_sim.start(control=control, width=160, height=120)
        port = await control.serve()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            async def ask(action: str, **args: Any) -> dict[str, Any]:
                writer.write(json.dumps({"device": "camera", "action": action, "args": args}).encode() + b"\n")
                await writer.drain()
                answer: dict[str, Any] = json.loads(await reader.readline())
                return answer

            shown = await ask("show_scene", name="pattern", seed=8)
            assert shown["ok"] and shown["result"]["truth"]["seed"] == 8
            assert (await ask("show_scene", name="solid", red=250))["ok"]
            stream, stream_writer, _head = await http(running.url)
            frame = picture_of(await read_part(stream))
            assert abs(float(frame[:, :, 2].mean()) - 250) < 3
            stream_writer.close()
            unknown = await ask("show_scene", name="hologram")
            assert unknown["ok"] is False and "pattern" in unknown["error"]
            assert (await ask("cover_lens"))["ok"] and (await ask("status"))["result"]["lens_covered"] is True
            writer.close()
        finally:
            await control.close()
            await running.close()

    run(scenario())
