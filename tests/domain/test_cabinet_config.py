"""A layout document read into pocket assignments: every problem named, so the pharmacist can fix the file."""

from __future__ import annotations

import pytest

from controller.domain.cabinet_config import parse_layout
from controller.errors import ControllerError

ROW = {"pocket": "D1-P01", "item": "ACETAMINOPHEN-325MG-TAB", "par": 40, "min": 12, "max": 60}


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({}, "non-empty list"),
        ({"pockets": [ROW, ROW]}, "named twice"),
        ({"pockets": [ROW | {"colour": "red"}]}, "'colour'"),
        ({"pockets": [ROW | {"par": "40"}]}, "whole numbers"),
        ({"pockets": [ROW | {"item": None}]}, "an empty pocket has no levels"),
        ({"pockets": [{"item": "X"}]}, "'pocket' must name a pocket"),
    ],
)
def test_a_layout_names_each_problem(content: dict[str, object], named: str) -> None:
    with pytest.raises(ControllerError, match=named) as raised:
        parse_layout(content, source="layout.toml")
    assert raised.value.code == "fleet.layout_refused"


def test_an_empty_pocket_is_written_with_item_null() -> None:
    [emptied] = parse_layout({"pockets": [{"pocket": "D1-P02", "item": None}]}, source="layout.toml")
    assert (emptied.item_id, emptied.par, emptied.min, emptied.max) == (None, 0, 0, 0)
