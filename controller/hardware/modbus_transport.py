"""The one module that imports pymodbus: an async Modbus client adapter for TCP and RTU (RS-485).

Responsible for: parsing an endpoint URL (``tcp://host:port?unit=N``, ``rtu:///dev/ttyUSB0?unit=N&baud=115200``),
one connection and one ``asyncio.Lock`` per bus (RS-485 is half duplex; boards sharing a bus share the lock through
``for_unit``), every call under ``asyncio.timeout``, retries for reads only unless the caller says a write is
state-seeking, and mapping every pymodbus outcome to a typed ``CommunicationError``/``DeviceFaultError``. Not
responsible for what the registers mean (the device drivers).

pymodbus 3.16 notes: the client keywords are ``device_id=`` and ``count=``; its own retry loop is switched off
(``retries=0``) so that only this module decides what is retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer.rtu import FramerRTU
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from controller.errors import CATALOGUE, Category, CommunicationError, ConfigurationError, DeviceFaultError

T = TypeVar("T")

DEFAULT_EXCEPTION_CODES: Mapping[int, str] = MappingProxyType({})  # every exception -> comm.device_exception


@dataclass(frozen=True, slots=True)
class ModbusEndpoint:
    scheme: str  # "tcp" or "rtu"
    unit: int
    host: str = ""
    port: int = 502
    device: str = ""  # serial device path for rtu
    baudrate: int = 115_200
    parity: str = "N"
    stopbits: int = 1

    @property
    def bus(self) -> str:
        return f"tcp://{self.host}:{self.port}" if self.scheme == "tcp" else f"rtu://{self.device}"


def parse_endpoint(url: str) -> ModbusEndpoint:
    """``tcp://host:port?unit=1`` or ``rtu:///dev/ttyUSB0?unit=1&baud=115200&parity=N``; anything else is refused."""
    try:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query, strict_parsing=False).items()}
        unknown = set(query) - {"unit", "baud", "parity", "stopbits"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}")
        unit = int(query.get("unit", "1"))
        if not 1 <= unit <= 247:
            raise ValueError("unit must be 1..247")
        if parts.scheme == "tcp":
            if not parts.hostname:
                raise ValueError("no host")
            return ModbusEndpoint("tcp", unit, host=parts.hostname, port=parts.port or 502)
        if parts.scheme == "rtu":
            device = (parts.netloc + parts.path) if parts.netloc else parts.path
            if not device:
                raise ValueError("no serial device path")
            parity = query.get("parity", "N").upper()
            if parity not in ("N", "E", "O"):
                raise ValueError("parity must be N, E or O")
            stopbits = int(query.get("stopbits", "1"))
            if stopbits not in (1, 2):
                raise ValueError("stopbits must be 1 or 2")
            baudrate = int(query.get("baud", "115200"))
            if baudrate <= 0:
                raise ValueError("baud must be positive")
            return ModbusEndpoint("rtu", unit, device=device, baudrate=baudrate, parity=parity, stopbits=stopbits)
        raise ValueError(f"scheme {parts.scheme!r} is not tcp or rtu")
    except ValueError as exc:
        raise ConfigurationError("comm.bad_endpoint", f"bad Modbus endpoint {url!r}: {exc}", url=url) from exc


def raise_code(code: str, detail: str, **context: Any) -> None:
    """Raise the catalogue code as the exception class of its category."""
    category = CATALOGUE[code].category
    if category is Category.DEVICE_FAULT:
        raise DeviceFaultError(code, detail, **context)
    if category is Category.CONFIGURATION:
        raise ConfigurationError(code, detail, **context)
    raise CommunicationError(code, detail, **context)


class _Tap:
    """pymodbus' trace_packet hook: keeps what the framer held when it last looked, to tell a bad CRC from silence."""

    def __init__(self) -> None:
        self.received = b""

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self.received = data
        return data


class _Bus:
    """One physical link: a pymodbus client and the lock that keeps one request on it at a time."""

    def __init__(self, endpoint: ModbusEndpoint, client: Any, timeout: float, tap: _Tap) -> None:
        self.endpoint = endpoint
        self.client = client
        self.timeout = timeout
        self.lock = asyncio.Lock()
        self.dirty = False  # a request timed out: a late answer may still arrive, so flush before the next one
        self.tap = tap

    @property
    def received(self) -> bytes:
        return self.tap.received

    async def ensure_connected(self) -> None:
        if self.dirty:
            # Let a late answer land on the old connection and be thrown away with it.
            self.client.close()
            await asyncio.sleep(min(self.timeout, 0.1))
            self.dirty = False
        if not self.client.connected:
            try:
                async with asyncio.timeout(self.timeout):
                    connected = await self.client.connect()
            except TimeoutError:
                connected = False
            if not connected:
                raise CommunicationError(
                    "comm.disconnected", f"cannot connect to {self.endpoint.bus}", url=self.endpoint.bus
                )


class ModbusTransport:
    """Register reads and writes for one unit on one bus. ``for_unit`` gives another unit on the same bus."""

    def __init__(
        self,
        bus: _Bus,
        unit: int,
        *,
        exception_codes: Mapping[int, str] = DEFAULT_EXCEPTION_CODES,
        read_retries: int = 2,
        write_retries: int = 1,
    ) -> None:
        self._bus = bus
        self.unit = unit
        self.exception_codes = exception_codes
        self.read_retries = read_retries
        self.write_retries = write_retries

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        timeout: float = 0.25,
        exception_codes: Mapping[int, str] = DEFAULT_EXCEPTION_CODES,
        read_retries: int = 2,
        write_retries: int = 1,
    ) -> ModbusTransport:
        endpoint = parse_endpoint(url)
        tap = _Tap()
        client: Any
        if endpoint.scheme == "tcp":
            client = AsyncModbusTcpClient(
                endpoint.host, port=endpoint.port, timeout=timeout, retries=0, reconnect_delay=0, trace_packet=tap
            )
        else:
            client = AsyncModbusSerialClient(
                endpoint.device,
                baudrate=endpoint.baudrate,
                parity=endpoint.parity,
                stopbits=endpoint.stopbits,
                bytesize=8,
                timeout=timeout,
                retries=0,
                reconnect_delay=0,
                trace_packet=tap,
            )
        bus = _Bus(endpoint, client, timeout, tap)
        transport = cls(
            bus, endpoint.unit, exception_codes=exception_codes, read_retries=read_retries, write_retries=write_retries
        )
        async with bus.lock:
            await bus.ensure_connected()
        return transport

    def for_unit(self, unit: int) -> ModbusTransport:
        """Another board on the same bus: shares the connection and the bus lock."""
        return ModbusTransport(
            self._bus,
            unit,
            exception_codes=self.exception_codes,
            read_retries=self.read_retries,
            write_retries=self.write_retries,
        )

    @property
    def endpoint(self) -> ModbusEndpoint:
        return self._bus.endpoint

    async def close(self) -> None:
        async with self._bus.lock:
            self._bus.client.close()

    async def __aenter__(self) -> ModbusTransport:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # --- operations -------------------------------------------------------------------------------------------

    async def read_registers(self, address: int, count: int) -> list[int]:
        """Holding registers [address, address + count); retried on communication errors."""

        async def call() -> list[int]:
            response = await self._bus.client.read_holding_registers(address, count=count, device_id=self.unit)
            self._check(response, f"read {count} at {address}")
            registers = list(response.registers)
            if len(registers) != count:
                raise CommunicationError(
                    "comm.protocol", f"asked for {count} registers at {address}, got {len(registers)}", url=self.url
                )
            return registers

        return await self._run(call, self.read_retries, 5 + 2 * count)

    async def write_register(self, address: int, value: int, *, retry: bool = True) -> None:
        """One register (function 0x06). ``retry`` only for state-seeking writes ("set to value")."""

        async def call() -> None:
            response = await self._bus.client.write_register(address, value, device_id=self.unit)
            self._check(response, f"write {value} at {address}")
            if getattr(response, "address", address) != address or list(response.registers) != [value]:
                raise CommunicationError(
                    "comm.protocol", f"write at {address} echoed {response.address}/{response.registers}", url=self.url
                )

        await self._run(call, self.write_retries if retry else 0, 8)

    async def write_registers(self, address: int, values: list[int], *, retry: bool = True) -> None:
        """Consecutive registers in one request (function 0x10), applied by the device as one write."""

        async def call() -> None:
            response = await self._bus.client.write_registers(address, values, device_id=self.unit)
            self._check(response, f"write {len(values)} at {address}")
            if response.address != address or response.count != len(values):
                raise CommunicationError(
                    "comm.protocol",
                    f"write of {len(values)} at {address} answered {response.count} at {response.address}",
                    url=self.url,
                )

        await self._run(call, self.write_retries if retry else 0, 8)

    # --- machinery --------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self._bus.endpoint.bus}?unit={self.unit}"

    def _check(self, response: ModbusPDU, what: str) -> None:
        if isinstance(response, ExceptionResponse) or response.isError():
            exception_code = int(getattr(response, "exception_code", 0))
            code = self.exception_codes.get(exception_code, "comm.device_exception")
            raise_code(
                code,
                f"{self.url}: {what} answered Modbus exception {exception_code:#04x}",
                url=self.url,
                exception_code=exception_code,
            )

    async def _run(self, call: Callable[[], Awaitable[T]], retries: int, answer_length: int) -> T:
        attempt = 0
        while True:
            try:
                return await self._once(call, answer_length)
            except CommunicationError as exc:
                if not exc.retryable or attempt >= retries:
                    raise
                attempt += 1

    def _no_answer(self, detail: str, answer_length: int) -> CommunicationError:
        """Silence, a cut answer, or an answer whose checksum failed (RTU: pymodbus drops a bad frame and waits on,
        so look at what had arrived)."""
        received = self._bus.received
        if len(received) >= 2 and received[1] & 0x80:
            answer_length = 5  # an exception answer
        complete = self._bus.endpoint.scheme == "rtu" and len(received) >= answer_length
        if complete and not FramerRTU.check_CRC(received[:-2], int.from_bytes(received[-2:], "big")):
            return CommunicationError(
                "comm.crc", f"{self.url}: answer failed its CRC ({received.hex(' ')})", url=self.url
            )
        if received:
            detail += f"; {len(received)} byte(s) arrived before the answer stopped"
        return CommunicationError("comm.timeout", f"{self.url}: {detail}", url=self.url)

    async def _once(self, call: Callable[[], Awaitable[T]], answer_length: int) -> T:
        bus = self._bus
        async with bus.lock:
            await bus.ensure_connected()
            bus.tap.received = b""
            try:
                # pymodbus times out on its own after ``timeout``; ours is the backstop so nothing can hang.
                async with asyncio.timeout(bus.timeout * 2 + 0.5):
                    return await call()
            except TimeoutError as exc:
                bus.dirty = True
                raise self._no_answer("no answer in time", answer_length) from exc
            except ConnectionException as exc:
                bus.dirty = True
                raise CommunicationError("comm.disconnected", f"{self.url}: {exc}", url=self.url) from exc
            except ModbusIOException as exc:
                bus.dirty = True
                if not bus.client.connected:
                    raise CommunicationError("comm.disconnected", f"{self.url}: {exc}", url=self.url) from exc
                raise self._no_answer(str(exc), answer_length) from exc
            except ModbusException as exc:
                bus.dirty = True
                raise CommunicationError("comm.protocol", f"{self.url}: {exc}", url=self.url) from exc
            except CommunicationError as exc:
                if "exception_code" not in exc.context:  # a Modbus exception is a clean answer; others are not
                    bus.dirty = True
                raise
