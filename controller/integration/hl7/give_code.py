"""Which formulary item an RXE-2 give code names.

RXE-2 is a CWE: identifier^text^coding system, and an alternate identifier^text^system in components 4-6. Each
triplet is tried in turn:

- coding system ``NDC`` (or none, when the identifier is shaped like an NDC): the NDC's digits are looked up among
  every NDC of the formulary, alternates included. A hyphenated NDC gives its digits; a bare 11-digit billing
  NDC gives each 10-digit NDC it may pad (``Ndc.candidates_from_ndc11``); 10 or 12 bare digits are taken as they
  are. Two items matching is refused as ambiguous; an identifier marked NDC that is no NDC is refused.
- any other system (a local code, ``L``, ``99xxx``): the identifier is a formulary code (``medications.id``).

No match is not an error: the order is filed for an item this cabinet does not stock (``NDC:<digits>`` or the
code as sent), so the profile shows it as "not stocked here".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from controller.domain.ndc import Ndc, NdcFormat
from controller.errors import InvalidIdentifierError
from controller.integration.hl7.errors import Hl7Error, Location
from controller.integration.hl7.fields import Coded
from controller.store.models import MedicationNdcRow, MedicationRow

NDC_SYSTEMS = frozenset({"NDC", "N4"})
_NDC_SHAPE = re.compile(r"\d{4,6}-\d{3,4}-\d{1,2}|\d{10,12}")
ITEM_LIMIT = 64


_ITEMS_BY_DIGITS = select(MedicationNdcRow.medication_id).where(
    MedicationNdcRow.digits.in_(bindparam("digits", expanding=True))
)


@dataclass(frozen=True, slots=True)
class ResolvedItem:
    item_id: str
    in_formulary: bool


def ndc_digits(code: str) -> tuple[str, ...]:
    """Every digit string under which the formulary may hold this NDC (raises InvalidIdentifierError)."""
    if "-" in code:
        ndc = Ndc.parse(code)
        if ndc.format is NdcFormat.F5_4_2:
            return (*(c.digits for c in Ndc.candidates_from_ndc11(ndc.digits)), ndc.digits)
        return (ndc.digits,)
    digits = code.strip()
    if len(digits) == 11 and digits.isdigit():
        return (*(c.digits for c in Ndc.candidates_from_ndc11(digits)), digits)
    if len(digits) == 10 and digits.isascii() and digits.isdigit():
        return (digits,)
    return (Ndc.parse(digits).digits,)  # 12 digits parse as 6-4-2; anything else is refused with its reason


def _is_ndc(code: str, system: str) -> bool:
    return system.upper() in NDC_SYSTEMS or (not system and bool(_NDC_SHAPE.fullmatch(code)))


def _by_ndc(session: Session, code: str, location: Location) -> tuple[str | None, str]:
    try:
        candidates = ndc_digits(code)
    except InvalidIdentifierError as exc:
        raise Hl7Error(
            "hl7.bad_value", f"give code {code!r} is marked as an NDC but {exc.detail}", location=location
        ) from exc
    items = sorted(set(session.connection().execute(_ITEMS_BY_DIGITS, {"digits": list(candidates)}).scalars()))
    if len(items) > 1:
        raise Hl7Error(
            "hl7.bad_value",
            f"NDC {code} may be any of {', '.join(items)} in the formulary; send it hyphenated",
            location=location,
        )
    return (items[0] if items else None), candidates[-1]


def resolve_item(session: Session, give: Coded, location: Location) -> ResolvedItem:
    unmapped: str | None = None
    for code, system in ((give.code, give.system), (give.alt_code, give.alt_system)):
        if not code:
            continue
        if _is_ndc(code, system):
            item, digits = _by_ndc(session, code, location)
            if item is not None:
                return ResolvedItem(item, True)
            unmapped = unmapped or f"NDC:{digits}"
        else:
            row = session.get(MedicationRow, code.upper())
            if row is not None:
                return ResolvedItem(row.id, True)
            unmapped = unmapped or code
    if unmapped is None:
        raise Hl7Error("hl7.field_missing", "the give code has no identifier", location=location)
    if len(unmapped) > ITEM_LIMIT:
        raise Hl7Error(
            "hl7.bad_value", f"give code {unmapped[:40]!r}… is longer than {ITEM_LIMIT} characters", location=location
        )
    return ResolvedItem(unmapped, False)
