"""A cabinet's configuration as the central server keeps it and sends it down: its layout (which item each pocket
holds, with its par, minimum and maximum) and its policy (the rules document, as the policy file writes it).

Responsible for: the two document kinds, their key in the ``adc_cabinets`` bucket (``<cabinet>.layout``,
``<cabinet>.policy``: a cabinet watches ``<its id>.>``), reading a layout document into pocket assignments with
every problem named (pocket, field, value), and a policy document into rules and the reason for them. A layout
names the pockets it sets; a pocket it does not name keeps its assignment, and ``item: null`` empties one. The
cabinet's drawers and pockets themselves are its hardware and are never changed from afar.

Not responsible for: whether an assignment may change now (stock in the pocket, a workflow on it: the engine's
``controller.engine.handlers.central_config``), or the rules document's own checks
(``controller.domain.rules_document``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.domain.directory import kv_token
from controller.domain.rules_document import CabinetRules, parse_rules
from controller.errors import ConfigurationError

LAYOUT, POLICY = "layout", "policy"
KINDS = (LAYOUT, POLICY)
_LEVELS = ("par", "min", "max")


def config_key(cabinet_id: str, kind: str) -> str:
    return f"{kv_token(cabinet_id)}.{kind}"


@dataclass(frozen=True, slots=True)
class PocketAssignment:
    pocket_id: str
    item_id: str | None
    par: int
    min: int
    max: int


def parse_layout(content: Mapping[str, Any], *, source: str) -> tuple[PocketAssignment, ...]:
    """``{"pockets": [{"pocket": "D1-P01", "item": "ITEM", "par": 10, "min": 2, "max": 20}, ...]}``; raises
    ConfigurationError (``fleet.layout_refused``) naming every problem."""
    pockets = content.get("pockets")
    if not isinstance(pockets, list) or not pockets:
        raise _refused(source, ["'pockets' must be a non-empty list of pocket assignments"])
    problems: list[str] = []
    found: list[PocketAssignment] = []
    seen: set[str] = set()
    for index, entry in enumerate(pockets, start=1):
        where = f"pocket {index}"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: must be an object with 'pocket', 'item', 'par', 'min', 'max'")
            continue
        pocket, item = entry.get("pocket"), entry.get("item")
        if not isinstance(pocket, str) or not pocket.strip():
            problems.append(f"{where}: 'pocket' must name a pocket")
            continue
        where = f"pocket {pocket!r}"
        if pocket in seen:
            problems.append(f"{where}: named twice")
        seen.add(pocket)
        if item is not None and (not isinstance(item, str) or not item.strip()):
            problems.append(f"{where}: 'item' must be an item id or null")
            continue
        unknown = sorted(set(entry) - {"pocket", "item", *_LEVELS})
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
        levels = [entry.get(name, 0) for name in _LEVELS]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in levels):
            problems.append(f"{where}: par, min and max must be whole numbers")
            continue
        par, low, high = levels
        if not 0 <= low <= par <= high:
            problems.append(f"{where}: needs 0 <= min <= par <= max, got min {low}, par {par}, max {high}")
            continue
        if item is None and high:
            problems.append(f"{where}: an empty pocket has no levels (max {high})")
            continue
        found.append(PocketAssignment(pocket, item, par, low, high))
    if problems:
        raise _refused(source, problems)
    return tuple(found)


def parse_policy(content: Mapping[str, Any], *, source: str) -> tuple[CabinetRules, str]:
    """``{"text": <the rules document>, "reason": ...}``: the rules it states and the reason, stripped; raises
    ConfigurationError (``fleet.policy_refused``) naming what is wrong, as the policy file's check does."""
    text, reason = content.get("text"), content.get("reason")
    if not isinstance(text, str) or not isinstance(reason, str) or not reason.strip():
        raise ConfigurationError("fleet.policy_refused", "a policy needs the rules document's text and a reason")
    try:
        return parse_rules(text, source=source), reason.strip()
    except ConfigurationError as error:
        raise ConfigurationError("fleet.policy_refused", error.detail, **error.context) from error


def layout_document(assignments: tuple[PocketAssignment, ...]) -> dict[str, Any]:
    return {"pockets": [{"pocket": a.pocket_id, "item": a.item_id, "par": a.par, "min": a.min, "max": a.max}
                        for a in assignments]}  # fmt: skip


def _refused(source: str, problems: list[str]) -> ConfigurationError:
    return ConfigurationError("fleet.layout_refused", f"{source}: " + "; ".join(problems), problems=problems)
