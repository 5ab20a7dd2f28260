"""The label printer's machine-readable table (``printer.toml``) as frozen dataclasses."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class PrinterFault:
    flag: str  # a boolean attribute of HostStatus, e.g. "paper_out"
    code: str  # catalogue code, e.g. "device.printer_fault"
    title: str  # for a person, e.g. "paper out"


@dataclass(frozen=True, slots=True)
class PrinterTable:
    version: str
    port: int
    max_label_bytes: int
    simulator_marker: str
    faults: tuple[PrinterFault, ...]


def load_table() -> PrinterTable:
    raw = tomllib.loads(resources.files(__package__).joinpath("printer.toml").read_text("utf-8"))
    return PrinterTable(
        version=str(raw["version"]),
        port=int(raw["port"]),
        max_label_bytes=int(raw["max_label_bytes"]),
        simulator_marker=str(raw["simulator_marker"]),
        faults=tuple(PrinterFault(flag=f["flag"], code=f["code"], title=f["title"]) for f in raw["fault"]),
    )


PRINTER_TABLE = load_table()
