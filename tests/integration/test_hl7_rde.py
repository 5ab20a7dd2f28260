"""RDE over a real socket: the give code mapped through the formulary, the order controls and their rules, and
idempotency by control id."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from controller.domain.clock import FixedClock
from controller.store import repositories
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.models import MedicationRow
from tests.integration.hl7_rig import archive, exchange, one, rde, rows, snapshot

MORPHINE = "MORPHINE-4MG-ML-CARP"  # NDC 0409-1891-01, alternate 0409-1891-03


@pytest.fixture
def pharmacy(store: Database) -> Database:
    """The store with the demo formulary (kept across the module's tests: only orders and patients are emptied)."""
    with store.write() as session:
        if not session.execute(select(func.count()).select_from(MedicationRow)).scalar_one():
            for entry in load_formulary():
                repositories.save_medication(session, entry.medication)
    return store


def _order(store: Database, order_id: str = "ORD1") -> dict[str, object]:
    return one(store, "orders", id=order_id)


@pytest.mark.parametrize(
    ("give", "item"),
    [
        ("0409-1891-01^morphine^NDC", MORPHINE),  # the primary NDC as printed
        ("0409-1891-03^morphine^NDC", MORPHINE),  # an alternate NDC of the same item
        ("00409189101^morphine^NDC", MORPHINE),  # the 11-digit billing form
        ("0409189101^morphine^NDC", MORPHINE),  # 10 bare digits
        ("0409-1891-01^morphine", MORPHINE),  # no coding system, but shaped like an NDC
        ("heparin-5000u-ml-1ml^heparin^99LOCAL", "HEPARIN-5000U-ML-1ML"),  # a formulary code
        ("LOCAL1^x^L^0409-1891-03^morphine^NDC", MORPHINE),  # the alternate triplet is tried
        ("0000-0000-00^unknown^NDC", "NDC:0000000000"),  # kept, shown as not stocked here
        ("NOT-IN-FORMULARY^x^99LOCAL", "NOT-IN-FORMULARY"),
    ],
)
def test_the_give_code_names_the_formulary_item(give: str, item: str, pharmacy: Database, clock: FixedClock) -> None:
    (ack,) = exchange(pharmacy, clock, rde("1", "ORD1", "MRN1", give=give))
    assert ack.code == "AA", ack.text
    order = _order(pharmacy)
    assert order["item_id"] == item
    assert (order["status"], bool(order["pharmacist_verified"])) == ("active", True)
    assert (Decimal(str(order["dose_amount"])), order["dose_unit"], order["route"]) == (4, "mg", "Intravenous")
    assert (order["frequency"], bool(order["prn"])) == ("Q4H", True)  # TQ1-3, and PRN in TQ1-9
    details = one(pharmacy, "hl7_orders", order_id="ORD1")
    assert (details["verified_by"], details["placer_number"], details["dosage_form"]) == (
        "1234 Shah Priya", "ORD1", "injection",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("give", "reason"),
    [
        ("2669^bag^NDC", "4 digits"),  # marked NDC, is not one
        ("0409-18-91-01^morphine^NDC", "hyphenated"),
    ],
)
def test_a_give_code_marked_ndc_that_is_no_ndc_is_refused(
    give: str, reason: str, pharmacy: Database, clock: FixedClock
) -> None:
    (ack,) = exchange(pharmacy, clock, rde("1", "ORD1", "MRN1", give=give))
    assert (ack.code, ack.error, ack.location) == ("AE", "102", "RXE^1^2^1")
    assert reason in ack.text
    assert rows(pharmacy, "orders") == [] and rows(pharmacy, "patients") == []


def test_order_lifecycle_hold_change_release_discontinue(pharmacy: Database, clock: FixedClock) -> None:
    acks = exchange(
        pharmacy,
        clock,
        rde("1", "ORD1", "MRN1"),
        rde("2", "ORD1", "MRN1", control="HD"),
        rde("3", "ORD1", "MRN1", control="XO", amount="2", tq1="TQ1|1||Q6H"),
    )
    assert [a.code for a in acks] == ["AA", "AA", "AA"]
    order = _order(pharmacy)
    assert (order["status"], Decimal(str(order["dose_amount"])), order["frequency"], bool(order["prn"])) == (
        "held", 2, "Q6H", False,
    )  # fmt: skip
    assert one(pharmacy, "hl7_orders", order_id="ORD1")["order_control"] == "XO"
    exchange(pharmacy, clock, rde("4", "ORD1", "MRN1", control="RL"))
    assert _order(pharmacy)["status"] == "active"
    acks = exchange(
        pharmacy,
        clock,
        rde("5", "ORD1", "MRN1", control="DC"),
        rde("6", "ORD1", "MRN1", control="CA"),  # already closed: nothing to change
        rde("7", "ORD1", "MRN1", control="XO"),
        rde("8", "ORD1", "MRN1", control="RL"),
    )
    assert [(a.code, a.app_code) for a in acks] == [
        ("AA", ""), ("AA", ""), ("AE", "hl7.order_closed"), ("AE", "hl7.order_closed"),
    ]  # fmt: skip
    assert _order(pharmacy)["status"] == "discontinued"


def test_new_order_held_by_orc_5(pharmacy: Database, clock: FixedClock) -> None:
    exchange(pharmacy, clock, rde("1", "ORD1", "MRN1", status="HD"))
    assert _order(pharmacy)["status"] == "held"


def test_order_controls_refused_with_their_reason(pharmacy: Database, clock: FixedClock) -> None:
    exchange(pharmacy, clock, rde("1", "ORD1", "MRN1"))
    before = snapshot(pharmacy)
    acks = exchange(
        pharmacy,
        clock,
        rde("2", "ORD9", "MRN1", control="DC"),  # not held here
        rde("3", "ORD1", "MRN1"),  # NW again under a new control id
        rde("4", "ORD1", "MRN2", control="DC"),  # someone else's order
        rde("5", "ORD1", "MRN1", control="SC"),  # a status change: not acted on
        rde("6", "ORD2", "MRN1", amount=""),
        rde("7", "ORD2", "MRN1", amount="2.00001"),
        rde("8", "ORD2", "MRN1", units=""),
    )
    got = [(a.code, a.error, a.app_code, a.location) for a in acks]
    assert got == [
        ("AE", "204", "hl7.unknown_order", "ORC^1^2^1"),
        ("AE", "205", "hl7.duplicate_order", "ORC^1^2^1"),
        ("AE", "205", "hl7.identity_conflict", "ORC^1^2^1"),
        ("AR", "103", "hl7.unsupported_order_control", "ORC^1^1^1"),
        ("AE", "101", "hl7.field_missing", "RXE^1^3^1"),
        ("AE", "102", "hl7.bad_value", "RXE^1^3^1"),
        ("AE", "101", "hl7.field_missing", "RXE^1^5^1"),
    ]
    assert snapshot(pharmacy) == before


def test_a_message_is_applied_whole_or_not_at_all(pharmacy: Database, clock: FixedClock) -> None:
    """Two order groups; the second names an order not held: the first is not filed either."""
    two_groups = rde("1", "ORD1", "MRN1") + b"ORC|DC|ORD9^PHARM\r"
    (ack,) = exchange(pharmacy, clock, two_groups)
    assert (ack.code, ack.app_code, ack.location) == ("AE", "hl7.unknown_order", "ORC^2^2^1")
    assert rows(pharmacy, "orders") == [] and rows(pharmacy, "patients") == []
    assert archive(pharmacy)[-1]["outcome"] == "error"


def test_later_controls_find_the_order_by_its_filler_number(pharmacy: Database, clock: FixedClock) -> None:
    by_filler = rde("1", "", "MRN1").replace(b"ORC|NW|^PHARM|", b"ORC|NW||F-77^PHARMSYS")
    (ack,) = exchange(pharmacy, clock, by_filler)
    assert ack.code == "AA", ack.text
    both = rde("2", "P-1", "MRN1", control="DC").replace(b"ORC|DC|P-1^PHARM|", b"ORC|DC|P-1^PHARM|F-77^PHARMSYS")
    (ack,) = exchange(pharmacy, clock, both)
    assert ack.code == "AA", ack.text
    assert _order(pharmacy, "F-77")["status"] == "discontinued"


def test_a_resent_message_is_not_applied_twice_even_restamped(pharmacy: Database, clock: FixedClock) -> None:
    message = rde("1", "ORD1", "MRN1")
    restamped = message.replace(b"|20261125120000||RDE", b"|20261125120500||RDE")  # MSH-7 only
    first, second, third = exchange(pharmacy, clock, message, message, restamped)
    assert first.code == "AA" and second.text == first.text == third.text
    assert len(rows(pharmacy, "orders")) == 1
    assert [r["outcome"] for r in archive(pharmacy)] == ["applied", "duplicate", "duplicate"]


def test_a_control_id_reused_for_another_message_is_refused(pharmacy: Database, clock: FixedClock) -> None:
    first, reused = exchange(pharmacy, clock, rde("1", "ORD1", "MRN1"), rde("1", "ORD2", "MRN1"))
    assert first.code == "AA"
    assert (reused.code, reused.error, reused.app_code, reused.location) == (
        "AE", "205", "hl7.control_id_reused", "MSH^1^10^1",
    )  # fmt: skip
    assert [o["id"] for o in rows(pharmacy, "orders")] == ["ORD1"]
    other_sender = rde("1", "ORD2", "MRN1").replace(b"|PHARM|HOSP|", b"|PHARM2|HOSP|")
    assert exchange(pharmacy, clock, other_sender)[0].code == "AA"  # control ids are per sender
