"""Cabinet topology to I/O board addresses."""

from __future__ import annotations

import pytest

from controller.domain.topology import DrawerKind
from controller.engine.addressing import BoardAddress, board_address


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


def test_each_extra_command_has_exactly_one_handler() -> None:
    """Workflow modules plug their commands into the engine; a second handler for the same command is a bug."""
    from typing import Any

    from controller.engine.cabinet import CabinetEngine
    from controller.engine.commands import CommandResult

    class Ping:
        pass

    async def handler(_command: Any) -> CommandResult:
        return CommandResult.success()

    engine = CabinetEngine.__new__(CabinetEngine)  # the registry needs no store or board
    engine._handlers = {}
    engine.register(Ping, handler)
    with pytest.raises(ValueError, match="already has a handler"):
        engine.register(Ping, handler)
