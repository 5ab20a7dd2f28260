"""One HL7 v2 message over MLLP to a listener and its ACK read back, as a scenario's ``hl7`` step sends it (to a
cabinet's own listener, or to the central's, the hospital's one feed)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from controller.integration.hl7.mllp import frame


@dataclass(frozen=True, slots=True)
class Hl7Answer:
    code: str  # MSA-1: AA, AE or AR
    error: str | None  # ERR-5.1, the catalogue code of a refusal
    text: str


async def exchange(address: tuple[str, int], message: str, *, timeout_s: float = 10.0) -> Hl7Answer:
    """Send ``message`` (segments on lines, as a scenario writes them) and read the ACK."""
    payload = "\r".join(line for line in message.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line)
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(frame(payload.encode("utf-8")))
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            block = await reader.readuntil(b"\x1c\r")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    text = block.strip(b"\x0b\x1c\r").decode("utf-8")
    code, error = "", None
    for segment in text.split("\r"):
        fields = segment.split("|")
        if fields[0] == "MSA" and len(fields) > 1:
            code = fields[1]
        elif fields[0] == "ERR" and len(fields) > 5 and fields[5]:
            error = fields[5].split("^")[0]
    return Hl7Answer(code, error, text)
