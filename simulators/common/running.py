"""What a started simulator hands back to the runner (``python -m simulators`` / ``adc sim``) and to tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class RunningSimulator:
    name: str  # "io_board", "pill_counter", "scanner", "label_printer"
    env_var: str  # the controller setting that points at it, e.g. "ADC_IO_BOARD"
    url: str  # the endpoint to put in that setting, e.g. "tcp://127.0.0.1:5020?unit=1"
    model: Any  # the deterministic device model, for in-process control
    close: Callable[[], Awaitable[None]]
