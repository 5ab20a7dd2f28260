"""Virtual time for a scenario: one clock the engine reads (``FixedClock``, UTC datetimes) and one the simulators
read (``DeviceClock``, monotonic seconds, what ``simulators.common.clock.SimClock`` asks for), always moved
together, so a hold timer on the board, a fridge warming at 0.5 °C a minute and an inactivity logoff all see the
same twelve hours pass in an instant.

The counter's motor is the exception: a count of N tablets takes N / rate seconds of device time, which the driver
waits for by polling. ``MotorClock`` lets that time pass by a fixed step at every read of the counter's clock, on
top of the virtual time, so a count finishes after a fixed number of polls, whatever the real time. Not
responsible for when time moves (the runner advances it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.domain.clock import FixedClock

SIM_EPOCH_S = 1000.0  # the simulators' monotonic time at the scenario's start
MOTOR_STEP_S = 0.05  # device time that passes each time the counter looks at its clock


class DeviceClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self, start_s: float) -> None:
        self._now_s = start_s

    def monotonic(self) -> float:
        return self._now_s

    def advance(self, seconds: float) -> None:
        self._now_s += seconds


class VirtualClock:
    def __init__(self, start: datetime) -> None:
        self.engine = FixedClock(start)
        self.devices = DeviceClock(SIM_EPOCH_S)
        self.start = self.engine.now()

    def now(self) -> datetime:
        return self.engine.now()

    @property
    def elapsed(self) -> timedelta:
        return self.engine.now() - self.start

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("time does not run backwards")
        self.engine.advance(delta)
        self.devices.advance(delta.total_seconds())


class MotorClock:
    """The counter's clock: virtual time plus the motor time its polls have let pass."""

    def __init__(self, virtual: DeviceClock, step_s: float = MOTOR_STEP_S) -> None:
        self._virtual = virtual
        self._step_s = step_s
        self._motor_s = 0.0

    def monotonic(self) -> float:
        self._motor_s += self._step_s
        return self._virtual.monotonic() + self._motor_s
