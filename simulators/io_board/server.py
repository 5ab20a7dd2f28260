"""The I/O board simulator on its real transports: a pymodbus Modbus TCP server, and Modbus RTU on a
pseudo-terminal.

Both put the model behind a pymodbus ``SimDevice`` whose async ``action`` runs ``model.handle`` on every request,
so the registers a client sees are always the model's. The RTU side is our own small loop on the pty master
(pymodbus' serial server opens a device path, and the simulator owns the master fd, not a path): it cuts frames
with pymodbus' RTU framer, answers through the same datastore, waits out the wire time at the configured baud,
and applies the transport faults (drop, delay, corrupt CRC, garbage, truncate). Not responsible for behaviour
(``model.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
from typing import Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.framer.rtu import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simcore import SimCore

from simulators.common.faults import Fault, FaultKind
from simulators.common.pty import PseudoTerminal, open_pseudo_terminal
from simulators.common.wire import wire_seconds
from simulators.io_board.model import READ_FUNCTIONS, WRITE_FUNCTIONS, IoBoardModel, Request

# The transport faults of the request being answered, handed from the datastore action to the send step. Each
# request is served in its own task (TCP) or one at a time (RTU), so a context variable keeps them apart.
_PENDING_FAULTS: contextvars.ContextVar[tuple[Fault, ...]] = contextvars.ContextVar("io_board_faults", default=())


def build_sim_device(model: IoBoardModel, unit: int) -> SimDevice:
    """A pymodbus device whose every mapped address is backed by the model (unmapped ones answer 0x02)."""
    layout = model.layout
    blocks = [
        SimData(address=first, count=count, values=0, datatype=DataType.REGISTERS)
        for first, count in model.map.mapped_ranges(layout.drawer_count, layout.pockets_per_drawer)
    ]

    async def action(  # noqa: PLR0917 - the signature pymodbus calls
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code == 6 and set_values is None:
            return None  # pymodbus reads back after a 0x06 write to build the echo: not a new request
        if function_code not in READ_FUNCTIONS | WRITE_FUNCTIONS:
            return ExcCodes.ILLEGAL_FUNCTION
        values = tuple(int(v) for v in set_values) if set_values is not None else ()
        response = model.handle(Request(function_code, address, count, values))
        _PENDING_FAULTS.set(response.transport_faults)
        delay = sum(float(f.params.get("seconds", 1.0)) for f in response.transport_faults if _is(f, "delay"))
        if delay:
            await asyncio.sleep(delay)
        if response.exception is not None:
            return ExcCodes(int(response.exception))
        if set_values is None:
            offset = address - start_address
            registers[offset : offset + count] = list(response.values)
        return None

    return SimDevice(id=unit, simdata=blocks, action=action)


def _is(fault: Fault, what: str) -> bool:
    kinds = {
        "drop": FaultKind.DROP_RESPONSE,
        "delay": FaultKind.DELAY_RESPONSE,
        "disconnect": FaultKind.DISCONNECT,
        "crc": FaultKind.CORRUPT_CRC,
        "garbage": FaultKind.GARBAGE,
        "truncate": FaultKind.TRUNCATE,
    }
    return fault.kind is kinds[what]


# --- Modbus TCP -------------------------------------------------------------------------------------------------------


class _FaultyRequestHandler(ServerRequestHandler):
    """pymodbus' per-connection handler, plus the transport faults: drop the answer, send half of it and fall
    silent, or close the connection."""

    def server_send(self, pdu: Any, addr: Any) -> None:
        faults = _PENDING_FAULTS.get()
        if any(_is(f, "disconnect") for f in faults):
            if self.transport is not None:
                self.transport.close()
            return
        if any(_is(f, "drop") for f in faults):
            return
        if pdu and any(_is(f, "truncate") for f in faults):
            frame = self.framer.buildFrame(pdu)
            self.low_level_send(frame[: max(1, len(frame) // 2)], addr=addr)
            return
        cast(Any, super()).server_send(pdu, addr)  # pymodbus leaves this untyped


class _IoBoardTcpServer(ModbusTcpServer):
    def callback_new_connection(self) -> ServerRequestHandler:
        handler: Any = _FaultyRequestHandler  # pymodbus leaves its constructor untyped
        return cast(ServerRequestHandler, handler(self, self.trace_packet, self.trace_pdu, self.trace_connect))


class TcpServer:
    def __init__(self, model: IoBoardModel, unit: int, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _IoBoardTcpServer(build_sim_device(model, unit), address=(host, port))
        self.host = host
        self.port = 0

    async def start(self) -> None:
        await self._server.serve_forever(background=True)
        self.port = int(self._server.transport.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def close(self) -> None:
        await cast(Any, self._server).shutdown()  # untyped in pymodbus


# --- Modbus RTU on a pseudo-terminal ----------------------------------------------------------------------------------


class RtuPtyServer:
    """Modbus RTU on the master side of a pseudo-terminal; the controller opens ``path`` as it would a real port."""

    def __init__(self, model: IoBoardModel, unit: int, baudrate: int = 115_200) -> None:
        self.model = model
        self.unit = unit
        self.baudrate = baudrate
        self._core = SimCore(build_sim_device(model, unit))
        self._framer = FramerRTU(DecodePDU(True))
        self._pty: PseudoTerminal | None = None
        self._buffer = b""
        self._last_rx = 0.0
        self._requests: asyncio.Queue[tuple[ModbusPDU, int]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.frames_answered = 0
        turnaround = model.map.protocol.turnaround_ms / 1000
        # RTU ends a frame after 3.5 silent characters; a pty delivers in scheduler-sized chunks, so allow more.
        self._gap = max(model.map.protocol.inter_frame_chars * 11 / baudrate, 0.02)
        self._turnaround = turnaround

    @property
    def path(self) -> str:
        assert self._pty is not None
        return self._pty.path

    async def start(self) -> None:
        self._pty = open_pseudo_terminal()
        loop = asyncio.get_running_loop()
        loop.add_reader(self._pty.master_fd, self._on_readable)
        self._worker = asyncio.create_task(self._serve(), name=f"io_board rtu {self._pty.path}")

    async def close(self) -> None:
        if self._pty is not None:
            asyncio.get_running_loop().remove_reader(self._pty.master_fd)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._pty is not None:
            self._pty.close()

    def _on_readable(self) -> None:
        assert self._pty is not None
        try:
            data = os.read(self._pty.master_fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO: no client has the slave open right now
        now = asyncio.get_running_loop().time()
        if now - self._last_rx > self._gap:
            self._buffer = b""  # a silent interval ends whatever was pending (garbage or a cut frame)
        self._last_rx = now
        self._buffer += data
        while self._buffer:
            try:
                used, pdu = self._framer.handleFrame(self._buffer, 0, 0)
            except Exception:  # an undecodable frame: drop it and hunt on (pymodbus raises ModbusIOException)
                self._buffer = b""
                return
            if pdu is None:
                if used:
                    self._buffer = self._buffer[used:]
                    continue
                return
            frame_length = used
            self._buffer = self._buffer[used:]
            self._requests.put_nowait((pdu, frame_length))

    async def _serve(self) -> None:
        while True:
            pdu, request_length = await self._requests.get()
            if pdu.dev_id != self.unit:
                continue  # another board on the bus: stay silent
            _PENDING_FAULTS.set(())
            try:
                # SimCore is what pymodbus' own server passes here, though the signature names the older context class.
                response = await pdu.datastore_update(cast(Any, self._core), self.unit)
            except Exception:  # the board must answer something, as real firmware would
                response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
            response.dev_id = self.unit
            response.transaction_id = 0
            frame = self._framer.buildFrame(response)
            faults = _PENDING_FAULTS.get()
            if any(_is(f, "drop") or _is(f, "disconnect") for f in faults):
                continue  # on a serial line a disconnect looks like silence
            for fault in faults:
                if _is(fault, "crc"):
                    frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
                elif _is(fault, "truncate"):
                    frame = frame[: max(1, len(frame) // 2)]
                elif _is(fault, "garbage"):
                    frame = bytes.fromhex(str(fault.params.get("data", "ff00aa55"))) + frame
            await asyncio.sleep(wire_seconds(request_length + len(frame), self.baudrate) + self._turnaround)
            if self._pty is not None:
                with contextlib.suppress(OSError):
                    os.write(self._pty.master_fd, frame)
            self.frames_answered += 1
