"""ZPL II label printer driver over raw TCP (``tcp://host:9100``).

One exchange at a time on the connection. After a timeout the connection is dropped (a late answer would
otherwise be read as the answer to the next question) and reopened by the next call; after a disconnect too.
Nothing is retried: a query that fails raises, and the caller decides.
"""

from __future__ import annotations

import asyncio

from controller.errors import CommunicationError
from controller.hardware.label_printer.interface import PrinterIdentity, raise_for_faults, single_label
from controller.hardware.tcp_transport import TcpLink
from firmware_protocols.label_printer import (
    CANCEL_ALL,
    HOST_IDENTIFICATION,
    HOST_STATUS,
    PRINTER_TABLE,
    HostStatus,
    ResponseError,
    parse_host_identification,
    parse_host_status,
)


class LabelPrinterDriver:
    def __init__(self, url: str, link: TcpLink | None, *, timeout: float, confirm_timeout: float) -> None:
        self.url = url
        self._link = link
        self._lock = asyncio.Lock()
        self._timeout = timeout
        self._confirm_timeout = confirm_timeout

    @classmethod
    async def connect(cls, url: str, *, timeout: float = 2.0, confirm_timeout: float = 10.0) -> LabelPrinterDriver:
        link = await TcpLink.open(url, timeout=timeout, default_port=PRINTER_TABLE.port)
        return cls(url, link, timeout=timeout, confirm_timeout=confirm_timeout)

    async def identify(self) -> PrinterIdentity:
        answer = await self._query(HOST_IDENTIFICATION, strings=1)
        try:
            ident = parse_host_identification(answer)
        except ResponseError as exc:
            raise CommunicationError("comm.framing", f"{self.url}: bad ~HI answer: {exc}", url=self.url) from exc
        return PrinterIdentity(model=ident.model, firmware=ident.firmware, is_simulator=ident.is_simulator())

    async def status(self) -> HostStatus:
        answer = await self._query(HOST_STATUS, strings=3)
        try:
            return parse_host_status(answer)
        except ResponseError as exc:
            raise CommunicationError("comm.framing", f"{self.url}: bad ~HS answer: {exc}", url=self.url) from exc

    async def print_label(self, zpl: bytes) -> None:
        label = single_label(zpl)
        raise_for_faults(await self.status(), when="cannot print")
        await self._send(label.raw)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._confirm_timeout
        while True:
            status = await self.status()
            if status.faults():
                await self._cancel_held_labels()  # the held label must not print later, unseen
                raise_for_faults(status, when="did not print the label (cancelled)")
            if status.partial_format:
                await self._cancel_held_labels()
                raise CommunicationError("comm.framing", f"{self.url}: printer holds a partial label", url=self.url)
            if status.formats_in_buffer == 0:
                return
            if loop.time() >= deadline:
                await self._cancel_held_labels()
                raise CommunicationError(
                    "comm.timeout", f"{self.url}: label not taken within {self._confirm_timeout} s", url=self.url
                )
            await asyncio.sleep(0.05)

    async def _cancel_held_labels(self) -> None:
        """``~JA`` has no answer: read ``~HS`` back to confirm the buffer is empty."""
        await self._send(CANCEL_ALL)
        after = await self.status()
        if after.formats_in_buffer:
            raise CommunicationError(
                "comm.protocol", f"{self.url}: ~JA left {after.formats_in_buffer} label(s) queued", url=self.url
            )

    async def _link_now(self) -> TcpLink:
        if self._link is None or self._link.closed:
            self._link = await TcpLink.open(self.url, timeout=self._timeout, default_port=PRINTER_TABLE.port)
        return self._link

    async def _send(self, data: bytes) -> None:
        async with self._lock:
            link = await self._link_now()
            try:
                await link.write(data, timeout=self._timeout)
            except CommunicationError:
                await link.close()
                raise

    async def _query(self, command: bytes, *, strings: int) -> bytes:
        async with self._lock:
            link = await self._link_now()
            try:
                await link.write(command, timeout=self._timeout)
                answer = b""
                for _ in range(strings):  # each answer string ends STX ... ETX CR LF
                    answer += await link.read_until(b"\n", timeout=self._timeout, limit=4096)
            except CommunicationError:
                await link.close()  # a late answer must not be read as the answer to the next question
                raise
            return answer

    async def close(self) -> None:
        if self._link is not None:
            await self._link.close()
