"""Commands about the cabinet itself: compartments (accounting for a breach, returning one to service) and
administration (critical-override mode, the rules in force, the override list, users); queries of its state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.domain.users import Role
from controller.engine.commands.base import Answers, Returns
from controller.engine.results import Payload

View = Mapping[str, Any]


# --- payloads -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompartmentStep(Payload):
    state: str
    compartment: str  # the compartment's state afterwards
    ledger_seqs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigurationChanged(Payload):
    """One ``configuration.changed`` entry: ``kind`` names what changed, ``values`` what it is now."""

    kind: str
    values: View
    ledger_seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UserCreated(Payload):
    user_id: str
    expires_at: datetime | None
    ledger_seq: int


@dataclass(frozen=True, slots=True)
class UserChanged(Payload):
    user_id: str
    active: bool
    ledger_seq: int | None  # None: it already was


@dataclass(frozen=True, slots=True)
class RulesView(Payload):
    """The rules in force: the document (sections of keys), its hash, and where it came from."""

    document: View
    hash: str
    source: str


@dataclass(frozen=True, slots=True)
class CabinetStatus(Payload):
    compartments: View  # compartment id -> state
    unaccounted: tuple[str, ...]
    critical_override_mode: bool
    board_protocol: int | None  # the I/O board's register-map version, once known
    live_workflows: tuple[View, ...]
    unlock_chains: Mapping[str, tuple[str, ...]]  # pocket -> the compartments that guard it, outermost first


@dataclass(frozen=True, slots=True)
class Restored(Payload):
    """What ``restore`` found: compartments found open (breached), every compartment's state, and the entries the
    recovery of the journal's live workflows wrote."""

    found_open: tuple[str, ...]
    states: View
    ledger_seqs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotApplied(Payload):
    recorded: int
    stale: bool = False  # read before the engine's own latest actuation: dropped


@dataclass(frozen=True, slots=True)
class Recorded(Payload):
    ledger_seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FaultsReported(Payload):
    recorded: tuple[str, ...]  # fault bits newly recorded
    acknowledged: tuple[str, ...]  # bits that only report an event, cleared on the board once recorded
    ledger_seqs: tuple[int, ...] = ()


# --- compartments ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountFor(Returns[CompartmentStep]):
    """A privileged user accounts for a compartment found open or opened without authorisation (after closing)."""

    compartment_id: str
    counted: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceCompartment(Returns[CompartmentStep]):
    """A privileged user returns a jammed or faulted compartment to service after clearing it; the engine then
    checks it shuts and latches (a lock that still does not engage puts it back at fault)."""

    compartment_id: str


# --- devices and audit ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportBoardFaults(Returns[FaultsReported]):
    """The I/O board's fault bits as the latest snapshot shows them (the running loop reports every snapshot's):
    each bit that rose is a ``device.fault`` entry; those that only say something happened (watchdog expired,
    board restarted) are acknowledged on the board once recorded, since the board has relocked everything."""

    faults: frozenset[str]
    device_state: Mapping[str, Any]
    watchdog_timeout_ms: int | None = None  # restored on the board after a reboot reset it


@dataclass(frozen=True, slots=True)
class RecordRefusal(Returns[Recorded]):
    """A security-relevant refusal at a boundary (a bad token, a missing privilege, a bad client secret) as an
    ``input.refused`` entry: codes and the route template only, never a token or a request body."""

    code: str
    route: str
    method: str
    actor_id: str | None = None
    suppressed_before: int = 0


# --- administration -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetCriticalOverride(Returns[ConfigurationChanged]):
    """An administrator turns critical-override mode on or off: while on, items on the formulary's
    critical-override list are removed without an order, each removal going to pharmacist review."""

    enabled: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ChangeRules(Returns[ConfigurationChanged]):
    """An administrator changes rules in force: ``changes`` is section -> key -> new value, validated as the
    policy file is; ``reason`` is required and goes on the entry with every old and new value."""

    changes: Mapping[str, Mapping[str, Any]]
    reason: str


@dataclass(frozen=True, slots=True)
class ApplyCentralConfiguration(Returns[ConfigurationChanged]):
    """The central server's layout or policy for this cabinet (``controller.domain.cabinet_config``), at a version
    that only grows: applied by the system (nobody need be logged in) only if newer than the one held, and checked
    as an administrator's change is; a refusal is recorded with its reason."""

    kind: str
    version: int
    content: Mapping[str, Any]
    retry: bool = False  # offered again after a refusal that may pass later: a repeated refusal is not recorded


@dataclass(frozen=True, slots=True)
class SetOverrideList(Returns[ConfigurationChanged]):
    """Replace the list of items removable by override (a rules change of ``[removal] override_items``)."""

    items: frozenset[str]
    reason: str = "override list replaced"


@dataclass(frozen=True, slots=True)
class CreateUser(Returns[UserCreated]):
    user_id: str
    display_name: str
    roles: frozenset[Role]
    pin: str
    temporary: bool = False


@dataclass(frozen=True, slots=True)
class SetUserActive(Returns[UserChanged]):
    user_id: str
    active: bool


@dataclass(frozen=True, slots=True)
class GetRules(Answers[RulesView]):
    pass


@dataclass(frozen=True, slots=True)
class GetCabinetStatus(Answers[CabinetStatus]):
    pass


@dataclass(frozen=True, slots=True)
class UserList(Payload):
    users: tuple[View, ...]


@dataclass(frozen=True, slots=True)
class ListUsers(Answers[UserList]):
    """Every user with whether they are usable now and locked out."""
