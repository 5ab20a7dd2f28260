"""The error catalogue and the exception hierarchy every layer raises.

Each cause has one stable code, kept as data in ``catalogue.toml``. Boundaries translate errors from here:
the API to problem+json, HL7 to ACK/ERR segments, the CLI to one line on stderr, the ledger to an entry.
This module knows nothing of those boundaries.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from types import MappingProxyType
from typing import Any


class Category(StrEnum):
    COMMUNICATION = "communication"
    DEVICE_FAULT = "device_fault"
    VERIFICATION = "verification"
    SAFETY = "safety"
    INTEGRATION = "integration"
    STORAGE = "storage"
    CONFIGURATION = "configuration"
    SOFTWARE = "software"


@dataclass(frozen=True, slots=True)
class ErrorDefinition:
    code: str
    category: Category
    title: str
    http_status: int
    retryable: bool
    requires_ack: bool
    hl7_error: int


def _load_catalogue() -> MappingProxyType[str, ErrorDefinition]:
    raw = tomllib.loads(resources.files(__package__).joinpath("catalogue.toml").read_text("utf-8"))
    return MappingProxyType(
        {
            code: ErrorDefinition(
                code=code,
                category=Category(spec["category"]),
                title=spec["title"],
                http_status=int(spec.get("http_status", 500)),
                retryable=bool(spec.get("retryable", False)),
                requires_ack=bool(spec.get("requires_ack", False)),
                # 207 = "application internal error" in HL7 table 0357.
                hl7_error=int(spec.get("hl7_error", 207)),
            )
            for code, spec in raw["codes"].items()
        }
    )


CATALOGUE = _load_catalogue()


class ControllerError(Exception):
    """Root of every error the controller raises on purpose.

    ``code`` names the cause in the catalogue; ``detail`` says, for a person, what exactly was refused and why;
    ``context`` carries the values involved (an NDC, a pocket id) for logs and records.
    """

    category: Category | None = None  # subclasses pin their category; codes are checked against it

    def __init__(self, code: str, detail: str, **context: Any) -> None:
        definition = CATALOGUE.get(code)
        if definition is None:
            raise KeyError(f"error code {code!r} is not in the catalogue")
        if self.category is not None and definition.category is not self.category:
            raise ValueError(f"{type(self).__name__} cannot carry {code!r} ({definition.category})")
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.context = context
        self.definition = definition

    @property
    def retryable(self) -> bool:
        return self.definition.retryable

    @property
    def requires_ack(self) -> bool:
        return self.definition.requires_ack

    def __str__(self) -> str:
        return f"[{self.code}] {self.detail}"


class VerificationError(ControllerError):
    category = Category.VERIFICATION


class InvalidIdentifierError(VerificationError):
    """An NDC, UPC-A or GTIN that is malformed or does not carry an NDC."""


class SafetyError(ControllerError):
    """A rule refused the action; the code names the rule."""

    category = Category.SAFETY


class ConfigurationError(ControllerError):
    category = Category.CONFIGURATION


class StorageError(ControllerError):
    category = Category.STORAGE


class SoftwareError(ControllerError):
    category = Category.SOFTWARE


class CommunicationError(ControllerError):
    """The link to a device failed: timeout, checksum, framing, disconnect. Often retryable."""

    category = Category.COMMUNICATION


class DeviceFaultError(ControllerError):
    """The device itself reports a fault (jam, sensor disagreement, lock not engaged, ...)."""

    category = Category.DEVICE_FAULT


__all__ = [
    "CATALOGUE",
    "Category",
    "CommunicationError",
    "ConfigurationError",
    "ControllerError",
    "DeviceFaultError",
    "ErrorDefinition",
    "InvalidIdentifierError",
    "SafetyError",
    "SoftwareError",
    "StorageError",
    "VerificationError",
]
