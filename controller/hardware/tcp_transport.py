"""A small asyncio TCP link for devices that speak a raw byte stream (the ZPL label printer on port 9100).

Opened by URL, ``tcp://host:port``; every operation runs under ``asyncio.timeout`` and failures become
``CommunicationError`` (``comm.timeout``, ``comm.disconnected``); a bad URL is ``comm.bad_endpoint``. An
``asyncio.Lock`` keeps one request/answer exchange on the connection at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from controller.errors import CommunicationError, ConfigurationError


def parse_tcp_url(url: str, *, default_port: int | None = None) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ConfigurationError("comm.bad_endpoint", f"bad port in {url!r}: {exc}") from exc
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        raise ConfigurationError("comm.bad_endpoint", f"expected tcp://host:port, got {url!r}")
    return parts.hostname, port


class TcpLink:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str) -> None:
        self._reader, self._writer = reader, writer
        self.url = url
        self.lock = asyncio.Lock()
        self.closed = False

    @classmethod
    async def open(cls, url: str, *, timeout: float = 5.0, default_port: int | None = None) -> TcpLink:
        host, port = parse_tcp_url(url, default_port=default_port)
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except TimeoutError as exc:
            detail = f"connecting to {url} took more than {timeout} s"
            raise CommunicationError("comm.timeout", detail, url=url) from exc
        except OSError as exc:
            raise CommunicationError("comm.disconnected", f"cannot connect to {url}: {exc}", url=url) from exc
        return cls(reader, writer, url)

    async def write(self, data: bytes, *, timeout: float = 2.0) -> None:
        self._check_open()
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(data)
                await self._writer.drain()
        except TimeoutError as exc:
            raise CommunicationError("comm.timeout", f"{self.url}: write blocked {timeout} s", url=self.url) from exc
        except (ConnectionError, OSError) as exc:
            self.closed = True
            raise CommunicationError("comm.disconnected", f"{self.url}: {exc}", url=self.url) from exc

    async def read_until(self, separator: bytes, *, timeout: float, limit: int = 65536) -> bytes:
        """Bytes up to and including ``separator``; the connection closing first is ``comm.disconnected``."""
        self._check_open()
        try:
            async with asyncio.timeout(timeout):
                data = await self._reader.readuntil(separator)
        except TimeoutError as exc:
            raise CommunicationError("comm.timeout", f"{self.url}: no answer within {timeout} s", url=self.url) from exc
        except asyncio.IncompleteReadError as exc:
            self.closed = True
            raise CommunicationError(
                "comm.disconnected", f"{self.url}: connection closed ({len(exc.partial)} bytes pending)", url=self.url
            ) from exc
        except asyncio.LimitOverrunError as exc:
            detail = f"{self.url}: no {separator!r} in the answer"
            raise CommunicationError("comm.framing", detail, url=self.url) from exc
        except (ConnectionError, OSError) as exc:
            self.closed = True
            raise CommunicationError("comm.disconnected", f"{self.url}: {exc}", url=self.url) from exc
        if len(data) > limit:
            raise CommunicationError("comm.framing", f"{self.url}: answer over {limit} bytes", url=self.url)
        return data

    def _check_open(self) -> None:
        if self.closed or self._writer.is_closing():
            raise CommunicationError("comm.disconnected", f"{self.url}: connection is closed", url=self.url)

    async def close(self) -> None:
        self.closed = True
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self._writer.wait_closed()
