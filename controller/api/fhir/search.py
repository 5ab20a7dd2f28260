"""Search on ``/fhir``: reading the parameters, and the searchset Bundle with its paging links.

Parameters are FHIR's: a comma means OR (``status=active,on-hold``), a reference may be ``Patient/123`` or ``123``,
a token ``system|code`` or ``code``. ``_count`` (default 20, at most 100) and ``_offset`` page the results; the
Bundle's ``self``/``next``/``previous`` links carry the parameters the server applied. Parameters a route does not
support are ignored (FHIR's lenient default) and left out of ``self``, so a client can see what was applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from controller.api.fhir.outcome import FhirError

DEFAULT_COUNT = 20
MAX_COUNT = 100


@dataclass(frozen=True, slots=True)
class Query:
    """The parameters of one search, as given (only the supported ones) plus the page."""

    values: dict[str, list[str]]  # name -> the OR-ed values
    offset: int
    count: int

    def get(self, name: str) -> list[str] | None:
        return self.values.get(name)


def read_query(params: Mapping[str, str], supported: Sequence[str]) -> Query:
    values: dict[str, list[str]] = {}
    for name in supported:
        raw = params.get(name)
        if raw is None:
            continue
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if not parts:
            raise FhirError("fhir.bad_search", f"search parameter {name} is empty", issue="value")
        values[name] = parts
    return Query(values, _number(params, "_offset", 0, maximum=10**9), _number(params, "_count", DEFAULT_COUNT))


def _number(params: Mapping[str, str], name: str, default: int, *, maximum: int = MAX_COUNT) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) > maximum:
        raise FhirError("fhir.bad_search", f"{name} must be a whole number from 0 to {maximum}", issue="value")
    return int(raw)


def reference_ids(values: Sequence[str], resource_type: str) -> list[str]:
    """``Patient/123`` or ``123`` (or an absolute URL ending so) -> ``123``."""
    found = []
    for value in values:
        kind, _, ident = value.rstrip("/").rpartition("/")
        if kind and kind.rsplit("/", 1)[-1] != resource_type:
            raise FhirError("fhir.bad_search", f"{value!r} is not a {resource_type} reference", issue="value")
        found.append(ident)
    return found


def token(value: str) -> tuple[str | None, str]:
    """``system|code`` -> (system, code); ``code`` -> (None, code)."""
    system, bar, code = value.partition("|")
    return (system, code) if bar else (None, value)


def searchset(
    base: str, resource_type: str, query: Query, total: int, resources: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    def link(relation: str, offset: int) -> dict[str, str]:
        pairs = [(name, ",".join(values)) for name, values in query.values.items()]
        pairs += [("_count", str(query.count)), ("_offset", str(offset))]
        return {"relation": relation, "url": f"{base}/{resource_type}?{urlencode(pairs)}"}

    links = [link("self", query.offset)]
    if query.offset + query.count < total:
        links.append(link("next", query.offset + query.count))
    if query.offset > 0:
        links.append(link("previous", max(query.offset - query.count, 0)))
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }
