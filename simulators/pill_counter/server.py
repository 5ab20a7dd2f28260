"""Transport adapters for the pill counter model: a pseudo-terminal (with simulated wire time) and TCP.

Responsible for bytes: reading request frames with the shared ``FrameDecoder``, answering each through
``PillCounterModel.handle``, NAKing frames that arrive damaged, dropping a partial frame after the inter-byte
timeout, and applying the wire faults of the fault plan (CORRUPT_CRC, GARBAGE, TRUNCATE, DROP_RESPONSE,
DELAY_RESPONSE, DISCONNECT) to the answer. The device acts on a request before a wire fault touches its answer:
a dropped answer to DISPENSE means the tablets did fall, which is exactly what the retransmission rule is for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from firmware_protocols.pill_counter import codec
from firmware_protocols.pill_counter.codec import DecodeError, DecodeErrorKind, Frame, FrameDecoder, Nak
from simulators.common.faults import FaultKind
from simulators.common.pty import PseudoTerminal, open_pseudo_terminal
from simulators.common.wire import wire_seconds
from simulators.pill_counter.model import PillCounterModel

WIRE_FAULT_KINDS = frozenset(
    {
        FaultKind.CORRUPT_CRC,
        FaultKind.GARBAGE,
        FaultKind.TRUNCATE,
        FaultKind.DROP_RESPONSE,
        FaultKind.DELAY_RESPONSE,
        FaultKind.DISCONNECT,
    }
)
_NAK_REASON = {spec.name: code for code, spec in codec.TABLE.nak_reasons.items()}
_NAK_FOR = {
    DecodeErrorKind.BAD_CRC: _NAK_REASON["bad_crc"],
    DecodeErrorKind.BAD_ETX: _NAK_REASON["bad_frame"],
    DecodeErrorKind.TRUNCATED: _NAK_REASON["inter_byte_timeout"],
}
UNKNOWN_SEQ = 0xFF


class DisconnectError(Exception):
    """The fault plan says: close the link now."""


class FrameHandler:
    """Turns received bytes into the bytes to send back; transport-independent, so pty and TCP share it."""

    def __init__(self, model: PillCounterModel) -> None:
        self.model = model
        self.decoder = FrameDecoder()

    def answers(self, items: list[Frame | DecodeError]) -> list[tuple[float, bytes]]:
        """(delay before sending, bytes) per answer. Raises ``DisconnectError`` when the plan cuts the link."""
        out: list[tuple[float, bytes]] = []
        for item in items:
            if isinstance(item, Frame):
                reply = self.model.handle(item)
                out.extend(self._wire_faults(codec.encode_frame(reply)))
            elif item.kind in _NAK_FOR:
                # A damaged request: NAK it (with its SEQ when one could be read) so the controller resends at once.
                # Only the first rejection of a candidate is answered; the rescan of its bytes is noise.
                seq = item.seq if item.seq is not None else UNKNOWN_SEQ
                out.append((0.0, codec.encode_reply(seq, Nak(_NAK_FOR[item.kind]))))
        return out

    def _wire_faults(self, answer: bytes) -> list[tuple[float, bytes]]:
        model = self.model
        delay = 0.0
        for fault in model.faults.due(model.requests, model.clock.monotonic(), WIRE_FAULT_KINDS):
            match fault.kind:
                case FaultKind.DISCONNECT:
                    raise DisconnectError
                case FaultKind.DROP_RESPONSE:
                    return []
                case FaultKind.DELAY_RESPONSE:
                    delay += float(fault.params.get("seconds", 1.0))
                case FaultKind.CORRUPT_CRC:
                    answer = answer[:-2] + bytes((answer[-2] ^ 0xFF,)) + answer[-1:]
                case FaultKind.TRUNCATE:
                    answer = answer[: max(1, len(answer) // 2)]
                case FaultKind.GARBAGE:
                    answer = bytes.fromhex(str(fault.params.get("data", "55AA02FF00"))) + answer
        return [(delay, answer)]


class TcpServer:
    """One model behind an asyncio TCP server on 127.0.0.1 (port 0 = ephemeral); one decoder per connection."""

    def __init__(self, model: PillCounterModel) -> None:
        self.model = model
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        handler = FrameHandler(self.model)
        timeout = codec.TABLE.protocol.inter_byte_timeout_s
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout if handler.decoder.pending else None):
                        data = await reader.read(4096)
                except TimeoutError:
                    items = handler.decoder.expire()
                else:
                    if not data:
                        break
                    items = handler.decoder.feed(data)
                for delay, answer in handler.answers(items):
                    if delay:
                        await asyncio.sleep(delay)
                    writer.write(answer)
                    await writer.drain()
        except (DisconnectError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # close() cancels connection tasks; on Python 3.11 a connection task that ends cancelled makes asyncio's
            # stream callback log a spurious error, so this top-level task ends normally instead.
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)


class PtyServer:
    """The model behind a pseudo-terminal: the controller opens ``path`` as it would ``/dev/ttyUSB0``.

    A pseudo-terminal moves bytes instantly, so before each answer the server waits the wire time of the request
    and of the answer at ``baudrate`` (``wire_time=False`` skips it, for measuring the software alone).
    """

    def __init__(self, model: PillCounterModel, *, baudrate: int = 115_200, wire_time: bool = True) -> None:
        self.model = model
        self.baudrate = baudrate
        self.wire_time = wire_time
        self._pty: PseudoTerminal | None = None
        self._task: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()

    @property
    def path(self) -> str:
        if self._pty is None:
            raise RuntimeError("not started")
        return self._pty.path

    async def start(self) -> str:
        self._pty = open_pseudo_terminal()
        asyncio.get_running_loop().add_reader(self._pty.master_fd, self._readable)
        self._task = asyncio.create_task(self._serve(), name=f"pill-counter-pty:{self._pty.path}")
        return self._pty.path

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._release()

    def _release(self) -> None:
        if self._pty is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._pty.master_fd)
            self._pty.close()
            self._pty = None

    def _readable(self) -> None:
        if self._pty is None:
            return
        try:
            data = os.read(self._pty.master_fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            # EIO while no one has the slave open on some kernels: nothing to read.
            return
        if data:
            self._inbox.put_nowait(data)

    async def _serve(self) -> None:
        handler = FrameHandler(self.model)
        timeout = codec.TABLE.protocol.inter_byte_timeout_s
        while True:
            try:
                async with asyncio.timeout(timeout if handler.decoder.pending else None):
                    data = await self._inbox.get()
            except TimeoutError:
                received, items = 0, handler.decoder.expire()
            else:
                received, items = len(data), handler.decoder.feed(data)
            try:
                answers = handler.answers(items)
            except DisconnectError:
                # A pseudo-terminal cannot be unplugged; closing the master is the nearest thing (the controller's
                # reads fail with EIO). The simulator stays down until restarted.
                self._release()
                return
            for delay, answer in answers:
                wait = delay
                if self.wire_time:
                    wait += wire_seconds(received + len(answer), self.baudrate)
                    received = 0
                if wait:
                    await asyncio.sleep(wait)
                await self._write(answer)

    async def _write(self, data: bytes) -> None:
        while data and self._pty is not None:
            try:
                written = os.write(self._pty.master_fd, data)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            data = data[written:]
