"""TCP adapter for the label printer model: raw ZPL on a socket, like a printer's port 9100 (here port 0 by
default, so tests never collide). Each connection has its own stream splitter; answers go back on the same
connection."""

from __future__ import annotations

import asyncio
import contextlib

from firmware_protocols.label_printer import ZplSplitter
from simulators.label_printer.model import LabelPrinterModel


class LabelPrinterServer:
    def __init__(self, model: LabelPrinterModel) -> None:
        self.model = model
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        splitter = ZplSplitter()
        try:
            while data := await reader.read(4096):
                for item in splitter.feed(data):
                    reply = self.model.handle(item)
                    if reply.data:
                        writer.write(reply.data)
                        await writer.drain()
                    if reply.disconnect:
                        return
            for item in splitter.flush():
                self.model.handle(item)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
