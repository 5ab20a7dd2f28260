"""The driver and the board's protocol version, on the simulator over TCP: the map it uses follows register 1, a
version 2 snapshot costs exactly the reads SPEC.md says (the sensor read, the counters read, one short read per
drawer with lid openings pending), and a board whose firmware changes under a running driver is followed."""

from __future__ import annotations

from controller.hardware.io_board.driver import IoBoardDriver
from firmware_protocols.io_board.register_map import load_register_map
from tests.hardware.io_board.rigs import LAYOUT, Rig, open_rig, run


def requests_of(rig: Rig) -> int:
    return int(rig.world.request_count)


def test_a_version_1_snapshot_is_one_read() -> None:
    async def go() -> None:
        async with open_rig("tcp", protocol_version=1) as rig:
            assert isinstance(rig.board, IoBoardDriver)
            assert rig.board.map.protocol.protocol_version == 1 and not rig.board.map.counts_openings
            before = requests_of(rig)
            snapshot = await rig.board.snapshot()
            assert requests_of(rig) == before + 1 and snapshot.protocol_version == 1

    run(go())


def test_a_version_2_snapshot_reads_the_counters_and_only_the_pending_lids() -> None:
    async def go() -> None:
        async with open_rig("tcp") as rig:
            board = rig.board
            assert isinstance(board, IoBoardDriver)
            before = requests_of(rig)
            await board.snapshot()
            assert requests_of(rig) == before + 2  # sensors, then every drawer's counters
            await board.ensure_unlocked(2, 30)
            rig.open_drawer(2)
            for pocket in (1, 2):
                await board.ensure_lid_unlocked(2, pocket, 10)
                rig.lift_lid(2, pocket)
                rig.close_lid(2, pocket)
            before = requests_of(rig)
            snapshot = await board.snapshot()
            assert requests_of(rig) == before + 3  # plus one read covering both of drawer 2's lids
            assert snapshot.drawer(2).lid_openings == {1: (1, 0), 2: (1, 0)}
            assert all(snapshot.drawer(d).lid_openings == {} for d in (1, 3, 4))

    run(go())


def test_decoding_the_sensor_words_alone_gives_no_counters() -> None:
    """``decode_snapshot`` of one span read alone is pure and carries no counters (the counters are a second read)."""

    async def go() -> None:
        async with open_rig("tcp") as rig:
            board = rig.board
            assert isinstance(board, IoBoardDriver)
            first, count = board.map.snapshot_span(LAYOUT.drawer_count)
            model = rig.world
            words = [model.read_register(address) for address in range(first, first + count)]
            snapshot = board.decode_snapshot(words)
            assert snapshot.protocol_version == 2 and snapshot.drawer(1).openings is None

    run(go())


def test_a_board_whose_register_map_changes_is_followed() -> None:
    """A board swapped for a spare with version 1 firmware (same address): the next snapshot sees register 1 change,
    identifies the board again, and reads it as version 1 from then on."""

    async def go() -> None:
        async with open_rig("tcp") as rig:
            board = rig.board
            assert isinstance(board, IoBoardDriver)
            assert (await board.snapshot()).drawer(1).openings == 0
            rig.world.map = load_register_map(1)  # the model now serves the version 1 map
            snapshot = await board.snapshot()
            assert snapshot.protocol_version == 1 and snapshot.drawer(1).openings is None
            assert board.identity.protocol_version == 1 and not board.identity.counts_openings
            await board.ensure_openings_seen(1, 3)  # a no-op now: nothing is written to an unmapped address

    run(go())
