"""The simulated I/O board that `adc sim` and `adc serve` start has a latch for every pocket of the demo cabinet:
a lid lock where the engine will ask for one, and nothing beyond the board's size."""

from __future__ import annotations

import tomllib
from importlib import resources

from controller.domain.topology import DrawerKind
from controller.engine.topology import board_address
from simulators.io_board import DEMO_LAYOUT


def test_every_demo_pocket_has_its_latch_on_the_simulated_board() -> None:
    text = resources.files("controller").joinpath("data/demo_cabinet.toml").read_text("utf-8")
    drawers = tomllib.loads(text)["drawer"]
    assert len(drawers) <= DEMO_LAYOUT.drawer_count
    needed_lids = set()
    for d_index, drawer in enumerate(drawers, start=1):
        pockets = drawer.get("pocket", [])
        assert len(pockets) <= DEMO_LAYOUT.pockets_per_drawer, drawer["id"]
        for p_index, _pocket in enumerate(pockets, start=1):
            address = board_address(DrawerKind(drawer["kind"]), d_index, p_index)
            if address.is_lid:
                needed_lids.add((address.drawer, address.pocket))
    assert needed_lids == set(DEMO_LAYOUT.lidded)
