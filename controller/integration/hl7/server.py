"""The MLLP listener: asyncio TCP server, one ACK per frame, in order, on each connection.

Each connection reads bytes into its own ``MllpDecoder``; every complete frame goes to the ``InboundProcessor`` on
one worker thread (the store's calls block, and one writer is what SQLite wants anyway), and its ACK is written
back before the next frame of that connection is taken, as an interface engine expects. Bytes that are not a
frame are skipped and the connection stays open. Nothing a peer sends ends the listener: a connection that fails
is closed and logged, the others go on.

Not responsible for TLS or for deciding who may connect: it binds 127.0.0.1 unless told otherwise, and a
hospital puts the interface engine's link behind its own network controls (VPN, firewall, stunnel).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from controller.integration.hl7.mllp import DEFAULT_MAX_FRAME_BYTES, Frame, MllpDecoder, OversizeFrame, frame
from controller.integration.hl7.processor import InboundProcessor, Result

log = logging.getLogger(__name__)
READ_CHUNK = 64 * 1024


class MllpListener:
    def __init__(self, processor: InboundProcessor, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.processor = processor
        self.max_frame_bytes = max_frame_bytes
        self.frames_answered = 0
        self._server: asyncio.Server | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hl7-store")
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen (port 0: an ephemeral port); return the address bound."""
        self._server = await asyncio.start_server(self._serve_connection, host, port)
        return self.address

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the listener is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def close(self) -> None:
        """Stop listening, drop open connections, and wait for a message being stored to finish (it either
        commits whole or not at all; its sender resends an unanswered message and gets the stored ACK)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))

    async def __aenter__(self) -> MllpListener:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peer = _peer(writer)
        decoder = MllpDecoder(self.max_frame_bytes)
        try:
            while data := await reader.read(READ_CHUNK):
                for item in decoder.feed(data):
                    result = await self._answer(item, peer)
                    writer.write(frame(result.ack.encode("utf-8")))
                    await writer.drain()
                    self.frames_answered += 1
        except (ConnectionError, OSError) as exc:
            log.info("HL7 connection from %s ended: %s", peer, exc)
        except asyncio.CancelledError:
            pass  # the listener is closing
        except Exception:
            log.exception("HL7 connection from %s failed; closing it", peer)
        finally:
            if decoder.noise_bytes or decoder.abandoned_frames:
                log.info(
                    "HL7 connection from %s: %d bytes outside frames, %d unfinished frames dropped",
                    peer,
                    decoder.noise_bytes,
                    decoder.abandoned_frames,
                )
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)

    async def _answer(self, item: Frame | OversizeFrame, peer: str) -> Result:
        if isinstance(item, Frame):
            call = functools.partial(self.processor.process, item.payload, peer)
        else:
            call = functools.partial(self.processor.process_oversize, item.head, item.size, self.max_frame_bytes, peer)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
