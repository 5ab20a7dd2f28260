"""The refrigerator's recent temperature readings, kept in memory for the pharmacy console's chart.

Responsible for: thinning the readings the event hub sees (it passes each change of the 0.1 °C reading) to a
bounded series that still draws the truth: a point at most every ``spacing`` while the value drifts, but at once
when it moves by ``step`` or crosses the 2-8 °C band, so an excursion's start and end are never smoothed away.
A reading held back is kept as the tail and written before the next kept point. Not responsible for the
excursion rule itself (the engine quarantines; the ledger records it) or for persistence:
a restart starts the series again, and the ledger keeps every excursion.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Any

Reading = tuple[datetime, float]


class TemperatureHistory:
    def __init__(self, *, size: int = 2000, spacing: timedelta = timedelta(seconds=30), step: float = 0.3) -> None:
        self._points: deque[Reading] = deque(maxlen=size)
        self._tail: Reading | None = None
        self.spacing = spacing
        self.step = step

    def add(self, at: datetime, celsius: float) -> None:
        last = self._points[-1] if self._points else None
        if last is None or self._significant(last, (at, celsius)):
            if self._tail is not None:
                self._points.append(self._tail)
            self._points.append((at, celsius))
            self._tail = None
        else:
            self._tail = (at, celsius)

    def points(self) -> list[dict[str, Any]]:
        series = [*self._points, *([self._tail] if self._tail else [])]
        return [{"at": at.isoformat(), "temperature_c": round(celsius, 1)} for at, celsius in series]

    def _significant(self, last: Reading, new: Reading) -> bool:
        return (
            new[0] - last[0] >= self.spacing
            or abs(new[1] - last[1]) >= self.step
            or in_band(new[1]) != in_band(last[1])
        )


def in_band(celsius: float, band: tuple[float, float] = (2.0, 8.0)) -> bool:
    """Inside the refrigerator's range (USP <659> 2-8 °C unless the rules in force say otherwise)."""
    return band[0] <= celsius <= band[1]
