"""RDE (pharmacy/treatment encoded order, O11; O25 refill authorization; O01 in v2.3/2.4) read into order
changes, one per ORC group, and filed in the message's transaction.

**What makes an order pharmacist-verified here.** HL7 has no "verified" flag. An RDE is the *encoded* order: the
pharmacy system sends it after a pharmacist has entered or checked the drug, dose and route (the prescriber's
unverified order is an OMP/ORM, which this listener refuses). So every order filed from an RDE is verified, and
ORC-1 and ORC-5 decide its status: NW files it active (held when ORC-5 is ``HD``), XO changes it, DC and CA
discontinue it, HD holds it, RL releases the hold. ORC-11 (verified by) is kept as sent. A pharmacy system that
sends RDE before verification must not be connected to a profiled cabinet's listener.

Per ORC group: RXE is required for NW and XO (give code RXE-2, give amount RXE-3 (minimum) and RXE-4 (maximum),
give units RXE-5, dosage form RXE-6, dispense amount and units RXE-10/11); the RXR and TQ1 that follow RXE (the
encoded ones) are used, else those of the order as entered before it. Frequency is TQ1-3's repeat pattern code,
else the interval in RXE-1 (old TQ); PRN when TQ1-9 or the pattern says so. The order id is ORC-2 (placer
number), else ORC-3 (filler number); later controls find the order by either. PV1 and Z-segments are ignored
(the census comes from ADT); a patient not held yet is created from PID (with its AL1 allergies).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy.orm import Session

from controller.integration.hl7.census import Context
from controller.integration.hl7.errors import Hl7Error
from controller.integration.hl7.fields import Coded, amount, bounded, coded, joined_repetitions, text_limited
from controller.integration.hl7.message import Hl7Message, Segment
from controller.integration.hl7.orders import Encoding, OrderChange, OrderControl, apply_change
from controller.integration.hl7.patient_segments import PatientRecord, read_allergies, read_patient

UNIT_LIMIT = 40
GIVE_CODE_LIMIT = 64


@dataclass(frozen=True, slots=True)
class OrderGroup:
    orc: Segment
    rxe: Segment | None
    rxr: Segment | None
    tq1: Segment | None


def order_groups(message: Hl7Message) -> list[OrderGroup]:
    orcs = message.all("ORC")
    if not orcs:
        raise Hl7Error("hl7.segment_missing", "an RDE needs at least one ORC order group", location=None)
    bounds = [o.index for o in orcs] + [len(message.segments)]
    groups = []
    for orc, end in zip(orcs, bounds[1:], strict=True):
        members = message.segments[orc.index + 1 : end]
        rxe = next((s for s in members if s.name == "RXE"), None)
        # The encoded RXR/TQ1 follow RXE; those before it belong to the order as entered (RXO), the fallback.
        after = [s for s in members if rxe is not None and s.index > rxe.index]
        before = [s for s in members if rxe is None or s.index < rxe.index]
        groups.append(OrderGroup(orc, rxe, _first("RXR", after, before), _first("TQ1", after, before)))
    return groups


def _first(name: str, *runs: list[Segment]) -> Segment | None:
    return next((s for run in runs for s in run if s.name == name), None)


def _frequency(group: OrderGroup) -> tuple[str, bool]:
    pattern = group.tq1.value(3, 1, 1) if group.tq1 else ""
    if not pattern and group.rxe is not None:
        pattern = group.rxe.value(1, 2, 1)  # RXE-1 (TQ, before v2.5) interval: repeat pattern&explicit time
    priorities: set[str] = set()
    if group.tq1 is not None:
        priorities = {group.tq1.value(9, 1, 1, r).upper() for r in range(1, group.tq1.repetitions(9) + 1)}
    if group.rxe is not None:
        priorities.add(group.rxe.value(1, 6).upper())
    prn = "PRN" in priorities or "PRN" in pattern.upper().split()
    return text_limited(pattern, 100), prn


def _units(segment: Segment, field: int, what: str) -> str:
    """A unit CWE: the identifier (a UCUM code), or the text when the identifier is a bare local number."""
    unit = coded(segment, field)
    value = unit.text if (unit.code.isdigit() and unit.text) or not unit.code else unit.code
    return bounded(segment, field, value, limit=UNIT_LIMIT, what=what)


def _encoded(group: OrderGroup, control: OrderControl) -> OrderChange:
    orc, rxe, tq1 = group.orc, group.rxe, group.tq1
    placer = bounded(orc, 2, orc.value(2, 1), limit=64, what="placer order number", component=1)
    filler = bounded(orc, 3, orc.value(3, 1), limit=64, what="filler order number", component=1)
    if not placer and not filler:
        raise Hl7Error("hl7.field_missing", "ORC-2 and ORC-3 hold no order number", location=orc.location(2))
    change = OrderChange(
        control=control,
        placer=placer,
        filler=filler,
        order_status=orc.value(5)[:2].upper(),
        verified_by=text_limited(" ".join(p for p in (orc.value(11, c) for c in (1, 2, 3)) if p), 200),
        location=orc.location(1),
    )
    if rxe is None:
        if control in (OrderControl.NEW, OrderControl.CHANGE):
            raise Hl7Error(
                "hl7.segment_missing",
                f"ORC[{orc.occurrence}] ({control.value}) has no RXE: a new or changed order needs its encoding",
                location=orc.location(),
            )
        return change
    give: Coded = coded(rxe, 2)
    if give.is_empty:
        raise Hl7Error("hl7.field_missing", "RXE-2 give code is empty", location=rxe.location(2))
    bounded(rxe, 2, give.code, limit=GIVE_CODE_LIMIT, what="give code", component=1)
    bounded(rxe, 2, give.alt_code, limit=GIVE_CODE_LIMIT, what="alternate give code", component=4)
    dose = amount(rxe, 3, "give amount", required=True)
    assert dose is not None
    frequency, prn = _frequency(group)
    route = coded(group.rxr, 1).label if group.rxr is not None else ""
    timing_quantity = " ".join(p for p in (tq1.value(2, 1), tq1.value(2, 2, 1)) if p) if tq1 else ""
    encoding = Encoding(
        give=give,
        give_location=rxe.location(2),
        dose_amount=dose,
        dose_max=amount(rxe, 4, "give amount maximum"),
        dose_unit=_required_units(rxe),
        dosage_form=text_limited(coded(rxe, 6).label, 100),
        dispense_amount=amount(rxe, 10, "dispense amount"),
        dispense_units=_units(rxe, 11, "dispense units") if rxe.value(11) else "",
        route=text_limited(route, 100),
        frequency=frequency,
        prn=prn,
        timing_quantity=text_limited(timing_quantity, 40),
        explicit_times=text_limited(joined_repetitions(tq1, 4), 100) if tq1 else "",
        priority=text_limited(tq1.value(9, 1, 1), 40) if tq1 else "",
        start_time=text_limited(tq1.value(7), 30) if tq1 else "",
        end_time=text_limited(tq1.value(8), 30) if tq1 else "",
    )
    return dataclasses.replace(change, encoding=encoding)


def _required_units(rxe: Segment) -> str:
    if not (rxe.value(5, 1) or rxe.value(5, 2)):
        raise Hl7Error("hl7.field_missing", "RXE-5 give units is empty", location=rxe.location(5))
    return _units(rxe, 5, "give units")


def _control(orc: Segment) -> OrderControl:
    code = orc.value(1).upper()
    try:
        return OrderControl(code)
    except ValueError:
        raise Hl7Error(
            "hl7.unsupported_order_control",
            f"ORC-1 order control {code or '(empty)'!r} is not one this cabinet acts on "
            f"({', '.join(c.value for c in OrderControl)})",
            location=orc.location(1),
        ) from None


def apply(session: Session, message: Hl7Message, ctx: Context) -> None:
    pid = message.first("PID")
    patient: PatientRecord | None = read_patient(pid) if pid is not None else None
    allergies = read_allergies(message)
    changes = [_encoded(group, _control(group.orc)) for group in order_groups(message)]  # read all, then write
    for change in changes:
        apply_change(session, change, patient, allergies, ctx)
