"""Reading HL7 data types out of a segment into Python values, with the location of a bad one.

Dates (DT/DTM), numbers (NM), identifiers (CX lists), coded elements (CWE/CE) and names (XPN/XCN): what the
segment readers need, each refusing a malformed value with ``hl7.bad_value`` naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from controller.integration.hl7.errors import Hl7Error
from controller.integration.hl7.message import Segment

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
AMOUNT_PLACES = Decimal("0.0001")  # Numeric(12, 4) in the store
AMOUNT_LIMIT = Decimal(10) ** 8


@dataclass(frozen=True, slots=True)
class Coded:
    """A CWE/CE value: identifier, text and coding system, and the alternate triplet."""

    code: str
    text: str
    system: str
    alt_code: str = ""
    alt_text: str = ""
    alt_system: str = ""

    @property
    def label(self) -> str:
        """What a person should read: the text when there is one, else the code."""
        return self.text or self.code

    @property
    def is_empty(self) -> bool:
        return not (self.code or self.text or self.alt_code)


def coded(segment: Segment, field: int, repetition: int = 1) -> Coded:
    parts = [segment.value(field, component, 1, repetition) for component in range(1, 7)]
    return Coded(*parts)


def text_limited(value: str, limit: int) -> str:
    """Free text for display, cut to fit its column; identifiers and units are never cut (see ``bounded``)."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def bounded(segment: Segment, field: int, value: str, *, limit: int, what: str, component: int | None = None) -> str:
    """An identifier or unit that must fit its column whole."""
    if len(value) > limit:
        raise Hl7Error(
            "hl7.bad_value",
            f"{segment.location(field, component)} {what} {value[:40]!r}… has {len(value)} characters; at most {limit}",
            location=segment.location(field, component),
        )
    return value


def birth_date(segment: Segment, field: int) -> date | None:
    """A DT/DTM as a date. Year-only or year-month precision gives None (the day is not known)."""
    value = segment.value(field)
    if not value:
        return None
    digits = re.match(r"\d*", value)
    head = digits.group(0) if digits else ""
    if len(head) in (4, 6) and len(head) == len(value):
        return None
    if len(head) < 8:
        raise Hl7Error(
            "hl7.bad_value",
            f"{segment.location(field)} {value!r} is not an HL7 date (YYYYMMDD…)",
            location=segment.location(field),
        )
    try:
        return date(int(head[:4]), int(head[4:6]), int(head[6:8]))
    except ValueError as exc:
        raise Hl7Error(
            "hl7.bad_value",
            f"{segment.location(field)} {value!r} is not a calendar date: {exc}",
            location=segment.location(field),
        ) from exc


def amount(segment: Segment, field: int, what: str, component: int = 1, *, required: bool = False) -> Decimal | None:
    """A positive NM that the store can hold exactly (at most 4 decimals, below 10^8)."""
    value = segment.value(field, component)
    where = segment.location(field, component if component > 1 else None)
    if not value:
        if required:
            raise Hl7Error("hl7.field_missing", f"{where} ({what}) is empty", location=where)
        return None
    try:
        number = Decimal(value) if _NUMBER.fullmatch(value) else None
    except InvalidOperation:
        number = None
    if number is None:
        raise Hl7Error("hl7.bad_value", f"{where} {what} {value!r} is not a number", location=where)
    if number <= 0 or number >= AMOUNT_LIMIT or number != number.quantize(AMOUNT_PLACES):
        raise Hl7Error(
            "hl7.bad_value",
            f"{where} {what} {value} must be positive, below 10^8 and have at most 4 decimals",
            location=where,
        )
    return number


def identifier(segment: Segment, field: int, *, preferred_type: str = "MR") -> str:
    """The identifier of a CX list (PID-3, MRG-1) whose type (CX.5) is ``preferred_type``, else the first."""
    count = max(segment.repetitions(field), 1)
    ids = [(segment.value(field, 1, 1, r), segment.value(field, 5, 1, r).upper()) for r in range(1, count + 1)]
    for value, kind in ids:
        if value and kind == preferred_type:
            return value
    return next((value for value, _ in ids if value), "")


def person_name(segment: Segment, field: int) -> tuple[str, str]:
    """(family, given) of the first XPN/XCN repetition; the family name's first subcomponent (the surname)."""
    return segment.value(field, 1, 1), segment.value(field, 2)


def joined_repetitions(segment: Segment, field: int, component: int = 1) -> str:
    count = segment.repetitions(field)
    values = (segment.value(field, component, 1, r) for r in range(1, count + 1))
    return ",".join(v for v in values if v)
