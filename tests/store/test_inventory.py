"""Stock changes: always together with their ledger entry, never negative, never in the wrong pocket."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from controller.domain.clock import FixedClock
from controller.domain.credentials import CredentialHasher, HashCost
from controller.domain.transactions import EventType, LedgerRecord
from controller.errors import ConfigurationError, SafetyError, SoftwareError, VerificationError
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import InventoryStore, StockChange, list_pockets
from controller.store.ledger import Ledger, verify_chain
from controller.store.seed import seed_cabinet

CABINET = "CAB-T"
FAST_HASHER = CredentialHasher(HashCost(time_cost=1, memory_kib=8, parallelism=1))


def small_layout() -> dict[str, Any]:
    return {
        "loaded_by": "TECH1",
        "care_area": {"id": "ICU", "name": "ICU", "profiled": True},
        "cabinet": {"id": CABINET, "name": "Test station"},
        "user": [{"id": "TECH1", "name": "Tech", "roles": ["technician"], "pin": "4444"}],
        "drawer": [
            {
                "id": "D1",
                "kind": "lidded",
                "label": "lidded",
                "pocket": [
                    {
                        "id": "D1-P01",
                        "item": "MORPHINE-4MG-ML-CARP",
                        "par": 10,
                        "min": 3,
                        "max": 15,
                        "lots": [
                            {"lot": "A1", "expiry": "2027-01-31", "quantity": 4},
                            {"lot": "B2", "expiry": "2027-06-30", "quantity": 6},
                        ],
                    },
                    {"id": "D1-P02", "item": "HEPARIN-5000U-ML-1ML", "par": 5, "min": 1, "max": 10},
                ],
            },
            {"id": "D2", "kind": "return_bin", "label": "returns", "pocket": [{"id": "D2-P01"}]},
        ],
    }


@pytest.fixture
def stocked(db: Database, clock: FixedClock) -> tuple[Database, Ledger]:
    ledger = Ledger(CABINET, clock, is_simulator=True)
    with db.write() as session:
        seed_cabinet(session, small_layout(), load_formulary(), ledger=ledger, hasher=FAST_HASHER, clock=clock)
    return db, ledger


def quantities(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {p.pocket_id: p.quantity for p in list_pockets(session, CABINET)}


def ledger_totals(db: Database) -> dict[str, int]:
    """Net units per pocket according to the ledger alone."""
    with db.reader.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT pocket_id, SUM(quantity_change) AS total FROM ledger_entries "
                "WHERE quantity_change IS NOT NULL GROUP BY pocket_id"
            )
        ).all()
    return {r.pocket_id: int(r.total) for r in rows}


def remove(ledger: Ledger, db: Database, pocket: str, lot: str, units: int, *, item: str | None = None) -> None:
    with db.write() as session:
        InventoryStore(ledger).apply(
            session,
            StockChange(pocket, lot, -units),
            LedgerRecord(EventType.DOSE_REMOVED, actor_id="NURSE1", item_id=item, patient_id="MRN1"),
        )


def test_opening_stock_is_in_the_ledger(stocked: tuple[Database, Ledger]) -> None:
    db, _ = stocked
    assert quantities(db) == {"D1-P01": 10, "D1-P02": 0, "D2-P01": 0}
    assert ledger_totals(db) == {"D1-P01": 10}


def test_removal_changes_stock_and_writes_its_entry(stocked: tuple[Database, Ledger]) -> None:
    db, ledger = stocked
    remove(ledger, db, "D1-P01", "A1", 2, item="MORPHINE-4MG-ML-CARP")
    assert quantities(db)["D1-P01"] == 8
    assert ledger_totals(db)["D1-P01"] == 8
    with db.reader.connect() as connection:
        last = connection.execute(
            sa.text(
                "SELECT event_type, item_id, lot_number, quantity_change, body FROM ledger_entries "
                "ORDER BY seq DESC LIMIT 1"
            )
        ).one()
        assert verify_chain(connection).ok
    assert (last.event_type, last.item_id, last.lot_number, last.quantity_change) == (
        "dose.removed",
        "MORPHINE-4MG-ML-CARP",
        "A1",
        -2,
    )
    assert '"lot_quantity_after":2' in last.body


@pytest.mark.parametrize("units", [5, 7, 100])
def test_change_that_would_go_negative_is_refused_and_nothing_written(
    stocked: tuple[Database, Ledger], units: int
) -> None:
    db, ledger = stocked
    with db.reader.connect() as connection:
        entries_before = connection.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one()
    with pytest.raises(SafetyError) as caught:
        remove(ledger, db, "D1-P01", "A1", units)
    assert caught.value.code == "inventory.negative_quantity"
    assert caught.value.context["on_hand"] == 4
    assert quantities(db)["D1-P01"] == 10
    with db.reader.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one() == entries_before


def test_taking_from_a_lot_the_pocket_does_not_hold_is_refused(stocked: tuple[Database, Ledger]) -> None:
    db, ledger = stocked
    with pytest.raises(SafetyError, match="holds 0"):
        remove(ledger, db, "D1-P01", "NOPE", 1)


def test_wrong_item_for_the_pocket_is_refused(stocked: tuple[Database, Ledger]) -> None:
    db, ledger = stocked
    with pytest.raises(SafetyError) as caught:
        remove(ledger, db, "D1-P01", "A1", 1, item="HEPARIN-5000U-ML-1ML")
    assert caught.value.code == "inventory.item_mismatch"
    assert quantities(db)["D1-P01"] == 10


def test_unknown_pocket_is_refused(stocked: tuple[Database, Ledger]) -> None:
    db, ledger = stocked
    with pytest.raises(VerificationError) as caught:
        remove(ledger, db, "D9-P99", "A1", 1)
    assert caught.value.code == "inventory.unknown_pocket"


def test_new_lot_needs_its_expiry(stocked: tuple[Database, Ledger]) -> None:
    db, ledger = stocked
    store = InventoryStore(ledger)
    with pytest.raises(VerificationError, match="expiry"), db.write() as session:
        store.apply(session, StockChange("D1-P02", "H1", 5), LedgerRecord(EventType.STOCK_RESTOCKED))
    with db.write() as session:
        store.apply(
            session,
            StockChange("D1-P02", "H1", 5, expiry=date(2027, 3, 31)),
            LedgerRecord(EventType.STOCK_RESTOCKED, actor_id="TECH1"),
        )
    assert quantities(db)["D1-P02"] == 5


def test_non_stock_events_and_zero_changes_are_bugs(stocked: tuple[Database, Ledger]) -> None:
    db, ledger = stocked
    store = InventoryStore(ledger)
    with pytest.raises(SoftwareError), db.write() as session:
        store.apply(session, StockChange("D1-P01", "A1", -1), LedgerRecord(EventType.LOGIN))
    with pytest.raises(SoftwareError), db.write() as session:
        store.apply(session, StockChange("D1-P01", "A1", 0), LedgerRecord(EventType.DOSE_REMOVED))


def test_stock_and_entry_roll_back_together(stocked: tuple[Database, Ledger]) -> None:
    db, ledger = stocked
    with pytest.raises(RuntimeError), db.write() as session:
        InventoryStore(ledger).apply(
            session, StockChange("D1-P01", "A1", -1), LedgerRecord(EventType.DOSE_REMOVED, actor_id="N")
        )
        raise RuntimeError("drawer jammed before the dose was taken")
    assert quantities(db)["D1-P01"] == 10
    assert ledger_totals(db)["D1-P01"] == 10


def test_return_bin_takes_any_item(stocked: tuple[Database, Ledger]) -> None:
    db, ledger = stocked
    with db.write() as session:
        InventoryStore(ledger).apply(
            session,
            StockChange("D2-P01", "A1", 1, expiry=date(2027, 1, 31)),
            LedgerRecord(EventType.DOSE_RETURNED, actor_id="NURSE1", item_id="MORPHINE-4MG-ML-CARP"),
        )
    assert quantities(db)["D2-P01"] == 1


def test_inventory_lists_lots_first_expiring_first(stocked: tuple[Database, Ledger]) -> None:
    db, _ = stocked
    with db.read() as session:
        pocket = next(p for p in list_pockets(session, CABINET) if p.pocket_id == "D1-P01")
    assert [lot.lot_number for lot in pocket.lots] == ["A1", "B2"]
    assert pocket.next_expiry == date(2027, 1, 31)
    assert pocket.dea_schedule == "II"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda layout: layout["drawer"][0]["pocket"][0].update(item="NOT-IN-FORMULARY"),
            "not in the formulary",
        ),
        (lambda layout: layout["drawer"][0]["pocket"][0].update(par=20), "min <= par <= max"),
        (lambda layout: layout["drawer"][0].update(kind="matrix"), "schedule II"),
        (
            lambda layout: layout["drawer"][0]["pocket"][1].update(item="INSULIN-REGULAR-U100-10ML"),
            "refrigerated",
        ),
        (lambda layout: layout["cabinet"].update(id="OTHER"), "ledger for CAB-T"),
    ],
)
def test_bad_layouts_are_refused_whole(db: Database, clock: FixedClock, change: Any, message: str) -> None:
    layout = small_layout()
    change(layout)
    ledger = Ledger(CABINET, clock, is_simulator=True)
    with pytest.raises(ConfigurationError, match=message), db.write() as session:
        seed_cabinet(session, layout, load_formulary(), ledger=ledger, hasher=FAST_HASHER, clock=clock)
    with db.reader.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one() == 0
        assert connection.execute(sa.text("SELECT count(*) FROM cabinets")).scalar_one() == 0


def test_loading_the_same_cabinet_twice_is_refused(stocked: tuple[Database, Ledger], clock: FixedClock) -> None:
    db, ledger = stocked
    with pytest.raises(ConfigurationError, match="already exists"), db.write() as session:
        seed_cabinet(session, small_layout(), load_formulary(), ledger=ledger, hasher=FAST_HASHER, clock=clock)
