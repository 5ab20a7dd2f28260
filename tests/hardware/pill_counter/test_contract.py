"""One contract for every PillCounter / CanisterRobot: the fake, and the driver against the simulator over TCP and
over a pseudo-terminal. Each device fault produces its catalogue error; none comes back as a success."""

from __future__ import annotations

import pytest

from controller.errors import CommunicationError, DeviceFaultError
from controller.hardware.pill_counter.interface import CanisterRobot, CounterState, PillCounter
from tests.hardware.pill_counter.rigs import FAULT_FOR_CODE, RIG_KINDS, Rig, run, with_rig

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=RIG_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_identify_reads_is_simulator_from_the_device(kind: str) -> None:
    async def body(rig: Rig) -> None:
        assert isinstance(rig.device, PillCounter) and isinstance(rig.device, CanisterRobot)
        identity = await rig.device.identify()
        assert identity.is_simulator is True
        assert identity.has_robot is True
        assert identity.protocol_version == 1

    run(with_rig(kind, body))


def test_count_fills_the_vial_and_clear_returns_to_idle(kind: str) -> None:
    async def body(rig: Rig) -> None:
        result = await rig.device.count(30, timeout=5)
        assert (result.target, result.count) == (30, 30)
        assert rig.vial() == 30
        assert (await rig.device.status()).state is CounterState.DONE
        status = await rig.device.clear()
        assert status.state is CounterState.IDLE

    run(with_rig(kind, body, hopper=100))


def test_a_second_count_before_clear_is_refused(kind: str) -> None:
    async def body(rig: Rig) -> None:
        await rig.device.count(5, timeout=5)
        with pytest.raises(CommunicationError) as caught:
            await rig.device.count(5, timeout=5)
        assert caught.value.code == "comm.protocol"
        assert rig.vial() == 5

    run(with_rig(kind, body, hopper=100))


@pytest.mark.parametrize("target", [0, 10_000])
def test_out_of_range_target_is_a_protocol_error(kind: str, target: int) -> None:
    async def body(rig: Rig) -> None:
        with pytest.raises(CommunicationError) as caught:
            await rig.device.count(target, timeout=5)
        assert caught.value.code == "comm.protocol"

    run(with_rig(kind, body, hopper=100))


def test_hopper_running_out_is_hopper_empty(kind: str) -> None:
    async def body(rig: Rig) -> None:
        with pytest.raises(DeviceFaultError) as caught:
            await rig.device.count(30, timeout=5)
        assert caught.value.code == "device.hopper_empty"
        assert rig.vial() == 12
        status = await rig.device.status()
        assert status.state is CounterState.FAULT and status.fault_code == "device.hopper_empty"

    run(with_rig(kind, body, hopper=12))


def test_empty_hopper_refuses_to_start(kind: str) -> None:
    async def body(rig: Rig) -> None:
        with pytest.raises(DeviceFaultError) as caught:
            await rig.device.count(3, timeout=5)
        assert caught.value.code == "device.hopper_empty"
        assert rig.vial() == 0

    run(with_rig(kind, body, hopper=0))


def test_open_cover_blocks_counting_and_clearing(kind: str) -> None:
    async def body(rig: Rig) -> None:
        rig.open_cover()
        with pytest.raises(DeviceFaultError) as caught:
            await rig.device.count(3, timeout=5)
        assert caught.value.code == "device.cover_open"
        with pytest.raises(DeviceFaultError):
            await rig.device.clear()
        rig.close_cover()
        assert (await rig.device.clear()).state is CounterState.IDLE
        assert (await rig.device.count(3, timeout=5)).count == 3

    run(with_rig(kind, body, hopper=10))


@pytest.mark.parametrize("code", sorted(FAULT_FOR_CODE))
def test_every_device_fault_raises_its_catalogue_error_on_count(kind: str, code: str) -> None:
    async def body(rig: Rig) -> None:
        rig.fail_next(code)
        with pytest.raises(DeviceFaultError) as caught:
            await rig.device.count(20, timeout=5)
        assert caught.value.code == code
        status = await rig.device.status()
        assert status.state is CounterState.FAULT and status.fault_code == code
        if code == "device.cover_open":
            rig.close_cover()
        await rig.device.clear()
        assert (await rig.device.status()).state is CounterState.IDLE

    run(with_rig(kind, body, hopper=100))


@pytest.mark.parametrize("code", sorted(FAULT_FOR_CODE))
def test_every_device_fault_raises_its_catalogue_error_on_dispense(kind: str, code: str) -> None:
    async def body(rig: Rig) -> None:
        rig.fail_next(code)
        with pytest.raises(DeviceFaultError) as caught:
            await rig.device.dispense(1, 4)
        assert caught.value.code == code

    run(with_rig(kind, body))


def test_dispense_moves_tablets_from_the_canister_to_the_vial(kind: str) -> None:
    async def body(rig: Rig) -> None:
        result = await rig.device.dispense(2, 7)
        assert (result.canister, result.dispensed) == (2, 7)
        assert rig.vial() == 7
        report = await rig.device.report()
        assert report.selected == 2 and report.vial == 7
        assert report.canisters[2] == 493 and report.canisters[1] == 500

    run(with_rig(kind, body))


def test_dispense_more_than_the_canister_holds_is_hopper_empty(kind: str) -> None:
    async def body(rig: Rig) -> None:
        with pytest.raises(DeviceFaultError) as caught:
            await rig.device.dispense(1, 501)
        assert caught.value.code == "device.hopper_empty"
        assert rig.vial() == 0

    run(with_rig(kind, body))


@pytest.mark.parametrize(("canister", "n"), [(9, 1), (1, 0)])
def test_bad_dispense_parameters_are_protocol_errors(kind: str, canister: int, n: int) -> None:
    async def body(rig: Rig) -> None:
        with pytest.raises(CommunicationError) as caught:
            await rig.device.dispense(canister, n)
        assert caught.value.code == "comm.protocol"
        assert rig.vial() == 0

    run(with_rig(kind, body))
