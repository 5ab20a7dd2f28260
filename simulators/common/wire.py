"""Wire time. A pseudo-terminal moves bytes instantly whatever the baud rate, so simulators wait it out."""

from __future__ import annotations

BITS_PER_CHARACTER_8N1 = 10  # start bit, 8 data bits, stop bit


def wire_seconds(byte_count: int, baudrate: int, bits_per_character: int = BITS_PER_CHARACTER_8N1) -> float:
    if baudrate <= 0:
        raise ValueError("baudrate must be positive")
    return byte_count * bits_per_character / baudrate
