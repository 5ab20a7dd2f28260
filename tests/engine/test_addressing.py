"""Cabinet topology to I/O board addresses (``controller.engine.topology``), and the command registry."""

from __future__ import annotations

import pytest

from controller.domain.clock import FixedClock
from controller.domain.topology import DrawerKind
from controller.engine.registry import Registry
from controller.engine.topology import BoardAddress, CabinetTopology, board_address
from controller.hardware.io_board.fake import FakeIoBoard
from controller.store.database import Database
from tests.engine.rig import BOARD_LAYOUT, make_engine, seed


@pytest.mark.parametrize(
    ("kind", "drawer", "pocket", "expected"),
    [
        (DrawerKind.MATRIX, 1, 3, BoardAddress(1)),
        (DrawerKind.LIDDED, 2, 1, BoardAddress(2, 1)),
        (DrawerKind.SINGLE_DOSE, 3, 4, BoardAddress(3, 4)),
        (DrawerKind.REFRIGERATOR, 5, 2, BoardAddress(5)),
        (DrawerKind.RETURN_BIN, 6, 1, BoardAddress(6)),
        (DrawerKind.LIDDED, 2, None, BoardAddress(2)),
        ("lidded", 2, 2, BoardAddress(2, 2)),
    ],
)
def test_board_address(kind: DrawerKind | str, drawer: int, pocket: int | None, expected: BoardAddress) -> None:
    assert board_address(kind, drawer, pocket) == expected


def test_positions_start_at_one() -> None:
    with pytest.raises(ValueError):
        board_address(DrawerKind.MATRIX, 0, None)
    with pytest.raises(ValueError):
        board_address(DrawerKind.LIDDED, 1, 0)


def test_each_command_and_query_has_exactly_one_handler() -> None:
    """Handlers plug their commands and queries into the registry; a second handler for the same one is a bug."""
    from typing import Any

    from controller.engine.results import CommandResult

    class Ping:
        pass

    async def handler(_command: Any) -> CommandResult[Any]:
        return CommandResult.refuse("engine.no_workflow", "unused")

    registry = Registry()
    registry.command(Ping, handler)
    with pytest.raises(ValueError, match="already has a handler"):
        registry.command(Ping, handler)
    registry.query(Ping, lambda _query: CommandResult.refuse("engine.no_workflow", "unused"))
    with pytest.raises(ValueError, match="already has a handler"):
        registry.query(Ping, lambda _query: CommandResult.refuse("engine.no_workflow", "unused"))


def test_the_rig_cabinets_topology(db: Database, clock: FixedClock) -> None:
    """The engine's topology of the rig cabinet: a matrix drawer's pocket is behind its drawer; a lidded pocket is
    behind its drawer and then its own lid, and each compartment has its latch on the board."""
    seed(db, clock)
    board = FakeIoBoard(drawer_count=BOARD_LAYOUT.drawer_count, pockets_per_drawer=BOARD_LAYOUT.pockets_per_drawer,
                        lidded=BOARD_LAYOUT.lidded)  # fmt: skip
    topology: CabinetTopology = make_engine(db, board, clock).ctx.topology
    assert topology.unlock_chain == {"D1-P01": ("D1",), "D2-P01": ("D2", "D2-P01")}
    assert topology.address == {"D1": BoardAddress(1), "D2": BoardAddress(2), "D2-P01": BoardAddress(2, 1)}
    assert topology.innermost("D2-P01") == "D2-P01" and topology.innermost("D1-P01") == "D1"
    assert topology.pockets_behind("D1") == ["D1-P01"] and topology.pockets_behind("D2") == []
    assert topology.pockets_behind("D2-P01") == ["D2-P01"]
    assert set(topology.compartment_ids) == {"D1", "D2", "D2-P01"}
    assert topology.pocket_compartments == {"D1": None, "D2": None, "D2-P01": "D2-P01"}
