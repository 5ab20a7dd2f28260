"""The scenario language's small value types: durations (``90``, ``31s``, ``1h30m``) and instants with a zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^(?=\d)(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


def parse_duration(value: int | str) -> timedelta:
    """Whole seconds, or hours/minutes/seconds written as ``2h``, ``5m``, ``31s``, ``1h30m``."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration cannot be negative ({value})")
        return timedelta(seconds=value)
    found = _DURATION.match(value)
    if found is None:
        raise ValueError(f"{value!r} is not a duration: write 90, 31s, 5m, 2h or 1h30m")
    parts = {k: int(v) for k, v in found.groupdict(default="0").items()}
    return timedelta(hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def parse_instant(value: str) -> datetime:
    """ISO 8601 with a zone (``2026-11-25T19:00:00Z``), in UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no zone: add Z or an offset such as +01:00")
    return moment.astimezone(UTC)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{seconds}s" if seconds else "")
    return text or "0s"
