"""Transport adapters for the scanner model: a pseudo-terminal (the controller opens ``.path`` with pyserial,
as it would ``/dev/ttyACM0``) and a TCP server (pyserial ``socket://``).

Output is paced at the configured baud rate (a pseudo-terminal does not enforce it). DISCONNECT on the
pseudo-terminal closes its master side: the port is gone until the simulator restarts, as when a USB scanner is
unplugged. On TCP it closes the client connections; a new connection works.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from simulators.common.pty import PseudoTerminal, open_pseudo_terminal
from simulators.common.wire import wire_seconds
from simulators.scanner.model import Emission, ScannerModel

_SYN, _CR = b"\x16", b"\r"
_MAX_COMMAND = 64


class ScannerServer:
    def __init__(self, model: ScannerModel) -> None:
        self.model = model
        self._loop = asyncio.get_running_loop()
        self._outbox: asyncio.Queue[Emission] = asyncio.Queue()
        self._pty: PseudoTerminal | None = None
        self._tcp: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._client_tasks: set[asyncio.Task[None]] = set()
        self._commands = bytearray()
        self._pump = asyncio.create_task(self._pump_loop(), name="scanner-sim-pump")
        model.listeners.append(self._enqueue)

    # --- transports -------------------------------------------------------------------------------------------

    def open_pty(self) -> str:
        self._pty = open_pseudo_terminal()
        self._loop.add_reader(self._pty.master_fd, self._on_pty_readable)
        return self._pty.path

    async def open_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._tcp = await asyncio.start_server(self._on_tcp_client, host, port)
        return int(self._tcp.sockets[0].getsockname()[1])

    def _on_pty_readable(self) -> None:
        assert self._pty is not None
        try:
            data = os.read(self._pty.master_fd, 1024)
        except BlockingIOError:
            return
        except OSError:
            self._close_pty()
            return
        self._received(data)

    async def _on_tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._client_tasks.add(task)
        self._writers.add(writer)
        try:
            while data := await reader.read(1024):
                self._received(data)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            self._client_tasks.discard(task)
            writer.close()

    # --- host commands in, emissions out ----------------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        self._commands += data
        while (end := self._commands.find(_CR)) != -1:
            line = bytes(self._commands[: end + 1])
            del self._commands[: end + 1]
            start = line.rfind(_SYN)
            if start != -1:
                for emission in self.model.handle(line[start:]):
                    self._enqueue(emission)
        del self._commands[:-_MAX_COMMAND]

    def _enqueue(self, emission: Emission) -> None:
        self._loop.call_soon_threadsafe(self._outbox.put_nowait, emission)

    async def _pump_loop(self) -> None:
        while True:
            emission = await self._outbox.get()
            if emission.data:
                await asyncio.sleep(wire_seconds(len(emission.data), self.model.baudrate))
                await self._write(emission.data)
            if emission.disconnect:
                self._close_pty()
                for writer in list(self._writers):
                    writer.close()

    async def _write(self, data: bytes) -> None:
        if self._pty is not None:
            view = memoryview(data)
            for _ in range(200):  # the pty buffer is ~4 KiB; wait for the reader rather than drop bytes
                try:
                    view = view[os.write(self._pty.master_fd, view) :]
                except BlockingIOError:
                    pass
                except OSError:
                    self._close_pty()
                    break
                if not view:
                    break
                await asyncio.sleep(0.01)
        for writer in list(self._writers):
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError:
                self._writers.discard(writer)

    def _close_pty(self) -> None:
        if self._pty is not None:
            self._loop.remove_reader(self._pty.master_fd)
            self._pty.close()
            self._pty = None

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.model.listeners.remove(self._enqueue)
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        self._close_pty()
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._client_tasks):
            task.cancel()
        if self._client_tasks:
            await asyncio.gather(*self._client_tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
