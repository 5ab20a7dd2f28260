"""The MLLP client the sender delivers with: one connection, one message at a time, each wait bounded.

``MllpConnection.exchange`` writes one framed message and reads frames until one arrives (the framing is
``controller.integration.hl7.mllp``'s, both ways), then reads it as an ACK (``read_ack``). Every failure is an
``OutboundError`` naming what went wrong: the receiver could not be reached, closed the connection, sent no ACK in
time, or answered with something that is not an ACK. After any failure the connection is useless (a late ACK
could otherwise be taken for the next message's) and is closed.

Not responsible for deciding what an ACK means for the message (``sender``) or for TLS (a hospital tunnels the
link, as for the listener).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from controller.errors import ConfigurationError
from controller.integration.hl7.errors import Hl7Error
from controller.integration.hl7.inbound import decode, normalise
from controller.integration.hl7.message import Hl7Message
from controller.integration.hl7.mllp import Frame, MllpDecoder, OversizeFrame, frame
from controller.integration.hl7.outbound.errors import OutboundError

READ_CHUNK = 64 * 1024
ACK_TEXT_LIMIT = 200


@dataclass(frozen=True, slots=True)
class AckReply:
    code: str  # MSA-1: AA/AE/AR (original mode) or CA/CE/CR (enhanced mode commit ACK)
    control_id: str  # MSA-2: the MSH-10 acknowledged
    text: str  # what the receiver said about a refusal: MSA-3, ERR-8 or ERR-3 text
    raw: str


def parse_endpoint(value: str, what: str) -> tuple[str, int]:
    """``host:port`` (``[v6 address]:port`` too) from a setting."""
    host, sep, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError("config.invalid", f"{what} {value!r} is not host:port (e.g. 10.0.0.5:2575)")
    return host, int(port)


def read_ack(payload: bytes) -> AckReply:
    text = normalise(decode(payload))
    try:
        message = Hl7Message.parse(text) if text.startswith("MSH") else None
    except Hl7Error:
        message = None
    msa = message.first("MSA") if message is not None else None
    if message is None or msa is None:
        shown = text[:40].replace("\r", " ")
        raise OutboundError("hl7.outbound_bad_ack", f"the answer is not an HL7 ACK (no MSA): {shown!r}")
    err = message.first("ERR")
    said = msa.value(3) or (err.value(8) or err.value(3, 2) or err.value(3, 1) if err is not None else "")
    return AckReply(msa.value(1).upper(), msa.value(2), said[:ACK_TEXT_LIMIT], text)


class MllpConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = MllpDecoder()
        self._frames: list[Frame | OversizeFrame] = []  # decoded and not yet read
        self.address = address

    @classmethod
    async def open(cls, host: str, port: int, *, timeout_s: float) -> MllpConnection:
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            raise OutboundError(
                "hl7.outbound_unreachable", f"cannot connect to {host}:{port}: {type(exc).__name__}: {exc}"
            ) from exc
        return cls(reader, writer, f"{host}:{port}")

    async def exchange(self, payload: bytes, *, timeout_s: float) -> AckReply:
        """Send one message; the ACK that comes back."""
        try:
            async with asyncio.timeout(timeout_s):
                self._writer.write(frame(payload))
                await self._writer.drain()
                return read_ack(await self._next_frame())
        except TimeoutError as exc:
            raise OutboundError(
                "hl7.outbound_no_ack", f"{self.address} sent no ACK within {timeout_s} s", timeout_s=timeout_s
            ) from exc
        except OSError as exc:
            raise OutboundError(
                "hl7.outbound_disconnected", f"{self.address} dropped the connection: {type(exc).__name__}: {exc}"
            ) from exc

    async def _next_frame(self) -> bytes:
        while not self._frames:
            data = await self._reader.read(READ_CHUNK)
            if not data:
                raise OutboundError("hl7.outbound_disconnected", f"{self.address} closed the connection before its ACK")
            self._frames.extend(self._decoder.feed(data))
        item = self._frames.pop(0)
        if isinstance(item, OversizeFrame):
            raise OutboundError("hl7.outbound_bad_ack", f"{self.address} answered with an oversize frame")
        return item.payload

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
