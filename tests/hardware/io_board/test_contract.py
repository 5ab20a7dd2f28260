"""One contract for every IoBoard: the fake, and the driver on the simulator over TCP and over RTU on a pty."""

from __future__ import annotations

from typing import Any

import pytest

from controller.errors import ControllerError, DeviceFaultError
from controller.hardware.io_board.interface import Blink, Buzzer, Colour, IoBoard, Light
from tests.hardware.io_board.rigs import KINDS, LAYOUT, Rig, open_rig, run


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def scenario(kind: str, body: object, protocol_version: int = 2) -> None:
    async def go() -> None:
        async with open_rig(kind, protocol_version=protocol_version) as rig:
            await body(rig)  # type: ignore[operator]

    run(go())


def test_is_an_io_board_and_identifies_itself(kind: str) -> None:
    async def body(rig: Rig) -> None:
        assert isinstance(rig.board, IoBoard)
        identity = await rig.board.identify()
        assert identity.is_simulator is True
        assert identity.firmware_version == "1.4.2"
        assert identity.protocol_version == 2 and identity.counts_openings
        assert (identity.drawer_count, identity.pockets_per_drawer) == (LAYOUT.drawer_count, LAYOUT.pockets_per_drawer)
        snapshot = await rig.board.snapshot()
        assert snapshot.is_simulator and snapshot.faults == frozenset()
        assert snapshot.protocol_version == 2
        assert len(snapshot.drawers) == LAYOUT.drawer_count
        assert all(d.is_closed and not d.lock_released for d in snapshot.drawers)
        assert snapshot.drawer(4).motorised and not snapshot.drawer(1).motorised

    scenario(kind, body)


def test_unlock_open_close_latches(kind: str) -> None:
    async def body(rig: Rig) -> None:
        board = rig.board
        state = await board.ensure_unlocked(1, 5.0)
        assert state.lock_released and state.lock_commanded and state.hold_s == 5.0
        again = await board.ensure_unlocked(1, 5.0)  # idempotent: restarts the hold
        assert again.lock_released
        rig.open_drawer(1)
        rig.advance(60)  # an open drawer stays unlocked past its hold time
        opened = await board.drawer_state(1)
        assert opened.is_open and opened.lock_released
        rig.close_drawer(1)
        closed = await board.drawer_state(1)
        assert closed.is_closed and not closed.lock_released and not closed.lock_commanded

    scenario(kind, body)


def test_unopened_drawer_relocks_when_the_hold_expires(kind: str) -> None:
    async def body(rig: Rig) -> None:
        await rig.board.ensure_unlocked(2, 3.0)
        rig.advance(2.9)
        assert (await rig.board.drawer_state(2)).lock_released
        rig.advance(0.2)
        state = await rig.board.drawer_state(2)
        assert not state.lock_released and not state.lock_commanded
        with pytest.raises(ValueError):
            rig.open_drawer(2)

    scenario(kind, body)


def test_ensure_locked_is_idempotent_and_latches_an_open_drawer_on_close(kind: str) -> None:
    async def body(rig: Rig) -> None:
        board = rig.board
        assert not (await board.ensure_locked(3)).lock_released  # already locked: no-op
        await board.ensure_unlocked(3, 10)
        assert not (await board.ensure_locked(3)).lock_released  # closed: latches at once
        await board.ensure_unlocked(3, 10)
        rig.open_drawer(3)
        pending = await board.ensure_locked(3)
        assert pending.latch_pending
        rig.close_drawer(3)
        assert not (await board.drawer_state(3)).lock_released

    scenario(kind, body)


def test_lids(kind: str) -> None:
    async def body(rig: Rig) -> None:
        board = rig.board
        await board.ensure_unlocked(2, 30)
        rig.open_drawer(2)
        lid = await board.ensure_lid_unlocked(2, 1, 5)
        assert lid.lidded and lid.lid_released
        rig.lift_lid(2, 1)
        snapshot = await board.snapshot()
        assert snapshot.drawer(2).lids_open == {1} and snapshot.drawer(2).lids_released == {1}
        rig.close_lid(2, 1)
        assert not (await board.lid_state(2, 1)).lid_released
        await board.ensure_lid_unlocked(2, 2, 2)
        locked = await board.ensure_lid_locked(2, 2)
        assert not locked.lid_released
        with pytest.raises(ValueError):
            await board.ensure_lid_unlocked(2, 3, 5)  # no lid there
        with pytest.raises(ValueError):
            await board.ensure_lid_unlocked(2, 9, 5)

    scenario(kind, body)


def test_lights_and_buzzer(kind: str) -> None:
    async def body(rig: Rig) -> None:
        board = rig.board
        await board.set_light(1, 2, Colour.GREEN, Blink.FAST)
        assert await board.read_light(1, 2) == Light(Colour.GREEN, Blink.FAST)
        await board.lights_off()
        assert await board.read_light(1, 2) == Light()
        with pytest.raises(ValueError):
            await board.set_light(1, 2, "purple", Blink.STEADY)  # type: ignore[arg-type]
        await board.set_buzzer(Buzzer.ALARM)
        assert (await board.snapshot()).buzzer is Buzzer.ALARM

    scenario(kind, body)


def test_environment(kind: str) -> None:
    async def body(rig: Rig) -> None:
        rig.set_temperature(-18.5)
        reading = await rig.board.read_environment()
        assert reading.temperature_c == -18.5 and reading.mains_present and not reading.on_ups
        rig.cut_power()
        reading = (await rig.board.snapshot()).environment
        assert not reading.mains_present and reading.on_ups
        rig.restore_power()
        assert (await rig.board.read_environment()).mains_present

    scenario(kind, body)


def test_bad_arguments_are_refused_before_the_wire(kind: str) -> None:
    async def body(rig: Rig) -> None:
        for call in (
            rig.board.ensure_unlocked(0, 5),
            rig.board.ensure_unlocked(LAYOUT.drawer_count + 1, 5),
            rig.board.ensure_unlocked(1, 0.5),
            rig.board.ensure_unlocked(1, 121),
            rig.board.set_watchdog_timeout(50),
        ):
            with pytest.raises(ValueError):
                await call

    scenario(kind, body)


# --- faults: each produces its documented typed error, none a silent success -------------------------------------


def expect(code: str) -> Any:
    return pytest.raises(ControllerError, match=rf"^\[{code}\]")


def test_jammed_drawer(kind: str) -> None:
    async def body(rig: Rig) -> None:
        rig.jam_drawer(1)
        with expect("device.drawer_jammed") as caught:
            await rig.board.ensure_unlocked(1, 5)
        assert isinstance(caught.value, DeviceFaultError)
        assert "jam" in (await rig.board.snapshot()).faults
        with expect("device.drawer_jammed"):
            await rig.board.ensure_unlocked(1, 5)  # refused before actuating while the jam bit is set
        assert not (await rig.board.ensure_locked(1)).jammed  # locking clears it
        assert await rig.board.ensure_unlocked(2, 5)  # other drawers unaffected

    scenario(kind, body)


def test_lock_that_does_not_move(kind: str) -> None:
    async def body(rig: Rig) -> None:
        rig.fail_lock(1)
        with expect("device.lock_not_engaged"):
            await rig.board.ensure_unlocked(1, 5)
        await rig.board.ensure_unlocked(2, 5)
        rig.fail_lock(2)
        with expect("device.lock_not_engaged"):
            await rig.board.ensure_locked(2)

    scenario(kind, body)


def test_lid_lock_that_does_not_move(kind: str) -> None:
    async def body(rig: Rig) -> None:
        rig.fail_lock(2, 1)
        with expect("device.lock_not_engaged"):
            await rig.board.ensure_lid_unlocked(2, 1, 5)

    scenario(kind, body)


def test_stuck_sensor(kind: str) -> None:
    async def body(rig: Rig) -> None:
        rig.stick_sensor(3, "open", True)
        snapshot = await rig.board.snapshot()
        assert "sensor_disagreement" in snapshot.faults and snapshot.drawer(3).sensor_disagreement
        with expect("device.sensor_disagreement"):
            await rig.board.ensure_unlocked(3, 5)

    scenario(kind, body)


def test_reboot_loses_state_and_blocks_unlock_until_acknowledged(kind: str) -> None:
    async def body(rig: Rig) -> None:
        await rig.board.ensure_unlocked(1, 30)
        await rig.board.set_light(1, 1, Colour.RED)
        rig.reboot()
        snapshot = await rig.board.snapshot()
        assert "rebooted" in snapshot.faults and not snapshot.drawer(1).lock_released
        assert await rig.board.read_light(1, 1) == Light()
        with expect("device.rebooted"):
            await rig.board.ensure_unlocked(1, 5)
        assert await rig.board.acknowledge_faults() == frozenset()
        assert (await rig.board.ensure_unlocked(1, 5)).lock_released

    scenario(kind, body)


@pytest.mark.parametrize(
    ("fault", "code"), [("low_voltage", "device.low_voltage"), ("over_current", "device.over_current")]
)
def test_electrical_faults_block_unlock(kind: str, fault: str, code: str) -> None:
    async def body(rig: Rig) -> None:
        if fault == "low_voltage":
            rig.set_supply_voltage(18.0)
        else:
            rig.short_circuit()
        assert fault in (await rig.board.snapshot()).faults
        with expect(code):
            await rig.board.ensure_unlocked(1, 5)
        assert not (await rig.board.drawer_state(1)).lock_released

    scenario(kind, body)


def test_watchdog_relocks_when_heartbeats_stop(kind: str) -> None:
    async def body(rig: Rig) -> None:
        board = rig.board
        await board.set_watchdog_timeout(1000)
        await board.heartbeat(1)
        await board.ensure_unlocked(1, 60)
        await board.ensure_unlocked(2, 60)
        rig.open_drawer(2)
        for beat in range(2, 6):  # heartbeats keep it alive
            rig.advance(0.5)
            await board.heartbeat(beat)
        assert (await board.drawer_state(1)).lock_released
        rig.advance(0.5)
        await board.heartbeat(5)  # the same value again is not a heartbeat
        rig.advance(0.6)
        snapshot = await board.snapshot()
        assert "watchdog_expired" in snapshot.faults
        assert not snapshot.drawer(1).lock_released  # relocked
        assert snapshot.drawer(2).latch_pending  # the open drawer latches as it closes
        rig.close_drawer(2)
        assert not (await board.drawer_state(2)).lock_released
        with pytest.raises(DeviceFaultError):
            await board.ensure_unlocked(1, 5)
        await board.acknowledge_faults(["watchdog_expired"])
        await board.heartbeat(6)
        assert (await board.ensure_unlocked(1, 5)).lock_released

    scenario(kind, body)


# --- opening counters (protocol version 2): an opening no snapshot saw is never lost --------------------------------


async def open_and_close(rig: Rig, drawer: int) -> None:
    """A person opens the drawer and pushes it home; the controller reads nothing in between."""
    await rig.board.ensure_unlocked(drawer, 30)
    rig.open_drawer(drawer)
    rig.close_drawer(drawer)


async def lift_and_close_lid(rig: Rig, drawer: int, pocket: int) -> None:
    await rig.board.ensure_unlocked(drawer, 30)
    rig.open_drawer(drawer)
    await rig.board.ensure_lid_unlocked(drawer, pocket, 10)
    rig.lift_lid(drawer, pocket)
    rig.close_lid(drawer, pocket)


def test_an_opening_between_two_snapshots_shows_as_unrecorded(kind: str) -> None:
    async def body(rig: Rig) -> None:
        board = rig.board
        before = (await board.snapshot()).drawer(1)
        assert (before.openings, before.openings_seen, before.unrecorded_openings) == (0, 0, 0)
        assert before.lid_openings == {}
        await open_and_close(rig, 1)
        after = (await board.snapshot()).drawer(1)
        assert after.is_closed and not after.lock_released  # the sensors alone show nothing happened
        assert (after.openings, after.openings_seen, after.unrecorded_openings) == (1, 0, 1)
        assert (await board.drawer_state(1)).unrecorded_openings == 1  # every state carries the counters
        await board.ensure_openings_seen(1, 1)  # the openings value read
        cleared = (await board.snapshot()).drawer(1)
        assert (cleared.openings, cleared.openings_seen, cleared.unrecorded_openings) == (1, 1, 0)

    scenario(kind, body)


def test_a_lid_opening_between_two_snapshots_shows_as_unrecorded(kind: str) -> None:
    async def body(rig: Rig) -> None:
        board = rig.board
        await lift_and_close_lid(rig, 2, 2)
        drawer = (await board.snapshot()).drawer(2)
        assert drawer.lids_open == frozenset()
        assert drawer.lid_openings == {2: (1, 0)}  # only the lids whose latch is set
        assert drawer.unrecorded_lid_openings(2) == 1 and drawer.unrecorded_lid_openings(1) == 0
        assert drawer.unrecorded_openings == 1  # and the drawer it is in was opened too
        with pytest.raises(TypeError):
            drawer.lid_openings[1] = (0, 0)  # type: ignore[index]  # a frozen state's mapping is read-only
        await board.ensure_lid_openings_seen(2, 2, 1)
        drawer = (await board.snapshot()).drawer(2)
        assert drawer.lid_openings == {} and drawer.unrecorded_lid_openings(2) == 0

    scenario(kind, body)


def test_an_opening_after_the_snapshot_stays_unrecorded_and_a_retry_is_harmless(kind: str) -> None:
    async def body(rig: Rig) -> None:
        board = rig.board
        await open_and_close(rig, 1)
        read = (await board.snapshot()).drawer(1)
        assert read.openings == 1
        await open_and_close(rig, 1)  # between the controller's read and its acknowledgement
        await board.ensure_openings_seen(1, 1)
        await board.ensure_openings_seen(1, 1)  # the same acknowledgement again (a retry) changes nothing
        state = (await board.snapshot()).drawer(1)
        assert (state.openings, state.openings_seen, state.unrecorded_openings) == (2, 1, 1)
        await lift_and_close_lid(rig, 2, 1)
        lid_read = (await board.snapshot()).drawer(2).lid_openings[1]
        await board.ensure_lid_unlocked(2, 1, 10)
        rig.lift_lid(2, 1)
        rig.close_lid(2, 1)
        for _ in range(2):
            await board.ensure_lid_openings_seen(2, 1, lid_read[0])
        assert (await board.snapshot()).drawer(2).lid_openings == {1: (2, 1)}

    scenario(kind, body)


def test_a_forced_opening_through_a_stuck_sensor_is_counted(kind: str) -> None:
    async def body(rig: Rig) -> None:
        rig.stick_sensor(3, "open", True)  # nobody unlocked drawer 3: the sensors say it was forced
        rig.unstick_sensors(3)
        state = (await rig.board.snapshot()).drawer(3)
        assert state.is_closed and state.unrecorded_openings == 1

    scenario(kind, body)


def test_counters_survive_a_reboot_and_a_controller_that_was_away(kind: str) -> None:
    async def body(rig: Rig) -> None:
        await open_and_close(rig, 1)
        await lift_and_close_lid(rig, 2, 1)
        rig.close_drawer(2)
        rig.reboot()
        snapshot = await rig.board.snapshot()
        assert "rebooted" in snapshot.faults
        assert snapshot.drawer(1).unrecorded_openings == 1  # the board's counters are not volatile
        assert snapshot.drawer(2).lid_openings == {1: (1, 0)}
        await rig.board.acknowledge_faults()
        await rig.board.ensure_openings_seen(1, 1)
        await rig.board.ensure_unlocked(4, 60)
        await rig.disconnect()
        rig.open_drawer(4)  # while no controller is connected
        rig.close_drawer(4)
        rig.stick_sensor(1, "closed", False)  # and drawer 1 pried off its closed sensor
        await rig.reconnect()
        identity = await rig.board.identify()
        assert identity.counts_openings
        snapshot = await rig.board.snapshot()
        assert snapshot.drawer(4).unrecorded_openings == 1
        assert (snapshot.drawer(1).openings, snapshot.drawer(1).unrecorded_openings) == (2, 1)

    scenario(kind, body)


def test_the_counter_wraps_at_65535(kind: str) -> None:
    async def body(rig: Rig) -> None:
        rig.preset_openings(1, 65535)  # a board with a long service history
        rig.preset_openings(2, 65535, pocket=1)
        assert (await rig.board.snapshot()).drawer(1).unrecorded_openings == 0
        await open_and_close(rig, 1)
        await lift_and_close_lid(rig, 2, 1)
        snapshot = await rig.board.snapshot()
        state = snapshot.drawer(1)
        assert (state.openings, state.openings_seen, state.unrecorded_openings) == (0, 65535, 1)
        assert snapshot.drawer(2).lid_openings == {1: (0, 65535)} and snapshot.drawer(2).unrecorded_lid_openings(1) == 1
        await rig.board.ensure_openings_seen(1, 0)
        await rig.board.ensure_lid_openings_seen(2, 1, 0)
        snapshot = await rig.board.snapshot()
        assert snapshot.drawer(1).unrecorded_openings == 0 and snapshot.drawer(2).lid_openings == {}

    scenario(kind, body)


def test_an_acknowledgement_the_board_does_not_keep_is_a_typed_fault(kind: str) -> None:
    async def body(rig: Rig) -> None:
        await open_and_close(rig, 1)
        rig.fail_counter_write(1)
        with expect("device.write_not_confirmed") as caught:
            await rig.board.ensure_openings_seen(1, 1)
        assert isinstance(caught.value, DeviceFaultError)
        assert (await rig.board.snapshot()).drawer(1).unrecorded_openings == 1  # still shows: nothing is lost
        rig.fail_counter_write(2, 2)
        with expect("device.write_not_confirmed"):
            await rig.board.ensure_lid_openings_seen(2, 2, 3)

    scenario(kind, body)


def test_bad_acknowledgements_are_refused_before_the_wire(kind: str) -> None:
    async def body(rig: Rig) -> None:
        for call in (
            rig.board.ensure_openings_seen(0, 1),
            rig.board.ensure_openings_seen(LAYOUT.drawer_count + 1, 1),
            rig.board.ensure_openings_seen(1, -1),
            rig.board.ensure_openings_seen(1, 65536),
            rig.board.ensure_lid_openings_seen(1, LAYOUT.pockets_per_drawer + 1, 0),
            rig.board.ensure_lid_openings_seen(1, 1, 70000),
        ):
            with pytest.raises(ValueError):
                await call

    scenario(kind, body)


def test_a_version_1_board_has_no_counters_and_the_ensures_do_nothing(kind: str) -> None:
    async def body(rig: Rig) -> None:
        board = rig.board
        identity = await board.identify()
        assert identity.protocol_version == 1 and not identity.counts_openings
        await open_and_close(rig, 1)
        await lift_and_close_lid(rig, 2, 1)
        snapshot = await board.snapshot()
        assert snapshot.protocol_version == 1
        for state in (*snapshot.drawers, await board.drawer_state(1)):
            assert state.openings is None and state.openings_seen is None and state.unrecorded_openings is None
            assert state.lid_openings == {} and state.unrecorded_lid_openings(1) == 0
        requests = getattr(rig.world, "request_count", 0)
        await board.ensure_openings_seen(1, 5)  # nothing to acknowledge on this board: no error, no request
        await board.ensure_lid_openings_seen(2, 1, 5)
        assert getattr(rig.world, "request_count", 0) == requests
        with pytest.raises(ValueError):
            await board.ensure_openings_seen(LAYOUT.drawer_count + 1, 0)  # arguments are still checked
        assert (await board.ensure_unlocked(3, 5)).lock_released  # and the rest works as it always did

    scenario(kind, body, protocol_version=1)
