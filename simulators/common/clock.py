"""Simulator time. Models read a ``SimClock`` so tests and scenarios can drive time by hand."""

from __future__ import annotations

import time
from typing import Protocol


class SimClock(Protocol):
    def monotonic(self) -> float: ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """Time that moves only when ``advance`` is called."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds
