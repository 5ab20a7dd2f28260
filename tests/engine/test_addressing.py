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
