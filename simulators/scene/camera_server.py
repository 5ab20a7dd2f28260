"""HTTP adapter for the camera model: MJPEG over HTTP, the way network cameras serve live video.

``GET /stream.mjpg`` answers ``multipart/x-mixed-replace`` with one JPEG part per frame slot, paced at the
model's ``fps``, until the client leaves, a fault disconnects it, or the camera is unplugged. ``GET /snapshot.jpg``
answers one frame. Every answer names the camera in its ``Server`` header (``ADC-CAMERA-SIMULATOR/1.0``), which
is how the driver learns it talks to a simulator; ``HEAD`` gives the headers alone. Port 0 by default, so tests
never collide.
"""

from __future__ import annotations

import asyncio
import contextlib

from simulators.scene.camera_model import CameraModel

STREAM_PATH = "/stream.mjpg"
SNAPSHOT_PATH = "/snapshot.jpg"
BOUNDARY = "adcframe"
_REQUEST_TIMEOUT = 10.0  # a client that opens a connection and says nothing is dropped


class CameraServer:
    def __init__(self, model: CameraModel) -> None:
        self.model = model
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def open(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            method, path = _request_line(head)
            if method not in ("GET", "HEAD"):
                await self._answer(writer, "405 Method Not Allowed", "text/plain", b"GET or HEAD\n", method)
            elif path == STREAM_PATH:
                await self._stream(writer, head_only=method == "HEAD")
            elif path == SNAPSHOT_PATH:
                await self._snapshot(writer, method)
            else:
                body = f"try {STREAM_PATH} or {SNAPSHOT_PATH}\n".encode()
                await self._answer(writer, "404 Not Found", "text/plain", body, method)
        except (ConnectionError, TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client left or sent nonsense: nothing to answer
        except asyncio.CancelledError:
            pass  # the server is closing
        finally:
            self._tasks.discard(task)
            if self._closing:
                # The camera is going away: drop the frames still queued for a viewer that reads slowly (or not at
                # all) instead of keeping its connection open until they drain, which may be never.
                writer.transport.abort()
            else:
                writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, *, head_only: bool) -> None:
        writer.write(self._headers("200 OK", f"multipart/x-mixed-replace; boundary={BOUNDARY}"))
        await writer.drain()
        if head_only:
            return
        loop = asyncio.get_running_loop()
        plugged_in = self.model.unplugs
        period = 1.0 / self.model.fps
        next_slot = loop.time()
        while self.model.unplugs == plugged_in:
            part = self.model.next_frame()
            if part.disconnect:
                return
            if part.delay:
                await asyncio.sleep(part.delay)
            if part.jpeg is not None:
                writer.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(part.jpeg)}\r\n\r\n".encode()
                    + part.jpeg
                    + b"\r\n"
                )
                await writer.drain()
            next_slot = max(next_slot + period, loop.time())  # a late slot is not made up with a burst
            await asyncio.sleep(next_slot - loop.time())

    async def _snapshot(self, writer: asyncio.StreamWriter, method: str) -> None:
        part = self.model.next_frame()
        if part.disconnect:
            return
        if part.jpeg is None:
            await self._answer(writer, "503 Service Unavailable", "text/plain", b"no frame\n", method)
            return
        await asyncio.sleep(part.delay)
        await self._answer(writer, "200 OK", "image/jpeg", part.jpeg, method)

    async def _answer(self, writer: asyncio.StreamWriter, status: str, kind: str, body: bytes, method: str) -> None:
        writer.write(self._headers(status, kind, len(body)) + (b"" if method == "HEAD" else body))
        await writer.drain()

    def _headers(self, status: str, kind: str, length: int | None = None) -> bytes:
        lines = [
            f"HTTP/1.0 {status}",
            f"Server: {self.model.server_name}",
            f"Content-Type: {kind}",
            "Cache-Control: no-cache, no-store",
            "Connection: close",
        ]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


def _request_line(head: bytes) -> tuple[str, str]:
    """``GET /stream.mjpg?x=1 HTTP/1.1`` -> (``GET``, ``/stream.mjpg``); a malformed line is ValueError."""
    method, target, _version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    return method.upper(), target.split("?", 1)[0]
