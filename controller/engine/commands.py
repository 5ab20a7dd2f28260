"""The commands a cabinet runs, as typed records, and the one result type every command returns.

A command either succeeds (``ok`` with ``data``) or is refused with a catalogue code naming the rule or the
device fault that refused it. Expected refusals never raise; an exception out of ``CabinetEngine.execute`` is a
bug. Not responsible for running them (``cabinet.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.domain.policies import OverrideReason
from controller.errors import CATALOGUE, ControllerError
from controller.fsm.base import Refusal


@dataclass(frozen=True, slots=True)
class Login:
    user_id: str
    pin: str | None = None
    badge: str | None = None


@dataclass(frozen=True, slots=True)
class Logout:
    pass


@dataclass(frozen=True, slots=True)
class StartPull:
    patient_id: str


@dataclass(frozen=True, slots=True)
class SelectItem:
    """Against an order (``order_id``), or by override (``item_id`` and ``override_reason``), or in a
    non-profiled area by ``item_id`` alone. ``pocket_id`` picks one pocket when several hold the item.
    ``acknowledge_allergies``: the user confirmed the patient's allergy warning (needed without a verified order)."""

    order_id: str | None = None
    item_id: str | None = None
    override_reason: OverrideReason | None = None
    pocket_id: str | None = None
    acknowledge_allergies: bool = False


@dataclass(frozen=True, slots=True)
class EnterCount:
    count: int


@dataclass(frozen=True, slots=True)
class Take:
    quantity: int


@dataclass(frozen=True, slots=True)
class ScanRemoved:
    """Scan the package just taken from the open pocket (required when ``FsmSettings.scan_removed_package``), with
    the hand scanner or, ``by_camera``, in front of the cabinet's camera."""

    timeout_s: float = 5.0
    by_camera: bool = False


@dataclass(frozen=True, slots=True)
class CancelPull:
    pass


@dataclass(frozen=True, slots=True)
class AccountFor:
    """A privileged user accounts for a compartment found open or opened without authorisation (after closing)."""

    compartment_id: str
    counted: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceCompartment:
    """A privileged user returns a jammed or faulted compartment to service after clearing it; the engine then
    checks it shuts and latches (a lock that still does not engage puts it back at fault)."""

    compartment_id: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Let time-driven rules run now (inactivity logoff, drawer left open)."""


Command = (
    Login
    | Logout
    | StartPull
    | SelectItem
    | EnterCount
    | ScanRemoved
    | Take
    | CancelPull
    | AccountFor
    | ServiceCompartment
    | Tick
)


@dataclass(frozen=True, slots=True)
class CommandResult:
    ok: bool
    data: Mapping[str, Any] = field(default_factory=dict)
    code: str | None = None
    detail: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ok != (self.code is None):
            raise ValueError("a result is either ok or carries a refusal code")
        if self.code is not None and self.code not in CATALOGUE:
            raise KeyError(f"refusal code {self.code!r} is not in the catalogue")

    @classmethod
    def success(cls, **data: Any) -> CommandResult:
        return cls(True, data)

    @classmethod
    def refused(cls, refusal: Refusal, **data: Any) -> CommandResult:
        return cls(False, data, refusal.code, refusal.detail, dict(refusal.context))

    @classmethod
    def from_error(cls, error: ControllerError, **data: Any) -> CommandResult:
        return cls(False, data, error.code, error.detail, dict(error.context))

    @classmethod
    def refuse(cls, code: str, detail: str, **context: Any) -> CommandResult:
        return cls(False, {}, code, detail, context)
