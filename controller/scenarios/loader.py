"""Reading a scenario file: YAML -> schema check -> typed ``Scenario``, every problem named by file, line and field.

Responsible for: the order of the checks and their messages (YAML syntax; the JSON Schema in ``schema.json``, with
unknown fields named and a close spelling suggested; one action a step; durations, instants, the ``Policy`` and
``FsmSettings`` a file sets; the cabinet document and its board fitting; then the reference checks of
``references``), and building the records of ``model``. Not responsible for running anything.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from controller.domain.medication import DeaSchedule
from controller.domain.policies import BlindCount, OverrideReason, Policy, WitnessedAction
from controller.fsm.settings import FsmSettings
from controller.scenarios.cabinet_doc import CabinetIndex, board_layout, resolve_cabinet
from controller.scenarios.model import (
    DEFAULT_START,
    DEFAULT_TICK,
    ENTRY_FIELDS,
    UNSET,
    CentralExpectation,
    EntryMatch,
    Expectations,
    Scenario,
    Step,
    StockExpectation,
)
from controller.scenarios.problems import FieldPath, Problem, ScenarioLoadError
from controller.scenarios.references import ReferenceChecker
from controller.scenarios.values import parse_duration, parse_instant
from controller.scenarios.yaml_source import YamlDocument, YamlSyntaxError, read_yaml
from controller.store.formulary_file import FormularyEntry, load_formulary
from firmware_protocols.io_board.register_map import load_register_map

STEP_FIELDS = frozenset({"actor", "name", "note", "expect", "cabinet"})
FLEET_ACTIONS = frozenset({"cut_link", "restore_link", "sync"})
FLEET_TICK_LIMIT_S = 300  # the central flags a cabinet whose clock is more than 5 min off its own


@cache
def schema() -> dict[str, Any]:
    """The scenario language as JSON Schema (``controller/scenarios/schema.json``)."""
    loaded: dict[str, Any] = json.loads(resources.files(__package__).joinpath("schema.json").read_text("utf-8"))
    return loaded


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def actions() -> frozenset[str]:
    """Every step action the language has."""
    return frozenset(schema()["$defs"]["step"]["properties"]) - STEP_FIELDS


@cache
def _formulary() -> list[FormularyEntry]:
    return load_formulary()


def load_scenario(path: Path) -> Scenario:
    """Read and check one scenario file. Raises ``ScenarioLoadError`` naming every problem found."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioLoadError("scenario.invalid", [Problem(path, 1, (), f"cannot read the file: {exc}")]) from exc
    return load_text(text, path)


def load_text(text: str, path: Path) -> Scenario:
    try:
        doc = read_yaml(text)
    except YamlSyntaxError as exc:
        raise ScenarioLoadError("scenario.invalid", [Problem(path, exc.line, exc.path, exc.message)]) from exc
    problems = _schema_problems(doc, path)
    if problems:
        raise ScenarioLoadError("scenario.invalid", problems)
    return _Builder(path, doc).build()


# --- schema errors, said for people ----------------------------------------------------------------------------------


def _schema_problems(doc: YamlDocument, path: Path) -> list[Problem]:
    if not isinstance(doc.data, Mapping):
        return [Problem(path, 1, (), "a scenario is a mapping with at least 'scenario' and 'steps'")]
    found: list[Problem] = []
    for error in _validator().iter_errors(doc.data):
        for where, message in _explain(error):
            found.append(Problem(path, doc.line_of(where), where, message))
    return sorted(found, key=lambda p: (p.line, str(p.path)))


def _explain(error: ValidationError) -> list[tuple[FieldPath, str]]:
    where: FieldPath = tuple(error.absolute_path)
    node: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        allowed = _allowed_names(node)
        unknown = re.findall(r"'([^']+)'", error.message.split("(", 1)[-1])
        explained = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            explained.append(((*where, name), f"unknown field {name!r}{hint}"))
        return explained
    if error.validator == "required":
        return [(where, error.message.replace("is a required property", "is required here"))]
    described = _description(node)
    if error.validator in ("oneOf", "anyOf", "pattern") and described:
        return [(where, f"{error.instance!r} is not valid: {described}")]
    return [(where, error.message)]


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: Mapping[str, Any] = schema()["$defs"][ref.removeprefix("#/$defs/")]
        return resolved
    return node


def _allowed_names(node: Mapping[str, Any]) -> set[str]:
    names = set(node.get("properties", {}))
    names |= set(_resolve(node).get("properties", {}))
    return names


def _description(node: Mapping[str, Any]) -> str | None:
    text = node.get("description") or _resolve(node).get("description")
    return str(text) if text else None


# --- building the records --------------------------------------------------------------------------------------------


@dataclass
class _Builder:
    path: Path
    doc: YamlDocument

    def __post_init__(self) -> None:
        self.data: Mapping[str, Any] = self.doc.data
        self.problems: list[Problem] = []

    def problem(self, where: FieldPath, message: str) -> None:
        self.problems.append(Problem(self.path, self.doc.line_of(where), where, message))

    def build(self) -> Scenario:
        data = self.data
        start = parse_instant(str(data.get("start", DEFAULT_START)))
        tick = self._duration(("tick",), data["tick"]) if "tick" in data else DEFAULT_TICK
        if tick.total_seconds() < 1:
            self.problem(("tick",), "the tick is at least 1s")
        policy = self._policy(data.get("policy") or {})
        settings = self._settings(data.get("settings") or {})
        cabinet = resolve_cabinet(data.get("cabinet"))
        index = CabinetIndex.of(cabinet, _formulary())
        try:
            board_layout(cabinet).check(load_register_map())
        except ValueError as exc:
            self.problem(("cabinet",), f"the I/O board cannot be fitted for this cabinet: {exc}")
        steps = [self._step(n, raw) for n, raw in enumerate(data["steps"])]
        fleet = tuple(str(c) for c in (data.get("fleet") or {}).get("cabinets", ()))
        self._fleet(fleet, tick)
        self.problems.extend(ReferenceChecker(self.path, self.doc, index).check(data))
        if self.problems:
            unknown = any(p.message.startswith("unknown ") for p in self.problems)
            code = "scenario.unknown_reference" if unknown else "scenario.invalid"
            raise ScenarioLoadError(code, sorted(self.problems, key=lambda p: p.line))
        return Scenario(
            path=self.path,
            name=str(data["scenario"]),
            description=str(data.get("description", "")).strip(),
            covers=tuple(data.get("covers", ())),
            start=start,
            tick=tick,
            policy=policy,
            settings=settings,
            cabinet=cabinet,
            io_transport=str((data.get("devices") or {}).get("io_board", "tcp")),
            steps=tuple(steps),
            given=frozenset(data),
            own_cabinet=data.get("cabinet", "demo") != "demo",
            fleet=fleet,
            lines={str(key): self.doc.line_of((key,)) for key in data},
        )

    def _fleet(self, fleet: tuple[str, ...], tick: Any) -> None:
        """Fleet fields only in a fleet scenario, naming its cabinets; virtual time moves every cabinet together in
        slices of one tick, so a tick longer than the central's clock tolerance would raise clock alarms."""
        if fleet and tick.total_seconds() > FLEET_TICK_LIMIT_S:
            self.problem(("tick",), f"a fleet scenario's tick is at most {FLEET_TICK_LIMIT_S}s: the central flags a "
                                    "cabinet whose clock is more than 5 min off")  # fmt: skip
        for n, raw in enumerate(self.data["steps"]):
            where: FieldPath = ("steps", n)
            named = [(k, raw[k]) for k in ("cabinet", "cut_link", "restore_link") if k in raw]
            expect = raw.get("expect") if isinstance(raw.get("expect"), Mapping) else {}
            fleet_only = [k for k in raw if k in FLEET_ACTIONS or k == "cabinet"]
            fleet_only += ["central"] if "central" in expect else []
            if not fleet and fleet_only:
                key = fleet_only[0]
                at: FieldPath = (*where, "expect", key) if key == "central" else (*where, key)
                self.problem(at, f"{key!r} needs a fleet: add fleet: {{cabinets: [...]}}")
                continue
            for key, cabinet_id in named:
                self._known_cabinet((*where, key), cabinet_id, fleet)
            central = expect.get("central") or {}
            for key in ("caught_up", "behind"):
                for i, cabinet_id in enumerate(central.get(key, ())):
                    self._known_cabinet((*where, "expect", "central", key, i), cabinet_id, fleet)
            for cabinet_id in central.get("stock", {}):
                self._known_cabinet((*where, "expect", "central", "stock", cabinet_id), cabinet_id, fleet)

    def _known_cabinet(self, where: FieldPath, cabinet_id: Any, fleet: tuple[str, ...]) -> None:
        if fleet and cabinet_id not in fleet:
            close = difflib.get_close_matches(str(cabinet_id), fleet, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.problem(where, f"unknown cabinet {cabinet_id!r}: the fleet is {', '.join(fleet)}{hint}")

    def _duration(self, where: FieldPath, value: Any) -> Any:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(where, str(exc))
            return DEFAULT_TICK

    def _policy(self, raw: Mapping[str, Any]) -> Policy:
        fields: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "blind_count":
                fields[key] = BlindCount(value)
            elif key == "witnessed_actions":
                fields[key] = frozenset(WitnessedAction(v) for v in value)
            elif key == "override_items":
                fields[key] = frozenset(value)
            elif key == "override_reasons":
                fields[key] = frozenset(OverrideReason(v) for v in value)
            elif key == "shift_starts":
                fields[key] = tuple(time.fromisoformat(v) for v in value)
            elif key == "temporary_user_lifetime":
                fields[key] = self._duration(("policy", key), value)
            else:
                fields[key] = value
        try:
            return Policy(**fields)
        except (ValueError, KeyError) as exc:  # a bad time zone is a KeyError from zoneinfo
            self.problem(("policy",), f"not a valid policy: {exc}")
            return Policy()

    def _settings(self, raw: Mapping[str, Any]) -> FsmSettings:
        durations = {
            "inactivity_warning",
            "inactivity_logout",
            "lockout_duration",
            "left_open_limit",
            "short_dated_warning",
        }
        fields: dict[str, Any] = {}
        for key, value in raw.items():
            if key in durations and value is not None:
                fields[key] = self._duration(("settings", key), value)
            elif key == "removal_witness_schedules":
                fields[key] = frozenset(DeaSchedule(v) for v in value)
            else:
                fields[key] = value
        try:
            return FsmSettings(**fields)
        except ValueError as exc:
            self.problem(("settings",), f"not valid settings: {exc}")
            return FsmSettings()

    def _step(self, n: int, raw: Mapping[str, Any]) -> Step:
        where: FieldPath = ("steps", n)
        chosen = [key for key in raw if key not in STEP_FIELDS]
        if len(chosen) > 1:
            self.problem(where, f"one action a step, not {len(chosen)} ({', '.join(chosen)}): split it into steps")
        if not chosen and "expect" not in raw:
            self.problem(where, "a step needs an action, or an expect to check")
        action = chosen[0] if chosen else None
        if action == "sync":
            self._duration((*where, "sync"), raw["sync"])
        if action == "advance" and isinstance(raw["advance"], int | str):
            self._duration((*where, "advance"), raw["advance"])
        if action == "advance" and isinstance(raw["advance"], Mapping):
            self._instant((*where, "advance", "to"), raw["advance"]["to"])
        expect = self._expect((*where, "expect"), raw.get("expect") or {})
        return Step(
            number=n + 1,
            line=self.doc.line_of(where),
            action=action,
            value=raw[action] if action else None,
            actor=raw.get("actor"),
            name=raw.get("name"),
            expect=expect,
            cabinet=raw.get("cabinet"),
        )

    def _instant(self, where: FieldPath, value: str) -> None:
        try:
            parse_instant(value)
        except ValueError as exc:
            self.problem(where, str(exc))

    def _expect(self, where: FieldPath, raw: Mapping[str, Any]) -> Expectations:
        if "refused" in raw and ("ok" in raw or "impossible" in raw):
            self.problem(where, "expect either ok, refused or impossible")
        if "detail" in raw and "refused" not in raw:
            self.problem((*where, "detail"), "detail goes with refused (the text of the refusal)")
        inventory = {
            pocket: StockExpectation(v, {})
            if isinstance(v, int)
            else StockExpectation(v.get("quantity"), v.get("lots", {}))
            for pocket, v in (raw.get("inventory") or {}).items()
        }
        return Expectations(
            refused=raw.get("refused"),
            detail=raw.get("detail"),
            impossible=raw.get("impossible"),
            data=dict(raw.get("data") or {}),
            inventory=inventory,
            ledger=tuple(_entry(e) for e in raw.get("ledger", [])),
            ledger_since_start=tuple(_entry(e) for e in raw.get("ledger_since_start", [])),
            alarms=tuple(_entry(e) for e in raw["alarms"]) if "alarms" in raw else None,
            discrepancies=tuple(raw["discrepancies"]) if "discrepancies" in raw else None,
            compartments=dict(raw.get("compartments") or {}),
            logged_in=raw.get("logged_in", UNSET),
            outbox=tuple(raw.get("outbox", ())),
            central=_central(raw["central"]) if "central" in raw else None,
            lines={str(key): self.doc.line_of((*where, key)) for key in raw},
        )


def _entry(raw: Mapping[str, Any]) -> EntryMatch:
    fields = {ENTRY_FIELDS[key]: value for key, value in raw.items() if key in ENTRY_FIELDS}
    shown = ", ".join(f"{k}: {v}" for k, v in raw.items())
    return EntryMatch(fields=fields, details=dict(raw.get("details") or {}), count=raw.get("count"), written=shown)


def _central(raw: Mapping[str, Any]) -> CentralExpectation:
    return CentralExpectation(
        caught_up=tuple(raw.get("caught_up", ())),
        behind=tuple(raw.get("behind", ())),
        alarms=tuple(raw["alarms"]) if "alarms" in raw else None,
        stock={str(c): dict(p) for c, p in (raw.get("stock") or {}).items()},
    )
