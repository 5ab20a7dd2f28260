"""Reading a formulary data file (TOML, ``[[medication]]`` tables) into domain ``Medication`` objects.

The demo formulary ships in ``controller/data/formulary.toml``; a hospital points ``adc`` at its own file.
Every entry is validated: a bad NDC, an unknown schedule or a missing field names the entry and stops the load.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from controller.domain.medication import DeaSchedule, Medication
from controller.domain.ndc import Ndc
from controller.errors import ConfigurationError, ControllerError

_TEXT_FIELDS = ("id", "ndc", "generic_name", "display_name", "strength", "dosage_form", "route", "unit")
_FLAGS = ("high_alert", "lasa", "hazardous", "refrigerated", "neuromuscular_blocker", "critical_override")


@dataclass(frozen=True, slots=True)
class FormularyEntry:
    medication: Medication
    source: str


def demo_formulary_text() -> str:
    return resources.files("controller").joinpath("data/formulary.toml").read_text("utf-8")


def load_formulary(path: Path | None = None) -> list[FormularyEntry]:
    text = path.read_text("utf-8") if path is not None else demo_formulary_text()
    where = str(path) if path is not None else "demo formulary"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("config.invalid", f"{where}: {exc}") from exc
    entries = [_entry(raw, where, index) for index, raw in enumerate(document.get("medication", []), start=1)]
    _check_unique(entries, where)
    return entries


def _entry(raw: dict[str, Any], where: str, index: int) -> FormularyEntry:
    label = f"{where}, medication #{index} ({raw.get('id', '?')})"
    missing = [name for name in _TEXT_FIELDS if not str(raw.get(name, "")).strip()]
    if missing:
        raise ConfigurationError("config.invalid", f"{label}: missing {', '.join(missing)}")
    try:
        medication = Medication(
            id=raw["id"],
            ndc=Ndc.parse(raw["ndc"]),
            alternate_ndcs=tuple(Ndc.parse(n) for n in raw.get("alternate_ndcs", [])),
            generic_name=raw["generic_name"],
            brand_name=raw.get("brand_name", ""),
            display_name=raw["display_name"],
            strength=raw["strength"],
            dosage_form=raw["dosage_form"],
            route=raw["route"],
            package=raw.get("package", ""),
            unit=raw["unit"],
            dea_schedule=DeaSchedule.parse(raw.get("dea_schedule", "")),
            **{flag: _flag(raw, flag, label) for flag in _FLAGS},
        )
    except ControllerError as exc:
        raise ConfigurationError("config.invalid", f"{label}: {exc.detail}") from exc
    except ValueError as exc:
        raise ConfigurationError("config.invalid", f"{label}: {exc}") from exc
    return FormularyEntry(medication=medication, source=str(raw.get("source", "")))


def _flag(raw: dict[str, Any], name: str, label: str) -> bool:
    value = raw.get(name, False)
    if not isinstance(value, bool):
        raise ConfigurationError("config.invalid", f"{label}: {name} must be true or false, not {value!r}")
    return value


def _check_unique(entries: list[FormularyEntry], where: str) -> None:
    seen_ids: set[str] = set()
    seen_ndcs: dict[str, str] = {}
    for entry in entries:
        med = entry.medication
        if med.id in seen_ids:
            raise ConfigurationError("config.invalid", f"{where}: formulary id {med.id} appears twice")
        seen_ids.add(med.id)
        for ndc in med.all_ndcs:
            other = seen_ndcs.setdefault(ndc.digits, med.id)
            if other != med.id or sum(1 for n in med.all_ndcs if n.digits == ndc.digits) > 1:
                raise ConfigurationError("config.invalid", f"{where}: NDC {ndc} is listed for {other} and {med.id}")
