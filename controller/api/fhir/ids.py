"""FHIR ids for the store's identifiers.

A FHIR id is 1 to 64 of ``A-Z a-z 0-9 - .``; the store's ids come from layouts and from HL7 feeds, which allow more
(``PATID 12_34``, a point of care with spaces). An id that fits is used as it is; one that does not becomes
``h--`` and 32 hex digits of its SHA-256, stable, and found again by comparing (the tables it names are small: a
cabinet's patients, areas, drawers). Every resource also carries the original in an ``identifier``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
HASHED_PREFIX = "h--"


def fhir_id(raw: str) -> str:
    if FHIR_ID.fullmatch(raw) and not raw.startswith(HASHED_PREFIX):
        return raw
    return HASHED_PREFIX + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def is_fhir_id(value: str) -> bool:
    return bool(FHIR_ID.fullmatch(value))


def is_hashed(value: str) -> bool:
    return value.startswith(HASHED_PREFIX)


def find_raw(requested: str, candidates: Iterable[str]) -> str | None:
    """The raw id among ``candidates`` whose FHIR id is ``requested``."""
    return next((raw for raw in candidates if fhir_id(raw) == requested), None)
