"""A network link that QA can cut: a TCP proxy between a client (a cabinet's forwarder) and a server (NATS) that
drops every connection and refuses new ones, or stalls them (accepts, passes nothing), until restored.

Responsible for: what a cut cable or a hung switch looks like to both ends. Not responsible for what either end
does about it.
"""

from __future__ import annotations

import asyncio


class LinkProxy:
    """A TCP proxy between a cabinet and NATS that can cut every connection (and refuse new ones) or stall them
    (accept, pass nothing) until restored."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.cut = False
        self.stalled = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while not self.cut:
                    data = await source.read(65536)
                    if not data:
                        break
                    while self.stalled and not self.cut:
                        await asyncio.sleep(0.05)
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def drop(self) -> None:
        """Cut the link: close every connection, refuse new ones."""
        self.cut = True
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def restore(self) -> None:
        self.cut = False
        self.stalled = False

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
