"""What the central reads of stock out of an entry's body, and what it refuses to guess from a damaged one."""

from __future__ import annotations

from datetime import date

import pytest

from controller.domain.fleet_stock import HoldPlaced, HoldReleased, LotLevel, PocketAssigned, stock_fact


def body(event_type: str, **fields: object) -> dict[str, object]:
    return {"event_type": event_type, "details": {}, **fields}


def test_a_stock_entry_gives_the_lot_quantity_after_and_expiry() -> None:
    fact = stock_fact(
        body(
            "dose.removed",
            pocket_id="D1-P01",
            item_id="X",
            lot_number="L1",
            quantity_change=-2,
            details={"lot_expiry": "2027-01-31", "lot_quantity_after": 8},
        )
    )
    assert fact == LotLevel("D1-P01", "X", "L1", date(2027, 1, 31), 8, -2)


def test_an_assignment_gives_the_levels_and_a_recall_a_hold_on_every_pocket() -> None:
    assigned = body("pocket.item_assigned", pocket_id="P", item_id="X", details={"par": 10, "min": 3, "max": 20})
    assert stock_fact(assigned) == PocketAssigned("P", "X", 10, 3, 20)
    recall = body("stock.quarantined", item_id="X", lot_number="L1", reason_code="recall")
    assert stock_fact(recall) == HoldPlaced("X", "L1", None, "recall")
    released = body("stock.quarantine_reviewed", details={"decision": "release", "quarantined_seq": 7})
    assert stock_fact(released) == HoldReleased(7)
    condemned = body("stock.quarantine_reviewed", details={"decision": "destroy", "quarantined_seq": 7})
    assert stock_fact(condemned) is None  # a condemned lot stays held


@pytest.mark.parametrize(
    "document",
    [
        body("no.such_event"),
        body("dose.removed", pocket_id="P", lot_number="L1"),  # no quantity change
        body("dose.removed", pocket_id="P", quantity_change=-1),  # no lot
        body("pocket.item_assigned", pocket_id="P", item_id="X", details={"par": "ten"}),
        body("stock.quarantine_reviewed", details={"decision": "release", "quarantined_seq": "7"}),
        {"event_type": "dose.removed", "details": ["not", "a", "mapping"]},
        body("session.login", actor_id="NURSE1"),
    ],
)
def test_an_entry_without_a_stock_fact_or_with_a_damaged_one_yields_none(document: dict[str, object]) -> None:
    assert stock_fact(document) is None


def test_a_bad_expiry_or_missing_quantity_after_is_not_invented() -> None:
    fact = stock_fact(body("stock.restocked", pocket_id="P", item_id="X", lot_number="L", quantity_change=5,
                           details={"lot_expiry": "31/01/2027"}))  # fmt: skip
    assert fact == LotLevel("P", "X", "L", None, None, 5)
