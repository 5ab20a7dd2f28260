"""The pill counter's message table (``messages.toml``) loaded into frozen dataclasses.

This module is responsible for reading the contract as data; it knows nothing of frames (``codec``) or of what
either side does with a message.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class ProtocolInfo:
    name: str
    version: int
    baudrate: int
    bytesize: int
    parity: str
    stopbits: float
    response_timeout_s: float
    inter_byte_timeout_s: float
    max_retries: int
    max_payload: int


@dataclass(frozen=True, slots=True)
class FrameInfo:
    stx: int
    etx: int
    overhead: int
    reset_seq: int


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    code: int
    kind: str  # "request" or "reply"
    request: str
    reply: str


@dataclass(frozen=True, slots=True)
class DeviceErrorSpec:
    code: int
    name: str
    catalogue: str  # the controller's error code this device code maps to
    description: str


@dataclass(frozen=True, slots=True)
class NakReasonSpec:
    code: int
    name: str
    catalogue: str


@dataclass(frozen=True, slots=True)
class StateSpec:
    code: int
    name: str


@dataclass(frozen=True, slots=True)
class MessageTable:
    protocol: ProtocolInfo
    frame: FrameInfo
    commands: MappingProxyType[str, CommandSpec]
    errors: MappingProxyType[int, DeviceErrorSpec]
    nak_reasons: MappingProxyType[int, NakReasonSpec]
    states: MappingProxyType[int, StateSpec]

    def command(self, name: str) -> CommandSpec:
        return self.commands[name]

    def command_name(self, code: int) -> str | None:
        for spec in self.commands.values():
            if spec.code == code:
                return spec.name
        return None

    def error_named(self, name: str) -> DeviceErrorSpec:
        for spec in self.errors.values():
            if spec.name == name:
                return spec
        raise KeyError(name)


def _rows(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows = raw.get(key, [])
    if not isinstance(rows, list):
        raise ValueError(f"messages.toml: [[{key}]] must be an array of tables")
    return rows


def parse_table(text: str) -> MessageTable:
    raw = tomllib.loads(text)
    proto = raw["protocol"]
    frame = raw["frame"]
    commands = {row["name"]: CommandSpec(**row) for row in _rows(raw, "commands")}
    codes = [spec.code for spec in commands.values()]
    if len(set(codes)) != len(codes):
        raise ValueError("messages.toml: command codes must be unique")
    return MessageTable(
        protocol=ProtocolInfo(
            name=str(proto["name"]),
            version=int(proto["version"]),
            baudrate=int(proto["baudrate"]),
            bytesize=int(proto["bytesize"]),
            parity=str(proto["parity"]),
            stopbits=float(proto["stopbits"]),
            response_timeout_s=float(proto["response_timeout_s"]),
            inter_byte_timeout_s=float(proto["inter_byte_timeout_s"]),
            max_retries=int(proto["max_retries"]),
            max_payload=int(proto["max_payload"]),
        ),
        frame=FrameInfo(**frame),
        commands=MappingProxyType(commands),
        errors=MappingProxyType({row["code"]: DeviceErrorSpec(**row) for row in _rows(raw, "errors")}),
        nak_reasons=MappingProxyType({row["code"]: NakReasonSpec(**row) for row in _rows(raw, "nak_reasons")}),
        states=MappingProxyType({row["code"]: StateSpec(**row) for row in _rows(raw, "states")}),
    )


@cache
def load_table() -> MessageTable:
    """The table shipped with the package (read once; the result is immutable)."""
    return parse_table(resources.files(__package__).joinpath("messages.toml").read_text("utf-8"))
