"""The cabinet's rules as a document: TOML text a pharmacist can read, validated into ``Policy`` and ``FsmSettings``,
and the same document back out (as JSON-able data, as TOML text, as a hash, as a list of differences).

Responsible for: the document's sections and keys (one key per field of ``Policy`` and ``FsmSettings``, the unit in
the key's name: ``inactivity_logout_s = 60``, ``excursion_minutes = 30``); validating a whole document
(``parse_rules``) or an administrator's partial change (``apply_changes``) the same way, every mistake refused with a
``config.invalid`` error whose detail names the source, the section and the key, what was expected and what was
found; a key left out takes its default, and an unknown section or key is refused so that a typo never falls back to
a default in silence. ``rules_to_document`` / ``dump_rules`` write the document back; ``CabinetRules.hash`` is the
SHA-256 of its canonical JSON (sorted keys, no spaces), so comments and key order do not change it and any value
does; ``diff_rules`` lists what a change changed, for the ledger.

Document values are canonical: durations are whole numbers when they are whole (``30``, not ``30.0``),
temperatures are floats, sets are lists (enum members in their declaration order, formulary ids sorted), shift
starts are ``"HH:MM"`` in the order given, and "no timed lockout" is ``lockout_minutes = "none"`` (TOML has no
null; ``None`` is accepted too, from JSON).

Not responsible for: reading files (``controller.bootstrap.rules``; the domain does no I/O), choosing or recording
the rules in force (the composition root and the engine), or what each rule means (``policies``, the state
machines). The shipped default document is ``controller/data/policy.toml``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

import tomli_w

from controller.domain.machine_settings import FsmSettings
from controller.domain.medication import DeaSchedule
from controller.domain.policies import BlindCount, OverrideReason, Policy, WitnessedAction
from controller.errors import ConfigurationError

CODE = "config.invalid"


@dataclass(frozen=True, slots=True)
class CabinetRules:
    """Every rule number and switch of one cabinet: ``policy`` for the safety rules, ``machines`` for the state
    machines' timing and workflow flags."""

    policy: Policy = field(default_factory=Policy)
    machines: FsmSettings = field(default_factory=FsmSettings)

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the document: sorted keys, no spaces, ASCII."""
        return hashlib.sha256(canonical_json(rules_to_document(self)).encode("ascii")).hexdigest()


# --- values: how one key is read from the document and written back ------------------------------------------------


class _Refused(Exception):  # noqa: N818 (never escapes: collected into one ConfigurationError)
    """One value refused: ``message`` says what was expected, ``value`` is what was found."""

    def __init__(self, message: str, value: Any) -> None:
        super().__init__(message)
        self.message = message
        self.value = value

    def text(self) -> str:
        return f"{self.message}; got {_found(self.value)}"


def _found(value: Any) -> str:
    """A value as a person reads it in the file (TOML spelling), with its kind where the kind is the mistake."""
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if isinstance(value, str):
        return f"{_quoted(value)} (a string)"
    if isinstance(value, int | float):
        return _shown(value)
    if isinstance(value, datetime):
        return f"{value.isoformat()} (a TOML date-time)"
    if isinstance(value, date):
        return f"{value.isoformat()} (a TOML date)"
    if isinstance(value, time):
        return f"{value.isoformat()} (a TOML time)"
    if isinstance(value, Mapping):
        return f"a table {_shown(value)}"
    if isinstance(value, list | tuple):
        return f"{_shown(value)} (an array)"
    if value is None:
        return "null"
    return f"{value!r} (a {type(value).__name__})"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        text = "[" + ", ".join(_shown(v) for v in value) + "]"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k} = {_shown(v)}" for k, v in value.items()) + "}"
    elif value is None:
        text = "null"
    elif isinstance(value, date | time):
        text = value.isoformat()
    else:
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _choices(values: Iterable[str]) -> str:
    return ", ".join(_quoted(v) for v in values)


def _did_you_mean(value: str, candidates: Iterable[str], quote: Callable[[str], str] = _quoted) -> str:
    close = difflib.get_close_matches(value, sorted(candidates), n=1, cutoff=0.6)
    return f" (did you mean {quote(close[0])}?)" if close else ""


def _number(value: Any, expected: str) -> int | float:
    # ``True`` is an int in Python; in a rules file it is always a mistake where a number goes.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused(f"must be {expected}", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused(f"must be {expected}, not nan or inf", value)
    return value


def _array(value: Any, expected: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise _Refused(f"must be {expected}", value)
    return value


def _canonical_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


class _Codec:
    """How one key's value is read from the document (refusing what does not fit) and written back."""

    def read(self, value: Any) -> Any:
        raise NotImplementedError

    def write(self, value: Any) -> Any:
        raise NotImplementedError


class _Bool(_Codec):
    def read(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _Refused("must be true or false", value)
        return value

    def write(self, value: Any) -> bool:
        return bool(value)


@dataclass(frozen=True, slots=True)
class _Int(_Codec):
    minimum: int
    maximum: int | None = None
    noun: str = "a whole number"

    def read(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Refused(f"must be {self.noun}", value)
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            bounds = f"at least {self.minimum}" if self.maximum is None else f"from {self.minimum} to {self.maximum}"
            raise _Refused(f"must be {bounds}", value)
        return value

    def write(self, value: Any) -> int:
        return int(value)


@dataclass(frozen=True, slots=True)
class _Duration(_Codec):
    """A duration as a plain number of ``unit``s (the key's name says which)."""

    unit: timedelta
    unit_name: str  # "seconds", "minutes", ...
    allow_zero: bool = False
    none_means: str | None = None  # set: "none" (or null) is allowed, and this says what it means

    def read(self, value: Any) -> timedelta | None:
        if self.none_means is not None and (value is None or value == "none"):
            return None
        expected = f"a number of {self.unit_name}"
        if self.none_means is not None:
            expected += f' or "none" ({self.none_means})'
        number = _number(value, expected)
        try:
            duration = self.unit * number
        except OverflowError:
            raise _Refused(f"is too large for a number of {self.unit_name}", value) from None
        if duration < timedelta(0) or (duration == timedelta(0) and not self.allow_zero):
            raise _Refused(f"must be {'zero or more' if self.allow_zero else 'more than zero'}", value)
        return duration

    def write(self, value: Any) -> int | float | str:
        if value is None:
            return "none"
        assert isinstance(value, timedelta)
        return _canonical_number(value / self.unit)


@dataclass(frozen=True, slots=True)
class _Celsius(_Codec):
    # Wide enough for a freezer (USP <659>: -25 to -10 °C) or a room; narrow enough to catch 80 typed for 8.0.
    minimum: float = -40.0
    maximum: float = 40.0

    def read(self, value: Any) -> float:
        number = float(_number(value, "a number of °C")) + 0.0  # + 0.0: -0.0 becomes 0.0
        if not self.minimum <= number <= self.maximum:
            raise _Refused(f"must be from {self.minimum:g} to {self.maximum:g} °C", value)
        return number

    def write(self, value: Any) -> float:
        return float(value) + 0.0


@dataclass(frozen=True, slots=True)
class _Choice(_Codec):
    enum: type[StrEnum]

    def read(self, value: Any) -> StrEnum:
        allowed = [m.value for m in self.enum]
        if not isinstance(value, str) or value not in allowed:
            hint = _did_you_mean(value, allowed) if isinstance(value, str) else ""
            raise _Refused(f"must be one of {_choices(allowed)}{hint}", value)
        return self.enum(value)

    def write(self, value: Any) -> str:
        return str(self.enum(value).value)


@dataclass(frozen=True, slots=True)
class _ChoiceSet(_Codec):
    """A set of enum members, written as a list in the enum's declaration order."""

    enum: type[StrEnum]
    noun: str
    excluded: frozenset[str] = frozenset()

    def _allowed(self) -> list[str]:
        return [m.value for m in self.enum if m.value not in self.excluded]

    def read(self, value: Any) -> frozenset[StrEnum]:
        allowed = self._allowed()
        items = _array(value, f"a list of {self.noun}s from {_choices(allowed)}")
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, str) or item not in allowed:
                hint = _did_you_mean(item, allowed) if isinstance(item, str) else ""
                raise _Refused(f"may list only {_choices(allowed)}; {_shown(item)} is not one of them{hint}", value)
            if item in seen:
                raise _Refused(f"lists {_quoted(item)} twice", value)
            seen.add(item)
        return frozenset(self.enum(item) for item in items)

    def write(self, value: Any) -> list[str]:
        members = {self.enum(v).value for v in value}
        return [m.value for m in self.enum if m.value in members]


class _Names(_Codec):
    """Formulary item ids, written sorted."""

    def read(self, value: Any) -> frozenset[str]:
        items = _array(value, 'a list of formulary item ids (strings, e.g. ["naloxone"])')
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise _Refused(f"must list formulary item ids as non-empty strings; {_shown(item)} is not one", value)
            if item != item.strip():
                raise _Refused(f"lists {_quoted(item)}, which has spaces around the id", value)
            if item in seen:
                raise _Refused(f"lists {_quoted(item)} twice", value)
            seen.add(item)
        return frozenset(items)

    def write(self, value: Any) -> list[str]:
        return sorted(str(v) for v in value)


_CLOCK_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?")


class _ShiftStarts(_Codec):
    """Local wall-clock times, in the order given (``end_of_shift`` does not depend on it)."""

    def read(self, value: Any) -> tuple[time, ...]:
        items = _array(value, 'a list of local times, e.g. ["07:00", "19:00"]')
        if not items:
            raise _Refused('must list at least one shift start, e.g. ["07:00", "19:00"]', value)
        starts: list[time] = []
        for item in items:
            if isinstance(item, time) and item.tzinfo is None:
                start = item  # a TOML local time (07:00:00) is fine too
            elif isinstance(item, str) and _CLOCK_TIME.fullmatch(item):
                start = time.fromisoformat(item)
            else:
                raise _Refused(f'must list local times as "HH:MM" (00:00 to 23:59); {_shown(item)} is not one', value)
            if start in starts:
                raise _Refused(f"lists {start.strftime('%H:%M')} twice", value)
            starts.append(start)
        return tuple(starts)

    def write(self, value: Any) -> list[str]:
        return [t.strftime("%H:%M") if t.second == 0 and t.microsecond == 0 else t.isoformat() for t in value]


class _TimeZone(_Codec):
    def read(self, value: Any) -> str:
        expected = 'an IANA time zone name, e.g. "America/Chicago" or "UTC"'
        if not isinstance(value, str) or not value:
            raise _Refused(f"must be {expected}", value)
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):  # not found / not a normalised key / a folder such as "America"
            raise _Refused(f"must be {expected}{_did_you_mean(value, available_timezones())}", value) from None
        return value

    def write(self, value: Any) -> str:
        return str(value)


# --- the document's layout -----------------------------------------------------------------------------------------

Target = Literal["policy", "machines"]


@dataclass(frozen=True, slots=True)
class _Key:
    name: str
    target: Target
    field: str
    codec: _Codec


def _p(name: str, field_name: str, codec: _Codec) -> _Key:
    return _Key(name, "policy", field_name, codec)


def _m(name: str, field_name: str, codec: _Codec) -> _Key:
    return _Key(name, "machines", field_name, codec)


_SECONDS = timedelta(seconds=1)
_MINUTES = timedelta(minutes=1)

_LAYOUT: dict[str, tuple[_Key, ...]] = {
    "blind_count": (_p("required_for", "blind_count", _Choice(BlindCount)),),
    "witness": (_p("actions", "witnessed_actions", _ChoiceSet(WitnessedAction, "action")),),
    "removal": (
        _p("override_items", "override_items", _Names()),
        _p("override_reasons", "override_reasons", _ChoiceSet(OverrideReason, "reason")),
    ),
    "search": (_p("min_chars", "search_min_chars", _Int(1, noun="a whole number of characters")),),
    "shifts": (
        _p("starts", "shift_starts", _ShiftStarts()),
        _p("timezone", "timezone", _TimeZone()),
    ),
    "users": (_p("temporary_lifetime_hours", "temporary_user_lifetime", _Duration(timedelta(hours=1), "hours")),),
    "session": (
        _m("inactivity_warning_s", "inactivity_warning", _Duration(_SECONDS, "seconds")),
        _m("inactivity_logout_s", "inactivity_logout", _Duration(_SECONDS, "seconds")),
        _m("max_failed_logins", "max_failed_logins", _Int(1)),
        _m(
            "lockout_minutes",
            "lockout_duration",
            _Duration(_MINUTES, "minutes", none_means="only an administrator clears a lockout"),
        ),
        _m("min_login_factors", "min_login_factors", _Int(1, 3, noun="a number of factors (1, 2 or 3)")),
    ),
    "compartments": (
        _m("left_open_s", "left_open_limit", _Duration(_SECONDS, "seconds")),
        _m("block_unlocks_while_unaccounted", "block_unlocks_while_unaccounted", _Bool()),
    ),
    "pull": (
        _m("stop_on_count_mismatch", "stop_pull_on_count_mismatch", _Bool()),
        _m("open_cs_discrepancy_blocks_pulls", "open_cs_discrepancy_blocks_pulls", _Bool()),
        _m(
            "removal_witness_schedules",
            "removal_witness_schedules",
            _ChoiceSet(DeaSchedule, "schedule", excluded=frozenset({DeaSchedule.NONE.value})),
        ),
        _m("scan_removed_package", "scan_removed_package", _Bool()),
    ),
    "returns": (_m("sealed_to_pocket", "return_sealed_to_pocket", _Bool()),),
    "restock": (
        _m("short_dated_warning_days", "short_dated_warning", _Duration(timedelta(days=1), "days", allow_zero=True)),
    ),
    "refrigerator": (
        _p("low_c", "fridge_low_c", _Celsius()),
        _p("high_c", "fridge_high_c", _Celsius()),
        _p("excursion_minutes", "fridge_excursion_limit", _Duration(_MINUTES, "minutes")),
    ),
}

SECTIONS: Mapping[str, tuple[str, ...]] = {section: tuple(k.name for k in keys) for section, keys in _LAYOUT.items()}
"""Each section of the document and its keys, in the order the document is written."""

DOCUMENT_FIELDS: Mapping[tuple[str, str], tuple[Target, str]] = {
    (section, k.name): (k.target, k.field) for section, keys in _LAYOUT.items() for k in keys
}
"""(section, key) -> ("policy" or "machines", the field of ``Policy`` or ``FsmSettings`` it sets)."""

_KEYS = {section: {k.name: k for k in keys} for section, keys in _LAYOUT.items()}
_DEFAULTS = CabinetRules()


def _section_list() -> str:
    return ", ".join(f"[{s}]" for s in _LAYOUT)


# --- parsing and validating ----------------------------------------------------------------------------------------


def parse_rules(text: str, *, source: str = "<policy>") -> CabinetRules:
    """The rules a TOML document states; every key left out takes its default. ``source`` names the document in
    error messages (a file's path). Raises ``ConfigurationError("config.invalid")``."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(text, source, error) from error
    return _build(document, source)


def apply_changes(
    rules: CabinetRules, changes: Mapping[str, Mapping[str, Any]], *, source: str = "change"
) -> CabinetRules:
    """``rules`` with an administrator's partial change (section -> key -> new value, values as the document
    spells them), validated exactly as a parsed document is."""
    merged: dict[Any, Any] = rules_to_document(rules)
    for section, keys in changes.items():
        current = merged.get(section)
        if isinstance(current, dict) and isinstance(keys, Mapping):
            merged[section] = {**current, **keys}
        else:
            merged[section] = keys  # an unknown section, or not a table: refused below with the parser's words
    return _build(merged, source)


def rules_to_document(rules: CabinetRules) -> dict[str, dict[str, Any]]:
    """The document of ``rules``: every section and key, canonical JSON-able values (lists, numbers, strings)."""
    return {
        section: {k.name: k.codec.write(getattr(_target(rules, k.target), k.field)) for k in keys}
        for section, keys in _LAYOUT.items()
    }


def dump_rules(rules: CabinetRules) -> str:
    """TOML text of ``rules`` that ``parse_rules`` reads back to equal rules (without the shipped file's comments)."""
    header = (
        "# The cabinet's rules, written by controller.domain.rules_document.\n"
        "# What each key means and where its default comes from: controller/data/policy.toml.\n\n"
    )
    return header + tomli_w.dumps(rules_to_document(rules))


def canonical_json(document: Mapping[str, Any]) -> str:
    """The form ``CabinetRules.hash`` digests: sorted keys, no spaces, ASCII, no NaN."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def diff_rules(before: CabinetRules, after: CabinetRules) -> list[tuple[str, str, Any, Any]]:
    """(section, key, old value, new value) for every key whose value differs, in document order."""
    old, new = rules_to_document(before), rules_to_document(after)
    return [(s, k, keys[k], new[s][k]) for s, keys in old.items() for k in keys if old[s][k] != new[s][k]]


def _target(rules: CabinetRules, target: Target) -> Policy | FsmSettings:
    return rules.policy if target == "policy" else rules.machines


def _build(document: Mapping[Any, Any], source: str) -> CabinetRules:
    problems: list[str] = []
    values: dict[Target, dict[str, Any]] = {"policy": {}, "machines": {}}
    for section, table in document.items():
        if not isinstance(section, str) or section not in _LAYOUT:
            problems.append(_unknown_section(source, section, table))
            continue
        if not isinstance(table, Mapping):
            problems.append(f"{source}: [{section}] must be a section (a table of keys); got {_found(table)}")
            continue
        for name, raw in table.items():
            key = _KEYS[section].get(name) if isinstance(name, str) else None
            if key is None:
                hint = _did_you_mean(name, _KEYS[section], quote=str) if isinstance(name, str) else ""
                problems.append(
                    f"{source}: [{section}] unknown key {name}{hint}; the keys of [{section}] are "
                    f"{', '.join(_KEYS[section])}"
                )
                continue
            try:
                values[key.target][key.field] = key.codec.read(raw)
            except _Refused as refused:
                problems.append(f"{source}: [{section}] {name} {refused.text()}")
    if not problems:
        problems += _cross_checks(values, source)
    if problems:
        _raise(problems, source)
    policy = _construct(Policy, values["policy"], document, source)
    machines = _construct(FsmSettings, values["machines"], document, source)
    return CabinetRules(policy, machines)


def _unknown_section(source: str, section: Any, table: Any) -> str:
    name = str(section)
    hint = _did_you_mean(name, _LAYOUT, quote=lambda s: f"[{s}]")
    if not hint and not isinstance(table, Mapping):
        owners = [s for s, keys in _KEYS.items() if name in keys]
        if owners:
            hint = f" ({name} is a key: put it under [{owners[0]}])"
    return f"{source}: unknown section [{name}]{hint}; the sections are {_section_list()}"


def _cross_checks(values: Mapping[Target, Mapping[str, Any]], source: str) -> list[str]:
    """The checks that involve two keys, named after the key a person is likelier to have got wrong."""

    def value(target: Target, name: str) -> Any:
        return values[target].get(name, getattr(_target(_DEFAULTS, target), name))

    problems = []
    warning, logout = value("machines", "inactivity_warning"), value("machines", "inactivity_logout")
    if not warning < logout:
        problems.append(
            f"{source}: [session] inactivity_warning_s must be below inactivity_logout_s "
            f"({_shown(_canonical_number(logout / _SECONDS))}); got {_shown(_canonical_number(warning / _SECONDS))}"
        )
    low, high = value("policy", "fridge_low_c"), value("policy", "fridge_high_c")
    if not low < high:
        problems.append(f"{source}: [refrigerator] high_c must be above low_c ({low!r}); got {high!r}")
    return problems


def _construct(
    cls: type[Policy] | type[FsmSettings], given: dict[str, Any], document: Mapping[Any, Any], source: str
) -> Any:
    """``cls(**given)``, its own ``__post_init__`` refusal reported against the section whose values it refused."""
    try:
        return cls(**given)
    except (ValueError, KeyError, OSError) as error:
        reason = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
        target: Target = "policy" if cls is Policy else "machines"
        sections = _blame(cls, target, given)
        shown = "; ".join(
            f"[{s}] " + ", ".join(f"{k} = {_shown(v)}" for k, v in _as_table(document.get(s)).items()) for s in sections
        )
        where = " ".join(f"[{s}]" for s in sections)
        detail = f"{source}: {where} not accepted: {reason}; got {shown or 'the defaults'}"
        raise ConfigurationError(CODE, detail, source=source, sections=sections) from error


def _blame(cls: type[Policy] | type[FsmSettings], target: Target, given: Mapping[str, Any]) -> list[str]:
    """The sections whose values alone ``cls`` refuses; every section that set a value when only their
    combination is refused."""
    setting = [s for s, keys in _LAYOUT.items() if any(k.target == target and k.field in given for k in keys)]
    alone = []
    for section in setting:
        mine = {k.field: given[k.field] for k in _LAYOUT[section] if k.target == target and k.field in given}
        try:
            cls(**mine)
        except (ValueError, KeyError, OSError):
            alone.append(section)
    return alone or setting or [s for s, keys in _LAYOUT.items() if keys[0].target == target]


def _as_table(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _raise(problems: list[str], source: str) -> None:
    if len(problems) == 1:
        raise ConfigurationError(CODE, problems[0], source=source, problems=problems)
    listed = "\n".join(f"  {p}" for p in problems)
    raise ConfigurationError(CODE, f"{source}: {len(problems)} problems:\n{listed}", source=source, problems=problems)


_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = re.compile(r"\s*\(at end of document\)$")


def _syntax_error(text: str, source: str, error: tomllib.TOMLDecodeError) -> ConfigurationError:
    message = str(error)
    position = _POSITION.search(message)
    if position:
        line, column = int(position.group(1)), int(position.group(2))
        where = f"line {line}, column {column}"
        message = message[: position.start()]
    else:
        line, column = text.count("\n") + 1, 0
        where = f"line {line} (the end of the document)"
        message = _AT_END.sub("", message)
    return ConfigurationError(
        CODE, f"{source}: {where}: not valid TOML: {message}", source=source, line=line, column=column
    )


__all__ = [
    "DOCUMENT_FIELDS",
    "SECTIONS",
    "CabinetRules",
    "apply_changes",
    "canonical_json",
    "diff_rules",
    "dump_rules",
    "parse_rules",
    "rules_to_document",
]
