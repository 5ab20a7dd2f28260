"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol), both ways, with no I/O.

A frame is::

    0x0B (VT, start block) + message bytes + 0x1C (FS, end block) + 0x0D (CR)

``frame()`` wraps a payload; ``MllpDecoder`` takes bytes as they arrive from a socket, in chunks of any size, and
returns each complete payload. It is lenient where real peers are sloppy and strict where it matters:

- bytes before a start block (line noise, a telnet probe, a half frame from a dropped connection) are skipped
  and counted in ``noise_bytes``; they never stop the frames after them;
- a start block inside an open frame means the sender started over: the unfinished frame is dropped (counted in
  ``abandoned_frames``) and the new one begins, so no frame swallows the next;
- an end block ends the frame even when its CR is missing or arrives in the next chunk;
- a frame longer than ``max_frame_bytes`` is not kept in memory: its first ``HEAD_BYTES`` are (enough to read
  MSH and answer it) and it is returned as ``OversizeFrame``.

Not responsible for: character sets or segment separators inside the payload (``inbound.read_frame`` does that).
"""

from __future__ import annotations

from dataclasses import dataclass

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
HEAD_BYTES = 4096
DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024


def frame(payload: bytes) -> bytes:
    """Wrap one message for the wire."""
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes


@dataclass(frozen=True, slots=True)
class OversizeFrame:
    """A frame longer than the limit: only its beginning was kept."""

    head: bytes
    size: int


class MllpDecoder:
    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < HEAD_BYTES:
            raise ValueError(f"max_frame_bytes must be at least {HEAD_BYTES}")
        self.max_frame_bytes = max_frame_bytes
        self.noise_bytes = 0
        self.abandoned_frames = 0
        self._buffer = bytearray()
        self._size = 0
        self._in_frame = False
        self._after_end = False  # the next byte may be the CR that completes an end block

    @property
    def in_frame(self) -> bool:
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame | OversizeFrame]:
        """Take the next bytes from the wire; return the frames they complete, in order."""
        done: list[Frame | OversizeFrame] = []
        position, length = 0, len(data)
        while position < length:
            if self._after_end:
                self._after_end = False
                if data[position : position + 1] == CARRIAGE_RETURN:
                    position += 1
                    continue
            if not self._in_frame:
                start = data.find(START_BLOCK, position)
                if start < 0:
                    self.noise_bytes += length - position
                    break
                self.noise_bytes += start - position
                self._begin()
                position = start + 1
                continue
            end = data.find(END_BLOCK, position)
            stop = end if end >= 0 else length
            restart = data.find(START_BLOCK, position, stop)
            if restart >= 0:
                self.abandoned_frames += 1
                self._begin()
                position = restart + 1
                continue
            self._keep(data[position:stop])
            if end < 0:
                break
            done.append(self._finish())
            position = end + 1
        return done

    def _begin(self) -> None:
        self._in_frame = True
        self._buffer.clear()
        self._size = 0

    def _keep(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self.max_frame_bytes:
            self._buffer += chunk
            return
        # Over the limit: keep only the beginning, which is what answering the frame needs.
        if len(self._buffer) > HEAD_BYTES:
            del self._buffer[HEAD_BYTES:]
        else:
            self._buffer += chunk[: HEAD_BYTES - len(self._buffer)]

    def _finish(self) -> Frame | OversizeFrame:
        self._in_frame = False
        self._after_end = True
        payload = bytes(self._buffer)
        self._buffer.clear()
        if self._size > self.max_frame_bytes:
            return OversizeFrame(head=payload[:HEAD_BYTES], size=self._size)
        return Frame(payload)
