"""The one module that imports pyserial: an async serial link for framed device protocols.

Opens anything ``serial.serial_for_url`` does: a device path (``/dev/ttyUSB0``, a pseudo-terminal
``/dev/pts/N``), ``socket://127.0.0.1:7001`` for a device on TCP, ``loop://`` for tests. pyserial blocks, so
every call runs on the link's own single-worker executor; an ``asyncio.Lock`` keeps one request on the wire at a
time (RS-485 and most device protocols are half duplex). Every operation has a timeout.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import serial

from controller.errors import CommunicationError, ConfigurationError


@dataclass(frozen=True, slots=True)
class SerialSettings:
    baudrate: int = 115_200
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1


def _check_url(url: str) -> None:
    """pyserial reports a malformed ``socket://`` URL as a failure to connect; tell the two apart up front."""
    if not url.startswith("socket://"):
        return
    host, _, port = url.removeprefix("socket://").partition("?")[0].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError("comm.bad_endpoint", f"serial endpoint {url!r} must look like socket://HOST:PORT")


class SerialLink:
    def __init__(self, port: Any, url: str) -> None:
        self._port = port
        self.url = url
        self.lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"serial:{url}")

    @classmethod
    async def open(cls, url: str, settings: SerialSettings | None = None, *, timeout: float = 5.0) -> SerialLink:
        settings = settings or SerialSettings()
        _check_url(url)
        loop = asyncio.get_running_loop()

        def connect() -> Any:
            return serial.serial_for_url(
                url,
                baudrate=settings.baudrate,
                bytesize=settings.bytesize,
                parity=settings.parity,
                stopbits=settings.stopbits,
                timeout=0.05,
                write_timeout=timeout,
            )

        try:
            async with asyncio.timeout(timeout):
                port = await loop.run_in_executor(None, connect)
        except ValueError as exc:
            raise ConfigurationError("comm.bad_endpoint", f"cannot open serial endpoint {url!r}: {exc}") from exc
        except serial.SerialException as exc:
            raise CommunicationError("comm.disconnected", f"cannot open {url!r}: {exc}", url=url) from exc
        except TimeoutError as exc:
            raise CommunicationError("comm.timeout", f"opening {url!r} took more than {timeout} s", url=url) from exc
        return cls(port, url)

    async def _call(self, function: Any, *args: Any, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                return await loop.run_in_executor(self._executor, function, *args)
        except TimeoutError as exc:
            raise CommunicationError(
                "comm.timeout", f"{self.url}: no progress within {timeout} s", url=self.url
            ) from exc
        except (serial.SerialException, OSError) as exc:
            raise CommunicationError("comm.disconnected", f"{self.url}: {exc}", url=self.url) from exc

    async def write(self, data: bytes, *, timeout: float = 2.0) -> None:
        def write_all() -> None:
            self._port.write(data)
            self._port.flush()

        await self._call(write_all, timeout=timeout)

    async def read(self, size: int, *, timeout: float) -> bytes:
        """Up to ``size`` bytes; fewer (possibly none) if the time runs out first."""

        def read_some() -> bytes:
            self._port.timeout = max(0.0, timeout)
            return bytes(self._port.read(size))

        return bytes(await self._call(read_some, timeout=timeout + 1.0))

    async def read_until(self, terminator: bytes, *, max_size: int, timeout: float) -> bytes:
        """Bytes up to and including ``terminator``, or what arrived before the time or ``max_size`` ran out."""

        def read_line() -> bytes:
            self._port.timeout = max(0.0, timeout)
            return bytes(self._port.read_until(terminator, max_size))

        return bytes(await self._call(read_line, timeout=timeout + 1.0))

    async def discard_input(self) -> None:
        await self._call(self._port.reset_input_buffer, timeout=1.0)

    async def close(self) -> None:
        try:
            await self._call(self._port.close, timeout=2.0)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
