"""The scanner's machine-readable table (``symbologies.toml``) as frozen dataclasses."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Symbology:
    id: str  # AIM symbology identifier, e.g. "]d2"
    name: str  # e.g. "gs1_datamatrix"
    gs1: bool  # data follows GS1 element strings (AIs, GS between variable-length fields)


@dataclass(frozen=True, slots=True)
class ScannerTable:
    version: str
    max_line_bytes: int
    trigger: bytes
    untrigger: bytes
    identify: bytes
    identify_reply_prefix: bytes
    simulator_marker: str
    symbologies: MappingProxyType[str, Symbology]

    def symbology(self, aim_id: str) -> Symbology | None:
        return self.symbologies.get(aim_id)


def load_table() -> ScannerTable:
    raw = tomllib.loads(resources.files(__package__).joinpath("symbologies.toml").read_text("utf-8"))
    commands = raw["commands"]
    symbologies = {
        entry["id"]: Symbology(id=entry["id"], name=entry["name"], gs1=bool(entry["gs1"])) for entry in raw["symbology"]
    }
    return ScannerTable(
        version=str(raw["version"]),
        max_line_bytes=int(raw["limits"]["max_line_bytes"]),
        trigger=commands["trigger"].encode("ascii"),
        untrigger=commands["untrigger"].encode("ascii"),
        identify=commands["identify"].encode("ascii"),
        identify_reply_prefix=commands["identify_reply_prefix"].encode("ascii"),
        simulator_marker=str(commands["simulator_marker"]),
        symbologies=MappingProxyType(symbologies),
    )


SCANNER_TABLE = load_table()
