"""The simulator building blocks: fault plan triggers, wire time, the control surface over its socket."""

from __future__ import annotations

import asyncio
import json

import pytest

from simulators.common.clock import ManualClock
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.common.wire import wire_seconds


def test_fault_fires_at_the_nth_request_once() -> None:
    plan = FaultPlan([Fault(FaultKind.DROP_RESPONSE, at_request=3)])
    fired = [bool(plan.due(n, now=0.0)) for n in range(1, 7)]
    assert fired == [False, False, True, False, False, False]
    assert plan.pending() == []


def test_fault_fires_from_a_time_on_every_request_when_times_is_zero() -> None:
    clock = ManualClock()
    plan = FaultPlan([Fault(FaultKind.CORRUPT_CRC, at_time=5.0, times=0)])
    assert plan.due(1, clock.monotonic()) == []
    clock.advance(5.0)
    assert [f.kind for f in plan.due(2, clock.monotonic())] == [FaultKind.CORRUPT_CRC]
    assert [f.kind for f in plan.due(3, clock.monotonic())] == [FaultKind.CORRUPT_CRC]


def test_faults_filtered_by_kind_and_cleared() -> None:
    plan = FaultPlan()
    plan.add(Fault(FaultKind.JAM_DRAWER, params={"drawer": 2}))
    plan.add(Fault(FaultKind.DELAY_RESPONSE, params={"seconds": 0.5}))
    assert [f.kind for f in plan.due(1, 0.0, frozenset({FaultKind.DELAY_RESPONSE}))] == [FaultKind.DELAY_RESPONSE]
    plan.clear(FaultKind.JAM_DRAWER)
    assert plan.pending() == []


def test_manual_clock_never_runs_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        ManualClock().advance(-1)


@pytest.mark.parametrize(("count", "baud", "seconds"), [(10, 115_200, 10 * 10 / 115_200), (1, 9600, 10 / 9600)])
def test_wire_time_at_8n1(count: int, baud: int, seconds: float) -> None:
    assert wire_seconds(count, baud) == pytest.approx(seconds)


def test_wire_time_needs_a_baud_rate() -> None:
    with pytest.raises(ValueError, match="baudrate"):
        wire_seconds(1, 0)


def test_control_surface_over_its_socket() -> None:
    drawers: dict[int, bool] = {}

    def open_drawer(drawer: int) -> bool:
        drawers[drawer] = True
        return True

    async def scenario() -> list[dict[str, object]]:
        surface = ControlSurface()
        surface.register("io_board", {"open_drawer": open_drawer})
        port = await surface.serve()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = []
        for line in (
            b'{"device": "io_board", "action": "open_drawer", "args": {"drawer": 2}}\n',
            b'{"device": "io_board", "action": "fly"}\n',
            b'{"device": "io_board", "action": "open_drawer", "args": {"wrong": 1}}\n',
            b"not json\n",
            b"[1, 2]\n",
        ):
            writer.write(line)
            await writer.drain()
            answers.append(json.loads(await asyncio.wait_for(reader.readline(), 5)))
        writer.close()
        await writer.wait_closed()
        await surface.close()
        return answers

    answers = asyncio.run(scenario())
    assert answers[0] == {"ok": True, "result": True} and drawers == {2: True}
    assert answers[1]["ok"] is False and "unknown action io_board.fly" in str(answers[1]["error"])
    assert answers[2]["ok"] is False and "TypeError" in str(answers[2]["error"])
    assert answers[3]["ok"] is False and "not JSON" in str(answers[3]["error"])
    assert answers[4] == {"ok": False, "error": "send a JSON object"}
