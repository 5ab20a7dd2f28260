"""A loaded scenario as typed records: the cabinet it runs on, the rules in force, and its steps with expectations.

Built by ``loader`` from a file that passed the schema and the reference checks, so every field here is known to
be well formed and every id to exist. Not responsible for running anything (``runner``, ``local``, ``remote``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from controller.domain.policies import Policy
from controller.fsm.settings import FsmSettings

DEFAULT_START = "2026-11-25T14:30:00Z"
DEFAULT_TICK = timedelta(seconds=60)


class Unset:
    """Marks an expectation that was not given (``logged_in: null`` means "nobody", which is not the same)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()

# Ledger matcher keys as scenario authors write them -> ledger entry fields.
ENTRY_FIELDS: Mapping[str, str] = {
    "type": "event_type",
    "actor": "actor_id",
    "witness": "witness_id",
    "patient": "patient_id",
    "order": "order_id",
    "item": "item_id",
    "pocket": "pocket_id",
    "lot": "lot_number",
    "change": "quantity_change",
    "expected": "quantity_expected",
    "actual": "quantity_actual",
    "reason": "reason_code",
}


@dataclass(frozen=True, slots=True)
class EntryMatch:
    """A pattern for ledger entries: each given field must be equal; ``details`` compares only the keys listed."""

    fields: Mapping[str, Any]  # ledger field name -> expected value
    details: Mapping[str, Any]
    count: int | None  # exact number of matching entries; None: at least one
    written: str  # as the author wrote it, for messages

    def matches(self, entry: Mapping[str, Any]) -> bool:
        if any(not same(entry.get(name), value) for name, value in self.fields.items()):
            return False
        found = entry.get("details") or {}
        return all(key in found and same(found[key], value) for key, value in self.details.items())


def same(actual: Any, expected: Any) -> bool:
    """Equality as an author means it: 8 == "8" is false, but lists and maps compare by content, and numbers
    written as text in the record (Decimal amounts) equal the same number written in YAML."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and same(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list | tuple) and len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float) and isinstance(actual, str):
        try:
            return float(actual) == float(expected)
        except ValueError:
            return False
    return bool(actual == expected)


@dataclass(frozen=True, slots=True)
class StockExpectation:
    quantity: int | None
    lots: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class CentralExpectation:
    """Fleet scenarios: what the central holds after the step (None: not checked)."""

    caught_up: tuple[str, ...] = ()
    behind: tuple[str, ...] = ()
    alarms: tuple[str, ...] | None = None
    stock: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Expectations:
    refused: str | None = None
    detail: str | None = None
    impossible: str | None = None  # a physical act the simulator refused (a locked or jammed drawer)
    data: Mapping[str, Any] = field(default_factory=dict)
    inventory: Mapping[str, StockExpectation] = field(default_factory=dict)
    ledger: tuple[EntryMatch, ...] = ()
    ledger_since_start: tuple[EntryMatch, ...] = ()
    alarms: tuple[EntryMatch, ...] | None = None
    discrepancies: tuple[Mapping[str, Any], ...] | None = None
    compartments: Mapping[str, str] = field(default_factory=dict)
    logged_in: str | Unset | None = UNSET
    outbox: tuple[Mapping[str, Any], ...] = ()
    central: CentralExpectation | None = None
    lines: Mapping[str, int] = field(default_factory=dict)  # expectation key -> line, for messages

    def line_of(self, key: str, default: int) -> int:
        return self.lines.get(key, default)


@dataclass(frozen=True, slots=True)
class Step:
    number: int  # 1-based, as reports show it
    line: int
    action: str | None  # None: the step only checks
    value: Any
    actor: str | None = None
    name: str | None = None
    expect: Expectations = field(default_factory=Expectations)
    cabinet: str | None = None  # fleet: the cabinet that performs it (None: the first)

    @property
    def title(self) -> str:
        label = self.action or "check"
        shown = self.value
        if self.action is None or shown is None or shown is True:
            text = label
        elif isinstance(shown, str | int | float):
            text = f"{label}: {shown}"
        else:
            text = f"{label}: {_compact(shown)}"
        if self.actor:
            text += f" [{self.actor}]"
        if self.cabinet:
            text += f" @{self.cabinet}"
        return text if not self.name else f"{self.name} ({text})"


def _compact(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True)
class Scenario:
    path: Path
    name: str
    description: str
    covers: tuple[str, ...]
    start: datetime
    tick: timedelta
    policy: Policy
    settings: FsmSettings
    cabinet: Mapping[str, Any]  # the seed document (controller/store/seed.py)
    io_transport: str
    steps: tuple[Step, ...]
    # what the file set explicitly (a remote cabinet cannot take these; ``remote`` refuses them at load time)
    given: frozenset[str] = frozenset()
    own_cabinet: bool = False  # the cabinet section is more than ``demo``
    fleet: tuple[str, ...] = ()  # a fleet scenario: its cabinets' ids, each a copy of ``cabinet`` under that id
    lines: Mapping[str, int] = field(default_factory=dict)  # top-level key -> line

    @property
    def cabinet_id(self) -> str:
        return str(self.cabinet["cabinet"]["id"])

    def pin_of(self, user_id: str) -> str | None:
        for user in self.cabinet.get("user", []):
            if user["id"] == user_id:
                return str(user["pin"])
        return None
