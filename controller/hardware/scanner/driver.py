"""Serial barcode scanner driver over ``SerialLink`` (device path, pseudo-terminal or ``socket://``).

The scanner talks whenever someone scans, so the driver reads only when asked (``next_scan``, ``identify``)
and keeps what it read in order: scans and damaged lines wait in ``_pending`` for ``next_scan``, whichever call
read them. A line left unfinished for ``idle_s`` (no byte arrived) is cut off as truncated, so a lost suffix can
never glue two scans into one.
"""

from __future__ import annotations

import asyncio
from collections import deque

from controller.errors import CommunicationError, ConfigurationError
from controller.hardware.scanner.interface import ScannerIdentity
from controller.hardware.serial_transport import SerialLink, SerialSettings
from firmware_protocols.scanner import SCANNER_TABLE, IdentifyReply, Scan, ScanDecodeError, ScanDecoder
from firmware_protocols.scanner.codec import SUFFIXES, DecodedItem

_READ_CHUNK = 4096


class ScannerDriver:
    def __init__(
        self, link: SerialLink, *, suffix: str = "CR", gs_substitute: bytes | None = None, idle_s: float = 0.1
    ):
        self._link = link
        self._terminator = SUFFIXES[suffix][-1:]
        self._decoder = ScanDecoder(gs_substitute=gs_substitute)
        self._pending: deque[Scan | ScanDecodeError] = deque()
        self._idle_s = idle_s
        self._last_rx = 0.0

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        baudrate: int = 9600,
        suffix: str = "CR",
        gs_substitute: bytes | None = None,
        idle_s: float = 0.1,
        timeout: float = 5.0,
    ) -> ScannerDriver:
        if suffix not in SUFFIXES:
            raise ConfigurationError("comm.bad_endpoint", f"scanner suffix must be one of {sorted(SUFFIXES)}")
        link = await SerialLink.open(url, SerialSettings(baudrate=baudrate), timeout=timeout)
        return cls(link, suffix=suffix, gs_substitute=gs_substitute, idle_s=idle_s)

    @property
    def url(self) -> str:
        return self._link.url

    async def identify(self, timeout: float = 2.0) -> ScannerIdentity:
        async with self._link.lock:
            await self._link.write(SCANNER_TABLE.identify)
            reply = await self._read_until(timeout, want_identify=True)
        assert isinstance(reply, IdentifyReply)
        model = reply.get("model")
        simulated = reply.get("simulator") == "1" or SCANNER_TABLE.simulator_marker in model.upper()
        return ScannerIdentity(model=model, firmware=reply.get("firmware"), is_simulator=simulated)

    async def trigger(self) -> None:
        async with self._link.lock:
            await self._link.write(SCANNER_TABLE.trigger)

    async def untrigger(self) -> None:
        async with self._link.lock:
            await self._link.write(SCANNER_TABLE.untrigger)

    async def next_scan(self, timeout: float) -> Scan:
        async with self._link.lock:
            if not self._pending:
                await self._read_until(timeout, want_identify=False)
            item = self._pending.popleft()
        if isinstance(item, ScanDecodeError):
            raise CommunicationError(
                "comm.framing", f"{self.url}: damaged scan ({item.reason}: {item.detail})", evidence=item.evidence.hex()
            )
        return item

    async def _read_until(self, timeout: float, *, want_identify: bool) -> IdentifyReply | None:
        """Read until an identify reply (``want_identify``) or anything for ``_pending`` arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for item in await self._read_items(deadline - loop.time()):
                if isinstance(item, IdentifyReply):
                    if want_identify:
                        return item
                    continue  # a late answer to an identify that timed out
                self._pending.append(item)
            if self._pending and not want_identify:
                return None
            if loop.time() >= deadline:
                what = "identify answer" if want_identify else "scan"
                raise CommunicationError("comm.timeout", f"{self.url}: no {what} within {timeout} s", url=self.url)

    async def _read_items(self, remaining: float) -> list[DecodedItem]:
        loop = asyncio.get_running_loop()
        wait = max(0.0, min(remaining, self._idle_s))
        chunk = await self._link.read_until(self._terminator, max_size=_READ_CHUNK, timeout=wait)
        if chunk:
            self._last_rx = loop.time()
            return self._decoder.feed(chunk)
        if self._decoder.pending and loop.time() - self._last_rx >= self._idle_s:
            return self._decoder.flush()
        return []

    async def close(self) -> None:
        await self._link.close()
