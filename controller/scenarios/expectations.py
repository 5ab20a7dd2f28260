"""Checking a step's expectations against what the cabinet did: its outcome, then what the store and the engine
show (stock, ledger entries, alarms, discrepancies, compartments, the session).

Responsible for: each check and a message that says what was expected, what was found and where in the file the
expectation is. The cabinet is read through ``CabinetView`` (in process: the store and the engine; by URL: the
API), so the same checks serve both. Not responsible for running steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controller.domain.transactions import EventType
from controller.scenarios.model import EntryMatch, Step, Unset, same
from controller.scenarios.outcome import Outcome

# What the cabinet raises as an alarm (it sounds, shows, or goes to pharmacy): ``alarms`` expectations see these.
ALARM_EVENTS = frozenset(
    {
        EventType.TAMPER_ALARM,
        EventType.DRAWER_LEFT_OPEN,
        EventType.COMPARTMENT_FAULT,
        EventType.TEMPERATURE_EXCURSION,
        EventType.DEVICE_FAULT,
        EventType.USER_LOCKED_OUT,
        EventType.DISCREPANCY_ESCALATED,
        EventType.WASTE_OVERDUE,
    }
)


class CabinetView(Protocol):
    async def head(self) -> int: ...

    async def entries(self, after: int, upto: int | None = None) -> list[dict[str, Any]]: ...

    async def stock(self) -> dict[str, tuple[int, dict[str, int]]]: ...

    async def discrepancies(self) -> list[dict[str, Any]]: ...

    async def compartments(self) -> dict[str, str]: ...

    async def logged_in(self) -> str | None: ...

    async def outbox(self, after: int, upto: int) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Failure:
    expectation: str  # which key of ``expect`` (``outcome`` for ok/refused)
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.expectation}: {self.message}"


@dataclass(frozen=True, slots=True)
class Window:
    """Ledger sequence numbers: the scenario's first entry follows ``start``; the step wrote ``(before, after]``."""

    start: int
    before: int
    after: int


async def check(step: Step, outcome: Outcome, view: CabinetView, window: Window) -> list[Failure]:
    expect = step.expect
    failures = _outcome(step, outcome)
    if failures:
        return failures  # the rest would only restate it
    if expect.data:
        failures += _data(step, outcome)
    if expect.inventory:
        failures += await _inventory(step, view)
    if expect.ledger:
        found = await view.entries(window.before, window.after)
        failures += _entries(step, "ledger", expect.ledger, found, "this step's entries")
    if expect.ledger_since_start:
        found = await view.entries(window.start, window.after)
        failures += _entries(step, "ledger_since_start", expect.ledger_since_start, found, "the scenario's entries")
    if expect.alarms is not None:
        found = [e for e in await view.entries(window.before, window.after) if e["event_type"] in ALARM_EVENTS]
        failures += _exactly(step, "alarms", expect.alarms, found)
    if expect.discrepancies is not None:
        failures += _discrepancies(step, expect.discrepancies, await view.discrepancies())
    if expect.compartments:
        states = await view.compartments()
        for compartment, state in expect.compartments.items():
            if states.get(compartment) != state:
                failures.append(_fail(step, "compartments", f"{compartment} is {states.get(compartment)}, not {state}"))
    if expect.outbox:
        failures += _messages(step, expect.outbox, await view.outbox(window.before, window.after))
    if not isinstance(expect.logged_in, Unset):
        who = await view.logged_in()
        if who != expect.logged_in:
            failures.append(
                _fail(step, "logged_in", f"{who or 'nobody'} is logged in, not {expect.logged_in or 'nobody'}")
            )
    return failures


def _fail(step: Step, key: str, message: str) -> Failure:
    return Failure(key, step.expect.line_of(key, step.line), message)


def _outcome(step: Step, outcome: Outcome) -> list[Failure]:
    expect = step.expect
    if outcome.script_error:
        return [Failure("step", step.line, outcome.describe())]
    if expect.impossible is not None:
        if outcome.impossible is None:
            return [
                _fail(
                    step,
                    "impossible",
                    f"expected the act to be impossible ({expect.impossible}); got {outcome.describe()}",
                )
            ]
        if expect.impossible.casefold() not in outcome.impossible.casefold():
            return [
                _fail(
                    step,
                    "impossible",
                    f"the simulator's reason {outcome.impossible!r} does not say {expect.impossible!r}",
                )
            ]
        return []
    if expect.refused is not None:
        if outcome.ok or outcome.code != expect.refused:
            return [_fail(step, "refused", f"expected refused [{expect.refused}]; got {outcome.describe()}")]
        if expect.detail is not None and expect.detail.casefold() not in (outcome.detail or "").casefold():
            return [_fail(step, "detail", f"the refusal's detail {outcome.detail!r} does not say {expect.detail!r}")]
        return []
    if not outcome.ok:
        return [_fail(step, "ok", f"expected the step to succeed; got {outcome.describe()}")]
    return []


def _data(step: Step, outcome: Outcome) -> list[Failure]:
    failures = []
    for path, expected in step.expect.data.items():
        found, actual = _at(outcome.data, str(path))
        if not found:
            failures.append(_fail(step, "data", f"the result has no {path} (it has {sorted(outcome.data)})"))
        elif not same(actual, expected):
            failures.append(_fail(step, "data", f"{path} is {actual!r}, not {expected!r}"))
    return failures


def _at(data: Any, path: str) -> tuple[bool, Any]:
    value = data
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


async def _inventory(step: Step, view: CabinetView) -> list[Failure]:
    stock = await view.stock()
    failures = []
    for pocket, expected in step.expect.inventory.items():
        quantity, lots = stock.get(pocket, (0, {}))
        if expected.quantity is not None and quantity != expected.quantity:
            failures.append(
                _fail(step, "inventory", f"{pocket} holds {quantity}, not {expected.quantity} (lots {lots})")
            )
        for lot, units in expected.lots.items():
            if lots.get(lot, 0) != units:
                failures.append(_fail(step, "inventory", f"{pocket} lot {lot} holds {lots.get(lot, 0)}, not {units}"))
    return failures


def _entries(
    step: Step, key: str, wanted: Sequence[EntryMatch], found: list[dict[str, Any]], where: str
) -> list[Failure]:
    failures = []
    for match in wanted:
        hits = [e for e in found if match.matches(e)]
        if match.count is None and not hits:
            failures.append(_fail(step, key, f"no entry like {{{match.written}}} among {where}: {_list(found)}"))
        elif match.count is not None and len(hits) != match.count:
            failures.append(
                _fail(step, key, f"{len(hits)} entries like {{{match.written}}}, not {match.count}: {_list(hits)}")
            )
    return failures


def _exactly(step: Step, key: str, wanted: Sequence[EntryMatch], found: list[dict[str, Any]]) -> list[Failure]:
    """Each pattern takes one entry of its own; none may be left over, and none missing."""
    left = list(found)
    missing = []
    for match in wanted:
        hit = next((e for e in left if match.matches(e)), None)
        if hit is None:
            missing.append(match.written)
        else:
            left.remove(hit)
    problems = []
    if missing:
        problems.append("missing " + "; ".join(f"{{{m}}}" for m in missing))
    if left:
        problems.append("unexpected " + _list(left))
    if not problems:
        return []
    return [_fail(step, key, f"{', '.join(problems)} (raised: {_list(found)})")]


def _discrepancies(step: Step, wanted: Sequence[Mapping[str, Any]], found: list[dict[str, Any]]) -> list[Failure]:
    left = list(found)
    missing = []
    for match in wanted:
        hit = next((d for d in left if all(same(d.get(k), v) for k, v in match.items())), None)
        if hit is None:
            missing.append(dict(match))
        else:
            left.remove(hit)
    if not missing and not left:
        return []
    parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {left}"] if left else [])
    return [_fail(step, "discrepancies", f"{', '.join(parts)} (not yet reviewed: {found or 'none'})")]


def _messages(step: Step, wanted: Sequence[Mapping[str, Any]], found: list[dict[str, Any]]) -> list[Failure]:
    """Outbound messages the step queued: each pattern matches at least one (or exactly ``count``)."""
    failures = []
    for pattern in wanted:
        hits = [m for m in found if _message_matches(m, pattern)]
        count = pattern.get("count")
        if (count is None and not hits) or (count is not None and len(hits) != count):
            shown = "; ".join(f"{m['type']} for {m['patient'] or '-'} ({m['status']})" for m in found) or "none"
            wanted_text = ", ".join(f"{k}: {v}" for k, v in pattern.items())
            failures.append(_fail(step, "outbox", f"{len(hits)} messages like {{{wanted_text}}}; queued: {shown}"))
    return failures


def _message_matches(message: Mapping[str, Any], pattern: Mapping[str, Any]) -> bool:
    for key in ("type", "patient", "status"):
        if key in pattern and message.get(key) != pattern[key]:
            return False
    return "contains" not in pattern or str(pattern["contains"]) in str(message.get("payload", ""))


def describe_entry(entry: Mapping[str, Any]) -> str:
    """One line of a ledger entry, for messages and reports."""
    parts = [f"#{entry.get('seq')}", str(entry.get("event_type"))]
    for key, label in (
        ("actor_id", "by"),
        ("witness_id", "witness"),
        ("patient_id", "patient"),
        ("item_id", "item"),
        ("pocket_id", "pocket"),
        ("lot_number", "lot"),
    ):
        if entry.get(key):
            parts.append(f"{label} {entry[key]}")
    if entry.get("quantity_change") is not None:
        parts.append(f"change {entry['quantity_change']:+d}")
    if entry.get("reason_code"):
        parts.append(f"reason {entry['reason_code']}")
    kind = (entry.get("details") or {}).get("kind")
    if kind and kind != entry.get("event_type"):
        parts.append(f"({kind})")
    return " ".join(parts)


def _list(entries: Sequence[Mapping[str, Any]]) -> str:
    if not entries:
        return "none"
    shown = "; ".join(describe_entry(e) for e in entries[:8])
    return shown + (f"; ... {len(entries) - 8} more" if len(entries) > 8 else "")
